//! Failure detection: BFD (profile 100 ms x 3) against the BGP hold timer alone
//! (holdTime 3 s), measured on the same cut in the same run.
//!
//! Lab: namespace `router` runs FRR (zebra, bgpd, bfdd); namespace `node` runs
//! oxlb-bfd-probe (a BFD session to the router) and a plain FRR bgpd that announces
//! 192.0.2.0/24 to the router with holdTime 3 s / keepalive 1 s and no BFD. One
//! nftables rule in the router namespace drops everything in both directions (the link
//! stays up, so nothing is learned from interface events). From that instant we time:
//! - oxlb: the probe printing `state Down` (its own wall-clock stamp),
//! - FRR bfdd: `show bfd peers json` saying down (polled, ~vtysh latency resolution),
//! - hold timer: the router's FRR no longer having 192.0.2.0/24 (polled likewise).
//!
//! Run as root: `cargo bench -p oxlb-bfd --bench detection` (OXLB_BFD_BENCH_ROUNDS=N).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

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

fn has_route(frr: &Frr) -> bool {
    frr.vtysh(&format!("show bgp ipv4 unicast {PREFIX} json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| {
            v.get("paths")
                .and_then(|p| p.as_array())
                .map(|p| !p.is_empty())
        })
        .unwrap_or(false)
}

fn bfd_up(frr: &Frr) -> bool {
    Lab::frr_peer(frr).is_some_and(|p| p["status"] == "up")
}

/// Polls `probe` on its own thread from `start` until it is true; the elapsed time.
fn time_until(
    start: Instant,
    stop: Arc<AtomicBool>,
    probe: impl Fn() -> bool + Send + 'static,
) -> thread::JoinHandle<Option<Duration>> {
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if probe() {
                return Some(start.elapsed());
            }
            thread::sleep(Duration::from_millis(5));
        }
        None
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    if !oxlb_netlab::netns_tests_enabled("bfd detection benchmark").unwrap() {
        return;
    }
    let rounds: usize = std::env::var("OXLB_BFD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lab = Lab::new(false);
    let router_config = format!(
        "frr defaults traditional\n\
         router bgp 64501\n bgp router-id {r}\n no bgp ebgp-requires-policy\n \
         neighbor {n} remote-as 64500\n neighbor {n} timers 1 3\n neighbor {n} timers connect 1\n!\n\
         bfd\n peer {n} local-address {r}\n  receive-interval 100\n  transmit-interval 100\n  \
         detect-multiplier 3\n !\n!\n",
        r = lab.router_ip,
        n = lab.node_ip,
    );
    let node_config = format!(
        "frr defaults traditional\n\
         router bgp 64500\n bgp router-id {n}\n no bgp ebgp-requires-policy\n \
         no bgp network import-check\n neighbor {r} remote-as 64501\n neighbor {r} timers 1 3\n \
         neighbor {r} timers connect 1\n address-family ipv4 unicast\n  network {PREFIX}\n \
         exit-address-family\n!\n",
        r = lab.router_ip,
        n = lab.node_ip,
    );
    let router =
        Arc::new(Frr::start(&lab.router, &router_config, &["zebra", "bgpd", "bfdd"]).unwrap());
    let _node_bgp = Frr::start(&lab.node, &node_config, &["bgpd"]).unwrap();
    let log = ProbeLog::new("bench");
    let _probe = lab.start_probe(&log, false, &["--rx", "100", "--tx", "100", "--mult", "3"]);

    let mut oxlb = Vec::new();
    let mut frr_bfd = Vec::new();
    let mut hold = Vec::new();
    for round in 1..=rounds {
        // Converged: our session Up, FRR's view up, the route learned over BGP.
        log.wait_for_count("state Up", round);
        let ready = wait_until(WAIT * 2, Duration::from_millis(100), || {
            (bfd_up(&router) && has_route(&router)).then_some(())
        });
        assert!(ready.is_some(), "round {round}: lab did not converge");
        // Let the hold timer run from a fresh keepalive on average, as in life.
        thread::sleep(Duration::from_millis(1500));

        let downs_before = log.count("state Down");
        let stop = Arc::new(AtomicBool::new(false));
        let cut_epoch = epoch_ms();
        let start = Instant::now();
        lab.cut();
        let r1 = Arc::clone(&router);
        let bfd_thread = time_until(start, Arc::clone(&stop), move || !bfd_up(&r1));
        let r2 = Arc::clone(&router);
        let hold_thread = time_until(start, Arc::clone(&stop), move || !has_route(&r2));
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
            (bfd_thread.is_finished() && hold_thread.is_finished()).then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        assert!(
            waited.is_some(),
            "FRR did not notice the cut within {WAIT:?}"
        );
        let frr_down = bfd_thread.join().unwrap().expect("FRR bfd never down");
        let route_gone = hold_thread.join().unwrap().expect("route never withdrawn");
        let ours =
            Duration::from_millis(u64::try_from(probe_down.saturating_sub(cut_epoch)).unwrap());
        println!(
            "round {round}: oxlb BFD Down after {} ms, FRR bfdd down after {} ms, \
             hold timer removed the route after {} ms",
            ours.as_millis(),
            frr_down.as_millis(),
            route_gone.as_millis()
        );
        oxlb.push(ours);
        frr_bfd.push(frr_down);
        hold.push(route_gone);
        lab.restore();
    }
    let (ours, theirs, held) = (median(oxlb), median(frr_bfd), median(hold));
    println!("--- median over {rounds} cuts (same lab, same cuts) ---");
    println!(
        "oxlb BFD (100 ms x 3) detection:       {:>5} ms",
        ours.as_millis()
    );
    println!(
        "FRR bfdd detection of the same cut:    {:>5} ms (vtysh-polled)",
        theirs.as_millis()
    );
    println!(
        "BGP hold timer alone (holdTime 3 s):   {:>5} ms (FRR<->FRR, route removed, vtysh-polled)",
        held.as_millis()
    );
    println!(
        "ratio oxlb BFD / hold timer: {:.3}  (hold timer is {:.1}x slower)",
        ours.as_secs_f64() / held.as_secs_f64(),
        held.as_secs_f64() / ours.as_secs_f64()
    );
}
