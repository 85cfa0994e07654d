//! A BGPPeer with `vrf`: the router's side of its sessions goes into a VRF instance
//! (FRR `router bgp ASN vrf NAME`, BIRD `vrf "NAME"`), never the default one.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use oxlb_routercfg::{Flavor, generate};

fn nodes() -> Vec<(String, std::net::IpAddr)> {
    vec![("node1".into(), common::ip("10.0.0.11"))]
}

fn vrf_config() -> oxlb_config::Config {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.peers.get_mut("router").unwrap().vrf = Some("red".into());
    config
}

#[test]
fn frr_puts_the_neighbors_of_a_vrf_peer_into_that_vrf_instance() {
    let text = generate(Flavor::Frr, &vrf_config(), &nodes(), None).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let instance = lines
        .iter()
        .position(|l| l.starts_with("router bgp ") && l.ends_with(" vrf red"))
        .unwrap_or_else(|| panic!("no VRF instance:\n{text}"));
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("router bgp ") && !l.contains(" vrf ")),
        "a default instance for a VRF-only config:\n{text}"
    );
    let neighbor = lines
        .iter()
        .position(|l| l.trim() == "neighbor 10.0.0.11 peer-group oxlb-router")
        .unwrap_or_else(|| panic!("no neighbor:\n{text}"));
    assert!(neighbor > instance, "{text}");
    assert!(lines.contains(&"vrf red"), "{text}");
}

#[test]
fn frr_keeps_default_vrf_peers_in_the_default_instance() {
    let config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    let text = generate(Flavor::Frr, &config, &nodes(), None).unwrap();
    assert!(!text.contains(" vrf "), "{text}");
}

#[test]
fn bird_binds_the_protocols_of_a_vrf_peer_to_the_vrf() {
    let text = generate(Flavor::Bird, &vrf_config(), &nodes(), None).unwrap();
    assert!(text.contains("\tvrf \"red\";"), "{text}");
}
