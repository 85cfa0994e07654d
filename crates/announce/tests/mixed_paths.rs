//! Weighted ECMP with mixed paths (issue 19): the nodes that would announce a weighted
//! prefix without the link-bandwidth community (older speakers), next to ones that
//! attach it.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use oxlb_announce::mixed_paths::LinkBandwidth;
use oxlb_announce::{Endpoints, Health, Input, MixedPaths, TrafficPolicy, mixed_paths};
use oxlb_config::{Config, LabelSelector};
use proptest::prelude::*;

fn selector(k: &str, v: &str) -> LabelSelector {
    LabelSelector {
        match_labels: BTreeMap::from([(k.to_string(), v.to_string())]),
        match_expressions: vec![],
    }
}

const NODES: [&str; 3] = ["node1", "node2", "node3"];

fn config(weighted: bool) -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("public".into(), pool("public", "203.0.113.0/24"));
    let mut adv = bgp_adv("adv", &["public"]);
    adv.weighted_ecmp = weighted;
    config.bgp_advertisements.insert("adv".into(), adv);
    config
        .peers
        .insert("r".into(), peer("r", 64500, 64501, "10.0.0.1"));
    config
}

/// A Service with `ready[i]` ready endpoints on node i+1.
fn local_service(name: &str, ip: &str, ready: &[usize]) -> oxlb_announce::ServiceView {
    let mut s = service(name, "public", &[ip]);
    s.traffic_policy = TrafficPolicy::Local;
    s.endpoints = Endpoints::Known(
        ready
            .iter()
            .enumerate()
            .flat_map(|(i, n)| std::iter::repeat_n(endpoint(NODES[i], true), *n))
            .collect(),
    );
    s
}

fn world(weighted: bool, services: Vec<oxlb_announce::ServiceView>) -> World {
    let mut world = World::new(
        config(weighted),
        NODES.iter().map(|n| node(n, &[])).collect(),
    );
    world.services = services;
    world
}

fn check(world: &World, me: &str, told: &[(&str, LinkBandwidth)]) -> Vec<MixedPaths> {
    let speakers: BTreeMap<String, LinkBandwidth> =
        told.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    mixed_paths(
        Input {
            config: &world.config,
            node: &world.nodes[me],
            nodes: &world.nodes,
            live_speakers: &world.live,
            services: &world.services,
        },
        &Health::default(),
        &speakers,
    )
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|n| n.to_string()).collect()
}

use LinkBandwidth::{Attaches, Lacks};

#[test]
fn an_older_speaker_beside_this_one_is_named_with_the_prefix() {
    let w = world(true, vec![local_service("web", "203.0.113.5", &[1, 2, 3])]);
    let found = check(&w, "node1", &[("node2", Attaches), ("node3", Lacks)]);
    assert_eq!(
        found,
        vec![MixedPaths {
            service: w.services[0].key.clone(),
            prefixes: BTreeSet::from(["203.0.113.5/32".parse().unwrap()]),
            without_community: names(&["node3"]),
            with_community: names(&["node1", "node2"]),
        }]
    );
}

#[test]
fn nothing_is_mixed_without_an_older_speaker_heard_from() {
    let w = world(true, vec![local_service("web", "203.0.113.5", &[1, 2, 3])]);
    // node3 not heard from: unknown, not reported.
    assert!(check(&w, "node1", &[("node2", Attaches)]).is_empty());
    assert!(check(&w, "node1", &[]).is_empty());
}

#[test]
fn an_older_speaker_that_would_not_announce_mixes_nothing() {
    // node3 has no local endpoint: it does not announce the Local Service.
    let w = world(true, vec![local_service("web", "203.0.113.5", &[1, 2, 0])]);
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
    // Drained: it withdrew everything.
    let mut w = world(true, vec![local_service("web", "203.0.113.5", &[1, 2, 3])]);
    w.nodes.get_mut("node3").unwrap().drained = true;
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
}

#[test]
fn only_older_speakers_announcing_is_not_mixed() {
    // This node has no endpoint, so only node3 (older) announces: one kind of path.
    let w = world(true, vec![local_service("web", "203.0.113.5", &[0, 0, 3])]);
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
    // But an older node2 and a new node3 announcing: mixed, also seen from node1.
    let w = world(true, vec![local_service("web", "203.0.113.5", &[0, 1, 3])]);
    let found = check(&w, "node1", &[("node2", Lacks), ("node3", Attaches)]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].without_community, names(&["node2"]));
    assert_eq!(found[0].with_community, names(&["node3"]));
}

#[test]
fn unweighted_services_never_mix() {
    let w = world(false, vec![local_service("web", "203.0.113.5", &[1, 2, 3])]);
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
    // A Cluster Service of a weighted advertisement carries no weight either.
    let mut cluster = service("c", "public", &["203.0.113.6"]);
    cluster.endpoints = Endpoints::Known(vec![endpoint("node1", true)]);
    let w = world(true, vec![cluster]);
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
}

#[test]
fn paths_to_different_routers_do_not_mix() {
    // node1 peers with router a, node3 (older) with router b: no router sees both.
    let mut w = world(true, vec![local_service("web", "203.0.113.5", &[1, 0, 1])]);
    w.config.peers.clear();
    for (name, address, node) in [("a", "10.0.0.1", "node1"), ("b", "10.0.0.2", "node3")] {
        let mut p = peer(name, 64500, 64501, address);
        p.node_selectors = vec![selector("kubernetes.io/hostname", node)];
        w.config.peers.insert(name.into(), p);
    }
    for n in ["node1", "node3"] {
        w.nodes
            .get_mut(n)
            .unwrap()
            .labels
            .insert("kubernetes.io/hostname".into(), n.into());
    }
    assert!(check(&w, "node1", &[("node3", Lacks)]).is_empty());
}

proptest! {
    /// Over random endpoint counts and random news: a Service is reported exactly when
    /// a node that attaches the community (this one, or one told so) and an older one
    /// both have a ready local endpoint; the report names exactly those nodes; and every
    /// node that heard the same news computes the same report.
    #[test]
    fn reported_exactly_when_both_kinds_announce(
        ready in proptest::collection::vec(0usize..3, 3),
        told in proptest::collection::vec(proptest::option::of(any::<bool>()), 3),
    ) {
        let w = world(true, vec![local_service("web", "203.0.113.5", &ready)]);
        let speakers: Vec<(&str, LinkBandwidth)> = NODES
            .iter()
            .zip(&told)
            .filter_map(|(n, t)| Some((*n, if (*t)? { Attaches } else { Lacks })))
            .collect();
        let found = check(&w, "node1", &speakers[..]);
        let kind = |n: &str| {
            if n == "node1" {
                Some(Attaches)
            } else {
                speakers.iter().find(|(s, _)| *s == n).map(|(_, c)| *c)
            }
        };
        let announcing = |c: LinkBandwidth| -> BTreeSet<String> {
            NODES
                .iter()
                .enumerate()
                .filter(|(i, n)| ready[*i] > 0 && kind(n) == Some(c))
                .map(|(_, n)| n.to_string())
                .collect()
        };
        let (with, without) = (announcing(Attaches), announcing(Lacks));
        if with.is_empty() || without.is_empty() {
            prop_assert!(found.is_empty(), "{found:?}");
        } else {
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(&found[0].with_community, &with);
            prop_assert_eq!(&found[0].without_community, &without);
        }
        // Seen from a node that attaches and is told of node1 too: the same report.
        if let Some((other, _)) = speakers.iter().find(|(n, c)| *n != "node1" && *c == Attaches) {
            let mut from_other: Vec<(&str, LinkBandwidth)> =
                speakers.iter().filter(|(n, _)| n != other).copied().collect();
            from_other.push(("node1", Attaches));
            prop_assert_eq!(check(&w, other, &from_other[..]), found);
        }
    }
}
