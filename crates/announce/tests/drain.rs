//! Graceful drain and weighted ECMP in the pure core (issue 19): a cordoned node
//! withdraws and hands its Layer 2 IPs over; a node whose Local endpoints all terminate
//! stops attracting traffic while a ready endpoint exists elsewhere; weights follow the
//! ready local endpoints of Local Services and only under the annotation.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::*;
use oxlb_announce::{Endpoint, Endpoints, Skip, TrafficPolicy};
use oxlb_config::Config;

fn config(weighted: bool) -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    config
        .pools
        .insert("public".into(), pool("public", "203.0.113.0/24"));
    config
        .l2_advertisements
        .insert("l2".into(), l2_adv("l2", &["lan"]));
    let mut adv = bgp_adv("adv", &["public"]);
    adv.weighted_ecmp = weighted;
    config.bgp_advertisements.insert("adv".into(), adv);
    config
        .peers
        .insert("r".into(), peer("r", 64500, 64501, "10.0.0.1"));
    config
}

fn nodes() -> Vec<oxlb_announce::NodeView> {
    vec![node("node1", &[]), node("node2", &[]), node("node3", &[])]
}

fn terminating(node: &str) -> Endpoint {
    Endpoint {
        node: Some(node.into()),
        ready: false,
        serving: true,
    }
}

#[test]
fn a_cordoned_node_withdraws_bgp_and_never_owns_a_layer2_ip() {
    let mut ns = nodes();
    ns[0].cordoned = true;
    let mut world = World::new(config(false), ns);
    world
        .services
        .push(service("web", "public", &["203.0.113.10"]));
    for i in 1..20 {
        world.services.push(service(
            &format!("l2-{i}"),
            "lan",
            &[&format!("192.168.10.{i}")],
        ));
    }
    let out = world.on("node1");
    assert!(out.bgp.values().all(|routes| routes.is_empty()), "{out:?}");
    assert!(out.l2.is_empty());
    assert!(out.skipped.iter().all(|s| s.reason == Skip::NodeCordoned));
    assert_eq!(Skip::NodeCordoned.label(), "node_cordoned");
    // Its Layer 2 IPs are owned by the others, exactly one each.
    for i in 1..20 {
        let ip: std::net::IpAddr = format!("192.168.10.{i}").parse().unwrap();
        let owners: Vec<_> = ["node2", "node3"]
            .into_iter()
            .filter(|n| world.on(n).l2.contains_key(&ip))
            .collect();
        assert_eq!(owners.len(), 1, "{ip}");
    }
    assert!(!world.on("node2").bgp["r"].is_empty());
}

#[test]
fn terminating_local_endpoints_stop_attracting_traffic_while_ready_ones_exist_elsewhere() {
    let mut world = World::new(config(false), nodes());
    let mut s = service("web", "public", &["203.0.113.10"]);
    s.traffic_policy = TrafficPolicy::Local;
    s.endpoints = Endpoints::Known(vec![terminating("node1"), endpoint("node2", true)]);
    world.services.push(s.clone());
    let out = world.on("node1");
    assert!(out.bgp.values().all(|r| r.is_empty()));
    assert_eq!(out.skipped[0].reason, Skip::LocalEndpointsTerminating);
    assert!(!world.on("node2").bgp["r"].is_empty());
    // Every endpoint terminating: keep announcing (MetalLB), no black hole.
    s.endpoints = Endpoints::Known(vec![terminating("node1"), terminating("node2")]);
    world.services = vec![s];
    assert!(!world.on("node1").bgp["r"].is_empty());
    assert!(!world.on("node2").bgp["r"].is_empty());
}

#[test]
fn weights_follow_ready_local_endpoints_only_for_local_services_under_the_annotation() {
    let prefix: ipnet::IpNet = "203.0.113.10/32".parse().unwrap();
    let local = |world: &mut World| {
        let mut s = service("web", "public", &["203.0.113.10"]);
        s.traffic_policy = TrafficPolicy::Local;
        s.endpoints = Endpoints::Known(vec![
            endpoint("node1", true),
            endpoint("node2", true),
            endpoint("node2", true),
            endpoint("node3", true),
            endpoint("node3", true),
            endpoint("node3", true),
        ]);
        world.services = vec![s];
    };
    let mut world = World::new(config(true), nodes());
    local(&mut world);
    for (n, want) in [("node1", 1), ("node2", 2), ("node3", 3)] {
        let out = world.on(n);
        assert_eq!(out.bgp["r"][&prefix].weight, Some(want), "{n}");
        let key = &world.services[0].key;
        assert_eq!(out.weights[key].value, want);
    }
    // Without the annotation: equal paths.
    let mut world = World::new(config(false), nodes());
    local(&mut world);
    assert_eq!(world.on("node3").bgp["r"][&prefix].weight, None);
    assert!(world.on("node3").weights.is_empty());
    // Cluster policy under the annotation: equal paths.
    let mut world = World::new(config(true), nodes());
    world
        .services
        .push(service("web", "public", &["203.0.113.10"]));
    assert_eq!(world.on("node1").bgp["r"][&prefix].weight, None);
}

/// `oxlb drain` (issue 19, Layer 2): a drained node stands in no election while a node
/// that is not drained can answer, so each IP has exactly one owner and it is not
/// drained; an undrain restores the election's own choice; when every node is drained,
/// they all stand again and one answers (the rule in election.rs).
#[test]
fn a_drained_node_hands_its_layer2_ips_to_a_node_that_is_not_and_all_drained_keep_answering() {
    let ips: Vec<std::net::IpAddr> = (1..40)
        .map(|i| format!("192.168.10.{i}").parse().unwrap())
        .collect();
    let world_with = |drained: &[&str]| {
        let mut ns = nodes();
        for n in &mut ns {
            n.drained = drained.contains(&n.name.as_str());
        }
        let mut world = World::new(config(false), ns);
        for (i, ip) in ips.iter().enumerate() {
            world
                .services
                .push(service(&format!("l2-{i}"), "lan", &[&ip.to_string()]));
        }
        world
    };
    let owners = |world: &World, ip: &std::net::IpAddr| -> Vec<&'static str> {
        ["node1", "node2", "node3"]
            .into_iter()
            .filter(|n| world.on(n).l2.contains_key(ip))
            .collect()
    };
    let before = world_with(&[]);
    let drained = world_with(&["node1"]);
    let moved = ips
        .iter()
        .filter(|ip| owners(&before, ip) == ["node1"])
        .count();
    assert!(moved > 0, "node1 owned some IPs before the drain");
    for ip in &ips {
        let now = owners(&drained, ip);
        assert_eq!(now.len(), 1, "{ip}: {now:?}");
        assert_ne!(now[0], "node1", "{ip}");
        // An IP node1 did not own stays where it was.
        if owners(&before, ip) != ["node1"] {
            assert_eq!(now, owners(&before, ip), "{ip}");
        }
    }
    let out = drained.on("node1");
    assert!(out.l2.is_empty());
    assert!(
        out.skipped.iter().any(|s| s.reason == Skip::NodeDrained),
        "{out:?}"
    );
    assert_eq!(Skip::NodeDrained.label(), "node_drained");
    // Every node drained: the election's own choice again, one owner per IP.
    let all = world_with(&["node1", "node2", "node3"]);
    for ip in &ips {
        assert_eq!(owners(&all, ip), owners(&before, ip), "{ip}");
    }
    // Two of three drained: the third owns everything.
    let two = world_with(&["node1", "node2"]);
    for ip in &ips {
        assert_eq!(owners(&two, ip), ["node3"], "{ip}");
    }
}
