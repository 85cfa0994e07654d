//! Property tests over random operation sequences: add / modify / delete Services,
//! change pools, relabel namespaces, restart (rebuild from statuses).
//!
//! Invariants after every step: no IP held by two Services that may not share; every
//! held IP is in a pool the Service may use; a restart (in any input order) changes no
//! assignment; pool counters equal a count done by hand; writing the status back is
//! quiet; nothing panics.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use common::*;
use k8s_openapi::api::core::v1::Service;
use oxlb_allocator::{Scope, is_buggy_v4, pool_allows};
use oxlb_config::{Config, Family};
use oxlb_controller::service::ServiceView;
use oxlb_controller::{Change, Controller, Desired};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct SvcSpec {
    ns: u8,
    name: u8,
    share: u8,
    ports: Vec<(bool, i32)>,
    family: u8,
    request: u8,
    pool: u8,
    local: u8,
    load_balancer: bool,
    label: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(SvcSpec),
    Delete(u8, u8),
    Config(u8),
    Relabel(bool),
    Restart,
}

fn spec() -> impl Strategy<Value = SvcSpec> {
    (
        (0u8..2, 0u8..6, 0u8..3),
        proptest::collection::vec((any::<bool>(), 79i32..82), 0..3),
        (0u8..6, 0u8..8, 0u8..5, 0u8..3),
        (proptest::bool::weighted(0.9), any::<bool>()),
    )
        .prop_map(
            |((ns, name, share), ports, (family, request, pool, local), (load_balancer, label))| {
                SvcSpec {
                    ns,
                    name,
                    share,
                    ports,
                    family,
                    request,
                    pool,
                    local,
                    load_balancer,
                    label,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => spec().prop_map(Op::Upsert),
        2 => (0u8..2, 0u8..6).prop_map(|(n, s)| Op::Delete(n, s)),
        1 => (0u8..5).prop_map(Op::Config),
        1 => any::<bool>().prop_map(Op::Relabel),
        1 => Just(Op::Restart),
    ]
}

const REQUESTS: [&str; 8] = [
    "",
    "",
    "",
    "10.0.0.1",
    "10.0.0.2",
    "fc00::1",
    "10.0.0.1,fc00::1",
    "192.168.3.2",
];

fn build(s: &SvcSpec) -> Svc {
    let ns = ["default", "team"][usize::from(s.ns)];
    let mut b = svc(&format!("{ns}/s{}", s.name));
    match s.share {
        1 => b = b.share("k1"),
        2 => b = b.share("k2"),
        _ => {}
    }
    for (udp, port) in &s.ports {
        b = b.port(if *udp { "UDP" } else { "TCP" }, *port);
    }
    b = match s.family {
        0 => b,
        1 => b.families(&["IPv4"]),
        2 => b.v6(),
        3 => b.dual(),
        4 => b.prefer_dual(),
        _ => b.families(&["IPv6", "IPv4"]).policy("PreferDualStack"),
    };
    let request = REQUESTS[usize::from(s.request)];
    if !request.is_empty() {
        b = b.ips(request);
    }
    match s.pool {
        1 => b = b.in_pool("a"),
        2 => b = b.in_pool("b"),
        3 => b = b.in_pool("nope"),
        _ => {}
    }
    match s.local {
        1 => b = b.local(&[("app", "x")]),
        2 => b = b.local(&[("app", "y")]),
        _ => {}
    }
    if !s.load_balancer {
        b = b.kind("ClusterIP");
    }
    if s.label {
        b = b.label("tier", "web");
    }
    b
}

fn configs(n: u8) -> Config {
    match n {
        0 => config(vec![
            pool("a", &["10.0.0.0/30", "fc00::/126"]),
            pool("b", &["10.0.1.0/31"]).manual(),
        ]),
        1 => config(vec![
            pool("a", &["10.0.0.0/29"]).buggy(),
            pool("b", &["fc00::/127"]).namespaces(&["team"]),
        ]),
        2 => config(vec![
            pool("a", &["10.0.0.1-10.0.0.2"]),
            pool("b", &["10.0.1.0/30", "fc00::/127"])
                .svc_selector("tier", "web")
                .priority(1),
            pool("c", &["10.0.2.0/31"]).ns_selector("env", "prod"),
        ]),
        3 => config(vec![pool("b", &["10.0.0.0/31", "fc00::/128"])]),
        _ => config(vec![
            pool("a", &["10.0.0.0/30", "fc00::/126"]),
            pool("z", &["10.0.3.0/31", "fc00:1::/127"]),
        ]),
    }
}

fn views(cluster: &Cluster) -> BTreeMap<String, ServiceView> {
    cluster
        .services
        .iter()
        .map(|(k, s)| (k.clone(), ServiceView::from_service(s)))
        .collect()
}

fn check_invariants(cluster: &Cluster) {
    let controller = &cluster.controller;
    let views = views(cluster);
    let config = controller.config();
    let ns_labels: BTreeMap<String, BTreeMap<String, String>> = cluster
        .namespaces
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                n.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let empty = BTreeMap::new();
    // Every held IP inside a pool the service may use.
    for (key, desired) in controller.all_desired() {
        let Desired::Status { ingress, pool } = desired else {
            continue;
        };
        if ingress.is_empty() {
            assert!(pool.is_none(), "{key}: pool without addresses");
            continue;
        }
        let pool = config
            .pools
            .get(pool.as_deref().unwrap())
            .expect("known pool");
        let view = &views[&key];
        assert!(
            view.is_load_balancer && view.class.is_none(),
            "{key} holds but is not handled"
        );
        let scope = Scope {
            namespace: view.namespace(),
            service_labels: &view.labels,
            namespace_labels: ns_labels.get(view.namespace()).unwrap_or(&empty),
        };
        assert!(pool_allows(pool, &scope), "{key} may not use {}", pool.name);
        for ip in &ingress {
            assert!(pool.contains(ip), "{key}: {ip} outside {}", pool.name);
            assert!(
                !(pool.avoid_buggy_ips && is_buggy_v4(ip)),
                "{key}: buggy {ip}"
            );
        }
        assert!(ingress.len() <= 2);
        if let [a, b] = ingress.as_slice() {
            assert_ne!(Family::of(a), Family::of(b), "{key}: two of one family");
        }
    }
    // No IP held by two services that may not share.
    for (ip, users) in holders(controller) {
        if users.len() < 2 {
            continue;
        }
        let mut seen = BTreeSet::new();
        let first = &views[users.iter().next().unwrap()].usage.key;
        for user in &users {
            let usage = &views[user].usage;
            assert!(
                usage.key.allows_sharing(),
                "{ip}: {users:?} share without a key"
            );
            assert_eq!(&usage.key, first, "{ip}: {users:?} with different keys");
            for port in usage.ports.iter().collect::<BTreeSet<_>>() {
                assert!(
                    seen.insert(port.clone()),
                    "{ip}: {port} used twice by {users:?}"
                );
            }
        }
    }
    // Counters equal a count by hand (pools here are tiny: enumerate).
    let mut used: BTreeMap<String, (BTreeSet<IpAddr>, BTreeSet<IpAddr>)> = BTreeMap::new();
    for desired in controller.all_desired().values() {
        if let Desired::Status {
            ingress,
            pool: Some(pool),
        } = desired
        {
            let entry = used.entry(pool.clone()).or_default();
            for ip in ingress {
                match Family::of(ip) {
                    Family::V4 => entry.0.insert(*ip),
                    Family::V6 => entry.1.insert(*ip),
                };
            }
        }
    }
    for (name, counters) in controller.pool_counters() {
        let pool = &config.pools[&name];
        let mut total = [0u128; 2];
        for range in &pool.ranges {
            let fam = usize::from(range.family() == Family::V6);
            let start: u128 = match range.start() {
                IpAddr::V4(a) => u32::from(a).into(),
                IpAddr::V6(a) => a.into(),
            };
            for i in 0..range.len() {
                let v = start + i;
                let ip: IpAddr = if fam == 0 {
                    IpAddr::V4(u32::try_from(v).unwrap().into())
                } else {
                    IpAddr::V6(v.into())
                };
                if !(pool.avoid_buggy_ips && is_buggy_v4(&ip)) {
                    total[fam] += 1;
                }
            }
        }
        let (v4, v6) = used.get(&name).cloned().unwrap_or_default();
        let want = [
            v4.len() as u128,
            v6.len() as u128,
            total[0] - v4.len() as u128,
            total[1] - v6.len() as u128,
        ];
        let got = [
            counters.assigned_ipv4,
            counters.assigned_ipv6,
            counters.available_ipv4,
            counters.available_ipv6,
        ];
        assert_eq!(got, want, "counters of {name}");
    }
    // A restart in either input order moves nothing, and both orders agree.
    cluster.restart_check();
    let mut list: Vec<Service> = cluster.services.values().cloned().collect();
    let mut forward = Controller::new(config.clone(), None);
    forward.sync(&list, &cluster.namespaces);
    list.reverse();
    let mut backward = Controller::new(config.clone(), None);
    backward.sync(&list, &cluster.namespaces);
    assert_eq!(
        forward.all_desired(),
        backward.all_desired(),
        "input order changed the result"
    );
}

fn run(ops: Vec<Op>) {
    let mut cluster = Cluster::new(configs(0));
    cluster.namespaces = vec![
        namespace("default", &[]),
        namespace("team", &[("env", "prod")]),
    ];
    cluster.sync(vec![]);
    for op in ops {
        match op {
            Op::Upsert(s) => {
                cluster.upsert(build(&s));
            }
            Op::Delete(ns, name) => {
                let ns = ["default", "team"][usize::from(ns)];
                cluster.delete(&format!("{ns}/s{name}"));
            }
            Op::Config(n) => {
                cluster.set_config(configs(n));
            }
            Op::Relabel(prod) => {
                let n = namespace("team", &[("env", if prod { "prod" } else { "dev" })]);
                cluster
                    .namespaces
                    .retain(|x| x.metadata.name.as_deref() != Some("team"));
                cluster.namespaces.push(n.clone());
                cluster.apply(vec![Change::UpsertNamespace(Box::new(n))]);
            }
            Op::Restart => {
                let before = cluster.controller.all_desired();
                let config = cluster.controller.config().clone();
                cluster.controller = Controller::new(config, None);
                let services: Vec<Svc> = cluster.services.values().cloned().map(Svc).collect();
                cluster.sync(services);
                for (key, desired) in before {
                    if !desired.ingress().is_empty() {
                        assert_eq!(
                            cluster.controller.desired(&key),
                            Some(desired),
                            "restart moved {key}"
                        );
                    }
                }
            }
        }
        check_invariants(&cluster);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
