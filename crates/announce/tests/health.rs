//! Health-checked announcements: a node whose check does not pass sends no BGP path and
//! stands in no Layer 2 election; when every node fails, nobody announces (the rule in
//! `oxlb_announce::health`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::*;
use oxlb_announce::*;
use oxlb_config::*;

fn config() -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    config
        .l2_advertisements
        .insert("l2".into(), l2_adv("l2", &["lan"]));
    config
        .bgp_advertisements
        .insert("bgp".into(), bgp_adv("bgp", &["lan"]));
    config
        .peers
        .insert("router".into(), peer("router", 64512, 64500, "10.0.0.1"));
    config
}

fn world() -> World {
    let mut world = World::new(
        config(),
        vec![node("node1", &[]), node("node2", &[]), node("node3", &[])],
    );
    world
        .services
        .push(service("checked", "lan", &["192.168.10.7"]));
    world
        .services
        .push(service("plain", "lan", &["192.168.10.8"]));
    world
}

fn on(world: &World, node: &str, health: &Health) -> Announcements {
    announce_checked(
        Input {
            config: &world.config,
            node: &world.nodes[node],
            nodes: &world.nodes,
            live_speakers: &world.live,
            services: &world.services,
        },
        health,
    )
}

fn key(name: &str) -> ServiceKey {
    world()
        .services
        .iter()
        .find(|s| s.key.name == name)
        .unwrap()
        .key
        .clone()
}

fn failing(service: &str, nodes: &[&str]) -> Health {
    let mut health = Health::default();
    health.not_passing.insert(
        key(service),
        nodes.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
    );
    health
}

fn bgp_speakers(world: &World, ip: &str, health: &Health) -> Vec<String> {
    let prefix: ipnet::IpNet = format!("{ip}/32").parse().unwrap();
    world
        .nodes
        .keys()
        .filter(|n| {
            on(world, n, health)
                .bgp
                .values()
                .any(|routes| routes.contains_key(&prefix))
        })
        .cloned()
        .collect()
}

fn l2_owners(world: &World, ip: &str, health: &Health) -> Vec<String> {
    let ip: IpAddr = ip.parse().unwrap();
    world
        .nodes
        .keys()
        .filter(|n| on(world, n, health).l2.contains_key(&ip))
        .cloned()
        .collect()
}

#[test]
fn no_failing_check_is_the_same_as_unchecked() {
    let world = world();
    for node in world.nodes.keys() {
        assert_eq!(on(&world, node, &Health::default()), world.on(node));
    }
    assert_eq!(
        bgp_speakers(&world, "192.168.10.7", &Health::default()).len(),
        3
    );
}

#[test]
fn a_failing_node_withdraws_only_the_checked_services_bgp_path() {
    let world = world();
    let health = failing("checked", &["node2"]);
    assert_eq!(
        bgp_speakers(&world, "192.168.10.7", &health),
        vec!["node1".to_string(), "node3".to_string()]
    );
    assert_eq!(bgp_speakers(&world, "192.168.10.8", &health).len(), 3);
    let skipped = on(&world, "node2", &health).skipped;
    assert!(skipped.iter().any(|s| s.service == key("checked")
        && s.protocol == Some(Protocol::Bgp)
        && s.reason == Skip::HealthCheckFailing));
}

#[test]
fn layer2_ownership_moves_to_a_healthy_node_and_stays_single() {
    let world = world();
    let owner = l2_owners(&world, "192.168.10.7", &Health::default());
    assert_eq!(owner.len(), 1);
    let health = failing("checked", &[owner[0].as_str()]);
    let new_owner = l2_owners(&world, "192.168.10.7", &health);
    assert_eq!(new_owner.len(), 1, "exactly one answerer");
    assert_ne!(new_owner, owner, "ownership left the failing node");
    // Every node agrees on the new owner (each says who owns it).
    for node in world.nodes.keys() {
        if *node == new_owner[0] {
            continue;
        }
        let reasons: Vec<_> = on(&world, node, &health)
            .skipped
            .into_iter()
            .filter(|s| s.service == key("checked") && s.protocol == Some(Protocol::Layer2))
            .map(|s| s.reason)
            .collect();
        let expected = if *node == owner[0] {
            Skip::HealthCheckFailing
        } else {
            Skip::NotElected {
                owner: new_owner[0].clone(),
            }
        };
        assert_eq!(reasons, vec![expected]);
    }
}

#[test]
fn every_node_failing_withdraws_everywhere() {
    let world = world();
    let health = failing("checked", &["node1", "node2", "node3"]);
    assert!(bgp_speakers(&world, "192.168.10.7", &health).is_empty());
    assert!(l2_owners(&world, "192.168.10.7", &health).is_empty());
    // The unchecked Service sharing the pool is untouched.
    assert_eq!(bgp_speakers(&world, "192.168.10.8", &health).len(), 3);
    assert_eq!(l2_owners(&world, "192.168.10.8", &health).len(), 1);
}
