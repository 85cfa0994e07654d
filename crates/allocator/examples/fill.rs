//! Fills a pool with N services and reports the time and what the free space costs:
//! `cargo run --release -p oxlb-allocator --example fill -- PREFIX_LEN N`
//! (e.g. `8 100000` for the /8 memory figure under `/usr/bin/time -v`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use oxlb_allocator::{Allocator, Family, Scope, Usage, Want};
use oxlb_config::{AddressRange, Pool};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prefix_len: u8 = args.get(1).map_or(8, |a| a.parse().unwrap());
    let count: usize = args.get(2).map_or(100_000, |a| a.parse().unwrap());
    let net: ipnet::IpNet = format!("10.0.0.0/{prefix_len}").parse().unwrap();
    let pool = Pool {
        name: "p".to_string(),
        ranges: vec![AddressRange::from_cidr(net)],
        addresses_as_written: vec![net.to_string()],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    let mut allocator = Allocator::new(&[("p".to_string(), pool)].into());
    let names: Vec<String> = (0..count).map(|i| format!("ns/service-{i}")).collect();
    let usage = Usage::default();
    let scope = Scope::plain("ns");
    let start = Instant::now();
    for name in &names {
        allocator
            .allocate(name, Want::Single(Family::V4), &usage, &scope)
            .unwrap();
    }
    let elapsed = start.elapsed();
    // Optional third argument: release and re-allocate that many services (every
    // seventh one), to profile the churn path.
    let churn: usize = args.get(3).map_or(0, |a| a.parse().unwrap());
    if churn > 0 {
        let picks: Vec<&String> = names.iter().step_by(7).take(churn).collect();
        let start = Instant::now();
        for name in &picks {
            allocator.unassign(name);
        }
        for name in &picks {
            allocator
                .allocate(name, Want::Single(Family::V4), &usage, &scope)
                .unwrap();
        }
        println!(
            "churn of {} in {:.1} ms",
            picks.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    let counters = allocator.counters("p").unwrap();
    println!(
        "{net}: {count} services in {:.1} ms ({:.0} ns each); in use {}, available {}, free intervals {}",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e9 / count as f64,
        counters.assigned_ipv4,
        counters.available_ipv4,
        allocator.free_intervals()
    );
}
