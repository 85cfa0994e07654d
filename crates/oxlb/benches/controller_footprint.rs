//! The Kubernetes controller's footprint at scale (issue 22: "controller at 100,000
//! Services: cold start ≤ 2 s in process, RSS ≤ 200 MB"): the real `oxlb controller`
//! process against the in-memory API server over HTTP (tests/cluster), with
//! `OXLB_BENCH_SERVICES` LoadBalancer Services (default 100,000) in one namespace and
//! one IPAddressPool large enough for all of them.
//!
//! Printed, from the same run: the controller's RSS idle (the same cluster, no Service,
//! 10 s after start); the time from its start to every Service carrying an address, and
//! its RSS and peak 20 s later; then, restarted (a new process: the cold start of the
//! issue, every address re-claimed from the Services' status), the time to its first
//! reconcile and its RSS and peak 20 s later, with the writes it sent (none expected:
//! nothing moves). RSS against the 200 MB target.
//! Run: `cargo bench -p oxlb --bench controller_footprint` (root).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};

/// Room for 262,144 addresses.
const POOL: &str = "10.128.0.0/14";
const SETTLE: Duration = Duration::from_secs(20);
/// The target for the controller with 100,000 Services.
const TARGET_MIB: f64 = 200.0 * 1e6 / (1024.0 * 1024.0);

/// `OXLB_BENCH_SERVICES`, else 100,000 under `cargo bench` and 2,000 under `cargo test
/// --all-targets` (no `--bench` argument: a debug build, where the suite only checks
/// that the bench still runs).
fn services_count() -> usize {
    let default = if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        2_000
    };
    std::env::var("OXLB_BENCH_SERVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Status writes to Services logged by the API server since `from`.
fn service_status_writes(c: &cluster::Cluster, from: usize) -> usize {
    c.api().log()[from..]
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/services/"))
        .count()
}

fn controller_pid(c: &mut cluster::Cluster) -> u32 {
    c.controller("c1").as_ref().unwrap().id()
}

fn main() {
    if !netns_tests_enabled("bench controller_footprint").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let count = services_count();
    let scratch = Scratch::new("ctlfp-cfg");
    let crs = metallb_yaml(POOL);
    let file = scratch.0.join("metallb.yaml");
    std::fs::write(&file, &crs).unwrap();
    let frr_conf = frr_router_config(&file, 1);
    let mut c = cluster::Cluster::build(1, &frr_conf, &["bgpd"]);
    c.seed_cluster();
    c.apply_yaml(&crs);
    c.start_controller("c1", 0);
    let pid = controller_pid(&mut c);
    std::thread::sleep(Duration::from_secs(10));
    let (idle_rss, _) = memory_kib(pid);
    c.controller("c1").take();

    for i in 0..count {
        c.api().put(cluster::service(&format!("svc{i}"), None));
    }
    let from = c.api().log().len();
    let started = Instant::now();
    c.start_controller("c1", 0);
    let pid = controller_pid(&mut c);
    let all = wait_until(Duration::from_secs(900), Duration::from_secs(1), || {
        (service_status_writes(&c, from) >= count).then_some(())
    });
    assert!(all.is_some(), "not every Service written\n{}", c.logs());
    let assigned_after = started.elapsed();
    std::thread::sleep(SETTLE);
    let (rss, peak) = memory_kib(pid);
    let ips = c.service_ips();
    assert_eq!(ips.len(), count, "every Service holds an address");

    // The cold start: a new controller process over the same Services.
    c.controller("c1").take();
    let from = c.api().log().len();
    let restarted = Instant::now();
    c.start_controller("c1", 0);
    let pid = controller_pid(&mut c);
    let log = c.log_path("c1-restarted");
    let reconciled = wait_until(Duration::from_secs(300), Duration::from_millis(50), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("every cache synced").then_some(())
    });
    assert!(reconciled.is_some(), "{}", c.logs());
    let synced_after = restarted.elapsed();
    std::thread::sleep(SETTLE);
    let (restart_rss, restart_peak) = memory_kib(pid);
    let writes = service_status_writes(&c, from);
    assert_eq!(c.service_ips(), ips, "a restart moves nothing");

    println!("controller_footprint: oxlb controller, {count} LoadBalancer Services, pool {POOL}");
    println!("| controller | RSS | peak |");
    println!("|---|---|---|");
    println!("| 0 Services | {:.1} MiB | |", mib(idle_rss));
    println!(
        "| {count} Services, every one assigned ({:.1} s after start) | {:.1} MiB | {:.1} MiB |",
        assigned_after.as_secs_f64(),
        mib(rss),
        mib(peak)
    );
    println!(
        "| {count} Services, restarted (caches synced {:.2} s after start; {writes} Service writes) | {:.1} MiB | {:.1} MiB |",
        synced_after.as_secs_f64(),
        mib(restart_rss),
        mib(restart_peak)
    );
    println!(
        "controller_footprint ratio: peak / target (200 MB = {TARGET_MIB:.1} MiB): first start {:.2}, restart {:.2}; RSS / idle {:.2}; load average {}",
        mib(peak) / TARGET_MIB,
        mib(restart_peak) / TARGET_MIB,
        rss as f64 / idle_rss as f64,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
