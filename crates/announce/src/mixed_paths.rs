//! Weighted ECMP with mixed paths (issue 19): whether a router would see, for one
//! weighted prefix, some paths with the link-bandwidth community and some without.
//! FRR then ignores the weights of every path of the prefix and splits traffic equally
//! (unless `bgp bestpath bandwidth default-weight-for-missing`, which `oxlb
//! router-config` emits). That happens while older speakers, which cannot attach the
//! community, run beside this version: a rolling upgrade.
//!
//! Pure: every node's announcements come from the same snapshot the announce decision
//! runs on (it is computed identically on every node), and what each speaker told about
//! itself comes from the speakers' news. A node not heard from is unknown (down, or not
//! a speaker) and never reported: nothing is guessed.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use crate::snapshot::{NodeView, ServiceKey, TrafficPolicy};
use crate::{Health, Input};

/// What a speaker told about the link-bandwidth community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkBandwidth {
    /// It attaches the community to weighted announcements (this version).
    Attaches,
    /// Its news lacks the flag that says so: an older speaker, which announces the same
    /// prefixes without the community.
    Lacks,
}

/// One weighted Service whose prefixes would reach a router both with and without the
/// community.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MixedPaths {
    pub service: ServiceKey,
    /// The prefixes a router receives both ways (the same BGPPeer from a node that
    /// attaches the community and from one that does not).
    pub prefixes: BTreeSet<IpNet>,
    /// The nodes that announce them without the community (older speakers).
    pub without_community: BTreeSet<String>,
    /// The nodes that announce them with it.
    pub with_community: BTreeSet<String>,
}

/// The weighted Services with mixed paths. `input.node` is this node, which runs this
/// code and so attaches the community; `speakers` is what the other speakers told (a
/// node missing from it is unknown and left out). A drained node announces nothing by
/// BGP and is left out too.
pub fn mixed_paths(
    input: Input<'_>,
    health: &Health,
    speakers: &BTreeMap<String, LinkBandwidth>,
) -> Vec<MixedPaths> {
    let mut nodes: Vec<(&NodeView, LinkBandwidth)> = vec![(input.node, LinkBandwidth::Attaches)];
    nodes.extend(
        speakers
            .iter()
            .filter(|(name, _)| **name != input.node.name)
            .filter_map(|(name, community)| Some((input.nodes.get(name)?, *community))),
    );
    nodes.retain(|(view, _)| !view.drained);
    if !nodes.iter().any(|(_, c)| *c == LinkBandwidth::Lacks) {
        return Vec::new();
    }
    // Only a Local Service of a pool a weighted advertisement selects can carry a
    // weight: the decision runs per node for those alone (a rolling upgrade of a large
    // cluster re-plans often; the other Services cost nothing here).
    let weighted_pools: BTreeSet<&str> = input
        .config
        .bgp_advertisements
        .values()
        .filter(|a| a.weighted_ecmp)
        .flat_map(|a| a.pools.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for service in input.services.iter().filter(|s| {
        s.traffic_policy == TrafficPolicy::Local && weighted_pools.contains(s.pool.as_str())
    }) {
        let Some(pool) = input.config.pools.get(&service.pool) else {
            continue;
        };
        // (peer, prefix) → the nodes that send it weighted, by what they attach.
        let mut paths: BTreeMap<(String, IpNet), BTreeMap<LinkBandwidth, BTreeSet<&str>>> =
            BTreeMap::new();
        for (view, community) in &nodes {
            let as_node = Input {
                node: view,
                ..input
            };
            let Some(Ok(routes)) = crate::bgp::decide_bgp(&as_node, health, service, pool) else {
                continue;
            };
            for route in routes.into_iter().filter(|r| r.attributes.weight.is_some()) {
                paths
                    .entry((route.peer, route.prefix))
                    .or_default()
                    .entry(*community)
                    .or_default()
                    .insert(view.name.as_str());
            }
        }
        let mut mixed = MixedPaths {
            service: service.key.clone(),
            prefixes: BTreeSet::new(),
            without_community: BTreeSet::new(),
            with_community: BTreeSet::new(),
        };
        for ((_, prefix), by) in &paths {
            let (Some(with), Some(without)) = (
                by.get(&LinkBandwidth::Attaches),
                by.get(&LinkBandwidth::Lacks),
            ) else {
                continue;
            };
            mixed.prefixes.insert(*prefix);
            mixed
                .with_community
                .extend(with.iter().map(|n| n.to_string()));
            mixed
                .without_community
                .extend(without.iter().map(|n| n.to_string()));
        }
        if !mixed.prefixes.is_empty() {
            out.push(mixed);
        }
    }
    out
}
