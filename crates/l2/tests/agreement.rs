//! Agreement end to end through the responder: N simulated speakers decide alone on one
//! snapshot (`oxlb_announce::announce`), turn it into their owned set, and are asked
//! by ARP and NS for every service IP on the same interface. At most one of them
//! answers each IP, exactly one when an eligible live node may answer there, and it
//! is the election's winner.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oxlb_announce::*;
use oxlb_config::*;
use oxlb_l2::{Interface, Mac, arp, decide, ethernet, ndp, owned_from};
use proptest::prelude::*;

fn pool(name: &str, cidrs: &[&str]) -> Pool {
    Pool {
        name: name.into(),
        ranges: cidrs
            .iter()
            .map(|c| AddressRange::from_cidr(c.parse::<ipnet::IpNet>().unwrap()))
            .collect(),
        addresses_as_written: cidrs.iter().map(|c| c.to_string()).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    }
}

#[derive(Debug, Clone)]
struct NodeSpec {
    live: bool,
    excluded: bool,
    selected: bool,
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    v6: bool,
    local: bool,
    endpoints: Vec<bool>,
}

fn request_for(ip: IpAddr) -> Vec<u8> {
    let asker = Mac([2, 0, 0, 0, 0, 0x99]);
    match ip {
        IpAddr::V4(target) => {
            let req = arp::Arp {
                operation: arp::Operation::Request,
                sender_mac: asker,
                sender_ip: Ipv4Addr::new(10, 1, 255, 9),
                target_mac: Mac::ZERO,
                target_ip: target,
            };
            ethernet::build(
                Mac::BROADCAST,
                asker,
                ethernet::ETHERTYPE_ARP,
                &req.to_bytes(),
            )
        }
        IpAddr::V6(target) => {
            let src: Ipv6Addr = "fd00:1::9".parse().unwrap();
            let dst = ndp::solicited_node(target);
            let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&target.octets());
            icmp.extend_from_slice(&[1, 1]);
            icmp.extend_from_slice(&asker.0);
            let sum = ndp::checksum(src, dst, &icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut packet = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 255];
            packet.extend_from_slice(&src.octets());
            packet.extend_from_slice(&dst.octets());
            packet.extend_from_slice(&icmp);
            ethernet::build(
                ndp::multicast_mac(dst),
                asker,
                ethernet::ETHERTYPE_IPV6,
                &packet,
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn one_speaker_answers_each_ip(
        nodes in prop::collection::vec(
            (any::<bool>(), prop::bool::weighted(0.15), prop::bool::weighted(0.8))
                .prop_map(|(live, excluded, selected)| NodeSpec { live, excluded, selected }),
            1..7),
        services in prop::collection::vec(
            (any::<bool>(), any::<bool>(), prop::collection::vec(any::<bool>(), 7))
                .prop_map(|(v6, local, endpoints)| ServiceSpec { v6, local, endpoints }),
            1..10),
        only_eth2 in any::<bool>(),
    ) {
        let mut config = Config::default();
        config.pools.insert("lan".into(), pool("lan", &["10.1.0.0/16", "fd00:1::/64"]));
        config.l2_advertisements.insert("l2".into(), L2Advertisement {
            name: "l2".into(),
            pools: BTreeSet::from(["lan".to_string()]),
            node_selectors: vec![LabelSelector {
                match_labels: [("l2".to_string(), "yes".to_string())].into(),
                match_expressions: vec![],
            }],
            interfaces: if only_eth2 { vec!["eth2".into()] } else { vec![] },
            service_selectors: vec![],
            preferred_nodes: vec![],
        });
        let views: BTreeMap<String, NodeView> = nodes.iter().enumerate().map(|(i, spec)| {
            let name = format!("node-{i}");
            let mut labels = BTreeMap::new();
            if spec.selected {
                labels.insert("l2".to_string(), "yes".to_string());
            }
            (name.clone(), NodeView { name, labels, network_unavailable: spec.excluded, cordoned: false, drained: false })
        }).collect();
        let live: BTreeSet<String> = nodes.iter().enumerate()
            .filter(|(_, s)| s.live).map(|(i, _)| format!("node-{i}")).collect();
        let services: Vec<ServiceView> = services.iter().enumerate().map(|(i, spec)| {
            let ip: IpAddr = if spec.v6 {
                format!("fd00:1::{:x}", i + 1).parse().unwrap()
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 1, 0, i as u8 + 1))
            };
            ServiceView {
                key: ServiceKey { namespace: "default".into(), name: format!("svc{i}") },
                ips: vec![ip],
                pool: "lan".into(),
                traffic_policy: if spec.local { TrafficPolicy::Local } else { TrafficPolicy::Cluster },
                endpoints: Endpoints::Known((0..nodes.len()).map(|n| Endpoint {
                    node: Some(format!("node-{n}").into()),
                    ready: spec.endpoints[n],
                    serving: spec.endpoints[n],
                }).collect()),
                labels: Default::default(),
            }
        }).collect();

        // Every speaker decides alone, then answers on its eth1 and eth2.
        let owned: Vec<(String, oxlb_l2::OwnedSet)> = views.keys().map(|name| {
            let a = announce(Input {
                config: &config,
                node: &views[name],
                nodes: &views,
                live_speakers: &live,
                services: &services,
            });
            (name.clone(), owned_from(&a))
        }).collect();

        for service in &services {
            let ip = service.ips[0];
            let eligible: Vec<&str> = views.values()
                .filter(|n| live.contains(&n.name) && !n.is_excluded() && n.labels.contains_key("l2"))
                .filter(|n| {
                    let Endpoints::Known(eps) = &service.endpoints else { return true };
                    let serving = |e: &&Endpoint| e.can_serve();
                    match service.traffic_policy {
                        TrafficPolicy::Cluster => eps.iter().any(|e| e.can_serve()),
                        TrafficPolicy::Local => eps.iter().filter(serving).any(|e| e.node.as_deref() == Some(&n.name)),
                    }
                })
                .map(|n| n.name.as_str())
                .collect();
            let winner = l2_owner(eligible.iter().copied(), &ip);
            let request = request_for(ip);
            for interface in ["eth1", "eth2"] {
                let answering: Vec<&str> = owned.iter().enumerate().filter(|(i, (_, set))| {
                    let port = Interface {
                        name: interface.into(),
                        mac: Mac([2, 0, 0, 0, 1, *i as u8]),
                        eligible: true,
                    };
                    decide(&request, set, &port).is_ok()
                }).map(|(_, (name, _))| name.as_str()).collect();
                let allowed_here = !only_eth2 || interface == "eth2";
                let expected: Vec<&str> = winner.filter(|_| allowed_here).into_iter().collect();
                prop_assert_eq!(&answering, &expected, "ip {} on {}", ip, interface);
            }
        }
    }
}
