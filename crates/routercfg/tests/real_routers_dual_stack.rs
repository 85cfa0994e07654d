//! The generated configuration for a dualStackAddressFamily BGPPeer on IPv6, loaded by
//! FRR and by BIRD in a router namespace: two nodes (BIRD stand-ins for oxlb's speaker,
//! with `extended next hop on`) announce an IPv4 service address over their IPv6
//! sessions (RFC 8950). The router must accept it and install it in its kernel over
//! both nodes' IPv6 next hops (`via inet6`, ECMP).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::Duration;

use oxlb_netlab::{Bird, Frr, Netns, netns_tests_enabled, veth, wait_until};
use oxlb_routercfg::{Flavor, generate};

const ROUTER4: &str = "10.78.0.1";
const ROUTER6: &str = "fd00:78::1";
const SERVICE: &str = "172.31.101.5";

struct Topology {
    nodes: Vec<(Netns, String)>,
    router: Netns,
}

fn topology(tag: &str) -> Topology {
    let router = Netns::new(&format!("{tag}r")).unwrap();
    router.add_bridge("br0").unwrap();
    router.add_address("br0", &format!("{ROUTER4}/24")).unwrap();
    router.add_address("br0", &format!("{ROUTER6}/64")).unwrap();
    let mut nodes = Vec::new();
    for i in 1..=2 {
        let node = Netns::new(&format!("{tag}n{i}")).unwrap();
        veth(&router, &format!("n{i}"), &node, "eth0").unwrap();
        router.attach_to_bridge(&format!("n{i}"), "br0").unwrap();
        node.add_address("eth0", &format!("10.78.0.{}/24", 10 + i))
            .unwrap();
        let address6 = format!("fd00:78::{}", 10 + i);
        node.add_address("eth0", &format!("{address6}/64")).unwrap();
        nodes.push((node, address6));
    }
    for (node, _) in &nodes {
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            node.exec(&["ping", "-c1", "-W1", ROUTER6]).ok()
        });
        assert!(ok.is_some(), "{} cannot reach the router", node.name());
    }
    Topology { nodes, router }
}

/// The IPv6 BGPPeer with dualStackAddressFamily; an IPv4 peer only so the router has
/// an IPv4 router id (its sessions stay down: the stand-ins do not open them).
fn config() -> oxlb_config::Config {
    let mut config = common::ebgp_config(ROUTER4, &["172.31.101.0/24"]);
    let mut v6 = common::peer(
        "router6",
        64500,
        oxlb_config::PeerAsn::Fixed(64501),
        ROUTER6,
    );
    v6.dual_stack_address_family = true;
    config.peers.insert("router6".into(), v6);
    config
}

fn nodes_of(topology: &Topology) -> Vec<(String, std::net::IpAddr)> {
    topology
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, (_, address6))| {
            [
                (
                    format!("node{}", i + 1),
                    common::ip(&format!("10.78.0.{}", 11 + i)),
                ),
                (format!("node{}", i + 1), common::ip(address6)),
            ]
        })
        .collect()
}

/// oxlb's side, played by BIRD: IPv4 over the IPv6 session with an IPv6 next hop.
fn stand_in(address6: &str) -> String {
    let host = address6.rsplit(':').next().unwrap();
    format!(
        "router id 10.78.0.{host};
protocol device {{}}
protocol static oxlb_announce {{
	ipv4;
	route {SERVICE}/32 blackhole;
}}
protocol bgp oxlb_up6 {{
	local {address6} as 64500;
	neighbor {ROUTER6} as 64501;
	hold time 9;
	keepalive time 3;
	connect retry time 2;
	error wait time 1, 5;
	ipv4 {{ import none; export where proto = \"oxlb_announce\"; extended next hop on; }};
	ipv6 {{ import none; export none; }};
}}
"
    )
}

fn wait_for_inet6_ecmp(router: &Netns) -> Option<String> {
    wait_until(Duration::from_secs(120), Duration::from_millis(500), || {
        let route = router
            .exec_stdout(&["ip", "route", "show", &format!("{SERVICE}/32")])
            .ok()?;
        (route.matches("via inet6").count() == 2).then_some(route)
    })
}

#[test]
fn frr_takes_ipv4_routes_with_ipv6_next_hops_from_the_generated_config() {
    if !netns_tests_enabled("frr_dual_stack_generated").unwrap() {
        return;
    }
    let topology = topology("bgfrcf");
    let text = generate(Flavor::Frr, &config(), &nodes_of(&topology), None).unwrap();
    let frr = Frr::start(&topology.router, &text, &["zebra", "bgpd"]).unwrap();
    let running = frr.vtysh("show running-config").unwrap();
    assert!(
        running.contains("neighbor oxlb-router6 capability extended-nexthop"),
        "{running}"
    );
    let _speakers: Vec<Bird> = topology
        .nodes
        .iter()
        .map(|(ns, address6)| Bird::start(ns, &stand_in(address6)).unwrap())
        .collect();
    let route = wait_for_inet6_ecmp(&topology.router);
    assert!(
        route.is_some(),
        "no ECMP route via inet6 to {SERVICE}; FRR:\n{}",
        frr.vtysh("show bgp ipv4 unicast").unwrap_or_default()
    );
    println!("FRR router kernel: {}", route.unwrap().trim_end());
}

#[test]
fn bird_takes_ipv4_routes_with_ipv6_next_hops_from_the_generated_config() {
    if !netns_tests_enabled("bird_dual_stack_generated").unwrap() {
        return;
    }
    let topology = topology("bgfrcb");
    let text = generate(Flavor::Bird, &config(), &nodes_of(&topology), None).unwrap();
    let router = Bird::start(&topology.router, &text).unwrap();
    let _speakers: Vec<Bird> = topology
        .nodes
        .iter()
        .map(|(ns, address6)| Bird::start(ns, &stand_in(address6)).unwrap())
        .collect();
    let route = wait_for_inet6_ecmp(&topology.router);
    assert!(
        route.is_some(),
        "no ECMP route via inet6 to {SERVICE}; BIRD:\n{}\n{}\n{}",
        router.birdc("show protocols").unwrap_or_default(),
        router.birdc("show route all").unwrap_or_default(),
        router.log()
    );
    println!("BIRD router kernel: {}", route.unwrap().trim_end());
}
