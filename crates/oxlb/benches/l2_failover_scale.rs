//! Layer 2 fail-over at scale (issue 22): three `oxlb run` nodes on a LAN bridge share
//! the Layer 2 IPs of N Services; the node owning the most is killed (SIGKILL, as when
//! a node dies), and tcpdump on the bridge records the gratuitous ARPs of the new
//! owners. Printed: the time from the kill to the first gratuitous ARP of the last of
//! the dead node's IPs, for 3 Services and for 10,000, as a ratio (same machine, same
//! run). Run: `cargo bench -p oxlb --bench l2_failover_scale` (root; a few minutes).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

const MANY: usize = 10_000;

fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn files(topo: &Topo, services: usize) -> String {
    let mut yaml = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: lan\n  \
         namespace: metallb-system\nspec:\n  addresses:\n    - 10.76.0.0/18\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: lan\n  \
         namespace: metallb-system\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  \
         name: memberlist\n  namespace: metallb-system\nstringData:\n  \
         secretkey: l2s-bench-key-not-secret\n{}",
        topo.node_objects_yaml()
    );
    for n in 0..services {
        write!(
            yaml,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{n}\n  namespace: default\n\
             spec:\n  type: LoadBalancer\n  ports:\n    - port: 80\n      protocol: TCP\n"
        )
        .unwrap();
    }
    yaml
}

/// Node index → the Layer 2 IPs it says it answers for.
fn owned(topo: &Topo) -> BTreeMap<usize, BTreeSet<String>> {
    (0..topo.nodes.len())
        .filter(|i| topo.nodes[*i].run.is_some())
        .map(|i| {
            let ips = topo
                .status(i)
                .and_then(|s| s["l2"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["ip"].as_str().map(str::to_string))
                .collect();
            (i, ips)
        })
        .collect()
}

/// IP → when a gratuitous ARP for it was first seen after `after`, from a MAC other
/// than `dead_mac` (`tcpdump -nn -e -tt arp` lines).
fn first_gratuitous(capture: &str, after: f64, dead_mac: &str) -> BTreeMap<String, f64> {
    let mut first = BTreeMap::new();
    for line in capture.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(at), Some(mac)) = (words.first(), words.get(1)) else {
            continue;
        };
        let Ok(at) = at.parse::<f64>() else {
            continue;
        };
        if at < after || mac.eq_ignore_ascii_case(dead_mac) {
            continue;
        }
        // "Request who-has X tell X" or "Reply X is-at M": sender = target.
        let ip = match words.iter().position(|w| *w == "who-has") {
            Some(k)
                if words.get(k + 2) == Some(&"tell")
                    && words.get(k + 1)
                        == words.get(k + 3).map(|w| w.trim_end_matches(',')).as_ref() =>
            {
                words.get(k + 1).map(|w| w.to_string())
            }
            _ => words
                .iter()
                .position(|w| *w == "Reply")
                .and_then(|k| words.get(k + 1).map(|w| w.to_string())),
        };
        if let Some(ip) = ip {
            first.entry(ip).or_insert(at);
        }
    }
    first
}

/// Builds the LAN with `services` Layer 2 Services, kills the busiest owner and returns
/// (its IP count, ms from the kill to the first gratuitous ARP of its last IP).
fn failover(services: usize) -> (usize, f64) {
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build(3, false);
    topo.write_config("metallb.yaml", &files(&topo, services));
    for i in 0..3 {
        topo.start_run(i);
    }
    let all = wait_until(Duration::from_secs(300), Duration::from_millis(500), || {
        let owned = owned(&topo);
        let total: usize = owned.values().map(BTreeSet::len).sum();
        let distinct: BTreeSet<&String> = owned.values().flatten().collect();
        (total == services && distinct.len() == services).then_some(owned)
    })
    .unwrap_or_else(|| panic!("not every IP owned once\n{}", topo.logs()));
    let (&victim, dead_ips) = all.iter().max_by_key(|(_, ips)| ips.len()).unwrap();
    let dead_mac = topo.nodes[victim]
        .ns
        .exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_string();
    let log = topo.dir.0.join("arp.log");
    let capture = topo
        .lan
        .spawn(
            &[
                "tcpdump", "-i", "br0", "-nn", "-e", "-tt", "-l", "-B", "16384", "arp",
            ],
            Some(&log),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = epoch();
    topo.nodes[victim]
        .run
        .as_ref()
        .unwrap()
        .signal("KILL")
        .unwrap();
    let last = wait_until(Duration::from_secs(120), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let first = first_gratuitous(&text, killed_at, &dead_mac);
        dead_ips
            .iter()
            .map(|ip| first.get(ip).copied())
            .collect::<Option<Vec<f64>>>()
            .map(|times| times.into_iter().fold(0.0, f64::max))
    })
    .unwrap_or_else(|| {
        panic!(
            "not every IP of node{} announced by another\n{}",
            victim + 1,
            topo.logs()
        )
    });
    drop(capture);
    (dead_ips.len(), (last - killed_at) * 1000.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "l2_failover_scale: run with `cargo bench -p oxlb --bench l2_failover_scale` (root)"
        );
        return;
    }
    if !netns_tests_enabled("bench l2_failover_scale").unwrap() {
        return;
    }
    let (few_moved, few_ms) = failover(3);
    let (many_moved, many_ms) = failover(MANY);
    println!(
        "Layer 2 fail-over, SIGKILL of the busiest of 3 nodes -> the first gratuitous ARP of \
         its last IP from a new owner: 3 Services ({few_moved} moved) {few_ms:.0} ms, {MANY} \
         Services ({many_moved} moved) {many_ms:.0} ms: ratio {:.2}",
        many_ms / few_ms
    );
}
