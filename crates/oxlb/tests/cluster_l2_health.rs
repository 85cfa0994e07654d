//! Issue 20, Layer 2 health news between real `oxlb speaker` processes: the rehearsal
//! cluster of tests/cluster (three node namespaces at the kernel's defaults, one
//! `oxlb speaker` each, an `oxlb controller`, the fake API server on the LAN), a Layer 2
//! pool, MetalLB's memberlist Secret, and two LoadBalancer Services with a ready endpoint
//! on every node: `hc`, annotated `oxlb.io/health-check: http://127.0.0.1:80/healthz`
//! (each node's own HTTP server, `oxlb lab-backend`), and `plain`, unchecked.
//!
//! The router asks with arping (one request per sample) who answers for `hc`'s IP:
//!
//! 1. the owner's HTTP server killed (its speaker keeps running and tells the others by
//!    the membership's health news) → a node whose check passes answers, never two at
//!    once; the failover time is printed (kill → the new owner's status says it
//!    announces, polled; kill → the first ARP sample with it alone, ~1 s resolution);
//!    the speakers' status API shows the old owner's check `down`, the new one's `up`,
//!    and a `HealthCheckFailed` event names the old owner;
//! 2. the server restarted → ownership moves back to it (no stickiness: the election is
//!    a pure function of the candidates, and the node is a candidate again once its
//!    check has passed `rise` times), never two at once; the time is printed;
//! 3. every server killed → the product's rule, withdraw everywhere: nobody answers for
//!    `hc`, every speaker's status says `failing_everywhere` and announces no Layer 2 IP
//!    for it, a `HealthCheckFailed` event from every node, while `plain` keeps its one
//!    answerer.
//!
//! Needs root, FRR's zebra and arping (`OXLB_SKIP_NETNS=1` skips).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod cluster;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cluster::*;
use common::CONVERGE;
use serde_json::{Value, json};

const NODES: usize = 3;
const CRS: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lan
  namespace: metallb-system
spec:
  addresses:
    - 10.77.0.200-10.77.0.210
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: lan
  namespace: metallb-system
spec:
  ipAddressPools:
    - lan
"#;
/// A router that only routes (no BGP here).
const FRR_CONF: &str = "frr defaults traditional\nhostname router\n";
/// The speakers' status API (their default).
const STATUS: &str = "127.0.0.1:7474";
/// How long an owner must stay the only answerer after a change.
const STABLE: Duration = Duration::from_secs(5);

fn memberlist_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "memberlist", "namespace": NS},
        "data": {"secretkey": "bDItaGVhbHRoLW5ld3MtdGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="},
    })
}

/// The distinct MACs answering one ARP request for `ip` from the router.
fn answerers(c: &Cluster, ip: &str) -> Vec<String> {
    let out = c
        .topo
        .router
        .command("arping")
        .args(["-r", "-c", "1", "-w", "1", "-i", "lan0", ip])
        .output()
        .unwrap();
    let mut macs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// Samples until `want(mac)` holds for a single answerer; fails on two answerers at
/// once or when [`CONVERGE`] passes. Returns the MAC, the time from `since` and the
/// number of samples without any answer on the way.
fn until_one(
    c: &Cluster,
    ip: &str,
    since: Instant,
    want: impl Fn(&str) -> bool,
    what: &str,
) -> (String, Duration, usize) {
    let mut silent = 0;
    loop {
        let macs = answerers(c, ip);
        assert!(
            macs.len() <= 1,
            "{what}: two answerers {macs:?} after {:?}\n{}",
            since.elapsed(),
            c.logs()
        );
        match macs.as_slice() {
            [mac] if want(mac) => return (mac.clone(), since.elapsed(), silent),
            [] => silent += 1,
            _ => {}
        }
        assert!(
            since.elapsed() < CONVERGE,
            "{what}: no wanted single answerer (last {macs:?})\n{}",
            c.logs()
        );
    }
}

/// Every sample for [`STABLE`] shows exactly `mac`; returns the sample count.
fn stays(c: &Cluster, ip: &str, mac: &str, what: &str) -> usize {
    let start = Instant::now();
    let mut samples = 0;
    while start.elapsed() < STABLE {
        assert_eq!(
            answerers(c, ip),
            [mac.to_string()],
            "{what}: after {:?}\n{}",
            start.elapsed(),
            c.logs()
        );
        samples += 1;
    }
    samples
}

/// Speaker `i`'s status report (`/api/v1/status` on its loopback status address).
fn status(c: &Cluster, i: usize) -> Option<Value> {
    let text = c.topo.nodes[i]
        .ns
        .exec_stdout(&[
            "curl",
            "-s",
            "--max-time",
            "2",
            &format!("http://{STATUS}/api/v1/status"),
        ])
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Speaker `i`'s health-check row for default/hc.
fn check_row(c: &Cluster, i: usize) -> Value {
    status(c, i)
        .and_then(|s| {
            s["health_checks"]
                .as_array()?
                .iter()
                .find(|h| h["service"] == "default/hc")
                .cloned()
        })
        .unwrap_or(Value::Null)
}

/// Whether speaker `i` says it answers for `ip`.
fn announces(c: &Cluster, i: usize, ip: &str) -> bool {
    status(c, i).is_some_and(|s| {
        s["l2"]
            .as_array()
            .is_some_and(|l2| l2.iter().any(|e| e["ip"] == ip))
    })
}

/// (reason, reporting node) of every event the speakers recorded about default/hc.
fn hc_events(c: &Cluster) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = c
        .api()
        .writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .chain(c.api().list("/apis/events.k8s.io/v1/events"))
        .filter(|e| e["regarding"]["name"] == "hc")
        .filter_map(|e| {
            Some((
                e["reason"].as_str()?.to_string(),
                e["reportingInstance"].as_str().unwrap_or("?").to_string(),
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn layer2_health_news_moves_ownership_between_speakers() {
    if !oxlb_netlab::netns_tests_enabled("cluster_l2_health").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    // Builds the network with an `oxlb lab-backend` on every node (port 80 of every
    // address: the Services' workload and, on 127.0.0.1, the check's server).
    let mut c = Cluster::build(NODES, FRR_CONF, &["zebra"]);
    c.seed_cluster();
    c.apply_yaml(CRS);
    c.api().put(memberlist_secret());
    let mut hc = service("hc", None);
    hc["metadata"]["annotations"] = json!({"oxlb.io/health-check": "http://127.0.0.1:80/healthz"});
    c.api().put(hc);
    c.api().put(endpoint_slice("hc", NODES));
    c.api().put(service("plain", None));
    c.api().put(endpoint_slice("plain", NODES));
    c.start_controller("oxlb-controller-hc", 0);
    for i in 0..NODES {
        c.start_speaker(i);
    }
    let ingress = |name: &str| {
        wait(CONVERGE, || {
            oxlb_fakeapi::ingress(c.api(), "default", name)
                .first()
                .cloned()
        })
        .unwrap_or_else(|| panic!("{name} never got an IP\n{}", c.logs()))
    };
    let (ip, plain_ip) = (ingress("hc"), ingress("plain"));
    let node_of: BTreeMap<String, usize> = c
        .topo
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (mac_of(&n.ns, "lan0"), i))
        .collect();
    let names: Vec<String> = c.topo.nodes.iter().map(|n| n.name.clone()).collect();
    let name = |mac: &str| names[node_of[mac]].clone();

    let up = wait(CONVERGE, || {
        (0..NODES)
            .all(|i| check_row(&c, i)["state"] == "up")
            .then_some(())
    });
    assert!(up.is_some(), "every check up\n{}", c.logs());
    let owner_mac = wait(CONVERGE, || answers_one(&c, &ip))
        .unwrap_or_else(|| panic!("no single answerer for {ip}\n{}", c.logs()));
    let samples = stays(&c, &ip, &owner_mac, "start");
    let owner = node_of[&owner_mac];
    eprintln!(
        "start: {} owns {ip} ({samples} samples alone over {STABLE:?})",
        name(&owner_mac)
    );

    // 1. The owner's server dies; its speaker keeps running.
    let killed = Instant::now();
    c.topo.nodes[owner].backend = None;
    // ARP samples (about a second each) check "never two"; a status poll beside them
    // (every speaker's /api/v1/status, a few ms each) times the take-over finer.
    let (polled, (new_mac, failover, silent)) = std::thread::scope(|scope| {
        let poll = scope.spawn(|| {
            wait(CONVERGE, || {
                (0..NODES)
                    .any(|i| i != owner && announces(&c, i, &ip))
                    .then(|| killed.elapsed())
            })
        });
        let sampled = until_one(&c, &ip, killed, |m| m != owner_mac, "owner's check fails");
        (poll.join().unwrap(), sampled)
    });
    let new_owner = node_of[&new_mac];
    let samples = stays(&c, &ip, &new_mac, "after failover");
    println!(
        "Layer 2 health failover (oxlb speaker): the new owner's status says it announces \
         {polled:?} after the kill (status poll); {} answers ARP alone {failover:?} after {}'s \
         check server was killed ({silent} ARP samples without an answer on the way, none \
         with two; then alone in {samples} samples over {STABLE:?}); defaults: interval \
         500ms, timeout 300ms, fall 2",
        name(&new_mac),
        name(&owner_mac)
    );
    assert_eq!(check_row(&c, owner)["state"], "down", "{}", c.logs());
    assert_eq!(
        check_row(&c, new_owner)["state"],
        "up",
        "the answerer is healthy"
    );
    assert!(announces(&c, new_owner, &ip) && !announces(&c, owner, &ip));
    let failed = wait(CONVERGE, || {
        hc_events(&c)
            .into_iter()
            .find(|(reason, node)| reason == "HealthCheckFailed" && *node == name(&owner_mac))
    });
    assert!(
        failed.is_some(),
        "a HealthCheckFailed event from the owner: {:?}",
        hc_events(&c)
    );

    // 2. The server is back: the node is a candidate again after `rise` passes and, as
    // the election's choice among all three, takes the IP back. Never two.
    let restarted = Instant::now();
    c.topo.start_backend(owner);
    let (polled, (back_mac, back, silent)) = std::thread::scope(|scope| {
        let poll = scope.spawn(|| {
            wait(CONVERGE, || {
                announces(&c, owner, &ip).then(|| restarted.elapsed())
            })
        });
        let sampled = until_one(
            &c,
            &ip,
            restarted,
            |m| m == owner_mac,
            "owner's check passes again",
        );
        (poll.join().unwrap(), sampled)
    });
    let samples = stays(&c, &ip, &back_mac, "after the return");
    println!(
        "Layer 2 health return: its status says it announces again {polled:?} after the \
         restart (status poll); {} answers ARP alone again {back:?} after its check server \
         restarted ({silent} samples without an answer, none with two; then alone in \
         {samples} samples over {STABLE:?}); defaults: rise 3",
        name(&back_mac)
    );
    assert_eq!(check_row(&c, owner)["state"], "up");

    // 3. Every server dies: withdrawn everywhere, and every speaker says why.
    let plain_before = wait(CONVERGE, || answers_one(&c, &plain_ip))
        .unwrap_or_else(|| panic!("plain has no single answerer\n{}", c.logs()));
    let all_dead = Instant::now();
    for node in &mut c.topo.nodes {
        node.backend = None;
    }
    let everywhere = wait(CONVERGE, || {
        (0..NODES)
            .all(|i| check_row(&c, i)["failing_everywhere"] == true && !announces(&c, i, &ip))
            .then(|| all_dead.elapsed())
    });
    let everywhere =
        everywhere.unwrap_or_else(|| panic!("failing everywhere never shown\n{}", c.logs()));
    let reporters: BTreeSet<String> = wait(CONVERGE, || {
        let nodes: BTreeSet<String> = hc_events(&c)
            .into_iter()
            .filter(|(reason, _)| reason == "HealthCheckFailed")
            .map(|(_, node)| node)
            .collect();
        (nodes.len() == NODES).then_some(nodes)
    })
    .unwrap_or_else(|| panic!("HealthCheckFailed from every node: {:?}", hc_events(&c)));
    for k in 0..5 {
        assert!(
            answerers(&c, &ip).is_empty(),
            "all checks fail: sample {k}: nobody answers for {ip}\n{}",
            c.logs()
        );
        assert_eq!(
            answerers(&c, &plain_ip),
            std::slice::from_ref(&plain_before),
            "the unchecked Service keeps its answerer"
        );
    }
    let row = check_row(&c, 0);
    println!(
        "all checks failing: every speaker shows failing_everywhere {everywhere:?} after the \
         last server died (status poll); HealthCheckFailed events from {reporters:?}; \
         node1's row: {row}"
    );
    assert_eq!(row["state"], "down");
    let errors = unexpected_errors(c.api());
    assert!(errors.is_empty(), "requests the fake refused: {errors:#?}");
}

/// The one MAC answering for `ip` in three samples in a row, if so.
fn answers_one(c: &Cluster, ip: &str) -> Option<String> {
    let first = answerers(c, ip);
    let [mac] = first.as_slice() else {
        return None;
    };
    (0..2)
        .all(|_| answerers(c, ip) == first)
        .then(|| mac.clone())
}
