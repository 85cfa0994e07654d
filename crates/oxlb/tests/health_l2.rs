//! Health-checked Layer 2: three nodes on a LAN bridge run `oxlb run` (membership on,
//! kernel defaults) and a small HTTP server each; a Service's check is
//! `http://127.0.0.1:80/healthz`. Killing the owner's server (its oxlb keeps running)
//! moves ownership: exactly one node answers ARP (checked with arping from a LAN
//! client), and it is a node whose check passes; restarting the server brings the
//! node back into the election; every server killed, nobody answers and every node
//! says the check fails everywhere (the rule). The take-over time is printed.
//!
//! Needs root and arping (`OXLB_SKIP_NETNS=1` skips).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{Netns, netns_tests_enabled, wait_until};

const VIP: &str = "10.77.0.200";

#[test]
fn a_failing_check_moves_layer2_ownership_to_a_healthy_node() {
    if !netns_tests_enabled("health_l2").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build_dual(3);
    topo.write_config("metallb.yaml", &l2_yaml(&topo));
    for i in 0..3 {
        topo.start_backend(i);
        topo.start_run(i);
    }
    let client = topo.client.take().expect("a LAN client");
    let macs: Vec<String> = topo.nodes.iter().map(|n| lan_mac(&n.ns)).collect();

    let owner = wait_owner(&topo, None);
    wait_answerer(&topo, &client, &macs, owner);
    assert_eq!(check_state(&topo, owner), "up");

    // The owner's server dies; its oxlb keeps running and tells the others.
    let killed = Instant::now();
    topo.nodes[owner].backend = None;
    let new_owner = wait_owner(&topo, Some(owner));
    let elected = killed.elapsed();
    wait_answerer(&topo, &client, &macs, new_owner);
    println!(
        "health check (Layer 2): {} took over {elected:?} after {}'s server was killed \
         (status poll), and is the only ARP answerer {:?} after the kill",
        topo.nodes[new_owner].name,
        topo.nodes[owner].name,
        killed.elapsed()
    );
    assert_eq!(
        check_state(&topo, new_owner),
        "up",
        "the answerer is healthy"
    );
    assert_eq!(check_state(&topo, owner), "down");
    let reasons = not_announced(&topo, owner);
    assert!(reasons.contains("health_check_failing"), "{reasons}");
    // Sample: only the healthy owner answers.
    let mut seen = BTreeSet::new();
    for _ in 0..5 {
        seen.extend(arp_answers(&client, VIP));
    }
    assert_eq!(seen, BTreeSet::from([macs[new_owner].clone()]));

    // The server is back: the node stands in the election again (and, as the lowest
    // hash, takes its IP back).
    topo.start_backend(owner);
    let back = wait_until(CONVERGE, Duration::from_millis(100), || {
        (check_state(&topo, owner) == "up").then_some(())
    });
    assert!(back.is_some(), "{}", topo.logs());
    let final_owner = wait_owner(&topo, None);
    assert_eq!(
        final_owner, owner,
        "the election's own choice once all pass"
    );
    wait_answerer(&topo, &client, &macs, final_owner);

    // Every server dies: the rule is to withdraw everywhere, and every node says so.
    for node in &mut topo.nodes {
        node.backend = None;
    }
    let everywhere = wait_until(CONVERGE, Duration::from_millis(100), || {
        (0..3)
            .all(|i| {
                topo.status(i).is_some_and(|s| {
                    s["health_checks"][0]["failing_everywhere"] == true
                        && s["l2"].as_array().is_some_and(|l2| l2.is_empty())
                })
            })
            .then_some(())
    });
    assert!(everywhere.is_some(), "{}", topo.logs());
    assert!(arp_answers(&client, VIP).is_empty(), "nobody answers");
    let explain = topo
        .oxlb(0, &["explain", "default/api", "--addr", LISTEN])
        .unwrap();
    assert!(explain.contains("on every live speaker"), "{explain}");
}

fn check_state(topo: &Topo, i: usize) -> String {
    topo.status(i)
        .and_then(|s| {
            s["health_checks"]
                .as_array()?
                .iter()
                .find(|h| h["service"] == "default/api")
                .and_then(|h| h["state"].as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

fn not_announced(topo: &Topo, i: usize) -> String {
    topo.status(i)
        .map(|s| {
            s["services"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|svc| svc["service"] == "default/api")
                .map(|svc| svc["not_announced"].to_string())
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Waits until exactly one node (not `except`) says it answers for [`VIP`].
fn wait_owner(topo: &Topo, except: Option<usize>) -> usize {
    let owners = || -> Vec<usize> {
        (0..topo.nodes.len())
            .filter(|i| {
                topo.status(*i).is_some_and(|s| {
                    s["l2"]
                        .as_array()
                        .is_some_and(|l2| l2.iter().any(|e| e["ip"] == VIP))
                })
            })
            .collect()
    };
    wait_until(CONVERGE, Duration::from_millis(50), || {
        let found = owners();
        (found.len() == 1 && Some(found[0]) != except).then(|| found[0])
    })
    .unwrap_or_else(|| panic!("Layer 2 owners: {:?}\n{}", owners(), topo.logs()))
}

fn wait_answerer(topo: &Topo, client: &Netns, macs: &[String], owner: usize) {
    let want = BTreeSet::from([macs[owner].clone()]);
    let ok = wait_until(CONVERGE, Duration::from_millis(100), || {
        (arp_answers(client, VIP) == want).then_some(())
    });
    assert!(
        ok.is_some(),
        "ARP answerers {:?}, want {want:?}\n{}",
        arp_answers(client, VIP),
        topo.logs()
    );
}

fn lan_mac(ns: &Netns) -> String {
    ns.exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_lowercase()
}

/// Sender MACs of the replies to three ARP requests 100 ms apart (Habets' arping).
fn arp_answers(ns: &Netns, ip: &str) -> BTreeSet<String> {
    let out = ns
        .command("arping")
        .args(["-i", "lan0", "-c", "3", "-W", "0.1", "-w", "1", ip])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "from")?;
            words.get(at + 1).map(|m| m.to_lowercase())
        })
        .collect()
}

fn l2_yaml(topo: &Topo) -> String {
    let nodes = topo.node_objects_yaml();
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lan
  namespace: metallb-system
spec:
  addresses:
    - {VIP}/32
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: lan
  namespace: metallb-system
---
apiVersion: v1
kind: Secret
metadata:
  name: memberlist
  namespace: metallb-system
stringData:
  secretkey: hc-health-l2-test-key-not-secret
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: default
  annotations:
    oxlb.io/health-check: http://127.0.0.1:80/healthz
spec:
  type: LoadBalancer
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
{nodes}"
    )
}
