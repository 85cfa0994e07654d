//! BGP: which prefixes this node sends to which peer, with which attributes.

use std::collections::BTreeSet;

use ipnet::IpNet;
use oxlb_config::{Community, Pool, selector::any_matches};

use crate::eligibility::serves_from;
use crate::snapshot::ServiceView;
use crate::{Input, Skip};

/// The path attributes oxlb chooses per prefix (ORIGIN, AS_PATH and NEXT_HOP are fixed
/// by the session: COMPAT.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttributes {
    /// Only ever set for iBGP peers (RFC 4271 §5.1.5: LOCAL_PREF is not sent to
    /// external peers).
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<Community>,
    /// Weighted ECMP (`oxlb.io/weighted-ecmp`): this node's weight, sent as the link
    /// bandwidth extended community. `None`: equal paths.
    pub weight: Option<u32>,
}

impl RouteAttributes {
    /// Several advertisements (or services aggregated into one prefix) may yield the
    /// same prefix for a peer: communities add up; of two LOCAL_PREFs the higher wins, so
    /// the result does not depend on the order services are seen in.
    pub fn merge(&mut self, other: &RouteAttributes) {
        self.communities.extend(other.communities.iter().copied());
        // The same prefix from two services (aggregation) or two advertisements: the
        // larger weight, like LOCAL_PREF, so the order services are seen in does not
        // matter.
        self.weight = self.weight.max(other.weight);
        self.local_pref = match (self.local_pref, other.local_pref) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRoute {
    pub peer: String,
    pub prefix: IpNet,
    pub attributes: RouteAttributes,
}

/// `None`: no BGPAdvertisement selects the pool. `Some(Ok)`: the routes to send.
pub(crate) fn decide_bgp(
    input: &Input<'_>,
    health: &crate::Health,
    service: &ServiceView,
    pool: &Pool,
) -> Option<Result<Vec<BgpRoute>, Skip>> {
    let advertisements: Vec<_> = input
        .config
        .bgp_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        // MetalLB (main): serviceSelectors limit the advertisement to matching Services.
        .filter(|a| any_matches(&a.service_selectors, &service.labels))
        .collect();
    if advertisements.is_empty() {
        return None;
    }
    let node = input.node;
    let for_node: Vec<_> = advertisements
        .into_iter()
        .filter(|a| any_matches(&a.node_selectors, &node.labels))
        .collect();
    if for_node.is_empty() {
        return Some(Err(Skip::NodeNotSelected));
    }
    if let Err(skip) = serves_from(service, node) {
        return Some(Err(skip));
    }
    if !health.passes(&service.key, &node.name) {
        return Some(Err(Skip::HealthCheckFailing));
    }
    let weight = crate::weight::local_weight(service, node).map(|w| w.value);
    let mut routes = Vec::new();
    for advertisement in for_node {
        let peers = input.config.peers.values().filter(|peer| {
            any_matches(&peer.node_selectors, &node.labels)
                && (advertisement.peers.is_empty() || advertisement.peers.contains(&peer.name))
        });
        for peer in peers {
            for ip in service.ips.iter().filter(|ip| peer_carries(peer, ip)) {
                let length = match ip {
                    std::net::IpAddr::V4(_) => advertisement.aggregation_length_v4,
                    std::net::IpAddr::V6(_) => advertisement.aggregation_length_v6,
                };
                // Lengths were validated by the config (1..=32 / 1..=128).
                let Ok(prefix) = IpNet::new(*ip, length) else {
                    continue;
                };
                routes.push(BgpRoute {
                    peer: peer.name.clone(),
                    prefix: prefix.trunc(),
                    attributes: RouteAttributes {
                        local_pref: advertisement.local_pref.filter(|_| peer.is_ibgp()),
                        communities: advertisement.communities.clone(),
                        weight: weight.filter(|_| advertisement.weighted_ecmp),
                    },
                });
            }
        }
    }
    if routes.is_empty() {
        Some(Err(Skip::NoPeer))
    } else {
        Some(Ok(routes))
    }
}

/// An IPv6 prefix goes to an IPv6 peer and an IPv4 prefix to an IPv4 peer, unless the
/// peer has `dualStackAddressFamily` (both families over one session, RFC 4760). An
/// unnumbered peer (link-local IPv6 session) carries both.
fn peer_carries(peer: &oxlb_config::Peer, ip: &std::net::IpAddr) -> bool {
    match &peer.address {
        oxlb_config::PeerAddress::Ip(address) => {
            peer.dual_stack_address_family || address.is_ipv4() == ip.is_ipv4()
        }
        oxlb_config::PeerAddress::Interface(_) => true,
    }
}
