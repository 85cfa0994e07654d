//! Health-checked announcements by BGP, end to end: three nodes in network namespaces
//! run `oxlb run` and a small HTTP server each, and peer with FRR (ECMP, 3 paths).
//! A Service annotated `oxlb.io/health-check` loses the path of the node whose server
//! is killed, while an unchecked Service keeps its three paths; the path comes back
//! when the server is restarted. A Service with a typo in its check is announced as if
//! unchecked and says so. The withdrawal time is printed (a figure, not an assertion).
//!
//! Needs root and FRR, as the other e2e tests (`OXLB_SKIP_NETNS=1` skips).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;

const CHECKED: &str = "10.79.0.10";
const PLAIN: &str = "10.79.0.11";
const TYPO: &str = "10.79.0.12";

fn service(name: &str, ip: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations:
    metallb.io/loadBalancerIPs: {ip}
{extra}spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
"
    )
}

fn services() -> String {
    [
        service(
            "checked",
            CHECKED,
            "    oxlb.io/health-check: http://127.0.0.1:80/healthz\n",
        ),
        service("plain", PLAIN, ""),
        service(
            "typo",
            TYPO,
            "    oxlb.io/health-check: htp://127.0.0.1:80/healthz\n",
        ),
    ]
    .join("---\n")
}

fn health_row(topo: &Topo, i: usize, service: &str) -> Option<serde_json::Value> {
    let status = topo.status(i)?;
    status["health_checks"]
        .as_array()?
        .iter()
        .find(|h| h["service"] == service)
        .cloned()
}

#[test]
fn a_failing_check_withdraws_only_that_nodes_path_and_a_pass_brings_it_back() {
    if !oxlb_netlab::netns_tests_enabled("health_bgp_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build(3, false);
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/24"));
    topo.write_config("services.yaml", &services());
    for i in 0..3 {
        topo.start_backend(i);
        topo.start_run(i);
    }
    let all: Vec<String> = (1..=3).map(node_ip).collect();
    topo.wait_paths(&format!("{CHECKED}/32"), &all);
    topo.wait_paths(&format!("{PLAIN}/32"), &all);
    // The typo does not take the Service down: announced as if unchecked, and said.
    topo.wait_paths(&format!("{TYPO}/32"), &all);
    let typo = health_row(&topo, 0, "default/typo").expect("typo reported");
    assert_eq!(typo["state"], "invalid", "{typo}");
    let error = typo["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("default/typo")
            && error.contains("oxlb.io/health-check")
            && error.contains("as if it had no health check"),
        "{error}"
    );

    // Kill node2's server: only the checked Service's path from node2 leaves FRR.
    let killed = Instant::now();
    topo.nodes[1].backend = None;
    let two = vec![node_ip(1), node_ip(3)];
    topo.wait_paths(&format!("{CHECKED}/32"), &two);
    let withdrawn = killed.elapsed();
    println!(
        "health check: node2's path left FRR {withdrawn:?} after its server was killed \
         (defaults: interval 500ms, timeout 300ms, fall 2; includes the 100ms FRR poll)"
    );
    assert_eq!(
        topo.paths(&format!("{PLAIN}/32")).len(),
        3,
        "the unchecked Service keeps its three paths"
    );
    let row = health_row(&topo, 1, "default/checked").expect("node2 reports the check");
    assert_eq!(row["state"], "down", "{row}");
    let explain = topo
        .oxlb(1, &["explain", "default/checked", "--addr", LISTEN])
        .unwrap();
    assert!(
        explain.contains("Health check") && explain.contains("is down"),
        "{explain}"
    );
    assert!(
        explain.contains("health check"),
        "reason in words: {explain}"
    );
    let metrics = topo.nodes[1]
        .ns
        .exec_stdout(&[
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://{LISTEN}/metrics"),
        ])
        .unwrap();
    assert!(
        metrics.contains("oxlb_health_check_up{service=\"default/checked\",node=\"node2\"} 0"),
        "{metrics}"
    );
    let healthy = health_row(&topo, 0, "default/checked").unwrap();
    assert_eq!(healthy["state"], "up", "{healthy}");
    assert!(healthy["latency_ms"].as_f64().is_some(), "{healthy}");

    // Restart it: the path returns after `rise` passes.
    let restarted = Instant::now();
    topo.start_backend(1);
    topo.wait_paths(&format!("{CHECKED}/32"), &all);
    println!(
        "health check: node2's path returned {:?} after its server restarted (rise 3)",
        restarted.elapsed()
    );
    assert_eq!(topo.paths(&format!("{PLAIN}/32")).len(), 3);
    for i in 0..3 {
        assert!(topo.stop_run(i), "node{} stopped cleanly", i + 1);
    }
}
