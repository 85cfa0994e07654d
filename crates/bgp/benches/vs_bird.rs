//! Benchmarks 1-3 of issue 4, each printed as a ratio against a peer measured in the
//! same run:
//! 1. announce 10,000 /32s to FRR: time from Established until FRR holds all of them,
//!    oxlb probe vs BIRD 2 announcing the same 10,000 static routes to the same FRR;
//! 2. withdraw all 10,000: time from the request until FRR holds none, same pair;
//! 3. bytes of UPDATEs for the 10,000 announcements vs perfect packing into 4096-octet
//!    UPDATEs for that attribute set.
//!
//! Run: `cargo bench -p oxlb-bgp --bench vs_bird` (root; network namespaces).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Probe, json, peer, scratch};
use oxlb_bgp::RouteAttributes;
use oxlb_bgp::packet::Context;
use oxlb_bgp::rib::{AdjRibOut, Encoding, Routes};
use oxlb_netlab::{Frr, Netns, veth};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: u32 = 10_000;
const ROUNDS: usize = 3;
const FIRST: u32 = 0x0a64_0000; // 10.100.0.0

/// (state Established?, prefixes received) for one neighbor, from one vtysh call.
fn neighbor(frr: &Frr, address: &str) -> (bool, u64) {
    let Some(out) = frr
        .vtysh("show bgp ipv4 unicast summary json")
        .ok()
        .and_then(|t| json(&t))
    else {
        return (false, 0);
    };
    let p = &out["peers"][address];
    (
        p["state"] == "Established",
        p["pfxRcd"].as_u64().unwrap_or(0),
    )
}

/// Polls FRR as fast as vtysh answers; returns when `done` holds.
fn until(frr: &Frr, address: &str, what: &str, done: impl Fn(bool, u64) -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (up, count) = neighbor(frr, address);
        if done(up, count) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({address}: up={up} count={count})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Timing {
    announce: Duration,
    /// From FRR holding a first prefix until it holds all: transfer without any pause
    /// the sender takes after Established.
    first_to_last: Duration,
    withdraw: Duration,
    /// UPDATE messages FRR received for the 10,000 announcements.
    updates: u64,
}

fn updates_received(frr: &Frr, address: &str) -> u64 {
    frr.vtysh(&format!("show bgp neighbors {address} json"))
        .ok()
        .and_then(|t| json(&t))
        .and_then(|n| n[address]["messageStats"]["updatesRecv"].as_u64())
        .unwrap_or(0)
}

fn measure<T>(
    frr: &Frr,
    address: &str,
    start: impl FnOnce() -> T,
    withdraw: impl FnOnce(&T),
) -> (Timing, T) {
    let running = start();
    let t0 = until(frr, address, "Established", |up, _| up);
    let first = until(frr, address, "a first prefix", |_, n| n > 0);
    let t1 = until(frr, address, "all prefixes", |_, n| n == u64::from(N));
    let updates = updates_received(frr, address);
    let t2 = Instant::now();
    withdraw(&running);
    let t3 = until(frr, address, "all withdrawn", |_, n| n == 0);
    let timing = Timing {
        announce: t1 - t0,
        first_to_last: t1 - first,
        withdraw: t3 - t2,
        updates,
    };
    (timing, running)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bird_config(with_routes: bool) -> String {
    let mut c =
        String::from("router id 10.0.0.3;\nprotocol device {}\nprotocol static st {\n ipv4;\n");
    if with_routes {
        for i in 0..N {
            c.push_str(&format!(
                " route {}/32 blackhole;\n",
                Ipv4Addr::from(FIRST + i)
            ));
        }
    }
    c.push_str(
        "}\nprotocol bgp up {\n local 10.0.0.3 as 64500;\n neighbor 10.0.0.1 as 64501;\n \
         ipv4 { import none; export all; };\n}\n",
    );
    c
}

fn main() {
    // `cargo test --all-targets` runs harness=false benches too; only `cargo bench`
    // (which passes --bench) starts the daemons.
    if !std::env::args().any(|a| a == "--bench") {
        println!("vs_bird: run with `cargo bench -p oxlb-bgp --bench vs_bird`");
        return;
    }
    if !oxlb_netlab::netns_tests_enabled("bench vs_bird").unwrap() {
        return;
    }
    let dir = scratch("bench-bird");
    let router = Netns::new("brt").unwrap();
    let node = Netns::new("bnd").unwrap();
    veth(&router, "r0", &node, "n0").unwrap();
    router.add_address("r0", "10.0.0.1/24").unwrap();
    node.add_address("n0", "10.0.0.2/24").unwrap();
    node.add_address("n0", "10.0.0.3/24").unwrap();
    let frr = Frr::start(
        &router,
        "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n \
         no bgp ebgp-requires-policy\n neighbor 10.0.0.2 remote-as 64500\n neighbor 10.0.0.3 remote-as 64500\n \
         neighbor 10.0.0.2 timers connect 1\n neighbor 10.0.0.3 timers connect 1\n",
        &["bgpd"],
    )
    .unwrap();

    let mut oxlb = Vec::new();
    let mut bird = Vec::new();
    for round in 0..ROUNDS {
        // oxlb
        let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
        p["source_address"] = json!("10.0.0.2");
        p["generate"] = json!({"first": "10.100.0.0", "count": N});
        let config = json!({"peers": [p.clone()]});
        let (t, mut probe) = measure(
            &frr,
            "10.0.0.2",
            || Probe::start(&node, &dir, &format!("probe{round}"), &config),
            |probe: &Probe| {
                p["generate"] = serde_json::Value::Null;
                probe.reconfigure(&json!({"peers": [p]}));
            },
        );
        probe.stop();
        until(&frr, "10.0.0.2", "oxlb down", |up, _| !up);
        oxlb.push(t);

        // BIRD
        let conf = dir.join("bird.conf");
        let socket = dir.join(format!("bird{round}.ctl"));
        std::fs::write(&conf, bird_config(true)).unwrap();
        let (t, daemon) = measure(
            &frr,
            "10.0.0.3",
            || {
                node.spawn(
                    &[
                        "bird",
                        "-f",
                        "-c",
                        conf.to_str().unwrap(),
                        "-s",
                        socket.to_str().unwrap(),
                    ],
                    Some(&dir.join("bird.log")),
                )
                .unwrap()
            },
            |_| {
                std::fs::write(&conf, bird_config(false)).unwrap();
                node.exec(&["birdc", "-s", socket.to_str().unwrap(), "configure"])
                    .unwrap();
            },
        );
        drop(daemon);
        until(&frr, "10.0.0.3", "BIRD down", |up, _| !up);
        bird.push(t);
    }
    let med = |v: &[Timing], f: fn(&Timing) -> Duration| median(v.iter().map(f).collect());
    let (oa, ba) = (med(&oxlb, |t| t.announce), med(&bird, |t| t.announce));
    let (ow, bw) = (med(&oxlb, |t| t.withdraw), med(&bird, |t| t.withdraw));
    let (of, bf) = (
        med(&oxlb, |t| t.first_to_last),
        med(&bird, |t| t.first_to_last),
    );
    println!(
        "UPDATEs FRR received for {N} announcements (incl. End-of-RIB if any): oxlb {}, BIRD {}",
        oxlb[0].updates, bird[0].updates
    );
    println!(
        "announce {N} /32 to FRR (median of {ROUNDS}): oxlb {oa:?}, BIRD {ba:?}: ratio {:.3} (target <= 1.0)",
        oa.as_secs_f64() / ba.as_secs_f64()
    );
    println!(
        "  of which first prefix -> all {N} at FRR: oxlb {of:?}, BIRD {bf:?}: ratio {:.3}",
        of.as_secs_f64() / bf.as_secs_f64()
    );
    println!(
        "withdraw {N} /32 at FRR (median of {ROUNDS}): oxlb {ow:?}, BIRD {bw:?}: ratio {:.3} (target <= 1.0)",
        ow.as_secs_f64() / bw.as_secs_f64()
    );

    // 3. Bytes against perfect packing, for the attribute set the probe sent (eBGP, no
    // communities) and for one with two communities.
    for communities in [vec![], vec![0xffff_ff02u32, 0xfc00_0064]] {
        let attrs = Arc::new(RouteAttributes {
            local_pref: None,
            communities: communities.iter().copied().collect::<BTreeSet<_>>(),
            large_communities: BTreeSet::new(),
            link_bandwidth: None,
        });
        let routes: Routes = (0..N)
            .map(|i| {
                (
                    ipnet::IpNet::new(Ipv4Addr::from(FIRST + i).into(), 32).unwrap(),
                    Arc::clone(&attrs),
                )
            })
            .collect();
        let enc = Encoding {
            local_asn: 64500,
            ibgp: false,
            ctx: Context {
                four_octet_as: true,
            },
            next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, 2)),
            next_hop_v6: None,
            next_hop_v6_link_local: None,
            next_hop_v4_extended: None,
        };
        let packed = AdjRibOut::default().sync(&routes, &enc);
        // Fixed part of every UPDATE: header 19, two length fields 4, the attributes
        // (ORIGIN 4, AS_PATH with one 4-octet AS 9, NEXT_HOP 7, COMMUNITIES 3 + 4 each).
        let attrs_len = 4
            + 9
            + 7
            + if communities.is_empty() {
                0
            } else {
                3 + 4 * communities.len()
            };
        let fixed = 19 + 4 + attrs_len;
        let payload = 5 * N as usize;
        let min_messages = payload.div_ceil(4096 - fixed);
        let minimum = min_messages * fixed + payload;
        println!(
            "bytes for {N} announcements ({} communities): {} in {} UPDATEs, perfect packing {} in {}: ratio {:.4} (target <= 1.05)",
            communities.len(),
            packed.bytes.len(),
            packed.messages,
            minimum,
            min_messages,
            packed.bytes.len() as f64 / minimum as f64
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
