//! No ghost ARP/NDP answers (issue 14, items 1 and 5), with real processes and real
//! tools: three node namespaces at the kernel's defaults (no ARP sysctl touched by the
//! test) on a LAN bridge, each running the `oxlb run` binary on the same files; a
//! client on the LAN asks with `arping` (IPv4) and `ndisc6` (IPv6).
//!
//! 1. Exactly one MAC answers for the Layer 2 IPs, the owner's; `oxlb run` raised
//!    arp_ignore/arp_announce on the LAN interface by itself and left `all` alone.
//! 2. The owner's `oxlb run` is SIGKILLed: its service IPs stay on its `oxlb0` (a crash
//!    cleans nothing up), another node takes over, and for 5 s of sampling every
//!    answer, ARP and NDP, comes from the new owner's MAC only.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{Netns, netns_tests_enabled, wait_until};

const L2_V4: &str = "10.77.0.200";
const L2_V6: &str = "fd00:77::1:200";
/// How long answers are sampled after the take-over (issue 14: at least 5 s).
const SAMPLE: Duration = Duration::from_secs(6);

#[test]
fn sigkill_of_the_owner_leaves_exactly_one_answerer() {
    if !netns_tests_enabled("sigkill_of_the_owner_leaves_exactly_one_answerer").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build_dual(3);
    topo.write_config("metallb.yaml", &l2_yaml(&topo));
    for i in 0..3 {
        topo.start_run(i);
    }
    let client = topo.client.take().expect("a LAN client");
    let macs: Vec<String> = topo.nodes.iter().map(|n| lan_mac(&n.ns)).collect();

    let owner = wait_owner(&topo, None);
    eprintln!("owner: {}", topo.nodes[owner].name);
    let answered = wait_until(CONVERGE, Duration::from_millis(200), || {
        (arp_answers(&client, L2_V4) == BTreeSet::from([macs[owner].clone()])).then_some(())
    });
    assert!(
        answered.is_some(),
        "ARP: {:?}\n{}",
        arp_answers(&client, L2_V4),
        topo.logs()
    );
    // Kernel defaults in every namespace, and `oxlb run` raised what it needs itself,
    // on the interface it serves only.
    for node in &topo.nodes {
        let read = |path: &str| {
            node.ns
                .exec_stdout(&["cat", path])
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("/proc/sys/net/ipv4/conf/all/arp_ignore"), "0");
        assert_eq!(read("/proc/sys/net/ipv4/conf/all/arp_announce"), "0");
        assert_eq!(
            read("/proc/sys/net/ipv4/conf/lan0/arp_ignore"),
            "1",
            "{}",
            node.name
        );
        assert_eq!(
            read("/proc/sys/net/ipv4/conf/lan0/arp_announce"),
            "2",
            "{}",
            node.name
        );
    }
    let log = std::fs::read_to_string(&topo.nodes[owner].log).unwrap();
    assert!(
        log.contains("set net.ipv4.conf.lan0.arp_ignore=1 (was 0)"),
        "{log}"
    );

    // SIGKILL: nothing of oxlb's own clean-up runs.
    let mut run = topo.nodes[owner].run.take().unwrap();
    run.signal("KILL").unwrap();
    wait_until(CONVERGE, Duration::from_millis(50), || {
        run.child_mut().try_wait().ok().flatten()
    })
    .expect("oxlb run exits on SIGKILL");
    // The service IPs are local routes through oxlb0 (table local), one line each.
    let ns = &topo.nodes[owner].ns;
    let left = [
        [
            "ip", "-4", "route", "show", "table", "local", "dev", "oxlb0",
        ],
        [
            "ip", "-6", "route", "show", "table", "local", "dev", "oxlb0",
        ],
    ]
    .map(|command| ns.exec_stdout(&command).unwrap())
    .concat();
    assert!(
        left.contains(&format!("local {L2_V4} ")) && left.contains(&format!("local {L2_V6} ")),
        "the dead node still holds the service IPs (the crash case): {left}"
    );

    let new_owner = wait_owner(&topo, Some(owner));
    eprintln!("new owner: {}", topo.nodes[new_owner].name);
    let moved = wait_until(CONVERGE, Duration::from_millis(200), || {
        (arp_answers(&client, L2_V4) == BTreeSet::from([macs[new_owner].clone()])).then_some(())
    });
    assert!(
        moved.is_some(),
        "ARP: {:?}\n{}",
        arp_answers(&client, L2_V4),
        topo.logs()
    );

    // Sample both families for SAMPLE: every answer from the new owner only.
    let started = Instant::now();
    let (mut arp_rounds, mut ndp_rounds) = (0, 0);
    let mut seen_arp = BTreeSet::new();
    let mut seen_ndp = BTreeSet::new();
    while started.elapsed() < SAMPLE {
        seen_arp.extend(arp_answers(&client, L2_V4));
        arp_rounds += 1;
        seen_ndp.extend(ndp_answers(&client, L2_V6));
        ndp_rounds += 1;
    }
    eprintln!(
        "sampled {:.1} s: {arp_rounds} arping rounds -> {seen_arp:?}, {ndp_rounds} ndisc6 \
         rounds -> {seen_ndp:?}",
        started.elapsed().as_secs_f64()
    );
    let only_new = BTreeSet::from([macs[new_owner].clone()]);
    assert_eq!(
        seen_arp, only_new,
        "ARP answerers (dead owner {})",
        macs[owner]
    );
    assert_eq!(
        seen_ndp, only_new,
        "NDP answerers (dead owner {})",
        macs[owner]
    );
}

/// Waits until exactly one node (not `dead`) says it announces [`L2_V4`] and
/// [`L2_V6`] by Layer 2; returns it.
fn wait_owner(topo: &Topo, dead: Option<usize>) -> usize {
    let owners = || -> Vec<usize> {
        (0..topo.nodes.len())
            .filter(|i| Some(*i) != dead)
            .filter(|i| {
                topo.status(*i).is_some_and(|s| {
                    let l2 = s["l2"].as_array().cloned().unwrap_or_default();
                    [L2_V4, L2_V6]
                        .iter()
                        .all(|ip| l2.iter().any(|e| e["ip"] == *ip))
                })
            })
            .collect()
    };
    wait_until(CONVERGE, Duration::from_millis(200), || {
        let found = owners();
        (found.len() == 1).then(|| found[0])
    })
    .unwrap_or_else(|| panic!("Layer 2 owners: {:?}\n{}", owners(), topo.logs()))
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
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "arping failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "from")?;
            words.get(at + 1).map(|m| m.to_lowercase())
        })
        .collect()
}

/// Link-layer addresses of every Neighbor Advertisement for `ip` (ndisc6 -m: all of
/// them, not just the first).
fn ndp_answers(ns: &Netns, ip: &str) -> BTreeSet<String> {
    let out = ns
        .command("ndisc6")
        .args(["-m", "-n", "-q", "-r", "2", "-w", "400", ip, "lan0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.len() == 17 && w.matches(':').count() == 5)
        .map(str::to_lowercase)
        .collect()
}

/// A dual-stack Layer 2 pool on the LAN, one RequireDualStack Service, the Nodes (so
/// the speakers find each other) and the memberlist Secret (so they see each other die).
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
    - {L2_V4}/32
    - {L2_V6}/128
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
  secretkey: l2s-ghost-test-key-not-secret
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies:
    - IPv4
    - IPv6
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 80
{nodes}"
    )
}
