//! Issue 9's benchmark with oxlb's own BGP speaker: time from cutting the path (nftables
//! drop in the router namespace, link stays up) to FRR removing the service route from
//! its kernel table, (a) with BFDProfile 100 ms x 3 on both sides (hold time 90 s) and
//! (b) with the BGP hold timer alone (holdTime 3 s, no BFD), alternating in the same run.
//! Prints both medians and their ratio.
//!
//! `cargo bench -p oxlb --bench bfd_detection` runs 7 rounds; under `cargo test
//! --all-targets` (no `--bench` argument) one quick round.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/bfd_lab/mod.rs"]
mod bfd_lab;

use std::time::Duration;

use bfd_lab::{Detection, Lab};

fn main() {
    if !oxlb_netlab::netns_tests_enabled("bfd_detection").unwrap() {
        return;
    }
    let rounds = if std::env::args().any(|a| a == "--bench") {
        7
    } else {
        1
    };
    let bfd = Lab::new(Detection::Bfd { hold_s: 90 });
    let hold = Lab::new(Detection::HoldTimer { hold_s: 3 });
    let mut with_bfd = Vec::new();
    let mut with_hold = Vec::new();
    for round in 1..=rounds {
        let b = trial(&bfd);
        let h = trial(&hold);
        println!(
            "round {round}: BFD 100 ms x 3: {:.3} s, hold timer 3 s: {:.3} s",
            b.as_secs_f64(),
            h.as_secs_f64()
        );
        with_bfd.push(b);
        with_hold.push(h);
    }
    let b = median(&mut with_bfd);
    let h = median(&mut with_hold);
    println!(
        "bfd_detection ({rounds} rounds, median): cut -> FRR removes the route: \
         BFD 100 ms x 3 {:.3} s, hold timer 3 s {:.3} s; hold/BFD ratio {:.1}x",
        b.as_secs_f64(),
        h.as_secs_f64(),
        h.as_secs_f64() / b.as_secs_f64()
    );
}

/// One cut: waits for the route, cuts, times the route's removal, restores.
fn trial(lab: &Lab) -> Duration {
    lab.wait_route(true);
    // Let the sessions settle (BFD at its final rates, BGP past its first exchanges).
    std::thread::sleep(Duration::from_secs(2));
    lab.cut();
    let took = lab.wait_route(false);
    lab.restore();
    took
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
