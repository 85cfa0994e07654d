//! The pure step of `oxlb run`: from the loaded objects, the validated config and what
//! this host held before, to the assignments, this node's announcements and the status
//! report. The shell (engine) only loads files and applies the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use oxlb_announce::{Announcements, Protocol, ServiceView};
use oxlb_config::snapshot::Snapshot;
use oxlb_config::{Community, Config};
use oxlb_controller::service::ServiceView as ControllerView;
use oxlb_controller::{Controller, Desired, EventReason};

use crate::services::{FileService, service_key, take_services};
use crate::state::{Assignments, HeldAssignment};
use oxlb_announce::mixed_paths::LinkBandwidth;
use oxlb_node::inputs::{Assigned, Source, announce_input};
use oxlb_node::status::{
    AnnouncedIp, BgpRouteStatus, NotAnnouncedIp, PoolStatus, RowSource,
    ServiceStatus as ServiceReport,
};
use oxlb_node::views;

/// What one planning step decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every held assignment, to persist.
    pub held: Assignments,
    pub announcements: Announcements,
    /// The IPs this node announces by any protocol (made local on the host).
    pub local_ips: BTreeSet<IpAddr>,
    /// The Services planned, as the controller saw them (shared views): with `held`,
    /// `announcements` and `failures`, what the report's rows derive from ([`RunRows`]).
    pub service_views: Vec<Arc<ControllerView>>,
    /// The last allocation failure per Service, as of this plan.
    pub failures: BTreeMap<String, String>,
    pub pools: Vec<PoolStatus>,
    /// `namespace/name`, reason, type, message: logged by the shell, as the controller
    /// would record them as Kubernetes events.
    pub events: Vec<(String, EventReason, String)>,
    /// Weighted ECMP: Services a router gets both with and without the link-bandwidth
    /// community (older speakers told so, see [`Planner::set_told`]).
    pub mixed_paths: Vec<oxlb_announce::MixedPaths>,
}

/// Keeps the controller (which remembers assignments and which failures it already
/// reported) across reloads.
#[derive(Debug)]
pub struct Planner {
    node: String,
    lb_class: Option<String>,
    controller: Option<Controller>,
    /// The last allocation failure per service (the controller reports a repeated
    /// failure only once; `explain` needs it every time).
    failures: BTreeMap<String, String>,
    service_limit: Option<usize>,
    /// The drained speakers (`oxlb drain`): this one and those that told so.
    drained: BTreeSet<String>,
    /// Whether each speaker heard from attaches the link-bandwidth community.
    told: BTreeMap<String, LinkBandwidth>,
}

impl Planner {
    pub fn new(node: &str, lb_class: Option<String>) -> Planner {
        Planner {
            node: node.to_string(),
            lb_class,
            controller: None,
            failures: BTreeMap::new(),
            service_limit: None,
            drained: BTreeSet::new(),
            told: BTreeMap::new(),
        }
    }

    /// Handles at most `limit` LoadBalancer Services; more are refused, logged as a
    /// `ServiceLimitExceeded` warning and explained in the status report.
    pub fn with_service_limit(mut self, limit: Option<usize>) -> Planner {
        self.service_limit = limit;
        self
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The drained speakers the next plans elect Layer 2 owners with: this node's own
    /// drain and the drains the other speakers told.
    pub fn set_drained(&mut self, drained: BTreeSet<String>) {
        self.drained = drained;
    }

    /// What the other speakers told about the link-bandwidth community
    /// ([`oxlb_node::mixed_paths::told`]): the next plans check weighted ECMP for mixed
    /// paths with it.
    pub fn set_told(&mut self, told: BTreeMap<String, LinkBandwidth>) {
        self.told = told;
    }

    /// Plans with `config` (already validated from `snapshot`). `held`: what this host
    /// held before (the persisted state, or the previous plan). `live`: the nodes whose
    /// speakers are alive; `None` = every node known from the files, plus this one.
    pub fn plan(
        &mut self,
        snapshot: &Snapshot,
        config: &Config,
        held: &Assignments,
        live: Option<&BTreeSet<String>>,
    ) -> Plan {
        let mut snapshot = snapshot.clone();
        let mut services = take_services(&mut snapshot);
        self.plan_checked(
            &snapshot,
            &mut services,
            config,
            held,
            live,
            &oxlb_announce::Health::default(),
        )
    }

    /// [`Planner::plan`] with health checks (`oxlb.io/health-check`): Services whose
    /// check does not pass on a node are not announced by it. `services`: the
    /// Services of the files (taken out of `snapshot`, [`take_services`]); each keeps
    /// the view the controller got, so the next plan shares it again.
    pub fn plan_checked(
        &mut self,
        snapshot: &Snapshot,
        services: &mut [FileService],
        config: &Config,
        held: &Assignments,
        live: Option<&BTreeSet<String>>,
        health: &oxlb_announce::Health,
    ) -> Plan {
        let listed: BTreeSet<String> = services.iter().map(|s| s.key().to_string()).collect();
        let namespaces: Vec<_> = snapshot
            .namespaces
            .iter()
            .map(|n| n.object.clone())
            .collect();
        let controller = match &mut self.controller {
            Some(controller) => {
                if controller.config() != config {
                    controller
                        .apply([oxlb_controller::Change::SetConfig(Box::new(config.clone()))]);
                }
                controller
            }
            None => self.controller.insert(
                // A request that cannot be met must not withdraw a working IP
                // (issue 5): `explain` says why the request failed.
                Controller::new(config.clone(), self.lb_class.clone())
                    .keep_held_on_unmet_request()
                    .with_service_limit(self.service_limit),
            ),
        };
        // Files carry no status: each Service gets the IPs this host assigned it before
        // (or keeps a status the file does carry, e.g. exported from a cluster running
        // MetalLB), so the controller re-claims them before allocating anything new.
        let outcome = controller.sync_views(
            &listed,
            services
                .iter_mut()
                .map(|s| s.view_with(held.services.get(&**s.key()))),
            &namespaces,
        );
        drop(listed);

        let mut plan = Plan::default();
        for (key, service_outcome) in &outcome.services {
            for event in &service_outcome.events {
                match event.reason {
                    EventReason::AllocationFailed | EventReason::ServiceLimitExceeded => {
                        self.failures.insert(key.clone(), event.message.clone());
                    }
                    EventReason::IpAllocated => {
                        self.failures.remove(key);
                    }
                    _ => {}
                }
                plan.events
                    .push((key.clone(), event.reason, event.message.clone()));
            }
        }
        let desired = controller.all_desired();
        let refused: BTreeSet<&str> = controller.refused().collect();
        self.failures
            .retain(|key, _| desired.contains_key(key) || refused.contains(key.as_str()));
        // Collected, not inserted one by one: a B-tree filled in key order by inserts
        // keeps its nodes half full, one built from a sorted sequence packs them (the
        // held assignments live as long as the plan's successor; issue 22).
        plan.held.services = desired
            .iter()
            .filter_map(|(key, wanted)| match wanted {
                Desired::Status {
                    ingress,
                    pool: Some(pool),
                } if !ingress.is_empty() => Some((
                    key.clone(),
                    HeldAssignment {
                        ips: ingress.clone(),
                        pool: pool.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        plan.pools = outcome
            .pools
            .iter()
            .map(|(name, counters)| PoolStatus {
                name: name.clone(),
                addresses: config
                    .pools
                    .get(name)
                    .map(|p| p.addresses_as_written.clone())
                    .unwrap_or_default(),
                auto_assign: config.pools.get(name).is_some_and(|p| p.auto_assign),
                ipv4_total: counters.total_ipv4(),
                ipv4_in_use: counters.assigned_ipv4,
                ipv6_total: counters.total_ipv6(),
                ipv6_in_use: counters.assigned_ipv6,
            })
            .collect();

        let assigned = services.iter().filter_map(|service| {
            let assignment = plan.held.services.get(&**service.key())?;
            Some(Assigned {
                key: service.service_key(),
                traffic_policy: service.traffic_policy(),
                labels: service.labels(),
                ips: &assignment.ips,
                pool: &assignment.pool,
            })
        });
        let slices: Vec<views::SliceView> = snapshot
            .endpoint_slices
            .iter()
            .map(|s| views::slice_view(&s.object))
            .collect();
        let mut input = announce_input(
            Source::Files,
            &self.node,
            assigned,
            &slices,
            snapshot.nodes.iter().map(|n| &n.object),
            live,
        );
        input.mark_drained(&self.drained);
        plan.announcements = input.announce_checked(config, health);
        plan.mixed_paths = input.mixed_paths(config, health, &self.told);
        let service_views = input.services;
        plan.local_ips = plan
            .announcements
            .l2
            .keys()
            .copied()
            .chain(announced_bgp_ips(&plan.announcements, &service_views))
            .collect();
        plan.service_views = services.iter().map(FileService::shared_view).collect();
        plan.failures = self.failures.clone();
        plan
    }
}

/// What `oxlb run`'s report derives its Service and route rows from when they are
/// asked for (`/api/v1/status`, `/metrics`; [`oxlb_node::status::RowSource`]): the
/// plan's views, assignments, announcements and failures, which the engine holds
/// anyway or shares, instead of 40,000 rows held in every report (issue 22).
#[derive(Debug)]
pub struct RunRows {
    services: Vec<Arc<ControllerView>>,
    held: Arc<Assignments>,
    announcements: Announcements,
    failures: BTreeMap<String, String>,
}

impl RunRows {
    pub fn new(
        services: Vec<Arc<ControllerView>>,
        held: Arc<Assignments>,
        mut announcements: Announcements,
        failures: BTreeMap<String, String>,
    ) -> RunRows {
        // Rebuilt from the sorted routes: the announce core inserts them one by one,
        // which leaves the B-tree's nodes about half full (3.35 MB for 3 x 10,000
        // routes, heaptrack); these are kept until the next plan.
        announcements.bgp = std::mem::take(&mut announcements.bgp)
            .into_iter()
            .map(|(peer, routes)| (peer, routes.into_iter().collect()))
            .collect();
        RunRows {
            services,
            held,
            announcements,
            failures,
        }
    }

    /// A plan's rows from copies of what they derive from (a one-off report).
    pub fn of(plan: &Plan) -> RunRows {
        RunRows::new(
            plan.service_views.clone(),
            Arc::new(plan.held.clone()),
            plan.announcements.clone(),
            plan.failures.clone(),
        )
    }
}

impl RowSource for RunRows {
    fn services(&self) -> Vec<ServiceReport> {
        service_reports(
            &self.services,
            &self.held,
            &self.announcements,
            &self.failures,
        )
    }

    fn bgp_routes(&self) -> Vec<BgpRouteStatus> {
        bgp_routes(&self.announcements)
    }
}

/// The service IPs behind the BGP routes this node sends (a route may be an aggregate;
/// the host needs the service IPs themselves).
fn announced_bgp_ips<'a>(
    announcements: &'a Announcements,
    services: &'a [ServiceView],
) -> impl Iterator<Item = IpAddr> + 'a {
    services
        .iter()
        .flat_map(|s| s.ips.iter().copied())
        .filter(|ip| {
            announcements
                .bgp
                .values()
                .any(|routes| route_covers(routes, ip))
        })
}

/// Whether a route of `routes` covers `ip`: one lookup per prefix length (at most
/// 33 or 129), not a walk over every route (10,000 Services x 10,000 routes x every
/// peer before).
fn route_covers<V>(routes: &BTreeMap<ipnet::IpNet, V>, ip: &IpAddr) -> bool {
    let longest = if ip.is_ipv4() { 32 } else { 128 };
    (0..=longest)
        .any(|len| ipnet::IpNet::new(*ip, len).is_ok_and(|net| routes.contains_key(&net.trunc())))
}

fn bgp_routes(announcements: &Announcements) -> Vec<BgpRouteStatus> {
    // Sized exactly: a row per peer and prefix.
    let mut rows = Vec::with_capacity(announcements.bgp.values().map(BTreeMap::len).sum());
    for (peer, routes) in &announcements.bgp {
        let peer: Arc<str> = Arc::from(peer.as_str());
        rows.extend(routes.iter().map(|(prefix, attributes)| BgpRouteStatus {
            peer: Arc::clone(&peer),
            prefix: *prefix,
            local_pref: attributes.local_pref,
            communities: attributes.communities.iter().map(community_text).collect(),
            weight: attributes.weight,
        }));
    }
    rows
}

pub fn community_text(community: &Community) -> String {
    match community {
        Community::Standard(value) => format!("{}:{}", value >> 16, value & 0xffff),
        Community::Large(a, b, c) => format!("large:{a}:{b}:{c}"),
    }
}

fn service_reports(
    services: &[Arc<ControllerView>],
    held: &Assignments,
    announcements: &Announcements,
    failures: &BTreeMap<String, String>,
) -> Vec<ServiceReport> {
    // Each Service's skips, found by key rather than by a walk over all of them.
    let mut skipped: BTreeMap<&oxlb_announce::ServiceKey, Vec<&oxlb_announce::Skipped>> =
        BTreeMap::new();
    for skip in &announcements.skipped {
        skipped.entry(&skip.service).or_default().push(skip);
    }
    // One shared name a peer for every Service's row (issue 22).
    let peer_names: BTreeMap<&str, Arc<str>> = announcements
        .bgp
        .keys()
        .map(|peer| (peer.as_str(), Arc::from(peer.as_str())))
        .collect();
    let mut reports: Vec<ServiceReport> = services
        .iter()
        .map(|service| {
            let key = service_key(service);
            let text_key = service.key.to_string();
            let held = held.services.get(&text_key);
            let mut report = ServiceReport {
                service: text_key.clone(),
                ips: held.map(|h| h.ips.clone()).unwrap_or_default(),
                pool: held.map(|h| h.pool.clone()),
                allocation_error: failures.get(&text_key).cloned(),
                weight: announcements
                    .weights
                    .get(&key)
                    .map(oxlb_node::weights::status),
                ..Default::default()
            };
            // Rows sized exactly (most IPs have one row, by one protocol): 10,000 rows
            // grown by pushing kept room for four each (issue 22).
            report.announced.reserve_exact(report.ips.len());
            for ip in &report.ips {
                if let Some(l2) = announcements.l2.get(ip) {
                    report.announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Layer2,
                        via: match &l2.interfaces {
                            oxlb_announce::Interfaces::All => vec![],
                            oxlb_announce::Interfaces::Only(names) => {
                                names.iter().map(|name| Arc::from(name.as_str())).collect()
                            }
                        },
                    });
                }
                let covering = || {
                    announcements
                        .bgp
                        .iter()
                        .filter(|(_, routes)| route_covers(routes, ip))
                };
                let mut peers = Vec::with_capacity(covering().count());
                peers.extend(
                    covering()
                        .filter_map(|(peer, _)| peer_names.get(peer.as_str()).map(Arc::clone)),
                );
                if !peers.is_empty() {
                    report.announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Bgp,
                        via: peers,
                    });
                }
            }
            report.not_announced = skipped
                .get(&key)
                .into_iter()
                .flatten()
                .map(|s| NotAnnouncedIp {
                    ip: s.ip,
                    protocol: s.protocol,
                    reason: (&s.reason).into(),
                    detail: s.reason.to_string(),
                })
                .collect();
            report
        })
        .collect();
    reports.sort_by(|a, b| a.service.cmp(&b.service));
    reports
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const FILES: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: huge
  namespace: metallb-system
spec:
  addresses:
    - 10.0.0.0/8
    - fd00::/64
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: huge
  namespace: metallb-system
";

    fn service(name: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n\
             spec:\n  type: LoadBalancer\n"
        )
    }

    fn plan(services: usize, limit: Option<usize>) -> Plan {
        let text: String = std::iter::once(FILES.to_string())
            .chain((0..services).map(|i| service(&format!("s{i}"))))
            .collect();
        let snapshot = oxlb_config::load_str(&text, None, "metallb-system").unwrap();
        let config = oxlb_config::build_config(&snapshot).applied;
        Planner::new("n1", None).with_service_limit(limit).plan(
            &snapshot,
            &config,
            &Assignments::default(),
            None,
        )
    }

    /// Issue 22: a /8 and a /64 cost nothing per address in the status report: the
    /// pool is counted, not listed, and only held IPs appear.
    #[test]
    fn a_huge_pool_is_counted_not_listed() {
        let plan = plan(3, None);
        assert_eq!(plan.pools.len(), 1);
        let pool = &plan.pools[0];
        assert_eq!(pool.ipv4_total, 1 << 24);
        assert_eq!(pool.ipv6_total, 1 << 64);
        assert_eq!(pool.ipv4_in_use, 3);
        assert_eq!(pool.addresses, ["10.0.0.0/8", "fd00::/64"]);
        let services = RunRows::of(&plan).services();
        assert_eq!(services.len(), 3);
        assert!(services.iter().all(|s| s.ips.len() == 1));
        assert_eq!(plan.held.services.len(), 3);
    }

    /// Issue 21 (soak): a Service that goes leaves nothing behind in the planner (the
    /// controller's maps, the allocator, the failures), so replacing one Service by a
    /// new name each reload keeps the state the same size. The planner's debug text
    /// shows every map it keeps; with names of one length it must not grow.
    #[test]
    fn a_service_that_goes_leaves_no_state_behind() {
        let mut planner = Planner::new("n1", None).with_service_limit(Some(3));
        let mut sizes = Vec::new();
        for k in 10..60 {
            // Two steady Services, one new name per step, and one refused for the
            // limit under a new name too (its failure is remembered while it exists).
            let text: String = [
                FILES.to_string(),
                service("steady-a"),
                service("steady-b"),
                service(&format!("churn-{k}")),
                service(&format!("extra-{k}")),
            ]
            .concat();
            let snapshot = oxlb_config::load_str(&text, None, "metallb-system").unwrap();
            let config = oxlb_config::build_config(&snapshot).applied;
            let plan = planner.plan(&snapshot, &config, &Assignments::default(), None);
            let churn = format!("default/churn-{k}");
            let extra = format!("default/extra-{k}");
            let held: Vec<&str> = plan.held.services.keys().map(String::as_str).collect();
            assert_eq!(
                held,
                [churn.as_str(), "default/steady-a", "default/steady-b"]
            );
            let controller = planner.controller.as_ref().unwrap();
            let tracked: Vec<String> = controller.all_desired().into_keys().collect();
            assert_eq!(
                tracked,
                [
                    churn.clone(),
                    "default/steady-a".into(),
                    "default/steady-b".into()
                ]
            );
            let mut allocated: Vec<&str> =
                controller.allocator().services().map(|(k, _)| k).collect();
            allocated.sort_unstable();
            assert_eq!(
                allocated,
                [churn.as_str(), "default/steady-a", "default/steady-b"]
            );
            assert_eq!(controller.refused().collect::<Vec<_>>(), [extra.as_str()]);
            assert_eq!(planner.failures.keys().collect::<Vec<_>>(), [&extra]);
            sizes.push(format!("{planner:?}").len());
        }
        assert!(
            sizes.windows(2).all(|w| w[0] == w[1]),
            "the planner grew: {sizes:?}"
        );
    }

    /// `oxlb run --max-services`: beyond the limit a Service gets no IP, one warning
    /// event, and its report says why.
    #[test]
    fn services_beyond_the_limit_are_refused_and_explained() {
        let plan = plan(5, Some(3));
        assert_eq!(plan.held.services.len(), 3);
        let refused: Vec<&str> = plan
            .events
            .iter()
            .filter(|(_, reason, _)| *reason == EventReason::ServiceLimitExceeded)
            .map(|(key, _, _)| key.as_str())
            .collect();
        assert_eq!(refused, ["default/s3", "default/s4"]);
        let services = RunRows::of(&plan).services();
        let report = services.iter().find(|s| s.service == "default/s4").unwrap();
        assert!(report.ips.is_empty());
        assert!(
            report
                .allocation_error
                .as_deref()
                .is_some_and(|e| e.contains("at most 3 LoadBalancer Services")),
            "{report:?}"
        );
    }
}
