//! Layer 2: which single node answers ARP/NDP for a service IP.
//!
//! MetalLB's rule, kept bit for bit so oxlb and MetalLB speakers would agree: among the
//! eligible live nodes, the one whose sha256(nodeName + "#" + ip) is lowest (bytewise)
//! owns the IP, where ip is the service's first ingress IP. Every speaker computes it
//! alone from the same snapshot. With `preferredNodeSelectors` (MetalLB main), only
//! the eligible nodes with the highest preference score are candidates.
//!
//! Drained nodes (`oxlb drain`, [`NodeView::drained`]) are left out while a candidate
//! that is not drained remains, so ownership moves to a live node that is not drained;
//! an undrain makes the node a candidate again. Rule when every candidate is drained:
//! they stay candidates and the hash elects one of them, which keeps answering. Why,
//! unlike the health rule ([`crate::health`]: withdraw when the check fails everywhere):
//! a failing check says the node cannot serve, a drain only says "send new traffic
//! elsewhere" — a drained `oxlb run` host keeps its service IPs and backends, so it
//! still serves. With nowhere else to send the traffic, withdrawing would turn a
//! maintenance step into an outage of the Service (Layer 2 has no second path: nobody
//! would answer ARP). It is MetalLB's rule for endpoints that are all terminating,
//! too. Every speaker computes it from the same drained set (the health news), so they
//! agree on one owner.

use std::net::IpAddr;

use oxlb_config::{Pool, selector::any_matches};
use sha2::{Digest, Sha256};

use crate::eligibility::serves_from;
use crate::snapshot::{NodeView, ServiceView};
use crate::{Input, Interfaces, Skip};

/// The election key of a node for an IP.
pub fn l2_rank(node: &str, ip: &IpAddr) -> [u8; 32] {
    rank_with(node, ip.to_string().as_bytes())
}

fn rank_with(node: &str, ip: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update(b"#");
    hasher.update(ip);
    hasher.finalize().into()
}

/// The owner among `candidates`: lowest rank, ties (impossible in practice) broken by
/// name. One hash per candidate and the IP written once (issue 22: a comparison
/// computing both ranks, each writing the IP, cost 4x as much; with `Cluster` policy
/// every live node is a candidate for every Layer 2 IP).
pub fn l2_owner<'a>(candidates: impl IntoIterator<Item = &'a str>, ip: &IpAddr) -> Option<&'a str> {
    let ip = ip.to_string();
    candidates
        .into_iter()
        .map(|name| (rank_with(name, ip.as_bytes()), name))
        .min()
        .map(|(_, name)| name)
}

/// The candidates without the drained ones, unless every candidate is drained (then
/// all of them stand: see the module's rule).
pub fn without_drained(candidates: Vec<&NodeView>) -> Vec<&NodeView> {
    if candidates.iter().all(|n| n.drained) {
        candidates
    } else {
        candidates.into_iter().filter(|n| !n.drained).collect()
    }
}

/// `None`: no L2Advertisement selects the pool. `Some(Ok)`: this node owns the IPs and
/// answers on these interfaces. `Some(Err)`: why not.
pub(crate) fn decide_l2(
    input: &Input<'_>,
    health: &crate::Health,
    service: &ServiceView,
    pool: &Pool,
    first_ip: IpAddr,
) -> Option<Result<Interfaces, Skip>> {
    let advertisements: Vec<_> = input
        .config
        .l2_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        // MetalLB (main): an advertisement limited by serviceSelectors applies only to
        // the Services whose labels one of them matches.
        .filter(|a| any_matches(&a.service_selectors, &service.labels))
        .collect();
    if advertisements.is_empty() {
        return None;
    }
    let selects = |node: &NodeView| {
        advertisements
            .iter()
            .any(|a| any_matches(&a.node_selectors, &node.labels))
    };
    let node = input.node;
    if !selects(node) {
        return Some(Err(Skip::NodeNotSelected));
    }
    if let Err(skip) = serves_from(service, node) {
        return Some(Err(skip));
    }
    if !input.live_speakers.contains(&node.name) {
        return Some(Err(Skip::NotLive));
    }
    if !health.passes(&service.key, &node.name) {
        return Some(Err(Skip::HealthCheckFailing));
    }
    let candidates = input
        .nodes
        .values()
        .filter(|n| n.name != node.name)
        .chain(std::iter::once(node))
        .filter(|n| input.live_speakers.contains(&n.name))
        .filter(|n| selects(n) && serves_from(service, n).is_ok())
        .filter(|n| health.passes(&service.key, &n.name))
        .collect::<Vec<_>>();
    let candidates = without_drained(candidates);
    if !candidates.iter().any(|n| n.name == node.name) {
        // Only a drain takes this node out at this point: it passed every other test.
        return Some(Err(Skip::NodeDrained));
    }
    // MetalLB (main) preferredNodeSelectors: a node's score is the sum, over the
    // advertisements that select it, of the weights whose preference matches its labels;
    // only the highest-scoring candidates stand, and the hash decides among them.
    let score = |n: &NodeView| -> i64 {
        advertisements
            .iter()
            .filter(|a| any_matches(&a.node_selectors, &n.labels))
            .flat_map(|a| &a.preferred_nodes)
            .filter(|p| p.selector.matches(&n.labels))
            .map(|p| i64::from(p.weight))
            .sum()
    };
    let best = candidates.iter().map(|n| score(n)).max().unwrap_or(0);
    let candidates = candidates
        .into_iter()
        .filter(|n| score(n) == best)
        .map(|n| n.name.as_str());
    match l2_owner(candidates, &first_ip) {
        Some(owner) if owner == node.name => {
            let interfaces = advertisements
                .iter()
                .filter(|a| any_matches(&a.node_selectors, &node.labels))
                .fold(None::<Interfaces>, |acc, a| {
                    let these = Interfaces::from_list(&a.interfaces);
                    Some(match acc {
                        None => these,
                        Some(acc) => acc.union(&these),
                    })
                })
                .unwrap_or_default();
            Some(Ok(interfaces))
        }
        Some(owner) => Some(Err(Skip::NotElected {
            owner: owner.to_string(),
        })),
        // Unreachable in practice: this node is itself a candidate at this point.
        None => Some(Err(Skip::NotLive)),
    }
}
