//! How fast `oxlb run` gets a route into a real router, as a ratio against BIRD doing the
//! same job in the same run, to the same FRR, on the same LAN:
//!
//! - start: process start → the prefix in FRR (oxlb: `oxlb run` with a fresh state dir
//!   and one Service; BIRD: `bird` with one static route exported by BGP);
//! - edit: file edit → FRR has the new prefix and not the old one (oxlb: the Service's
//!   `metallb.io/loadBalancerIPs` rewritten, picked up by the file watch; BIRD: bird.conf
//!   rewritten and `birdc configure`).
//!
//! Both are probed the same way (FRR's JSON, every 10 ms), per next hop. Median of 10
//! under `cargo bench`; one trial otherwise (`cargo test --all-targets` runs this too).
//! FRR is passive toward both, so neither waits on the router. BIRD's `connect delay
//! time` is set to 1 s (default 5 s): its start figure is dominated by that delay, so
//! the start ratio says "oxlb connects at once", not "oxlb's code is 20x faster". The
//! edit is a rename into place (what editors and `kubectl`-style tools do), after which
//! the file watch waits only its short settled period (15 ms) before reloading; BIRD's
//! figure includes running `birdc`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{Bird, netns_tests_enabled, wait_until};

const P1: &str = "10.79.0.10";
const P2: &str = "10.79.0.11";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let trials = if full { 10 } else { 1 };
    if !netns_tests_enabled("bench run_convergence").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let mut topo = Topo::build(1, true);
    let node = node_ip(1);

    // oxlb: start.
    topo.write_config("metallb.yaml", &metallb_yaml("10.79.0.0/24"));
    let mut oxlb_start = Vec::new();
    for _ in 0..trials {
        let _ = std::fs::remove_dir_all(&topo.nodes[0].state_dir);
        topo.write_config("services.yaml", &services_yaml(&[("svc", Some(P1))]));
        let t0 = Instant::now();
        topo.start_run(0);
        until(&topo, P1, &node, true);
        oxlb_start.push(t0.elapsed());
        assert!(topo.stop_run(0));
        until(&topo, P1, &node, false);
    }
    // oxlb: edit (one long-running instance, the IP moved back and forth).
    topo.start_run(0);
    until(&topo, P1, &node, true);
    let mut oxlb_edit = Vec::new();
    let (mut from, mut to) = (P1, P2);
    for _ in 0..trials {
        let t0 = Instant::now();
        topo.write_config("services.yaml", &services_yaml(&[("svc", Some(to))]));
        until(&topo, to, &node, true);
        until(&topo, from, &node, false);
        oxlb_edit.push(t0.elapsed());
        (from, to) = (to, from);
    }
    assert!(topo.stop_run(0));
    until(&topo, from, &node, false);

    // BIRD: start and edit, the same prefixes, from its own namespace.
    let bird_ns = topo.bird_ns.as_ref().unwrap();
    let mut bird_start = Vec::new();
    for _ in 0..trials {
        let t0 = Instant::now();
        let bird = Bird::start(bird_ns, &bird_config(P1)).unwrap();
        until(&topo, P1, BIRD_LAN, true);
        bird_start.push(t0.elapsed());
        drop(bird);
        until(&topo, P1, BIRD_LAN, false);
    }
    let bird = Bird::start(bird_ns, &bird_config(P1)).unwrap();
    until(&topo, P1, BIRD_LAN, true);
    let conf = std::env::temp_dir()
        .join(format!("oxlb-bird-{}", bird_ns.name()))
        .join("bird.conf");
    let mut bird_edit = Vec::new();
    let (mut from, mut to) = (P1, P2);
    for _ in 0..trials {
        let t0 = Instant::now();
        std::fs::write(&conf, bird_config(to)).unwrap();
        let reply = bird.birdc("configure").unwrap();
        assert!(reply.contains("Reconfigured"), "birdc configure: {reply}");
        until(&topo, to, BIRD_LAN, true);
        until(&topo, from, BIRD_LAN, false);
        bird_edit.push(t0.elapsed());
        (from, to) = (to, from);
    }
    drop(bird);

    let report = |what: &str, oxlb: Vec<Duration>, bird: Vec<Duration>| {
        let (o, b) = (median(oxlb), median(bird));
        println!(
            "run_convergence {what}: oxlb {:.1} ms, BIRD {:.1} ms, ratio oxlb/BIRD {:.2} \
             (median of {trials})",
            o.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            o.as_secs_f64() / b.as_secs_f64()
        );
    };
    report("start → route in FRR", oxlb_start, bird_start);
    report("file edit → route moved in FRR", oxlb_edit, bird_edit);
}

/// Waits until FRR has (`present`) or lacks a path to `ip`/32 via `hop`.
fn until(topo: &Topo, ip: &str, hop: &str, present: bool) {
    let prefix = format!("{ip}/32");
    let done = wait_until(CONVERGE, Duration::from_millis(10), || {
        (topo.paths(&prefix).contains_key(hop) == present).then_some(())
    });
    assert!(
        done.is_some(),
        "FRR never {} {prefix} via {hop}\n{}",
        if present { "learned" } else { "withdrew" },
        topo.logs()
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bird_config(ip: &str) -> String {
    format!(
        "router id {BIRD_LAN};\nprotocol device {{}}\n\
         protocol static st {{\n ipv4;\n route {ip}/32 blackhole;\n}}\n\
         protocol bgp up {{\n local {BIRD_LAN} as 64500;\n neighbor {ROUTER_LAN} as 64501;\n \
         connect delay time 1;\n ipv4 {{ import none; export all; }};\n}}\n"
    )
}
