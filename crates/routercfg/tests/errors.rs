//! Configurations that cannot be rendered fail with a message saying what to change.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use oxlb_config::{Config, PeerAsn};
use oxlb_routercfg::{Error, Flavor, generate, generate_with_asn};

fn nodes() -> Vec<(String, std::net::IpAddr)> {
    vec![("node1".into(), common::ip("10.0.0.11"))]
}

#[test]
fn no_peers() {
    let err = generate(Flavor::Frr, &Config::default(), &nodes(), None).unwrap_err();
    assert_eq!(err, Error::NoPeers);
    assert!(err.to_string().contains("no BGPPeer"));
}

#[test]
fn no_nodes() {
    let config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    let err = generate(Flavor::Frr, &config, &[], None).unwrap_err();
    assert!(err.to_string().contains("--node NAME=ADDRESS"), "{err}");
}

#[test]
fn node_of_the_wrong_family() {
    let config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    let nodes = vec![("node1".to_string(), common::ip("fd00::11"))];
    let err = generate(Flavor::Bird, &config, &nodes, None).unwrap_err();
    assert!(
        matches!(&err, Error::NodeFamily { node, .. } if node == "node1"),
        "{err}"
    );
    assert!(err.to_string().contains("fd00::11"));
}

#[test]
fn unknown_router_address_lists_the_known_ones() {
    let config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    let err = generate(Flavor::Frr, &config, &nodes(), Some(common::ip("10.0.0.2"))).unwrap_err();
    assert!(err.to_string().contains("10.0.0.1"), "{err}");
}

#[test]
fn dynamic_external_needs_the_router_asn() {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.peers.get_mut("router").unwrap().peer_asn = PeerAsn::DynamicExternal;
    let err = generate(Flavor::Frr, &config, &nodes(), None).unwrap_err();
    assert!(err.to_string().contains("--router-asn"), "{err}");
    let text = generate_with_asn(Flavor::Frr, &config, &nodes(), None, Some(65000)).unwrap();
    assert!(text.contains("router bgp 65000"));
}

#[test]
fn dynamic_internal_makes_ibgp_with_ibgp_multipath() {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.peers.get_mut("router").unwrap().peer_asn = PeerAsn::DynamicInternal;
    let text = generate(Flavor::Frr, &config, &nodes(), None).unwrap();
    assert!(text.contains("router bgp 64500"));
    assert!(text.contains("maximum-paths ibgp 1"));
}

#[test]
fn conflicting_router_asns() {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.peers.insert(
        "other".into(),
        common::peer("other", 64500, PeerAsn::Fixed(64999), "10.0.0.2"),
    );
    let err = generate(Flavor::Frr, &config, &nodes(), None).unwrap_err();
    assert!(err.to_string().contains("--router-address"), "{err}");
    // Choosing the router resolves it.
    generate(Flavor::Frr, &config, &nodes(), Some(common::ip("10.0.0.2"))).unwrap();
}

#[test]
fn nothing_advertised() {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.bgp_advertisements.clear();
    let err = generate(Flavor::Vyos, &config, &nodes(), None).unwrap_err();
    assert_eq!(err, Error::NoPrefixes);
}

#[test]
fn ipv6_only_router_needs_a_router_id() {
    let config = common::ebgp_config("fd00::1", &["fd00:10::/120"]);
    let nodes = vec![("node1".to_string(), common::ip("fd00::11"))];
    let err = generate(Flavor::Frr, &config, &nodes, None).unwrap_err();
    assert_eq!(err, Error::NoRouterId);
}

#[test]
fn unquotable_password() {
    let mut config = common::ebgp_config("10.0.0.1", &["192.168.10.0/24"]);
    config.peers.get_mut("router").unwrap().password = Some("a b".into());
    let err = generate(Flavor::Mikrotik, &config, &nodes(), None).unwrap_err();
    assert!(matches!(err, Error::Password { .. }));
}

#[test]
fn flavor_names_parse() {
    for flavor in Flavor::ALL {
        assert_eq!(flavor.name().parse::<Flavor>().unwrap(), flavor);
    }
    assert!(
        "cisco"
            .parse::<Flavor>()
            .unwrap_err()
            .to_string()
            .contains("frr, bird")
    );
}
