//! The pure step of `oxlb run`: from the loaded objects, the validated config and what
//! this host held before, to the assignments, this node's announcements and the status
//! report. The shell (engine) only loads files and applies the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service, ServiceStatus};
use oxlb_announce::{Announcements, Protocol, ServiceView};
use oxlb_config::snapshot::Snapshot;
use oxlb_config::{Community, Config};
use oxlb_controller::{Controller, Desired, EventReason, POOL_ANNOTATION};

use crate::state::{Assignments, HeldAssignment};
use oxlb_node::inputs::{Assigned, Source, announce_input};
use oxlb_node::status::{
    AnnouncedIp, BgpRouteStatus, NotAnnouncedIp, PoolStatus, ServiceStatus as ServiceReport,
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
    pub services: Vec<ServiceReport>,
    pub pools: Vec<PoolStatus>,
    pub bgp_routes: Vec<BgpRouteStatus>,
    /// `namespace/name`, reason, type, message: logged by the shell, as the controller
    /// would record them as Kubernetes events.
    pub events: Vec<(String, EventReason, String)>,
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
}

impl Planner {
    pub fn new(node: &str, lb_class: Option<String>) -> Planner {
        Planner {
            node: node.to_string(),
            lb_class,
            controller: None,
            failures: BTreeMap::new(),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
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
        self.plan_checked(
            snapshot,
            config,
            held,
            live,
            &oxlb_announce::Health::default(),
        )
    }

    /// [`Planner::plan`] with health checks (`oxlb.io/health-check`): Services whose
    /// check does not pass on a node are not announced by it.
    pub fn plan_checked(
        &mut self,
        snapshot: &Snapshot,
        config: &Config,
        held: &Assignments,
        live: Option<&BTreeSet<String>>,
        health: &oxlb_announce::Health,
    ) -> Plan {
        let services: Vec<Service> = snapshot
            .services
            .iter()
            .map(|s| with_held_status(&s.object, held))
            .collect();
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
                Controller::new(config.clone(), self.lb_class.clone()).keep_held_on_unmet_request(),
            ),
        };
        let outcome = controller.sync(&services, &namespaces);

        let mut plan = Plan::default();
        for (key, service_outcome) in &outcome.services {
            for event in &service_outcome.events {
                match event.reason {
                    EventReason::AllocationFailed => {
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
        self.failures.retain(|key, _| desired.contains_key(key));
        for (key, wanted) in &desired {
            if let Desired::Status {
                ingress,
                pool: Some(pool),
            } = wanted
                && !ingress.is_empty()
            {
                plan.held.services.insert(
                    key.clone(),
                    HeldAssignment {
                        ips: ingress.clone(),
                        pool: pool.clone(),
                    },
                );
            }
        }
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
            let assignment = plan
                .held
                .services
                .get(&views::service_key(service).to_string())?;
            Some(Assigned {
                service,
                ips: &assignment.ips,
                pool: &assignment.pool,
            })
        });
        let input = announce_input(
            Source::Files,
            &self.node,
            assigned,
            snapshot.endpoint_slices.iter().map(|s| &s.object),
            snapshot.nodes.iter().map(|n| &n.object),
            live,
        );
        plan.announcements = input.announce_checked(config, health);
        let service_views = input.services;
        plan.local_ips = plan
            .announcements
            .l2
            .keys()
            .copied()
            .chain(announced_bgp_ips(&plan.announcements, &service_views))
            .collect();
        plan.bgp_routes = bgp_routes(&plan.announcements);
        plan.services = service_reports(&services, &plan, &self.failures);
        plan
    }
}

/// Files carry no status: give each Service the IPs this host assigned it before (or
/// keep a status the file does carry, e.g. exported from a cluster running MetalLB),
/// so the controller re-claims them before allocating anything new. A Service written
/// without a namespace is in `default`, as `kubectl apply` would put it.
fn with_held_status(service: &Service, held: &Assignments) -> Service {
    let mut service = service.clone();
    service
        .metadata
        .namespace
        .get_or_insert_with(|| "default".to_string());
    let key = views::service_key(&service).to_string();
    if let Some(assignment) = held.services.get(&key) {
        service.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    assignment
                        .ips
                        .iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some(ip.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            ..Default::default()
        });
        service
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(POOL_ANNOTATION.to_string(), assignment.pool.clone());
    }
    service
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
                .any(|routes| routes.keys().any(|prefix| prefix.contains(ip)))
        })
}

fn bgp_routes(announcements: &Announcements) -> Vec<BgpRouteStatus> {
    announcements
        .bgp
        .iter()
        .flat_map(|(peer, routes)| {
            routes
                .iter()
                .map(move |(prefix, attributes)| BgpRouteStatus {
                    peer: peer.clone(),
                    prefix: *prefix,
                    local_pref: attributes.local_pref,
                    communities: attributes.communities.iter().map(community_text).collect(),
                })
        })
        .collect()
}

pub fn community_text(community: &Community) -> String {
    match community {
        Community::Standard(value) => format!("{}:{}", value >> 16, value & 0xffff),
        Community::Large(a, b, c) => format!("large:{a}:{b}:{c}"),
    }
}

fn service_reports(
    services: &[Service],
    plan: &Plan,
    failures: &BTreeMap<String, String>,
) -> Vec<ServiceReport> {
    let mut reports: Vec<ServiceReport> = services
        .iter()
        .map(|service| {
            let key = views::service_key(service);
            let text_key = key.to_string();
            let held = plan.held.services.get(&text_key);
            let mut report = ServiceReport {
                service: text_key.clone(),
                ips: held.map(|h| h.ips.clone()).unwrap_or_default(),
                pool: held.map(|h| h.pool.clone()),
                allocation_error: failures.get(&text_key).cloned(),
                ..Default::default()
            };
            for ip in &report.ips {
                if let Some(l2) = plan.announcements.l2.get(ip) {
                    report.announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Layer2,
                        via: match &l2.interfaces {
                            oxlb_announce::Interfaces::All => vec![],
                            oxlb_announce::Interfaces::Only(names) => {
                                names.iter().cloned().collect()
                            }
                        },
                    });
                }
                let peers: Vec<String> = plan
                    .announcements
                    .bgp
                    .iter()
                    .filter(|(_, routes)| routes.keys().any(|p| p.contains(ip)))
                    .map(|(peer, _)| peer.clone())
                    .collect();
                if !peers.is_empty() {
                    report.announced.push(AnnouncedIp {
                        ip: *ip,
                        protocol: Protocol::Bgp,
                        via: peers,
                    });
                }
            }
            report.not_announced = plan
                .announcements
                .skipped
                .iter()
                .filter(|s| s.service == key)
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
