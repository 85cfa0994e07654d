//! Agreement: speakers deciding alone on one snapshot elect exactly one Layer 2 owner per
//! IP among the eligible live nodes (or none when none is eligible).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use oxlb_announce::*;
use oxlb_config::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct NodeSpec {
    live: bool,
    excluded: bool,
    selected: bool,
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    local: bool,
    /// Per node: has a ready endpoint there.
    endpoints: Vec<bool>,
    known_endpoints: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(live, excluded, selected)| NodeSpec {
            live,
            excluded,
            selected,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn exactly_one_owner_among_eligible_nodes(
        nodes in prop::collection::vec(node_spec(), 1..7),
        services in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<bool>(), 7), any::<bool>())
                .prop_map(|(local, endpoints, known_endpoints)| ServiceSpec { local, endpoints, known_endpoints }),
            1..12),
    ) {
        let mut config = Config::default();
        config.pools.insert("lan".into(), pool("lan", "10.1.0.0/16"));
        let mut adv = l2_adv("l2", &["lan"]);
        adv.node_selectors = vec![LabelSelector {
            match_labels: [("l2".to_string(), "yes".to_string())].into(),
            match_expressions: vec![],
        }];
        config.l2_advertisements.insert("l2".into(), adv);
        let views: Vec<NodeView> = nodes.iter().enumerate().map(|(i, spec)| {
            let mut n = node(&format!("node-{i}"), if spec.selected { &[("l2", "yes")] } else { &[] });
            if spec.excluded {
                n.network_unavailable = true;
            }
            n
        }).collect();
        let mut world = World::new(config, views);
        world.live = nodes.iter().enumerate().filter(|(_, s)| s.live).map(|(i, _)| format!("node-{i}")).collect();
        for (i, spec) in services.iter().enumerate() {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1));
            let mut s = service(&format!("svc{i}"), "lan", &[&ip.to_string()]);
            s.traffic_policy = if spec.local { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
            if spec.known_endpoints {
                s.endpoints = Endpoints::Known(
                    (0..nodes.len()).map(|n| endpoint(&format!("node-{n}"), spec.endpoints[n])).collect());
            }
            world.services.push(s);
        }
        let decisions: Vec<(String, Announcements)> =
            world.nodes.keys().map(|n| (n.clone(), world.on(n))).collect();
        for (i, spec) in services.iter().enumerate() {
            let ip = world.services[i].ips[0];
            let claimed: Vec<&String> = decisions.iter().filter(|(_, a)| a.l2.contains_key(&ip)).map(|(n, _)| n).collect();
            let any_endpoint = !spec.known_endpoints || spec.endpoints[..nodes.len()].iter().any(|e| *e);
            let eligible: Vec<String> = nodes.iter().enumerate().filter(|(n, s)| {
                s.live && s.selected && !s.excluded && any_endpoint
                    && (!spec.local || !spec.known_endpoints || spec.endpoints[*n])
            }).map(|(n, _)| format!("node-{n}")).collect();
            if eligible.is_empty() {
                prop_assert!(claimed.is_empty(), "{ip}: claimed by {claimed:?} with nobody eligible");
            } else {
                prop_assert_eq!(claimed.len(), 1, "{}: claimed by {:?}", ip, claimed);
                let expected = l2_owner(eligible.iter().map(String::as_str), &ip).unwrap();
                prop_assert_eq!(claimed[0].as_str(), expected);
            }
        }
    }
}
