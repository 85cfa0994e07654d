//! MetalLB main-branch fields: advertisements limited by `serviceSelectors`, and Layer 2
//! `preferredNodeSelectors` steering the election.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::*;
use oxlb_announce::*;
use oxlb_config::*;

fn selector(k: &str, v: &str) -> LabelSelector {
    LabelSelector {
        match_labels: BTreeMap::from([(k.to_string(), v.to_string())]),
        match_expressions: vec![],
    }
}

fn labelled(mut s: ServiceView, k: &str, v: &str) -> ServiceView {
    s.labels.insert(k.into(), v.into());
    s
}

fn owners(world: &World, ip: &str) -> Vec<String> {
    let ip: IpAddr = ip.parse().unwrap();
    world
        .nodes
        .keys()
        .filter(|n| world.on(n).l2.contains_key(&ip))
        .cloned()
        .collect()
}

#[test]
fn a_bgp_advertisement_with_service_selectors_announces_only_matching_services() {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    config
        .peers
        .insert("r".into(), peer("r", 64500, 64501, "10.0.0.1"));
    let mut adv = bgp_adv("web-only", &["lan"]);
    adv.service_selectors = vec![selector("app", "web")];
    config.bgp_advertisements.insert(adv.name.clone(), adv);
    let mut world = World::new(config, vec![node("node1", &[])]);
    world.services = vec![
        labelled(service("web", "lan", &["192.168.10.1"]), "app", "web"),
        labelled(service("db", "lan", &["192.168.10.2"]), "app", "db"),
        service("plain", "lan", &["192.168.10.3"]),
    ];
    let out = world.on("node1");
    let prefixes: Vec<String> = out.bgp["r"].keys().map(|p| p.to_string()).collect();
    assert_eq!(prefixes, ["192.168.10.1/32"]);
    let skipped: Vec<(String, Skip)> = out
        .skipped
        .iter()
        .map(|s| (s.service.name.clone(), s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("db".to_string(), Skip::NoAdvertisement),
            ("plain".to_string(), Skip::NoAdvertisement)
        ]
    );
}

#[test]
fn an_l2_advertisement_with_service_selectors_answers_only_for_matching_services() {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    let mut adv = l2_adv("web-only", &["lan"]);
    adv.service_selectors = vec![selector("app", "web")];
    config.l2_advertisements.insert(adv.name.clone(), adv);
    let mut world = World::new(config, vec![node("node1", &[]), node("node2", &[])]);
    world.services = vec![
        labelled(service("web", "lan", &["192.168.10.1"]), "app", "web"),
        service("plain", "lan", &["192.168.10.2"]),
    ];
    assert_eq!(owners(&world, "192.168.10.1").len(), 1);
    assert!(owners(&world, "192.168.10.2").is_empty());
}

#[test]
fn preferred_nodes_win_the_layer2_election_and_the_hash_decides_among_them() {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    let mut adv = l2_adv("l2", &["lan"]);
    adv.preferred_nodes = vec![
        PreferredNode {
            weight: 40,
            selector: selector("role", "edge"),
        },
        PreferredNode {
            weight: 30,
            selector: selector("zone", "primary"),
        },
    ];
    config.l2_advertisements.insert(adv.name.clone(), adv);
    let nodes = vec![
        node("edge-a", &[("role", "edge"), ("zone", "primary")]),
        node("edge-b", &[("role", "edge")]),
        node("worker", &[]),
    ];
    let mut world = World::new(config, nodes);
    world.services = (1..=40)
        .map(|i| service(&format!("s{i}"), "lan", &[&format!("192.168.10.{i}")]))
        .collect();
    // edge-a scores 70, edge-b 40, worker 0: edge-a owns every IP while it is live.
    for i in 1..=40 {
        assert_eq!(owners(&world, &format!("192.168.10.{i}")), ["edge-a"]);
    }
    // edge-a gone: edge-b (40) beats worker (0).
    world.live.remove("edge-a");
    for i in 1..=40 {
        assert_eq!(owners(&world, &format!("192.168.10.{i}")), ["edge-b"]);
    }
    // Equal scores: the usual hash spreads the IPs over both.
    world.live.remove("edge-b");
    world.live.insert("edge-a".into());
    let mut config = world.config.clone();
    config
        .l2_advertisements
        .get_mut("l2")
        .unwrap()
        .preferred_nodes = vec![PreferredNode {
        weight: 10,
        selector: LabelSelector::default(),
    }];
    world.config = config;
    let spread: std::collections::BTreeSet<Vec<String>> = (1..=40)
        .map(|i| owners(&world, &format!("192.168.10.{i}")))
        .collect();
    assert_eq!(spread.len(), 2, "{spread:?}");
}
