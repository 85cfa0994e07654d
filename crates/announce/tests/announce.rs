#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::*;
use oxlb_announce::*;
use oxlb_config::*;

fn l2_config() -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("lan".into(), pool("lan", "192.168.10.0/24"));
    config
        .l2_advertisements
        .insert("l2".into(), l2_adv("l2", &["lan"]));
    config
}

fn three_nodes() -> Vec<NodeView> {
    vec![node("node1", &[]), node("node2", &[]), node("node3", &[])]
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
fn election_key_is_metallbs_sha256_of_node_hash_ip() {
    // sha256("node1#192.168.1.1"), computed independently (Python hashlib).
    let rank = l2_rank("node1", &"192.168.1.1".parse().unwrap());
    let hex: String = rank.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "e622fabbdf4663d6965068a88923706d42d2320af20482bab0757d7131365efe"
    );
}

#[test]
fn election_key_of_an_ipv6_address_is_its_canonical_text() {
    // MetalLB hashes Go's net.IP.String(): RFC 5952 text (lower case, longest zero run
    // as "::"), whatever spelling the YAML used. sha256("node1#fd00:77::1:0"), computed
    // independently (sha256sum).
    let rank = l2_rank("node1", &"FD00:0077:0:0:0:0:0001:0000".parse().unwrap());
    let hex: String = rank.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "8571fbfecb9f86a4ecb8a2f7479023c096d7e2e595391dbc56df508e13c0601d"
    );
}

#[test]
fn exactly_one_node_owns_each_l2_ip_and_it_is_the_lowest_hash() {
    let mut world = World::new(l2_config(), three_nodes());
    for i in 1..50 {
        world.services.push(service(
            &format!("s{i}"),
            "lan",
            &[&format!("192.168.10.{i}")],
        ));
    }
    for i in 1..50 {
        let ip = format!("192.168.10.{i}");
        let owners = owners(&world, &ip);
        assert_eq!(owners.len(), 1, "{ip}: {owners:?}");
        let expected = l2_owner(["node1", "node2", "node3"], &ip.parse().unwrap()).unwrap();
        assert_eq!(owners[0], expected);
    }
}

#[test]
fn non_owners_say_who_owns_the_ip() {
    let mut world = World::new(l2_config(), three_nodes());
    world
        .services
        .push(service("web", "lan", &["192.168.10.7"]));
    let owner = owners(&world, "192.168.10.7").pop().unwrap();
    for name in ["node1", "node2", "node3"].iter().filter(|n| **n != owner) {
        let out = world.on(name);
        assert!(out.l2.is_empty());
        assert_eq!(
            out.skipped[0].reason,
            Skip::NotElected {
                owner: owner.clone()
            }
        );
        assert_eq!(out.skipped[0].protocol, Some(Protocol::Layer2));
    }
}

#[test]
fn a_dead_owner_hands_over_to_the_next_lowest_hash() {
    let mut world = World::new(l2_config(), three_nodes());
    world
        .services
        .push(service("web", "lan", &["192.168.10.7"]));
    let first = owners(&world, "192.168.10.7").pop().unwrap();
    world.live.remove(&first);
    let second = owners(&world, "192.168.10.7");
    assert_eq!(second.len(), 1);
    assert_ne!(second[0], first);
}

#[test]
fn dual_stack_ips_share_one_owner_decided_by_the_first_ip() {
    let mut config = l2_config();
    config.pools.insert("lan".into(), {
        let mut p = pool("lan", "192.168.10.0/24");
        p.ranges
            .push(AddressRange::from_cidr("fd00::/120".parse().unwrap()));
        p
    });
    let mut world = World::new(config, three_nodes());
    world
        .services
        .push(service("web", "lan", &["192.168.10.9", "fd00::9"]));
    let v4 = owners(&world, "192.168.10.9");
    let v6 = owners(&world, "fd00::9");
    assert_eq!(v4, v6);
    assert_eq!(v4.len(), 1);
}

#[test]
fn local_policy_elects_only_among_nodes_with_a_ready_local_endpoint() {
    let mut world = World::new(l2_config(), three_nodes());
    for i in 1..30 {
        let mut s = service(&format!("s{i}"), "lan", &[&format!("192.168.10.{i}")]);
        s.traffic_policy = TrafficPolicy::Local;
        s.endpoints = Endpoints::Known(vec![endpoint("node2", true), endpoint("node3", false)]);
        world.services.push(s);
    }
    for i in 1..30 {
        assert_eq!(owners(&world, &format!("192.168.10.{i}")), vec!["node2"]);
    }
    let out = world.on("node3");
    assert!(
        out.skipped
            .iter()
            .all(|s| s.reason == Skip::NoLocalEndpoint)
    );
}

#[test]
fn no_ready_endpoint_anywhere_means_nobody_announces() {
    let mut world = World::new(l2_config(), three_nodes());
    let mut s = service("web", "lan", &["192.168.10.7"]);
    s.endpoints = Endpoints::Known(vec![endpoint("node1", false)]);
    world.services.push(s);
    assert!(owners(&world, "192.168.10.7").is_empty());
    assert_eq!(world.on("node1").skipped[0].reason, Skip::NoServingEndpoint);
}

#[test]
fn serving_but_not_ready_endpoints_still_count() {
    let mut world = World::new(l2_config(), three_nodes());
    let mut s = service("web", "lan", &["192.168.10.7"]);
    s.endpoints = Endpoints::Known(vec![Endpoint {
        node: Some("node1".into()),
        ready: false,
        serving: true,
    }]);
    world.services.push(s);
    assert_eq!(owners(&world, "192.168.10.7").len(), 1);
}

#[test]
fn excluded_nodes_never_own_or_announce() {
    let mut nodes = three_nodes();
    nodes[0].labels.insert(
        "node.kubernetes.io/exclude-from-external-load-balancers".into(),
        "true".into(),
    );
    nodes[1].network_unavailable = true;
    let mut world = World::new(l2_config(), nodes);
    for i in 1..20 {
        world.services.push(service(
            &format!("s{i}"),
            "lan",
            &[&format!("192.168.10.{i}")],
        ));
    }
    for i in 1..20 {
        assert_eq!(owners(&world, &format!("192.168.10.{i}")), vec!["node3"]);
    }
    assert!(
        world
            .on("node1")
            .skipped
            .iter()
            .all(|s| s.reason == Skip::NodeExcluded)
    );
}

#[test]
fn node_selectors_limit_l2_candidates_and_interfaces_are_unioned() {
    let mut config = l2_config();
    let mut edge = l2_adv("edge", &["lan"]);
    edge.node_selectors = vec![LabelSelector {
        match_labels: [("role".to_string(), "edge".to_string())].into(),
        match_expressions: vec![],
    }];
    edge.interfaces = vec!["eth1".into()];
    let mut edge2 = edge.clone();
    edge2.name = "edge2".into();
    edge2.interfaces = vec!["eth2".into()];
    config.l2_advertisements = [("edge".into(), edge), ("edge2".into(), edge2)].into();
    let mut world = World::new(
        config,
        vec![
            node("node1", &[("role", "edge")]),
            node("node2", &[]),
            node("node3", &[]),
        ],
    );
    world
        .services
        .push(service("web", "lan", &["192.168.10.7"]));
    assert_eq!(owners(&world, "192.168.10.7"), vec!["node1"]);
    let out = world.on("node1");
    let ip: IpAddr = "192.168.10.7".parse().unwrap();
    assert_eq!(
        out.l2[&ip].interfaces,
        Interfaces::Only(BTreeSet::from(["eth1".to_string(), "eth2".to_string()]))
    );
    assert_eq!(world.on("node2").skipped[0].reason, Skip::NodeNotSelected);
}

#[test]
fn a_pool_without_advertisement_is_not_announced() {
    let mut config = l2_config();
    config.l2_advertisements.clear();
    let mut world = World::new(config, three_nodes());
    world
        .services
        .push(service("web", "lan", &["192.168.10.7"]));
    let out = world.on("node1");
    assert!(out.l2.is_empty() && out.bgp.is_empty());
    assert_eq!(out.skipped[0].reason, Skip::NoAdvertisement);
    assert_eq!(out.skipped[0].protocol, None);
}

fn bgp_config() -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("public".into(), pool("public", "203.0.113.0/24"));
    let mut adv = bgp_adv("adv", &["public"]);
    adv.local_pref = Some(120);
    adv.communities = BTreeSet::from([
        Community::Standard(0xFFFF_FF02),
        Community::Large(64500, 1, 2),
    ]);
    config.bgp_advertisements.insert("adv".into(), adv);
    config
        .peers
        .insert("ebgp".into(), peer("ebgp", 64500, 64501, "10.0.0.1"));
    config
        .peers
        .insert("ibgp".into(), peer("ibgp", 64500, 64500, "10.0.0.2"));
    config
        .peers
        .insert("v6".into(), peer("v6", 64500, 64501, "fd00::1"));
    config
}

#[test]
fn every_node_announces_bgp_with_local_pref_only_to_ibgp() {
    let mut world = World::new(bgp_config(), three_nodes());
    world
        .services
        .push(service("web", "public", &["203.0.113.10"]));
    for name in ["node1", "node2", "node3"] {
        let out = world.on(name);
        let prefix: ipnet::IpNet = "203.0.113.10/32".parse().unwrap();
        let ebgp = &out.bgp["ebgp"][&prefix];
        let ibgp = &out.bgp["ibgp"][&prefix];
        assert_eq!(ebgp.local_pref, None);
        assert_eq!(ibgp.local_pref, Some(120));
        assert!(ebgp.communities.contains(&Community::Standard(0xFFFF_FF02)));
        assert!(ibgp.communities.contains(&Community::Large(64500, 1, 2)));
        // An IPv4 prefix does not go to an IPv6-only session.
        assert!(!out.bgp.contains_key("v6"));
    }
}

#[test]
fn aggregation_masks_and_merges_services_into_one_prefix() {
    let mut config = bgp_config();
    config
        .bgp_advertisements
        .get_mut("adv")
        .unwrap()
        .aggregation_length_v4 = 24;
    let mut world = World::new(config, three_nodes());
    world
        .services
        .push(service("a", "public", &["203.0.113.10"]));
    world
        .services
        .push(service("b", "public", &["203.0.113.77"]));
    let out = world.on("node1");
    let prefixes: Vec<_> = out.bgp["ebgp"].keys().map(|p| p.to_string()).collect();
    assert_eq!(prefixes, vec!["203.0.113.0/24"]);
}

#[test]
fn advertisement_peers_and_peer_node_selectors_limit_sessions() {
    let mut config = bgp_config();
    config.bgp_advertisements.get_mut("adv").unwrap().peers = BTreeSet::from(["ebgp".into()]);
    config.peers.get_mut("ebgp").unwrap().node_selectors = vec![LabelSelector {
        match_labels: [("rack".to_string(), "a".to_string())].into(),
        match_expressions: vec![],
    }];
    let mut world = World::new(
        config,
        vec![node("node1", &[("rack", "a")]), node("node2", &[])],
    );
    world
        .services
        .push(service("web", "public", &["203.0.113.10"]));
    let out1 = world.on("node1");
    assert_eq!(out1.bgp.keys().collect::<Vec<_>>(), vec!["ebgp"]);
    let out2 = world.on("node2");
    assert!(out2.bgp.is_empty());
    assert_eq!(out2.skipped[0].reason, Skip::NoPeer);
}

#[test]
fn ipv6_prefixes_go_to_ipv6_peers_and_dual_stack_peers() {
    let mut config = bgp_config();
    config
        .pools
        .get_mut("public")
        .unwrap()
        .ranges
        .push(AddressRange::from_cidr("2001:db8::/64".parse().unwrap()));
    config
        .peers
        .get_mut("ebgp")
        .unwrap()
        .dual_stack_address_family = true;
    let mut world = World::new(config, three_nodes());
    world
        .services
        .push(service("web", "public", &["2001:db8::5"]));
    let out = world.on("node1");
    let prefix: ipnet::IpNet = "2001:db8::5/128".parse().unwrap();
    assert!(out.bgp["v6"].contains_key(&prefix));
    assert!(out.bgp["ebgp"].contains_key(&prefix));
    assert!(!out.bgp.contains_key("ibgp"));
}

#[test]
fn local_policy_bgp_only_from_nodes_with_local_endpoints() {
    let mut world = World::new(bgp_config(), three_nodes());
    let mut s = service("web", "public", &["203.0.113.10"]);
    s.traffic_policy = TrafficPolicy::Local;
    s.endpoints = Endpoints::Known(vec![endpoint("node1", true), endpoint("node3", true)]);
    world.services.push(s);
    assert!(!world.on("node1").bgp.is_empty());
    assert!(world.on("node2").bgp.is_empty());
    assert!(!world.on("node3").bgp.is_empty());
}

#[test]
fn an_unknown_pool_is_reported() {
    let mut world = World::new(bgp_config(), three_nodes());
    world
        .services
        .push(service("web", "gone", &["203.0.113.10"]));
    assert_eq!(world.on("node1").skipped[0].reason, Skip::UnknownPool);
}
