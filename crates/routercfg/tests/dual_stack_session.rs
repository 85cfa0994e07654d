//! dualStackAddressFamily: both families over one session. On an IPv6 peer the IPv4
//! routes carry IPv6 next hops, so the router must offer the extended next hop
//! capability (RFC 8950); on an IPv4 peer the IPv6 family is activated on the IPv4
//! neighbours and nothing else is needed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use oxlb_routercfg::{Flavor, generate};

/// One BGPPeer at `router` with dualStackAddressFamily, a pool of each family.
fn config(router: &str) -> oxlb_config::Config {
    let mut config = common::ebgp_config(router, &["172.31.100.0/24"]);
    config.pools.insert(
        "services6".into(),
        common::pool("services6", &["fd00:100::/120"]),
    );
    config
        .bgp_advertisements
        .get_mut("announce")
        .unwrap()
        .pools
        .insert("services6".into());
    for peer in config.peers.values_mut() {
        peer.dual_stack_address_family = true;
    }
    if router.contains(':') {
        // The router id comes from an IPv4 peer address: give the router one.
        config.peers.insert(
            "router4".into(),
            common::peer(
                "router4",
                64500,
                oxlb_config::PeerAsn::Fixed(64501),
                "10.77.0.1",
            ),
        );
    }
    config
}

fn nodes(addresses: &[&str]) -> Vec<(String, std::net::IpAddr)> {
    addresses
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("node{}", i + 1), common::ip(a)))
        .collect()
}

fn render(flavor: Flavor, router: &str, node_addresses: &[&str]) -> String {
    let mut all = node_addresses.to_vec();
    all.extend(
        ["10.77.0.11", "10.77.0.12"]
            .iter()
            .take(node_addresses.len()),
    );
    if router.contains('.') {
        all.truncate(node_addresses.len());
    }
    generate(flavor, &config(router), &nodes(&all), None).unwrap()
}

/// The lines of `text` between the line starting with `start` and the next `end`.
fn block<'a>(text: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with(start))
        .take_while(|l| l.trim() != end)
        .collect()
}

#[test]
fn frr_offers_extended_next_hop_and_activates_ipv4_on_an_ipv6_peer() {
    let text = render(Flavor::Frr, "fd00:77::1", &["fd00:77::11", "fd00:77::12"]);
    assert!(
        text.contains("\n neighbor oxlb-router capability extended-nexthop\n"),
        "{text}"
    );
    let v4 = block(&text, "address-family ipv4 unicast", "exit-address-family");
    assert!(v4.contains(&"  neighbor oxlb-router activate"), "{text}");
    assert!(
        v4.contains(&"  neighbor oxlb-router route-map oxlb-router-in-v4 in"),
        "{text}"
    );
    let v6 = block(&text, "address-family ipv6 unicast", "exit-address-family");
    assert!(v6.contains(&"  neighbor oxlb-router activate"), "{text}");
}

#[test]
fn frr_activates_ipv6_on_an_ipv4_peer_without_extended_next_hop() {
    let text = render(Flavor::Frr, "10.77.0.1", &["10.77.0.11", "10.77.0.12"]);
    assert!(!text.contains("extended-nexthop"), "{text}");
    let v6 = block(&text, "address-family ipv6 unicast", "exit-address-family");
    assert!(v6.contains(&"  neighbor oxlb-router activate"), "{text}");
    assert!(
        v6.contains(&"  neighbor oxlb-router route-map oxlb-router-in-v6 in"),
        "{text}"
    );
    assert!(
        text.contains("nodes need one"),
        "the comment says why: {text}"
    );
}

#[test]
fn bird_turns_on_extended_next_hop_in_the_ipv4_channel_of_an_ipv6_peer() {
    let text = render(Flavor::Bird, "fd00:77::1", &["fd00:77::11"]);
    let template = block(&text, "template bgp oxlb_router {", "}").join("\n");
    let v4 = block(&template, "ipv4 {", "};");
    assert!(
        v4.iter()
            .any(|l| l.trim_start().starts_with("extended next hop on;")),
        "{text}"
    );
    let v6 = block(&template, "ipv6 {", "};");
    assert!(!v6.is_empty(), "{text}");
    assert!(
        !v6.iter().any(|l| l.contains("extended next hop")),
        "{text}"
    );
    // On an IPv4 peer both channels, no extended next hop.
    let text = render(Flavor::Bird, "10.77.0.1", &["10.77.0.11"]);
    assert!(text.contains("\tipv6 {"), "{text}");
    assert!(!text.contains("extended next hop"), "{text}");
}

#[test]
fn vyos_and_mikrotik_say_what_they_need() {
    let text = render(Flavor::Vyos, "fd00:77::1", &["fd00:77::11"]);
    assert!(
        text.contains("set protocols bgp neighbor fd00:77::11 capability extended-nexthop"),
        "{text}"
    );
    let text = render(Flavor::Mikrotik, "fd00:77::1", &["fd00:77::11"]);
    assert!(text.contains("RFC 8950"), "{text}");
    assert!(text.contains("address-families=ipv6,ip"), "{text}");
}
