//! Weighted ECMP end to end (issue 19): three node namespaces running `oxlb run` on the
//! same files, FRR configured from `oxlb router-config --flavor frr`, a Service with
//! `externalTrafficPolicy: Local` whose endpoints sit 1, 2 and 3 on the three nodes, and
//! a BGPAdvertisement annotated `oxlb.io/weighted-ecmp: "true"`.
//!
//! 1. FRR's kernel route (`ip -j route` in the router namespace) has three next hops
//!    weighted 1:2:3 (each share within 15 % of its expected value);
//! 2. the endpoints move (3, 2, 1): the weights follow;
//! 3. node1's count drops to 0: node1 withdraws, the other two keep their 2:1;
//! 4. a Cluster-policy Service of the same advertisement keeps equal paths;
//! 5. `oxlb status`, `explain` and `/metrics` show each node's weight; an annotation that
//!    is neither "true" nor "false" is a warning naming the BGPAdvertisement.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};
use serde_json::Value;

const LOCAL_IP: &str = "10.79.0.10";
const CLUSTER_IP: &str = "10.79.0.20";

fn metallb(annotation: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: we-pool
  namespace: metallb-system
spec:
  addresses:
    - 10.79.0.0/24
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {ROUTER_LAN}
  holdTime: 9s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: we-weighted
  namespace: metallb-system
  annotations:
    oxlb.io/weighted-ecmp: \"{annotation}\"
spec:
  ipAddressPools:
    - we-pool
"
    )
}

fn service(name: &str, ip: &str, policy: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations:
    metallb.io/loadBalancerIPs: {ip}
spec:
  type: LoadBalancer
  externalTrafficPolicy: {policy}
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
"
    )
}

/// One EndpointSlice for `service` with `counts[i]` ready endpoints on node i+1.
fn slice(service: &str, counts: &[usize]) -> String {
    let mut endpoints = String::new();
    let mut n = 0;
    for (i, count) in counts.iter().enumerate() {
        for _ in 0..*count {
            n += 1;
            endpoints.push_str(&format!(
                "  - addresses: [\"10.244.{}.{n}\"]\n    nodeName: node{}\n    conditions:\n      ready: true\n      serving: true\n",
                i + 1,
                i + 1
            ));
        }
    }
    if endpoints.is_empty() {
        endpoints.push_str("  []\n");
    }
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-slice
  namespace: default
  labels:
    kubernetes.io/service-name: {service}
addressType: IPv4
endpoints:
{endpoints}"
    )
}

fn workload(local: &[usize]) -> String {
    [
        service("web-local", LOCAL_IP, "Local"),
        slice("web-local", local),
        service("web-cluster", CLUSTER_IP, "Cluster"),
        slice("web-cluster", &[1, 1, 1]),
    ]
    .join("---\n")
}

/// Next hop → weight of the router's kernel route for `ip`/32 (`ip -j route`).
fn kernel_weights(topo: &Topo, ip: &str) -> BTreeMap<String, u64> {
    let text = topo
        .router
        .exec_stdout(&["ip", "-j", "route", "show", &format!("{ip}/32")])
        .unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for route in json.as_array().into_iter().flatten() {
        if let Some(hops) = route["nexthops"].as_array() {
            for hop in hops {
                if let Some(gw) = hop["gateway"].as_str() {
                    out.insert(gw.to_string(), hop["weight"].as_u64().unwrap_or(1));
                }
            }
        } else if let Some(gw) = route["gateway"].as_str() {
            out.insert(gw.to_string(), 1);
        }
    }
    out
}

/// Whether `weights` has exactly the next hops of `expected` (node index → relative
/// weight) with each share within 15 % of the expected share.
fn matches(weights: &BTreeMap<String, u64>, expected: &[(usize, u64)]) -> bool {
    if weights.len() != expected.len() {
        return false;
    }
    let total: u64 = weights.values().sum();
    let want_total: u64 = expected.iter().map(|(_, w)| w).sum();
    expected.iter().all(|(node, want)| {
        weights.get(&node_ip(*node)).is_some_and(|got| {
            let share = *got as f64 / total as f64;
            let want = *want as f64 / want_total as f64;
            (share - want).abs() <= 0.15 * want
        })
    })
}

fn wait_weights(topo: &Topo, ip: &str, expected: &[(usize, u64)]) -> BTreeMap<String, u64> {
    wait_until(CONVERGE, Duration::from_millis(100), || {
        let w = kernel_weights(topo, ip);
        matches(&w, expected).then_some(w)
    })
    .unwrap_or_else(|| {
        panic!(
            "the router's kernel route for {ip} never had weights {expected:?}: {:?}\n{}\nFRR: {}\n{}",
            kernel_weights(topo, ip),
            topo.router
                .exec_stdout(&["ip", "route", "show", &format!("{ip}/32")])
                .unwrap_or_default(),
            topo.frr
                .vtysh(&format!("show bgp ipv4 unicast {ip}/32"))
                .unwrap_or_default(),
            topo.logs()
        )
    })
}

#[test]
fn frr_weighs_the_nodes_by_their_ready_local_endpoints() {
    if !netns_tests_enabled("weighted_ecmp_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    // The router's config comes from `oxlb router-config` on the same objects.
    let scratch = Scratch::new("we-rc");
    let file = scratch.0.join("metallb.yaml");
    std::fs::write(&file, metallb("true")).unwrap();
    let frr_conf = run_router_config(&file);
    assert!(
        frr_conf.contains("bgp bestpath bandwidth default-weight-for-missing"),
        "{frr_conf}"
    );
    let mut topo = Topo::build_tagged("we", 3, &frr_conf, &["zebra", "bgpd"]);
    topo.write_config("metallb.yaml", &metallb("true"));
    topo.write_config("workload.yaml", &workload(&[1, 2, 3]));
    for i in 0..3 {
        topo.start_run(i);
    }

    // 1. Three next hops weighted 1:2:3.
    let w = wait_weights(&topo, LOCAL_IP, &[(1, 1), (2, 2), (3, 3)]);
    eprintln!("kernel weights for 1:2:3 endpoints: {w:?}");
    let paths = topo
        .frr
        .vtysh(&format!("show bgp ipv4 unicast {LOCAL_IP}/32 json"))
        .unwrap_or_default();
    assert!(
        paths.contains("LB:"),
        "FRR shows no link bandwidth: {paths}"
    );

    // 4. The Cluster Service of the same advertisement: equal paths, no community.
    let w = wait_weights(&topo, CLUSTER_IP, &[(1, 1), (2, 1), (3, 1)]);
    eprintln!("kernel weights for the Cluster Service: {w:?}");
    let paths = topo
        .frr
        .vtysh(&format!("show bgp ipv4 unicast {CLUSTER_IP}/32 json"))
        .unwrap_or_default();
    assert!(
        !paths.contains("LB:"),
        "a Cluster path carries a weight: {paths}"
    );

    // 5. Status, explain and metrics show the weight of each node.
    for (i, want) in [(0usize, 1u64), (1, 2), (2, 3)] {
        let status = topo.status(i).unwrap();
        let svc = status["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "default/web-local")
            .cloned()
            .unwrap();
        assert_eq!(svc["weight"]["weight"], want, "node{}: {svc}", i + 1);
        assert_eq!(svc["weight"]["ready_local_endpoints"], want, "{svc}");
        let route = status["bgp_routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["prefix"] == format!("{LOCAL_IP}/32"))
            .cloned()
            .unwrap();
        assert_eq!(route["weight"], want, "{route}");
        let explain = topo
            .oxlb(i, &["explain", "default/web-local", "--addr", LISTEN])
            .unwrap();
        assert!(
            explain.contains(&format!("weight is {want} ({want} ready local endpoints")),
            "{explain}"
        );
        let metrics = topo.nodes[i]
            .ns
            .exec_stdout(&["curl", "-s", &format!("http://{LISTEN}/metrics")])
            .unwrap();
        let line = format!(
            "oxlb_bgp_announced_prefix_weight{{peer=\"router\",prefix=\"{LOCAL_IP}/32\"}} {want}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    eprintln!(
        "explain on node3:\n{}",
        topo.oxlb(2, &["explain", "default/web-local", "--addr", LISTEN])
            .unwrap()
    );

    // 2. The endpoints move: the weights follow.
    topo.write_config("workload.yaml", &workload(&[3, 2, 1]));
    let w = wait_weights(&topo, LOCAL_IP, &[(1, 3), (2, 2), (3, 1)]);
    eprintln!("kernel weights after the move to 3:2:1: {w:?}");

    // 3. node1 drops to 0: it withdraws; the others keep 2:1.
    topo.write_config("workload.yaml", &workload(&[0, 2, 1]));
    let w = wait_weights(&topo, LOCAL_IP, &[(2, 2), (3, 1)]);
    eprintln!("kernel weights with node1 at 0 endpoints: {w:?}");
    topo.wait_paths(&format!("{LOCAL_IP}/32"), &[node_ip(2), node_ip(3)]);

    // Bad input: an annotation value other than true/false warns, naming the object,
    // and weighted ECMP stays off (equal paths again).
    topo.write_config("metallb.yaml", &metallb("yes"));
    let w = wait_weights(&topo, LOCAL_IP, &[(2, 1), (3, 1)]);
    eprintln!("kernel weights with the annotation \"yes\": {w:?}");
    let status = topo.status(1).unwrap();
    let warnings = status["config"]["warnings"].to_string();
    assert!(
        warnings.contains("we-weighted") && warnings.contains("oxlb.io/weighted-ecmp"),
        "{warnings}"
    );
}

/// `oxlb router-config --flavor frr` for the three nodes.
fn run_router_config(file: &std::path::Path) -> String {
    frr_router_config(file, 3)
}
