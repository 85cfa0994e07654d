//! The Kubernetes speaker's footprint (issue 22: "the Kubernetes speaker with 10,000
//! Services and 50,000 endpoints in ≤ 50 MB"): the real `oxlb speaker` on one node of
//! the rehearsal cluster (tests/cluster: the in-memory API server over HTTP, FRR as the
//! router), with
//!
//! - 10,000 LoadBalancer Services, their IPs already written by a controller (one /18
//!   pool, one BGPAdvertisement, one BGPPeer; `externalTrafficPolicy: Cluster`, so the
//!   node announces every one);
//! - one EndpointSlice per Service with 5 ready endpoints on 5 nodes (50,000 endpoints;
//!   node1 runs the speaker, the others are Node objects only).
//!
//! Printed, from the same run: the speaker's RSS with the same cluster but no Service
//! (idle, 30 s after start); its RSS and peak 30 s after FRR holds all 10,000 routes,
//! with the ratio against the 50 MB target and against the idle speaker; the
//! time from the objects' arrival to FRR holding every route; the requests the speaker
//! sent to the API server.
//! Run: `cargo bench -p oxlb --bench speaker_footprint` (root; about 3 minutes).
//! The shipped binary: `OXLB_BENCH_BINARY=PATH` (the static build, `scripts/build-static.sh
//! PATH`). Where the memory goes: `OXLB_BENCH_HEAPTRACK=/tmp/spk` runs the speaker under
//! heaptrack instead (the RSS figures are then heaptrack's, not the speaker's) and kills
//! it at the settled point (every status object and event written, then the settle),
//! so `heaptrack_print --print-leaks` lists what was live then.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use oxlb_netlab::{netns_tests_enabled, wait_until};
use serde_json::json;

const SERVICES: usize = 10_000;
const ENDPOINTS_PER_SERVICE: usize = 5;
const POOL: &str = "10.100.0.0/18";
const SETTLE: Duration = Duration::from_secs(30);
/// The target for the speaker with 10,000 Services and 50,000 endpoints.
const TARGET_MIB: f64 = 50.0 * 1e6 / (1024.0 * 1024.0);

fn service_ip(i: usize) -> String {
    format!("10.100.{}.{}", i / 250, i % 250 + 1)
}

/// Prefixes FRR received from node1.
fn received(c: &cluster::Cluster) -> u64 {
    let text = c
        .topo
        .frr
        .vtysh("show bgp ipv4 unicast summary json")
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["peers"][node_ip(1)]["pfxRcd"].as_u64().unwrap_or(0)
}

fn endpoint_slice(i: usize) -> serde_json::Value {
    let name = format!("svc{i}");
    let endpoints: Vec<serde_json::Value> = (0..ENDPOINTS_PER_SERVICE)
        .map(|e| {
            json!({"addresses": [format!("10.244.{e}.{}", i % 250 + 1)],
                "nodeName": format!("node{}", e + 1),
                "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("{name}-{e}")},
                "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-x7k2p"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": name,
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

/// `…/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]` → `RESOURCE[/SUBRESOURCE]`.
fn resource_of(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let start = segments
        .iter()
        .position(|s| *s == "namespaces")
        .map_or(segments.len().saturating_sub(2), |i| i + 2);
    let resource = segments.get(start).copied().unwrap_or(path);
    match segments.get(start + 2) {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    }
}

fn main() {
    if !netns_tests_enabled("bench speaker_footprint").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let scratch = Scratch::new("spkfp-cfg");
    let crs = metallb_yaml(POOL);
    let file = scratch.0.join("metallb.yaml");
    std::fs::write(&file, &crs).unwrap();
    let frr_conf = frr_router_config(&file, 1);
    let mut c = cluster::Cluster::build(1, &frr_conf, &["bgpd"]);
    c.seed_cluster();
    for n in 2..=ENDPOINTS_PER_SERVICE {
        c.api()
            .put(cluster::node_object(&format!("node{n}"), &node_ip(n)));
    }
    c.apply_yaml(&crs);
    let heaptrack = std::env::var("OXLB_BENCH_HEAPTRACK").ok();
    let preload = std::env::var("OXLB_BENCH_PRELOAD").ok();
    let binary = bench_binary();
    match (&heaptrack, &preload) {
        (None, None) if binary == OXLB => c.start_speaker(0),
        _ => {
            let log = std::fs::File::create(c.log_path("node1-speaker")).unwrap();
            let mut command = match &heaptrack {
                Some(output) => {
                    let mut command = c.topo.nodes[0].ns.command("heaptrack");
                    command.args(["-o", output, &binary]);
                    command
                }
                None => c.topo.nodes[0].ns.command(&binary),
            };
            if let Some(library) = &preload {
                command.env("LD_PRELOAD", library);
            }
            command
                .args(["speaker", "--node-name", "node1"])
                .args(["--metrics-address", cluster::SPEAKER_METRICS])
                .env("KUBECONFIG", &c.kubeconfig)
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            c.topo.nodes[0].run = Some(oxlb_netlab::Guarded::new(command.spawn().unwrap()));
        }
    }
    let pid = c.topo.nodes[0].run.as_ref().unwrap().id();
    std::thread::sleep(SETTLE);
    let (idle_rss, _) = memory_kib(pid);

    let requests_before = c.api().log().len();
    let arrived = Instant::now();
    for i in 0..SERVICES {
        let name = format!("svc{i}");
        c.api().put(endpoint_slice(i));
        c.api()
            .put(cluster::service(&name, Some((&service_ip(i), "e2e-bgp"))));
    }
    let all = wait_until(Duration::from_secs(600), Duration::from_millis(200), || {
        (received(&c) == SERVICES as u64).then_some(())
    });
    assert!(
        all.is_some(),
        "FRR holds {} of {SERVICES} routes\n{}",
        received(&c),
        c.logs()
    );
    let converged = arrived.elapsed();
    std::thread::sleep(SETTLE);
    let (rss, peak) = memory_kib(pid);
    let mappings = rss_by_mapping(pid);
    // The status objects and nodeAssigned events go out under the speaker's write
    // budget (100 per second for a cluster of one speaker: about 5 minutes for
    // 30,000): settled is once they are all out. Only under `cargo bench` (under
    // heaptrack too, so its profile is taken at the settled point).
    let settled = std::env::args().any(|a| a == "--bench").then(|| {
        let written = |c: &cluster::Cluster| {
            let log = c.api().log();
            let statuses = log[requests_before..]
                .iter()
                .filter(|r| r.path.ends_with("/status") && r.path.contains("servicebgpstatuses"))
                .count();
            let events = log[requests_before..]
                .iter()
                .filter(|r| r.method == "POST" && r.path.contains("/events"))
                .count();
            statuses >= SERVICES && events >= SERVICES
        };
        let done = wait_until(Duration::from_secs(1200), Duration::from_secs(1), || {
            written(&c).then_some(())
        });
        assert!(done.is_some(), "status objects and events not all written");
        let out = arrived.elapsed();
        std::thread::sleep(SETTLE);
        (memory_kib(pid), rss_by_mapping(pid), out)
    });
    if heaptrack.is_some() {
        // Only this speaker (the exact binary path: other trees may run speakers too);
        // heaptrack's own processes write the profile out.
        let _ = std::process::Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                &format!("^{binary} speaker --node-name node1"),
            ])
            .status();
        std::thread::sleep(Duration::from_secs(20));
    }
    let log = c.api().log();
    let requests = log.len() - requests_before;
    // What the speaker asked for, by method and resource (names left out).
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for r in &log[requests_before..] {
        *kinds
            .entry(format!("{} {}", r.method, resource_of(&r.path)))
            .or_default() += 1;
    }

    println!(
        "speaker_footprint: oxlb speaker, {SERVICES} Services, {} endpoints, 1 BGP peer \
         (RSS {}s after FRR held all {SERVICES} routes)",
        SERVICES * ENDPOINTS_PER_SERVICE,
        SETTLE.as_secs()
    );
    println!("| speaker | RSS | peak |");
    println!("|---|---|---|");
    println!("| oxlb speaker, 0 Services | {:.1} MiB | |", mib(idle_rss));
    println!(
        "| oxlb speaker, {SERVICES} Services | {:.1} MiB | {:.1} MiB |",
        mib(rss),
        mib(peak)
    );
    println!(
        "speaker_footprint ratio: RSS / target (50 MB = {TARGET_MIB:.1} MiB) {:.2}; \
         RSS / idle speaker {:.2}; objects → FRR holds every route {:.0} ms; \
         {requests} API requests from the speaker meanwhile; load average {}",
        mib(rss) / TARGET_MIB,
        rss as f64 / idle_rss as f64,
        converged.as_secs_f64() * 1e3,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for (kind, count) in kinds {
        println!("speaker_footprint requests: {count} × {kind}");
    }
    println!("speaker_footprint RSS by mapping: {mappings}");
    if let Some(((settled_rss, settled_peak), settled_mappings, written)) = settled {
        println!(
            "speaker_footprint settled (every status object and event written, {:.0} s \
             after the objects arrived, then {} s): RSS {:.1} MiB, peak {:.1} MiB; \
             RSS / target {:.2}",
            written.as_secs_f64(),
            SETTLE.as_secs(),
            mib(settled_rss),
            mib(settled_peak),
            mib(settled_rss) / TARGET_MIB
        );
        println!("speaker_footprint settled RSS by mapping: {settled_mappings}");
    }
}
