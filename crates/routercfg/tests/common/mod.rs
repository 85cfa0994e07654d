//! Configs built directly from the model (the YAML loader is another crate's job).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use oxlb_config::{
    AddressRange, BfdProfile, BgpAdvertisement, Community, Config, Peer, PeerAddress, PeerAsn, Pool,
};

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn pool(name: &str, cidrs: &[&str]) -> Pool {
    Pool {
        name: name.into(),
        ranges: cidrs
            .iter()
            .map(|c| AddressRange::from_cidr(c.parse().unwrap()))
            .collect(),
        addresses_as_written: cidrs.iter().map(|c| c.to_string()).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    }
}

pub fn peer(name: &str, my_asn: u32, peer_asn: PeerAsn, address: &str) -> Peer {
    Peer {
        name: name.into(),
        my_asn,
        peer_asn,
        address: PeerAddress::Ip(ip(address)),
        source_address: None,
        port: 179,
        hold_time: Duration::from_secs(9),
        keepalive_time: Duration::from_secs(3),
        connect_time: Duration::from_secs(5),
        router_id: None,
        node_selectors: vec![],
        password: None,
        bfd_profile: None,
        graceful_restart: false,
        ebgp_multihop: false,
        vrf: None,
        dual_stack_address_family: false,
        local_asn: None,
    }
}

pub fn advertisement(name: &str, pools: &[&str]) -> BgpAdvertisement {
    BgpAdvertisement {
        name: name.into(),
        pools: pools.iter().map(|p| p.to_string()).collect(),
        aggregation_length_v4: 32,
        aggregation_length_v6: 128,
        local_pref: None,
        communities: BTreeSet::from([Community::Standard((64500 << 16) | 100)]),
        peers: BTreeSet::new(),
        node_selectors: vec![],
        service_selectors: vec![],
        weighted_ecmp: false,
    }
}

pub fn bfd(name: &str) -> BfdProfile {
    BfdProfile {
        name: name.into(),
        receive_interval_ms: 300,
        transmit_interval_ms: 300,
        echo_interval_ms: 50,
        detect_multiplier: 3,
        minimum_ttl: 254,
        echo_mode: false,
        passive_mode: false,
    }
}

/// eBGP, nodes AS 64500, router AS 64501 at `router`, one pool `pool_cidr`.
pub fn ebgp_config(router: &str, pool_cidrs: &[&str]) -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("services".into(), pool("services", pool_cidrs));
    config.peers.insert(
        "router".into(),
        peer("router", 64500, PeerAsn::Fixed(64501), router),
    );
    config
        .bgp_advertisements
        .insert("announce".into(), advertisement("announce", &["services"]));
    config
}

/// Every feature at once: two peers (IPv4 eBGP with password, BFD, multihop; IPv6 iBGP
/// with graceful restart), an IPv4 and an IPv6 pool, one of them aggregated.
pub fn full_config() -> Config {
    let mut config = Config::default();
    config
        .pools
        .insert("web".into(), pool("web", &["192.168.10.0/24"]));
    let mut range_pool = pool("range", &[]);
    range_pool.ranges = vec![AddressRange::new(ip("192.168.20.10"), ip("192.168.20.20")).unwrap()];
    range_pool.addresses_as_written = vec!["192.168.20.10-192.168.20.20".into()];
    config.pools.insert("range".into(), range_pool);
    config
        .pools
        .insert("v6".into(), pool("v6", &["fd00:10::/120"]));
    let mut v4 = peer("edge-v4", 64500, PeerAsn::Fixed(64501), "10.0.0.1");
    v4.password = Some("s3cret".into());
    v4.bfd_profile = Some("fast".into());
    v4.ebgp_multihop = true;
    let mut v6 = peer("edge-v6", 64501, PeerAsn::DynamicInternal, "fd00::1");
    v6.graceful_restart = true;
    config.peers.insert(v4.name.clone(), v4);
    config.peers.insert(v6.name.clone(), v6);
    let mut fast = bfd("fast");
    fast.receive_interval_ms = 100;
    fast.transmit_interval_ms = 150;
    fast.passive_mode = true;
    config.bfd_profiles.insert("fast".into(), fast);
    config
        .bgp_advertisements
        .insert("all".into(), advertisement("all", &["web", "range", "v6"]));
    let mut agg = advertisement("aggregated", &["range"]);
    agg.aggregation_length_v4 = 28;
    agg.peers = BTreeSet::from(["edge-v4".to_string()]);
    config.bgp_advertisements.insert("aggregated".into(), agg);
    config
}

pub fn full_nodes() -> Vec<(String, IpAddr)> {
    vec![
        ("node1".into(), ip("10.0.0.11")),
        ("node2".into(), ip("10.0.0.12")),
        ("node1".into(), ip("fd00::11")),
        ("node2".into(), ip("fd00::12")),
    ]
}
