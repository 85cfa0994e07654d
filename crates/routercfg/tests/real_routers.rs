//! The generated configurations loaded by real routers: FRR and BIRD in a router
//! namespace, two nodes on a bridge behind it, each node announcing (with a BIRD stand-in
//! for oxlb's speaker) one service address from the pool and one prefix outside every
//! pool. Sessions must come up, the service address must be accepted with both nodes as
//! ECMP paths, and the outside prefix must be rejected by the generated policy.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::Duration;

use oxlb_netlab::{Bird, Frr, Netns, netns_tests_enabled, veth, wait_until};
use oxlb_routercfg::{Flavor, generate};

const ROUTER: &str = "10.77.0.1";
const POOL: &str = "172.31.100.0/24";
const SERVICE: &str = "172.31.100.5";
const OUTSIDE: &str = "203.0.113.0/24";

struct Topology {
    // Nodes first: dropped before the router.
    nodes: Vec<(Netns, String)>,
    router: Netns,
}

fn topology(tag: &str) -> Topology {
    let router = Netns::new(&format!("{tag}r")).unwrap();
    router.add_bridge("br0").unwrap();
    router.add_address("br0", &format!("{ROUTER}/24")).unwrap();
    let mut nodes = Vec::new();
    for i in 1..=2 {
        let node = Netns::new(&format!("{tag}n{i}")).unwrap();
        veth(&router, &format!("n{i}"), &node, "eth0").unwrap();
        router.attach_to_bridge(&format!("n{i}"), "br0").unwrap();
        let address = format!("10.77.0.{}", 10 + i);
        node.add_address("eth0", &format!("{address}/24")).unwrap();
        nodes.push((node, address));
    }
    for (node, _) in &nodes {
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            node.exec(&["ping", "-c1", "-W1", ROUTER]).ok()
        });
        assert!(ok.is_some(), "{} cannot reach the router", node.name());
    }
    Topology { nodes, router }
}

/// A stand-in for oxlb's speaker: eBGP from AS 64500, announcing the service /32 and a
/// prefix outside the pool.
fn stand_in(address: &str) -> String {
    format!(
        "router id {address};
protocol device {{}}
protocol static oxlb_announce {{
	ipv4;
	route {SERVICE}/32 blackhole;
	route {OUTSIDE} blackhole;
}}
protocol bgp oxlb_up {{
	local {address} as 64500;
	neighbor {ROUTER} as 64501;
	hold time 9;
	keepalive time 3;
	ipv4 {{ import none; export where proto = \"oxlb_announce\"; }};
}}
"
    )
}

fn nodes_of(topology: &Topology) -> Vec<(String, std::net::IpAddr)> {
    topology
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (_, address))| (format!("node{}", i + 1), common::ip(address)))
        .collect()
}

#[test]
fn frr_loads_the_generated_config_and_accepts_only_the_pools() {
    if !netns_tests_enabled("frr_loads_the_generated_config").unwrap() {
        return;
    }
    let topology = topology("rcfrr");
    let config = common::ebgp_config(ROUTER, &[POOL]);
    let text = generate(Flavor::Frr, &config, &nodes_of(&topology), None).unwrap();
    let frr = Frr::start(&topology.router, &text, &["zebra", "bgpd"]).unwrap();
    let running = frr.vtysh("show running-config").unwrap();
    for expected in [
        "ip prefix-list oxlb-router-v4 seq 10 permit 172.31.100.0/24 le 32",
        "neighbor oxlb-router remote-as 64500",
        "maximum-paths 2",
    ] {
        assert!(
            running.contains(expected),
            "FRR did not take {expected:?}:\n{running}"
        );
    }
    let speakers: Vec<Bird> = topology
        .nodes
        .iter()
        .map(|(ns, address)| Bird::start(ns, &stand_in(address)).unwrap())
        .collect();

    // Both sessions up and the service address installed with two next hops (ECMP).
    let route = wait_until(Duration::from_secs(60), Duration::from_millis(500), || {
        let route = topology
            .router
            .exec_stdout(&["ip", "route", "show", &format!("{SERVICE}/32")])
            .ok()?;
        (route.contains("10.77.0.11") && route.contains("10.77.0.12")).then_some(route)
    });
    let summary = frr.vtysh("show bgp summary").unwrap_or_default();
    assert!(
        route.is_some(),
        "no ECMP route to {SERVICE} in the router's kernel table; FRR:\n{summary}"
    );
    let bgp = frr.vtysh("show bgp ipv4 unicast").unwrap();
    assert!(bgp.contains(&format!("{SERVICE}/32")), "{bgp}");
    // The outside prefix reached the router (it is in the stand-in's export) but the
    // generated policy dropped it.
    assert!(
        !bgp.contains("203.0.113.0"),
        "policy let {OUTSIDE} in:\n{bgp}"
    );
    let neighbor = frr.vtysh("show bgp neighbors 10.77.0.11 json").unwrap();
    assert!(neighbor.contains("Established"), "{neighbor}");
    assert_sent_outside(&speakers);
}

/// The outside prefix was really offered to the router (so its absence there is the
/// policy's doing).
fn assert_sent_outside(speakers: &[Bird]) {
    for speaker in speakers {
        let exported = speaker.birdc("show route export oxlb_up").unwrap();
        assert!(exported.contains("203.0.113.0/24"), "{exported}");
    }
}

#[test]
fn bird_loads_the_generated_config_and_accepts_only_the_pools() {
    if !netns_tests_enabled("bird_loads_the_generated_config").unwrap() {
        return;
    }
    let topology = topology("rcbird");
    let config = common::ebgp_config(ROUTER, &[POOL]);
    let text = generate(Flavor::Bird, &config, &nodes_of(&topology), None).unwrap();
    let router = Bird::start(&topology.router, &text).unwrap();
    let speakers: Vec<Bird> = topology
        .nodes
        .iter()
        .map(|(ns, address)| Bird::start(ns, &stand_in(address)).unwrap())
        .collect();

    let route = wait_until(Duration::from_secs(60), Duration::from_millis(500), || {
        let route = topology
            .router
            .exec_stdout(&["ip", "route", "show", &format!("{SERVICE}/32")])
            .ok()?;
        (route.contains("10.77.0.11") && route.contains("10.77.0.12")).then_some(route)
    });
    let protocols = router.birdc("show protocols").unwrap_or_default();
    assert!(
        route.is_some(),
        "no ECMP route to {SERVICE} in the router's kernel table; BIRD:\n{protocols}\n{}",
        router.log()
    );
    let established = protocols
        .lines()
        .filter(|l| l.starts_with("oxlb_router_node") && l.contains("Established"))
        .count();
    assert_eq!(established, 2, "{protocols}");
    // `show route` lists routes in the table; `filtered` ones were rejected on import
    // and are not there: the outside prefix must be absent.
    let routes = router.birdc("show route").unwrap();
    assert!(routes.contains(&format!("{SERVICE}/32")), "{routes}");
    assert!(
        !routes.contains("203.0.113.0"),
        "policy let {OUTSIDE} in:\n{routes}"
    );
    let stats = router
        .birdc("show protocols all oxlb_router_node1")
        .unwrap();
    assert!(stats.contains("Routes:"), "{stats}");
    assert_sent_outside(&speakers);
}
