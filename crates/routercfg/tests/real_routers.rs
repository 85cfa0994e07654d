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
const ROUTER6: &str = "fd00:77::1";
const POOL6: &str = "fd00:100::/120";
const SERVICE6: &str = "fd00:100::5";
const OUTSIDE6: &str = "2001:db8::/48";

struct Topology {
    // Nodes first: dropped before the router.
    nodes: Vec<(Netns, String)>,
    router: Netns,
}

fn topology(tag: &str) -> Topology {
    let router = Netns::new(&format!("{tag}r")).unwrap();
    router.add_bridge("br0").unwrap();
    router.add_address("br0", &format!("{ROUTER}/24")).unwrap();
    router.add_address("br0", &format!("{ROUTER6}/64")).unwrap();
    let mut nodes = Vec::new();
    for i in 1..=2 {
        let node = Netns::new(&format!("{tag}n{i}")).unwrap();
        veth(&router, &format!("n{i}"), &node, "eth0").unwrap();
        router.attach_to_bridge(&format!("n{i}"), "br0").unwrap();
        let address = format!("10.77.0.{}", 10 + i);
        node.add_address("eth0", &format!("{address}/24")).unwrap();
        node.add_address("eth0", &format!("fd00:77::{}/64", 10 + i))
            .unwrap();
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

/// A stand-in for oxlb's speaker: eBGP from AS 64500 over IPv4 and IPv6, announcing
/// a service /32 and /128 and a prefix outside the pools in each family.
fn stand_in(address: &str) -> String {
    let host = address.rsplit('.').next().unwrap();
    let address6 = format!("fd00:77::{host}");
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
	connect retry time 2;
	error wait time 1, 5;
	ipv4 {{ import none; export where proto = \"oxlb_announce\"; }};
}}
protocol static oxlb_announce6 {{
	ipv6;
	route {SERVICE6}/128 blackhole;
	route {OUTSIDE6} blackhole;
}}
protocol bgp oxlb_up6 {{
	local {address6} as 64500;
	neighbor {ROUTER6} as 64501;
	hold time 9;
	keepalive time 3;
	connect retry time 2;
	error wait time 1, 5;
	ipv6 {{ import none; export where proto = \"oxlb_announce6\"; }};
}}
"
    )
}

/// IPv4 and IPv6 peers on the same router, with a pool of each family.
fn dual_stack_config() -> oxlb_config::Config {
    let mut config = common::ebgp_config(ROUTER, &[POOL]);
    config
        .pools
        .insert("services6".into(), common::pool("services6", &[POOL6]));
    config
        .bgp_advertisements
        .get_mut("announce")
        .unwrap()
        .pools
        .insert("services6".into());
    config.peers.insert(
        "router6".into(),
        common::peer(
            "router6",
            64500,
            oxlb_config::PeerAsn::Fixed(64501),
            ROUTER6,
        ),
    );
    config
}

/// Waits for the router's kernel to route `service` over two next hops (ECMP).
fn wait_for_ecmp(router: &Netns, service: &str) -> Option<String> {
    wait_until(Duration::from_secs(120), Duration::from_millis(500), || {
        let family = if service.contains(':') { "-6" } else { "-4" };
        let route = router
            .exec_stdout(&["ip", family, "route", "show", service])
            .ok()?;
        (route.matches("nexthop").count() >= 2).then_some(route)
    })
}

fn nodes_of(topology: &Topology) -> Vec<(String, std::net::IpAddr)> {
    topology
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, (_, address))| {
            let host = address.rsplit('.').next().unwrap();
            [
                (format!("node{}", i + 1), common::ip(address)),
                (
                    format!("node{}", i + 1),
                    common::ip(&format!("fd00:77::{host}")),
                ),
            ]
        })
        .collect()
}

#[test]
fn frr_loads_the_generated_config_and_accepts_only_the_pools() {
    if !netns_tests_enabled("frr_loads_the_generated_config").unwrap() {
        return;
    }
    let topology = topology("rcfrr");
    let config = dual_stack_config();
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
    let route = wait_until(Duration::from_secs(120), Duration::from_millis(500), || {
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
    let route6 = wait_for_ecmp(&topology.router, SERVICE6);
    assert!(
        route6.is_some(),
        "no IPv6 ECMP route to {SERVICE6}; FRR:\n{}",
        frr.vtysh("show bgp ipv6 unicast summary")
            .unwrap_or_default()
    );
    let bgp6 = frr.vtysh("show bgp ipv6 unicast").unwrap();
    assert!(bgp6.contains(&format!("{SERVICE6}/128")), "{bgp6}");
    assert!(
        !bgp6.contains("2001:db8"),
        "policy let {OUTSIDE6} in:\n{bgp6}"
    );
    assert_sent_outside(&speakers);
}

/// The outside prefix was really offered to the router (so its absence there is the
/// policy's doing).
fn assert_sent_outside(speakers: &[Bird]) {
    for speaker in speakers {
        let exported = speaker.birdc("show route export oxlb_up").unwrap();
        assert!(exported.contains("203.0.113.0/24"), "{exported}");
        let exported6 = speaker.birdc("show route export oxlb_up6").unwrap();
        assert!(exported6.contains("2001:db8::/48"), "{exported6}");
    }
}

#[test]
fn bird_loads_the_generated_config_and_accepts_only_the_pools() {
    if !netns_tests_enabled("bird_loads_the_generated_config").unwrap() {
        return;
    }
    let topology = topology("rcbird");
    let config = dual_stack_config();
    let text = generate(Flavor::Bird, &config, &nodes_of(&topology), None).unwrap();
    let router = Bird::start(&topology.router, &text).unwrap();
    let speakers: Vec<Bird> = topology
        .nodes
        .iter()
        .map(|(ns, address)| Bird::start(ns, &stand_in(address)).unwrap())
        .collect();

    let route = wait_until(Duration::from_secs(120), Duration::from_millis(500), || {
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
    // Both families' sessions with both nodes.
    let established = wait_until(Duration::from_secs(120), Duration::from_millis(500), || {
        let protocols = router.birdc("show protocols").ok()?;
        let up = protocols
            .lines()
            .filter(|l| l.starts_with("oxlb_router") && l.contains("Established"))
            .count();
        (up == 4).then_some(())
    });
    assert!(
        established.is_some(),
        "{}",
        router.birdc("show protocols").unwrap_or_default()
    );
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
    let route6 = wait_for_ecmp(&topology.router, SERVICE6);
    assert!(
        route6.is_some(),
        "no IPv6 ECMP route to {SERVICE6}; BIRD:\n{}",
        router.birdc("show protocols").unwrap_or_default()
    );
    let routes6 = router.birdc("show route").unwrap();
    assert!(routes6.contains(&format!("{SERVICE6}/128")), "{routes6}");
    assert!(
        !routes6.contains("2001:db8"),
        "policy let {OUTSIDE6} in:\n{routes6}"
    );
    assert_sent_outside(&speakers);
}
