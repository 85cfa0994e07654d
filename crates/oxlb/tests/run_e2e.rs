//! `oxlb run` end to end with a real router (issue 5): three node namespaces each running
//! `oxlb run` on the same files, FRR in a router namespace (eBGP, nodes AS 64500, router
//! AS 64501, `maximum-paths 3`), a workstation behind the router, and an HTTP backend in
//! every node. One scenario, in order:
//!
//! 1. both Services' IPs reach FRR with three ECMP paths and the communities;
//! 2. a curl from the workstation through the router is answered by a node;
//! 3. a new requested IP (annotation) moves the route without resetting any session;
//! 4. a requested IP outside every pool keeps the old IP, and `explain` says why;
//! 5. an invalid config edit keeps everything announced, `/healthz` says stale;
//! 6. SIGTERM and restart of one node keeps every IP, even with a Service added while
//!    it was down that would otherwise take an IP first.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

const A1: &str = "10.79.0.10";
const A2: &str = "10.79.0.11";
const OUTSIDE: &str = "192.168.3.2";

fn all_nodes(topo: &Topo) -> Vec<String> {
    topo.nodes.iter().map(|n| n.ip.clone()).collect()
}

fn prefix(ip: &str) -> String {
    format!("{ip}/32")
}

#[test]
fn run_end_to_end_with_frr() {
    if !netns_tests_enabled("run_end_to_end_with_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build(3, false);
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/24"));
    topo.write_config(
        "services.yaml",
        &services_yaml(&[("svc-a", Some(A1)), ("svc-b", None)]),
    );
    for i in 0..3 {
        topo.start_backend(i);
        topo.start_run(i);
    }
    let hops = all_nodes(&topo);

    // 1. Both IPs, three ECMP paths each, with the communities.
    let paths = topo.wait_paths(&prefix(A1), &hops);
    for (hop, communities) in &paths {
        assert!(
            communities.contains("64500:100") && communities.contains("no-advertise"),
            "path via {hop} lacks the communities: {communities:?}"
        );
    }
    let b_ip = wait_until(CONVERGE, Duration::from_millis(200), || {
        let ips: Vec<Vec<String>> = (0..3)
            .map(|i| topo.assignments(i)?.get("default/svc-b").cloned())
            .collect::<Option<_>>()?;
        // Every node computed the same IP on its own.
        (ips.iter().all(|x| *x == ips[0]) && ips[0].len() == 1).then(|| ips[0][0].clone())
    })
    .unwrap_or_else(|| panic!("nodes do not agree on svc-b's IP\n{}", topo.logs()));
    assert_eq!(b_ip, "10.79.0.1", "lowest free address, .0 avoided");
    let paths_b = topo.wait_paths(&prefix(&b_ip), &hops);
    assert!(
        paths_b.values().all(|c| c.contains("64500:100")),
        "{paths_b:?}"
    );
    let multipath = topo
        .frr
        .vtysh(&format!("show ip route {A1}/32"))
        .unwrap_or_default();
    for hop in &hops {
        assert!(
            multipath.contains(hop),
            "kernel route lacks {hop}: {multipath}"
        );
    }
    let sessions = topo.sessions();
    assert_eq!(sessions.len(), 3, "{sessions:?}");

    // 2. Traffic from the workstation through the router reaches a node's backend.
    let names: Vec<String> = topo.nodes.iter().map(|n| format!("{}\n", n.name)).collect();
    for ip in [A1, b_ip.as_str()] {
        let body = wait_until(CONVERGE, Duration::from_millis(200), || {
            topo.curl_from_ws(ip).ok().filter(|b| names.contains(b))
        });
        assert!(
            body.is_some(),
            "curl http://{ip}/ from the workstation: {:?}",
            topo.curl_from_ws(ip)
        );
    }

    // 3. A new requested IP moves the route; no session is reset.
    topo.write_config(
        "services.yaml",
        &services_yaml(&[("svc-a", Some(A2)), ("svc-b", None)]),
    );
    topo.wait_paths(&prefix(A2), &hops);
    topo.wait_paths(&prefix(A1), &[]);
    assert_eq!(topo.sessions(), sessions, "a session was reset by the move");
    assert!(topo.curl_from_ws(A2).is_ok_and(|b| names.contains(&b)));

    // 4. A requested IP in no pool: the old IP stays, explain names the pools.
    topo.write_config(
        "services.yaml",
        &services_yaml(&[("svc-a", Some(OUTSIDE)), ("svc-b", None)]),
    );
    for i in 0..3 {
        let text = wait_until(CONVERGE, Duration::from_millis(200), || {
            topo.oxlb(i, &["explain", "default/svc-a", "--addr", LISTEN])
                .ok()
                .filter(|t| t.contains(OUTSIDE))
        })
        .unwrap_or_else(|| {
            panic!(
                "explain on node{} never mentioned {OUTSIDE}: {:?}\n{}",
                i + 1,
                topo.oxlb(i, &["explain", "default/svc-a", "--addr", LISTEN]),
                topo.logs()
            )
        });
        assert!(text.contains("not allowed"), "{text}");
        assert!(
            text.contains("e2e-bgp") && text.contains("10.79.0.0/24"),
            "explain does not name the pools: {text}"
        );
        assert!(text.contains(A2), "explain lost the old IP: {text}");
        if i == 0 {
            eprintln!("explain on node1:\n{text}");
        }
    }
    assert_eq!(topo.paths(&prefix(A2)).len(), 3);
    assert_eq!(topo.paths(&prefix(&b_ip)).len(), 3);
    assert!(topo.paths(&prefix(OUTSIDE)).is_empty());
    assert_eq!(topo.sessions(), sessions);

    // 5. An invalid config edit: rejected, everything stays announced, health says stale.
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/33"));
    for i in 0..3 {
        let stale = wait_until(CONVERGE, Duration::from_millis(200), || {
            topo.healthz(i).contains("stale").then_some(())
        });
        assert!(
            stale.is_some(),
            "node{} /healthz: {:?}\n{}",
            i + 1,
            topo.healthz(i),
            topo.logs()
        );
        let status = topo.status(i).unwrap();
        assert_eq!(status["config"]["stale"], true, "{status}");
        if i == 0 {
            eprintln!("/healthz on node1 after a bad edit: {}", topo.healthz(i));
        }
        assert!(
            status["config"]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "{status}"
        );
    }
    assert_eq!(topo.paths(&prefix(A2)).len(), 3);
    assert_eq!(topo.paths(&prefix(&b_ip)).len(), 3);
    assert_eq!(topo.sessions(), sessions);

    // Back to a valid config with svc-a on A2.
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/24"));
    topo.write_config(
        "services.yaml",
        &services_yaml(&[("svc-a", Some(A2)), ("svc-b", None)]),
    );
    for i in 0..3 {
        let ok = wait_until(CONVERGE, Duration::from_millis(200), || {
            topo.healthz(i).contains("\"ok\"").then_some(())
        });
        assert!(ok.is_some(), "node{} /healthz: {}", i + 1, topo.healthz(i));
    }
    let before = topo.assignments(0).unwrap();

    // 6. Restart node1: SIGTERM withdraws its paths, exit 0.
    assert!(topo.stop_run(0), "oxlb run did not exit 0 on SIGTERM");
    let rest: Vec<String> = hops[1..].to_vec();
    topo.wait_paths(&prefix(A2), &rest);
    // While node1 is down a Service appears that sorts first and asks for no IP: the
    // running nodes give it the next free one; node1 must re-claim its own first.
    topo.write_config(
        "services.yaml",
        &services_yaml(&[("aaa-new", None), ("svc-a", Some(A2)), ("svc-b", None)]),
    );
    let new_ip = wait_until(CONVERGE, Duration::from_millis(200), || {
        topo.assignments(1)?
            .get("default/aaa-new")
            .and_then(|ips| ips.first().cloned())
    })
    .unwrap_or_else(|| panic!("node2 never assigned aaa-new\n{}", topo.logs()));
    topo.wait_paths(&prefix(&new_ip), &rest);
    topo.start_run(0);
    topo.wait_paths(&prefix(A2), &hops);
    topo.wait_paths(&prefix(&b_ip), &hops);
    topo.wait_paths(&prefix(&new_ip), &hops);
    let after = wait_until(CONVERGE, Duration::from_millis(200), || {
        topo.assignments(0).filter(|a| a.len() == 3)
    })
    .unwrap();
    for (service, ips) in &before {
        assert_eq!(after.get(service), Some(ips), "{service} moved on restart");
    }
    assert_eq!(
        after.get("default/aaa-new"),
        Some(&vec![new_ip.clone()]),
        "node1 disagrees with node2 on the new Service"
    );
    eprintln!("node1 before restart {before:?}, after {after:?}");
    let now = topo.sessions();
    for peer in &hops[1..] {
        assert_eq!(now.get(peer), sessions.get(peer), "{peer} was reset");
    }
}
