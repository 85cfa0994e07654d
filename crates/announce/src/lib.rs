//! Decides, for one node and one snapshot, what that node announces: which service IPs
//! it answers for on the LAN (Layer 2) and which prefixes it sends to which BGP peers.
//!
//! Pure: the caller gathers the snapshot (Config, services with their assigned IPs,
//! endpoints, nodes, live speakers) and applies the result. Every speaker runs the same
//! function on the same snapshot, so the Layer 2 owner of an IP is agreed on without
//! talking. The rules are MetalLB's (COMPAT.md, "Speaker").

mod bgp;
pub mod drain;
mod election;
mod eligibility;
pub mod health;
pub mod mixed_paths;
pub mod quorum;
mod snapshot;
pub mod undrain;
pub mod weight;
pub mod weight_damping;

pub use bgp::{BgpRoute, RouteAttributes};
pub use election::{l2_owner, l2_rank};
pub use health::Health;
pub use mixed_paths::{MixedPaths, mixed_paths};
pub use snapshot::{Endpoint, Endpoints, NodeView, ServiceKey, ServiceView, TrafficPolicy};
pub use weight::Weight;
pub use weight_damping::WeightDamper;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use oxlb_config::Config;

/// Why a service IP is not announced from this node. Used as a log field and metric
/// label, and by `oxlb explain`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// The IP's pool is not (or no longer) in the configuration.
    UnknownPool,
    /// No L2Advertisement nor BGPAdvertisement selects the pool.
    NoAdvertisement,
    /// Advertisements select the pool, but their nodeSelectors exclude this node.
    NodeNotSelected,
    /// This node carries the exclude-from-external-load-balancers label or its
    /// NetworkUnavailable condition is True.
    NodeExcluded,
    /// The node is cordoned (`spec.unschedulable`): a drain has begun.
    NodeCordoned,
    /// `externalTrafficPolicy: Local`, this node's endpoints are all terminating and a
    /// ready endpoint exists on another node.
    LocalEndpointsTerminating,
    /// No endpoint of the service is ready or serving anywhere.
    NoServingEndpoint,
    /// `externalTrafficPolicy: Local` and no serving endpoint on this node.
    NoLocalEndpoint,
    /// Layer 2: another node wins the election for this IP.
    NotElected { owner: String },
    /// Layer 2: this node's speaker is not among the live members.
    NotLive,
    /// BGP: advertisements select the pool, but no BGP peer applies to this node.
    NoPeer,
    /// The Service's health check (`oxlb.io/health-check`) does not pass on this node
    /// (see [`health`] for the rule when it fails everywhere).
    HealthCheckFailing,
    /// Layer 2: this node is drained (`oxlb drain`) and a live node that is not can
    /// answer (see [`election`] for the rule when every candidate is drained).
    NodeDrained,
}

impl Skip {
    /// A short stable label (metrics, JSON).
    pub fn label(&self) -> &'static str {
        match self {
            Skip::UnknownPool => "unknown_pool",
            Skip::NoAdvertisement => "no_advertisement",
            Skip::NodeNotSelected => "node_not_selected",
            Skip::NodeExcluded => "node_excluded",
            Skip::NodeCordoned => "node_cordoned",
            Skip::LocalEndpointsTerminating => "local_endpoints_terminating",
            Skip::NoServingEndpoint => "no_serving_endpoint",
            Skip::NoLocalEndpoint => "no_local_endpoint",
            Skip::NotElected { .. } => "not_elected",
            Skip::NotLive => "not_live",
            Skip::NoPeer => "no_peer",
            Skip::HealthCheckFailing => "health_check_failing",
            Skip::NodeDrained => "node_drained",
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::UnknownPool => write!(f, "its pool is not in the configuration"),
            Skip::NoAdvertisement => {
                write!(f, "no L2Advertisement or BGPAdvertisement selects its pool")
            }
            Skip::NodeNotSelected => write!(
                f,
                "the advertisements for its pool do not select this node (nodeSelectors)"
            ),
            Skip::NodeExcluded => write!(
                f,
                "this node is excluded (label node.kubernetes.io/exclude-from-external-load-balancers, or NetworkUnavailable)"
            ),
            Skip::NodeCordoned => write!(
                f,
                "this node is cordoned (spec.unschedulable): it withdraws before its pods are evicted"
            ),
            Skip::LocalEndpointsTerminating => write!(
                f,
                "externalTrafficPolicy is Local and this node's endpoints are all terminating (ready ones run elsewhere)"
            ),
            Skip::NoServingEndpoint => write!(f, "no endpoint of the service is ready"),
            Skip::NoLocalEndpoint => write!(
                f,
                "externalTrafficPolicy is Local and no ready endpoint runs on this node"
            ),
            Skip::NotElected { owner } => write!(f, "node {owner:?} owns it (Layer 2 election)"),
            Skip::NotLive => write!(f, "this node's speaker is not a live member"),
            Skip::NoPeer => write!(f, "no BGPPeer applies to this node"),
            Skip::HealthCheckFailing => write!(
                f,
                "its health check (oxlb.io/health-check) does not pass on this node; withdrawn (also when it fails on every node)"
            ),
            Skip::NodeDrained => write!(
                f,
                "this node is drained (oxlb drain): a live node that is not answers (a drained node answers only when every candidate is drained)"
            ),
        }
    }
}

/// Everything one node should announce, plus why each other service IP is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcements {
    /// Layer 2: IPs this node owns, with the interfaces to answer on (empty = every
    /// eligible interface) and the services behind each IP.
    pub l2: BTreeMap<IpAddr, L2Announcement>,
    /// BGP: per peer name, the routes to send (already aggregated and merged).
    pub bgp: BTreeMap<String, BTreeMap<ipnet::IpNet, RouteAttributes>>,
    /// Per service and IP, why it is not announced by a protocol from this node.
    pub skipped: Vec<Skipped>,
    /// Weighted ECMP: this node's weight for each Service whose routes carry one.
    pub weights: BTreeMap<ServiceKey, Weight>,
}

/// Which IPs one peer's routes cover: a lookup per prefix length present (one or two
/// in practice: host routes, an aggregation length), not a scan of every route (at
/// 10,000 Services and 10,000 routes a scan per Service cost 10^8 comparisons a peer).
pub struct RouteCover<'a, V> {
    routes: &'a BTreeMap<ipnet::IpNet, V>,
    /// Per prefix length (index), whether a route of the family has it.
    v4: [bool; 33],
    v6: [bool; 129],
}

impl<'a, V> RouteCover<'a, V> {
    pub fn new(routes: &'a BTreeMap<ipnet::IpNet, V>) -> Self {
        let mut cover = RouteCover {
            routes,
            v4: [false; 33],
            v6: [false; 129],
        };
        for prefix in routes.keys() {
            let len = usize::from(prefix.prefix_len());
            let lengths: &mut [bool] = match prefix {
                ipnet::IpNet::V4(_) => &mut cover.v4,
                ipnet::IpNet::V6(_) => &mut cover.v6,
            };
            if let Some(present) = lengths.get_mut(len) {
                *present = true;
            }
        }
        cover
    }

    /// Whether a route covers `ip`.
    pub fn covers(&self, ip: &IpAddr) -> bool {
        let lengths: &[bool] = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        lengths.iter().enumerate().any(|(len, present)| {
            *present
                && u8::try_from(len)
                    .ok()
                    .and_then(|len| ipnet::IpNet::new(*ip, len).ok())
                    .is_some_and(|net| self.routes.contains_key(&net.trunc()))
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Announcement {
    pub interfaces: Interfaces,
    pub services: BTreeSet<ServiceKey>,
}

/// The interfaces to answer on. A pool's behaviour is the union of the advertisements
/// that select it, and an advertisement without `interfaces` means all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Interfaces {
    #[default]
    All,
    Only(BTreeSet<String>),
}

impl Interfaces {
    pub fn from_list(list: &[String]) -> Interfaces {
        if list.is_empty() {
            Interfaces::All
        } else {
            Interfaces::Only(list.iter().cloned().collect())
        }
    }

    pub fn union(&self, other: &Interfaces) -> Interfaces {
        match (self, other) {
            (Interfaces::Only(a), Interfaces::Only(b)) => {
                Interfaces::Only(a.union(b).cloned().collect())
            }
            _ => Interfaces::All,
        }
    }

    pub fn allows(&self, interface: &str) -> bool {
        match self {
            Interfaces::All => true,
            Interfaces::Only(names) => names.contains(interface),
        }
    }
}

/// How an IP is announced. Serialized (status reports) and displayed (events, metric
/// labels, logs) as MetalLB's words: `layer2`, `bgp`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Layer2,
    Bgp,
}

impl Protocol {
    /// The label MetalLB uses (`protocol` in metrics and `nodeAssigned` events).
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Layer2 => "layer2",
            Protocol::Bgp => "bgp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    pub service: ServiceKey,
    pub ip: IpAddr,
    /// `None` when no protocol applies at all (e.g. no advertisement).
    pub protocol: Option<Protocol>,
    pub reason: Skip,
}

/// The snapshot one node decides on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub config: &'a Config,
    pub node: &'a NodeView,
    /// Every node the speakers know of (labels and exclusion), this one included. Layer 2
    /// candidates come from here, intersected with `live_speakers`.
    pub nodes: &'a BTreeMap<String, NodeView>,
    /// Names of the nodes whose speakers are alive (memberlist). Standalone without
    /// membership: every node in `nodes`.
    pub live_speakers: &'a BTreeSet<String>,
    pub services: &'a [ServiceView],
}

/// Computes this node's announcements.
pub fn announce(input: Input<'_>) -> Announcements {
    announce_checked(input, &Health::default())
}

/// [`announce`] with health checks: a node whose check for a Service does not pass
/// neither sends its BGP paths nor stands in its Layer 2 election.
pub fn announce_checked(input: Input<'_>, health: &Health) -> Announcements {
    let mut out = Announcements::default();
    for service in input.services {
        let Some(first_ip) = service.ips.first().copied() else {
            continue;
        };
        let Some(pool) = input.config.pools.get(&service.pool) else {
            for ip in &service.ips {
                out.skipped.push(Skipped {
                    service: service.key.clone(),
                    ip: *ip,
                    protocol: None,
                    reason: Skip::UnknownPool,
                });
            }
            continue;
        };
        let l2 = election::decide_l2(&input, health, service, pool, first_ip);
        let bgp = bgp::decide_bgp(&input, health, service, pool);
        let any_advertisement = l2.is_some() || bgp.is_some();
        if !any_advertisement {
            for ip in &service.ips {
                out.skipped.push(Skipped {
                    service: service.key.clone(),
                    ip: *ip,
                    protocol: None,
                    reason: Skip::NoAdvertisement,
                });
            }
            continue;
        }
        match l2 {
            Some(Ok(interfaces)) => {
                for ip in &service.ips {
                    match out.l2.entry(*ip) {
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(L2Announcement {
                                interfaces: interfaces.clone(),
                                services: BTreeSet::from([service.key.clone()]),
                            });
                        }
                        std::collections::btree_map::Entry::Occupied(mut slot) => {
                            let entry = slot.get_mut();
                            entry.interfaces = entry.interfaces.union(&interfaces);
                            entry.services.insert(service.key.clone());
                        }
                    }
                }
            }
            Some(Err(reason)) => push_skips(&mut out, service, Protocol::Layer2, reason),
            None => {}
        }
        match bgp {
            Some(Ok(routes)) => {
                if routes.iter().any(|r| r.attributes.weight.is_some())
                    && let Some(w) = weight::local_weight(service, input.node)
                {
                    out.weights.insert(service.key.clone(), w);
                }
                for route in routes {
                    out.bgp
                        .entry(route.peer)
                        .or_default()
                        .entry(route.prefix)
                        .or_default()
                        .merge(&route.attributes);
                }
            }
            Some(Err(reason)) => push_skips(&mut out, service, Protocol::Bgp, reason),
            None => {}
        }
    }
    out.skipped.sort();
    out
}

fn push_skips(out: &mut Announcements, service: &ServiceView, protocol: Protocol, reason: Skip) {
    for ip in &service.ips {
        out.skipped.push(Skipped {
            service: service.key.clone(),
            ip: *ip,
            protocol: Some(protocol),
            reason: reason.clone(),
        });
    }
}

#[cfg(test)]
mod route_cover_tests {
    use super::*;

    fn table(prefixes: &[&str]) -> BTreeMap<ipnet::IpNet, ()> {
        prefixes.iter().map(|p| (p.parse().unwrap(), ())).collect()
    }

    /// The lookup answers as the scan it replaced (`any(prefix.contains(ip))`).
    #[test]
    fn covers_exactly_what_a_scan_of_every_route_covers() {
        let routes = table(&[
            "10.0.0.1/32",
            "10.1.0.0/24",
            "192.168.0.0/16",
            "2001:db8::1/128",
            "2001:db8:1::/64",
        ]);
        let cover = RouteCover::new(&routes);
        for ip in [
            "10.0.0.1",
            "10.0.0.2",
            "10.1.0.77",
            "10.1.1.1",
            "192.168.255.255",
            "172.16.0.1",
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8:1::ffff",
            "2001:db8:2::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let scanned = routes.keys().any(|p| p.contains(&ip));
            assert_eq!(cover.covers(&ip), scanned, "{ip}");
        }
        assert!(!RouteCover::new(&table(&[])).covers(&"10.0.0.1".parse().unwrap()));
    }
}
