//! Failure detection: BFD (profile 100 ms x 3, oxlb as the BFD speaker) against the
//! BGP hold timer alone (holdTime 3 s), measured on the same cut in the same run.
//!
//! Lab: namespace `router` runs FRR (zebra, bgpd, bfdd); namespace `node` runs
//! oxlb-bfd-probe (BFD 10.98.0.2 -> 10.98.0.1) and a plain FRR bgpd announcing
//! 192.0.2.0/24 over two BGP sessions, both holdTime 3 s / keepalive 1 s:
//! - 10.98.0.2 <-> 10.98.0.1 with `neighbor .. bfd profile` on the router, so the
//!   router's bfdd session for that neighbour is the one our probe answers: when our
//!   packets stop, FRR tears this BGP session down and removes its path;
//! - 10.98.0.3 <-> 10.98.0.11 without BFD: only the hold timer notices.
//!
//! One nftables transaction in the router namespace drops everything in both
//! directions (the link stays up, so no interface event helps anyone). From the
//! instant before that transaction we time:
//! - oxlb: the probe printing `state Down` (its own wall-clock stamp);
//! - FRR + BFD: the router no longer having the path from 10.98.0.2 (vtysh-polled);
//! - hold timer: the router no longer having the path from 10.98.0.3 (vtysh-polled).
//!
//! oxlb's own BGP speaker is not wired to BFD yet (the lead does that), so FRR's bgpd
//! stands in for it on the node; the BFD speaker on the node is ours.
//!
//! Run as root: `cargo bench -p oxlb-bfd --bench detection` (OXLB_BFD_BENCH_ROUNDS=N).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Lab, ProbeLog, WAIT};
use oxlb_netlab::{Frr, wait_until};

const PREFIX: &str = "192.0.2.0/24";

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// BGP neighbours the router currently has a path to 192.0.2.0/24 from.
fn paths_from(frr: &Frr) -> BTreeSet<String> {
    frr.vtysh(&format!("show bgp ipv4 unicast {PREFIX} json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v.get("paths").and_then(|p| p.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|path| path["peer"]["peerId"].as_str().map(str::to_string))
        .collect()
}

/// Polls the router's paths on a thread from `start`; when each neighbour's path went.
fn time_path_losses(
    start: Instant,
    stop: Arc<AtomicBool>,
    frr: Arc<Frr>,
    neighbours: [&'static str; 2],
) -> thread::JoinHandle<[Option<Duration>; 2]> {
    thread::spawn(move || {
        let mut gone = [None, None];
        while !stop.load(Ordering::Relaxed) && gone.iter().any(Option::is_none) {
            let paths = paths_from(&frr);
            let now = start.elapsed();
            for (slot, neighbour) in gone.iter_mut().zip(neighbours) {
                if slot.is_none() && !paths.contains(neighbour) {
                    *slot = Some(now);
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        gone
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    // `cargo test --all-targets` runs this binary too; only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("detection benchmark: skipped (run it with `cargo bench -p oxlb-bfd`)");
        return;
    }
    if !oxlb_netlab::netns_tests_enabled("bfd detection benchmark").unwrap() {
        return;
    }
    let rounds: usize = std::env::var("OXLB_BFD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lab = Lab::new(false);
    // Second addresses for the BGP session without BFD.
    lab.router.add_address("r0", "10.98.0.11/24").unwrap();
    lab.node.add_address("n0", "10.98.0.3/24").unwrap();
    let (bfd_neighbour, hold_neighbour) = ("10.98.0.2", "10.98.0.3");
    let neighbour = |addr: &str, source: &str, asn: u32| {
        format!(
            " neighbor {addr} remote-as {asn}\n neighbor {addr} update-source {source}\n \
             neighbor {addr} timers 1 3\n neighbor {addr} timers connect 1\n"
        )
    };
    let router_config = format!(
        "frr defaults traditional\n\
         router bgp 64501\n bgp router-id 10.98.0.1\n no bgp ebgp-requires-policy\n\
         {}{} neighbor {bfd_neighbour} bfd profile fast\n!\n\
         bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  \
         detect-multiplier 3\n !\n!\n",
        neighbour(bfd_neighbour, "10.98.0.1", 64500),
        neighbour(hold_neighbour, "10.98.0.11", 64500),
    );
    let node_config = format!(
        "frr defaults traditional\n\
         router bgp 64500\n bgp router-id 10.98.0.2\n no bgp ebgp-requires-policy\n \
         no bgp network import-check\n{}{} address-family ipv4 unicast\n  network {PREFIX}\n \
         exit-address-family\n!\n",
        neighbour("10.98.0.1", "10.98.0.2", 64501),
        neighbour("10.98.0.11", "10.98.0.3", 64501),
    );
    let router =
        Arc::new(Frr::start(&lab.router, &router_config, &["zebra", "bgpd", "bfdd"]).unwrap());
    let _node_bgp = Frr::start(&lab.node, &node_config, &["bgpd"]).unwrap();
    let log = ProbeLog::new("bench");
    let _probe = lab.start_probe(&log, false, &["--rx", "100", "--tx", "100", "--mult", "3"]);

    let mut oxlb = Vec::new();
    let mut with_bfd = Vec::new();
    let mut hold = Vec::new();
    for round in 1..=rounds {
        // Converged: our session Up, FRR's BFD up, both paths learned.
        log.wait_for_count("state Up", round);
        let ready = wait_until(WAIT * 2, Duration::from_millis(100), || {
            let paths = paths_from(&router);
            let bfd = Lab::frr_peer(&router).is_some_and(|p| p["status"] == "up");
            (bfd && paths.contains(bfd_neighbour) && paths.contains(hold_neighbour)).then_some(())
        });
        assert!(
            ready.is_some(),
            "round {round}: lab did not converge: {:?} {}",
            paths_from(&router),
            router.vtysh("show bfd peers json").unwrap_or_default()
        );
        // Keepalives are every second; start the cut at an arbitrary phase.
        thread::sleep(Duration::from_millis(1500));

        let downs_before = log.count("state Down");
        let stop = Arc::new(AtomicBool::new(false));
        let cut_epoch = epoch_ms();
        let start = Instant::now();
        lab.cut();
        let poller = time_path_losses(
            start,
            Arc::clone(&stop),
            Arc::clone(&router),
            [bfd_neighbour, hold_neighbour],
        );
        let probe_down = wait_until(WAIT, Duration::from_millis(5), || {
            let text = log.text();
            let line = text
                .lines()
                .filter(|l| l.starts_with("state Down"))
                .nth(downs_before)?
                .to_string();
            line.split_whitespace().nth(3)?.parse::<u128>().ok()
        })
        .expect("the probe never went Down");
        let waited = wait_until(WAIT, Duration::from_millis(20), || {
            poller.is_finished().then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        assert!(
            waited.is_some(),
            "FRR did not notice the cut within {WAIT:?}"
        );
        let [bfd_gone, hold_gone] = poller.join().unwrap();
        let bfd_gone = bfd_gone.expect("BFD-protected path never removed");
        let hold_gone = hold_gone.expect("hold-timer path never removed");
        let ours =
            Duration::from_millis(u64::try_from(probe_down.saturating_sub(cut_epoch)).unwrap());
        println!(
            "round {round}: oxlb BFD Down {} ms | FRR removed the BFD-protected path {} ms | \
             hold timer removed the other path {} ms",
            ours.as_millis(),
            bfd_gone.as_millis(),
            hold_gone.as_millis()
        );
        oxlb.push(ours);
        with_bfd.push(bfd_gone);
        hold.push(hold_gone);
        lab.restore();
    }
    let (ours, bfd_route, held) = (median(oxlb), median(with_bfd), median(hold));
    println!("--- medians over {rounds} cuts (same lab, same cuts) ---");
    println!(
        "oxlb BFD (100 ms x 3) declares Down:            {:>5} ms",
        ours.as_millis()
    );
    println!(
        "FRR removes the route, BFD with oxlb (100x3):   {:>5} ms",
        bfd_route.as_millis()
    );
    println!(
        "FRR removes the route, hold timer alone (3 s):  {:>5} ms",
        held.as_millis()
    );
    println!(
        "ratio route removal BFD / hold timer: {:.3} ({:.1}x faster); oxlb Down / hold: {:.3}",
        bfd_route.as_secs_f64() / held.as_secs_f64(),
        held.as_secs_f64() / bfd_route.as_secs_f64(),
        ours.as_secs_f64() / held.as_secs_f64()
    );
}
