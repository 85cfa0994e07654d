//! Builders for small snapshots.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use oxlb_announce::*;
use oxlb_config::*;

pub fn pool(name: &str, cidr: &str) -> Pool {
    let net: ipnet::IpNet = cidr.parse().unwrap();
    Pool {
        name: name.into(),
        ranges: vec![AddressRange::from_cidr(net)],
        addresses_as_written: vec![cidr.into()],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    }
}

pub fn l2_adv(name: &str, pools: &[&str]) -> L2Advertisement {
    L2Advertisement {
        name: name.into(),
        pools: pools.iter().map(|p| p.to_string()).collect(),
        node_selectors: vec![],
        interfaces: vec![],
        service_selectors: vec![],
        preferred_nodes: vec![],
    }
}

pub fn bgp_adv(name: &str, pools: &[&str]) -> BgpAdvertisement {
    BgpAdvertisement {
        name: name.into(),
        pools: pools.iter().map(|p| p.to_string()).collect(),
        aggregation_length_v4: 32,
        aggregation_length_v6: 128,
        local_pref: None,
        communities: BTreeSet::new(),
        peers: BTreeSet::new(),
        node_selectors: vec![],
        service_selectors: vec![],
        weighted_ecmp: false,
    }
}

pub fn peer(name: &str, my_asn: u32, peer_asn: u32, address: &str) -> Peer {
    Peer {
        name: name.into(),
        my_asn,
        peer_asn: PeerAsn::Fixed(peer_asn),
        address: PeerAddress::Ip(address.parse().unwrap()),
        source_address: None,
        port: 179,
        hold_time: Duration::from_secs(90),
        keepalive_time: Duration::from_secs(30),
        connect_time: Duration::from_secs(120),
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

pub fn node(name: &str, labels: &[(&str, &str)]) -> NodeView {
    NodeView {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_unavailable: false,
        cordoned: false,
        drained: false,
    }
}

pub fn service(name: &str, pool: &str, ips: &[&str]) -> ServiceView {
    ServiceView {
        key: ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        },
        ips: ips.iter().map(|ip| ip.parse::<IpAddr>().unwrap()).collect(),
        pool: pool.into(),
        traffic_policy: TrafficPolicy::Cluster,
        endpoints: Endpoints::Unknown,
        labels: BTreeMap::new(),
    }
}

pub fn endpoint(node: &str, ready: bool) -> Endpoint {
    Endpoint {
        node: Some(node.into()),
        ready,
        serving: ready,
    }
}

pub struct World {
    pub config: Config,
    pub nodes: BTreeMap<String, NodeView>,
    pub live: BTreeSet<String>,
    pub services: Vec<ServiceView>,
}

impl World {
    pub fn new(config: Config, nodes: Vec<NodeView>) -> World {
        let live = nodes.iter().map(|n| n.name.clone()).collect();
        World {
            config,
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            live,
            services: vec![],
        }
    }

    pub fn on(&self, node: &str) -> Announcements {
        announce(Input {
            config: &self.config,
            node: &self.nodes[node],
            nodes: &self.nodes,
            live_speakers: &self.live,
            services: &self.services,
        })
    }
}
