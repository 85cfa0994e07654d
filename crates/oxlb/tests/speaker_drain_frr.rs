//! `oxlb speaker` on SIGTERM (issue 19): the real binary in two node namespaces against
//! the fake API server (tests/cluster), FRR as the router (configured by `oxlb
//! router-config`), `--drain-delay-seconds 3`, no graceful restart configured.
//!
//! 1. A schedulable Node (a restart, e.g. an upgrade): SIGTERM withdraws the path
//!    first: FRR drops node1's path while its session to node1 is still Established,
//!    and the session closes (Cease) and the process exits only after the delay.
//! 2. A cordoned Node (going down: `kubectl drain` cordons first; the cordon withdrew
//!    the path already): SIGTERM closes at once with a Cease, no delay.
//!
//! Prints the times (polled every 20 ms: figures, not assertions).
//! Needs root and FRR (`OXLB_SKIP_NETNS=1` skips).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod cluster;
mod common;

use std::time::{Duration, Instant};

use cluster::*;
use common::{CONVERGE, frr_router_config, metallb_yaml, node_ip};
use serde_json::{Value, json};

const VIP: &str = "10.79.0.10";
const NODES: usize = 2;
const DELAY: &str = "3";

fn router_config(dir: &std::path::Path) -> String {
    let file = dir.join("metallb.yaml");
    std::fs::write(&file, metallb_yaml("10.79.0.0/24")).unwrap();
    frr_router_config(&file, NODES)
}

/// FRR's neighbour `ip`: its state and the last NOTIFICATION it got or sent.
fn neighbor(c: &Cluster, ip: &str) -> Value {
    let text = c
        .topo
        .frr
        .vtysh(&format!("show bgp neighbors {ip} json"))
        .unwrap_or_default();
    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)[ip].clone()
}

fn hops(c: &Cluster) -> Vec<String> {
    c.topo.paths(&format!("{VIP}/32")).into_keys().collect()
}

/// The speaker's "stopping" line with the plan it chose.
fn stop_line(c: &Cluster, node: &str) -> String {
    std::fs::read_to_string(c.log_path(&format!("{node}-speaker")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("plan="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one SIGTERM looked like from FRR, polled every 20 ms until the process exited
/// and FRR's session to it is down.
struct Observed {
    /// When FRR no longer had node1's path, and whether its session was Established
    /// then.
    path_gone: Option<(Duration, bool)>,
    /// When FRR's session left Established.
    session_down: Option<Duration>,
    exited: Duration,
}

fn sigterm_node1(c: &mut Cluster) -> Observed {
    let node1 = node_ip(1);
    let mut run = c.topo.nodes[0].run.take().unwrap();
    let sent = Instant::now();
    run.signal("TERM").unwrap();
    let mut path_gone = None;
    let mut session_down = None;
    let mut exited = None;
    let done = wait(CONVERGE, || {
        let established = neighbor(c, &node1)["bgpState"] == "Established";
        if path_gone.is_none() && !hops(c).contains(&node1) {
            path_gone = Some((sent.elapsed(), established));
        }
        if session_down.is_none() && !established {
            session_down = Some(sent.elapsed());
        }
        if exited.is_none() && run.child_mut().try_wait().ok().flatten().is_some() {
            exited = Some(sent.elapsed());
        }
        (exited.is_some() && session_down.is_some() && path_gone.is_some()).then_some(())
    });
    assert!(
        done.is_some(),
        "SIGTERM: path gone {path_gone:?}, session down {session_down:?}, exited {exited:?}\n{}",
        c.logs()
    );
    let status = run.child_mut().try_wait().unwrap().unwrap();
    assert!(status.success(), "{status}\n{}", c.logs());
    Observed {
        path_gone,
        session_down,
        exited: exited.unwrap(),
    }
}

#[test]
fn sigterm_withdraws_first_on_a_restart_and_ceases_at_once_on_a_cordoned_node() {
    if !oxlb_netlab::netns_tests_enabled("speaker_drain_frr").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let scratch = common::Scratch::new("k8sdrain-cfg");
    let frr_conf = router_config(&scratch.0);
    let mut c = Cluster::build(NODES, &frr_conf, &["zebra", "bgpd"]);
    c.seed_cluster();
    c.apply_yaml(&metallb_yaml("10.79.0.0/24"));
    c.api().put(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "memberlist", "namespace": NS},
        "data": {"secretkey": "azhzZHJhaW4tdGVzdC1rZXktbm90LXNlY3JldC0xMjM0NTY3ODkw"},
    }));
    c.api().put(service("web", Some((VIP, "e2e-bgp"))));
    c.api().put(endpoint_slice("web", NODES));
    let all: Vec<String> = (1..=NODES).map(node_ip).collect();
    let node2: Vec<String> = vec![node_ip(2)];
    for i in 0..NODES {
        c.start_speaker_with(i, &["--drain-delay-seconds", DELAY]);
    }
    c.topo.wait_paths(&format!("{VIP}/32"), &all);

    // 1. A restart (the Node is schedulable), no graceful restart configured.
    let seen = sigterm_node1(&mut c);
    let line = stop_line(&c, "node1");
    eprintln!(
        "SIGTERM, schedulable node: FRR dropped node1's path after {:?} (session Established then: {}), \
         FRR's session went down after {:?}, the speaker exited after {:?}\n{line}",
        seen.path_gone.map(|p| p.0),
        seen.path_gone.is_some_and(|p| p.1),
        seen.session_down,
        seen.exited
    );
    let (gone, established) = seen.path_gone.unwrap();
    assert!(
        established,
        "FRR's session to node1 was already down when its path went: no withdrawal first\n{}",
        c.logs()
    );
    assert!(
        seen.session_down.unwrap() > gone,
        "the session closed before the path was withdrawn"
    );
    assert!(line.contains("going=Restart"), "{line}");
    assert!(line.contains("WithdrawThenCease { delay: 3s }"), "{line}");
    let n = neighbor(&c, &node_ip(1));
    let reason = n["lastNotificationReason"].as_str().unwrap_or_default();
    assert!(reason.contains("Cease"), "{reason:?}: {n}");

    // Back, then cordoned: the cordon withdraws node1's path (the sessions stay).
    c.start_speaker_with(0, &["--drain-delay-seconds", DELAY]);
    c.topo.wait_paths(&format!("{VIP}/32"), &all);
    let mut node = c.api().get("/api/v1/nodes", "", "node1").unwrap();
    node["spec"]["unschedulable"] = json!(true);
    c.api().put(node);
    c.topo.wait_paths(&format!("{VIP}/32"), &node2);
    let ready = wait(CONVERGE, || {
        (neighbor(&c, &node_ip(1))["bgpState"] == "Established").then_some(())
    });
    assert!(ready.is_some(), "the cordon closed node1's session");

    // 2. Going down: a Cease at once.
    let seen = sigterm_node1(&mut c);
    let line = stop_line(&c, "node1");
    eprintln!(
        "SIGTERM, cordoned node: FRR's session went down after {:?}, the speaker exited after {:?}\n{line}",
        seen.session_down, seen.exited
    );
    assert!(
        line.contains("going=Down { routes_withdrawn: true }"),
        "{line}"
    );
    assert!(line.contains("WithdrawThenCease { delay: 0ns }"), "{line}");
    let n = neighbor(&c, &node_ip(1));
    let reason = n["lastNotificationReason"].as_str().unwrap_or_default();
    assert!(reason.contains("Cease"), "{reason:?}: {n}");
    assert_eq!(hops(&c), node2);
}
