//! No split brain with the real `oxlb speaker` binaries (issue 14, item 2, "the same
//! with `oxlb speaker` processes against the fake API server"): the rehearsal cluster of
//! tests/cluster (one speaker per node namespace, an `oxlb controller`, the fake API
//! server on the LAN), the node namespaces at the kernel's defaults, a Layer 2 pool with
//! an L2Advertisement, one LoadBalancer Service with a ready endpoint on every node, and
//! MetalLB's memberlist Secret.
//!
//! The router asks with arping who answers for the Service IP. The owner's gossip is
//! cut by iptables in its namespace (UDP and TCP to and from the other nodes' addresses
//! dropped; ARP is not IP and still flows; the API server and the router stay
//! reachable): the owner, alone, loses its quorum and lets go, the two others elect a
//! new owner. Never two answerers, exactly one within 6 s, the same one for 10 s. After
//! the heal the old owner wins the same election again (same electorate): never two,
//! then the same one for 10 s.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod cluster;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::*;
use common::CONVERGE;
use serde_json::{Value, json};

const NODES: usize = 3;
/// The Layer 2 pool: on the LAN, inside the 10.77.0.192/27 every node treats as local
/// (kube-proxy's part in tests/cluster).
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
/// Issue 14: exactly one answerer within 6 s of the cut.
const ONE_WITHIN: Duration = Duration::from_secs(6);
/// Issue 14: and it stays the only one for 10 s.
const STABLE: Duration = Duration::from_secs(10);

/// A router that only routes: no BGP in this test (no BGPPeer), zebra for the links.
const FRR_CONF: &str = "frr defaults traditional\nhostname router\n";

fn memberlist_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "memberlist", "namespace": NS},
        "data": {"secretkey": "a3BhcnQtcGFydGl0aW9uLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY="},
    })
}

/// Drops (`-A`) or stops dropping (`-D`) UDP and TCP between node `i` and the other
/// nodes, both ways, in node `i`'s namespace: the memberlist gossip (UDP and TCP 7946)
/// and nothing else it needs (the API server and the router have other addresses).
fn gossip_cut(c: &Cluster, i: usize, action: &str) {
    for (other, node) in c.topo.nodes.iter().enumerate() {
        if other == i {
            continue;
        }
        for proto in ["udp", "tcp"] {
            for (chain, dir) in [("OUTPUT", "-d"), ("INPUT", "-s")] {
                let out = c.topo.nodes[i]
                    .ns
                    .exec(&[
                        "iptables", action, chain, dir, &node.ip, "-p", proto, "-j", "DROP",
                    ])
                    .unwrap();
                assert!(out.status.success(), "iptables: {out:?}");
            }
        }
    }
}

/// The distinct MACs answering one ARP request for `ip`, from the router (Habets'
/// arping: `-c 1` sends one request, `-w 1` collects every reply for a second). One
/// request per sample: a sample never spans two owners one after the other, so two
/// MACs are two answerers at the same time. (tests/cluster's `arping` sends two.)
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

/// Samples answerers from the router until exactly `want` (any single MAC when `None`)
/// answers alone; fails on two answerers, or when `limit` passes. Returns the MAC.
fn one_answerer(
    c: &Cluster,
    ip: &str,
    want: impl Fn(&str) -> bool,
    limit: Duration,
    what: &str,
) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let macs = answerers(c, ip);
        assert!(
            macs.len() <= 1,
            "{what}: two answerers {macs:?} after {:?}\n{}",
            start.elapsed(),
            c.logs()
        );
        if let [mac] = macs.as_slice()
            && want(mac)
        {
            return (mac.clone(), start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "{what}: no single new answerer within {limit:?} (last answers {macs:?})\n{}",
            c.logs()
        );
    }
}

/// Samples for [`STABLE`]: every sample shows exactly `mac`. Returns the sample count.
fn stays(c: &Cluster, ip: &str, mac: &str, what: &str) -> usize {
    let start = Instant::now();
    let mut samples = 0;
    while start.elapsed() < STABLE {
        let macs = answerers(c, ip);
        assert_eq!(
            macs,
            [mac.to_string()],
            "{what}: after {:?} of {STABLE:?}\n{}",
            start.elapsed(),
            c.logs()
        );
        samples += 1;
    }
    samples
}

#[test]
fn speakers_keep_one_answerer_under_a_partial_partition() {
    if !oxlb_netlab::netns_tests_enabled("speakers_keep_one_answerer_under_a_partial_partition")
        .unwrap()
    {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut c = Cluster::build(NODES, FRR_CONF, &["zebra"]);
    c.seed_cluster();
    c.apply_yaml(CRS);
    c.api().put(memberlist_secret());
    c.api().put(service("l2web", None));
    c.api().put(endpoint_slice("l2web", NODES));
    c.start_controller("oxlb-controller-kpt", 0);
    for i in 0..NODES {
        c.start_speaker(i);
    }
    let ip = wait(CONVERGE, || {
        oxlb_fakeapi::ingress(c.api(), "default", "l2web")
            .first()
            .cloned()
    })
    .unwrap_or_else(|| panic!("l2web never got an IP\n{}", c.logs()));
    let node_of: BTreeMap<String, usize> = c
        .topo
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (mac_of(&n.ns, "lan0"), i))
        .collect();
    // Kernel defaults in every node namespace (the speaker raises what it needs on the
    // interface it serves, lan0, by itself).
    for node in &c.topo.nodes {
        for key in ["arp_ignore", "arp_announce"] {
            let value = node
                .ns
                .exec_stdout(&["cat", &format!("/proc/sys/net/ipv4/conf/all/{key}")])
                .unwrap();
            assert_eq!(value.trim(), "0", "{} all/{key}", node.name);
        }
    }

    // The owner: the only node answering ARP, a few samples in a row.
    let owner_mac = wait(CONVERGE, || {
        let first = answerers(&c, &ip);
        let [mac] = first.as_slice() else {
            return None;
        };
        (0..3)
            .all(|_| answerers(&c, &ip) == first)
            .then(|| mac.clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "no single ARP answerer for {ip}: {:?}\n{}",
            answerers(&c, &ip),
            c.logs()
        )
    });
    let owner = *node_of
        .get(&owner_mac)
        .unwrap_or_else(|| panic!("{owner_mac} is no node's"));
    eprintln!("owner: {} ({owner_mac})", c.topo.nodes[owner].name);

    // The partition: the owner keeps the LAN (ARP) and the API server, loses the gossip.
    gossip_cut(&c, owner, "-A");
    let (during, took) = one_answerer(&c, &ip, |mac| mac != owner_mac, ONE_WITHIN, "partitioned");
    eprintln!(
        "partition: {} answers alone {took:?} after the cut",
        c.topo.nodes[node_of[&during]].name
    );
    let samples = stays(&c, &ip, &during, "partitioned");
    eprintln!("partition: one answerer in {samples} samples over {STABLE:?}");
    let cut_off =
        std::fs::read_to_string(c.log_path(&format!("{}-speaker", c.topo.nodes[owner].name)))
            .unwrap();
    assert!(
        cut_off.contains("layer2 quorum lost"),
        "the cut-off speaker says why it let go:\n{cut_off}"
    );

    // The heal: the membership merges; the old owner wins the same election again once
    // it has settled, the interim owner lets go first. Never two.
    gossip_cut(&c, owner, "-D");
    let (after, took) = one_answerer(&c, &ip, |mac| mac == owner_mac, CONVERGE, "healing");
    eprintln!(
        "heal: {} answers alone again {took:?} after the heal",
        c.topo.nodes[node_of[&after]].name
    );
    let samples = stays(&c, &ip, &after, "healed");
    eprintln!("heal: one answerer in {samples} samples over {STABLE:?}");
    let errors = unexpected_errors(c.api());
    assert!(errors.is_empty(), "requests the fake refused: {errors:#?}");
}
