//! Benchmark 4 of issue 4: resident memory of the speaker announcing 10,000 /32s to three
//! FRR peers, beside GoBGP carrying the same 10,000 routes to three FRR peers in the same
//! run. GoBGP learns the routes from a feeder (an oxlb probe) because its CLI adds one
//! route per process start; so GoBGP also holds a 10,000-route Adj-RIB-In, said in the
//! output. Run: `cargo bench -p oxlb-bgp --bench rss_vs_gobgp` (root).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Probe, json, peer, scratch, wait};
use oxlb_netlab::{Frr, Netns, veth};
use serde_json::json;

const N: u64 = 10_000;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn all_received(frr: &Frr, neighbors: &[&str]) -> Option<()> {
    let out = json(&frr.vtysh("show bgp ipv4 unicast summary json").ok()?)?;
    neighbors
        .iter()
        .all(|n| out["peers"][*n]["pfxRcd"].as_u64() == Some(N))
        .then_some(())
}

fn main() {
    // `cargo test --all-targets` runs harness=false benches too; only `cargo bench`
    // (which passes --bench) starts the daemons.
    if !std::env::args().any(|a| a == "--bench") {
        println!("rss_vs_gobgp: run with `cargo bench -p oxlb-bgp --bench rss_vs_gobgp`");
        return;
    }
    if !oxlb_netlab::netns_tests_enabled("bench rss_vs_gobgp").unwrap() {
        return;
    }
    let dir = scratch("bench-rss");
    let router = Netns::new("rrt").unwrap();
    let node = Netns::new("rnd").unwrap();
    veth(&router, "r0", &node, "n0").unwrap();
    for a in [
        "10.0.0.1/24",
        "10.0.0.21/24",
        "10.0.0.22/24",
        "10.0.0.23/24",
    ] {
        router.add_address("r0", a).unwrap();
    }
    for a in [
        "10.0.0.2/24",
        "10.0.0.3/24",
        "10.0.0.4/24",
        "10.0.0.5/24",
        "10.0.0.6/24",
        "10.0.0.7/24",
        "10.0.0.8/24",
    ] {
        node.add_address("n0", a).unwrap();
    }
    let mut conf = String::from(
        "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n no bgp ebgp-requires-policy\n",
    );
    for n in [
        "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.0.7", "10.0.0.8",
    ] {
        conf.push_str(&format!(
            " neighbor {n} remote-as 64500\n neighbor {n} timers connect 1\n"
        ));
    }
    let frr = Frr::start(&router, &conf, &["bgpd"]).unwrap();

    // oxlb: one process, three peers, 10,000 prefixes each.
    let peers: Vec<_> = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let mut p = peer(&format!("r{i}"), 64500, 64501, "10.0.0.1", source);
            p["source_address"] = json!(source);
            p["generate"] = json!({"first": "10.100.0.0", "count": N});
            p
        })
        .collect();
    let probe = Probe::start(&node, &dir, "probe", &json!({"peers": peers}));
    wait("FRR to hold 3 x 10,000 from oxlb", 120, || {
        all_received(&frr, &["10.0.0.2", "10.0.0.3", "10.0.0.4"])
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let oxlb_rss = rss_kib(probe.process.id());

    // GoBGP: learns 10,000 from a feeder, announces them to three FRR peers.
    let mut gobgp_conf = String::from(
        "[global.config]\n  as = 64500\n  router-id = \"10.0.0.6\"\n\n[[neighbors]]\n  [neighbors.config]\n    \
         neighbor-address = \"10.0.0.5\"\n    peer-as = 64502\n",
    );
    for (router_address, local) in [
        ("10.0.0.21", "10.0.0.6"),
        ("10.0.0.22", "10.0.0.7"),
        ("10.0.0.23", "10.0.0.8"),
    ] {
        gobgp_conf.push_str(&format!(
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{router_address}\"\n    peer-as = 64501\n  \
             [neighbors.transport.config]\n    local-address = \"{local}\"\n"
        ));
    }
    let gobgp_path = dir.join("gobgpd.toml");
    std::fs::write(&gobgp_path, gobgp_conf).unwrap();
    let gobgpd = node
        .spawn(
            &[
                "gobgpd",
                "-f",
                gobgp_path.to_str().unwrap(),
                "--api-hosts",
                "127.0.0.1:50062",
                "--pprof-disable",
                "-l",
                "warn",
            ],
            Some(&dir.join("gobgpd.log")),
        )
        .unwrap();
    let mut feeder = peer("gobgp", 64502, 64500, "10.0.0.6", "10.0.0.5");
    feeder["source_address"] = json!("10.0.0.5");
    feeder["generate"] = json!({"first": "10.100.0.0", "count": N});
    let _feeder = Probe::start(&node, &dir, "feeder", &json!({"peers": [feeder]}));
    wait("FRR to hold 3 x 10,000 from GoBGP", 180, || {
        all_received(&frr, &["10.0.0.6", "10.0.0.7", "10.0.0.8"])
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let gobgp_rss = rss_kib(gobgpd.id());
    println!(
        "RSS announcing {N} /32 to 3 FRR peers: oxlb {:.1} MiB (target <= 30 MB), GoBGP {:.1} MiB \
         (GoBGP also holds the 10,000-route Adj-RIB-In from its feeder): ratio {:.3}",
        oxlb_rss as f64 / 1024.0,
        gobgp_rss as f64 / 1024.0,
        oxlb_rss as f64 / gobgp_rss as f64
    );
    let _ = std::fs::remove_dir_all(dir);
}
