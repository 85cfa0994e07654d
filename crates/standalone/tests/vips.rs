//! Service IPs land on (and leave) the dummy interface, inside a namespace of the test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use oxlb_netlab::{Netns, netns_tests_enabled};
use oxlb_standalone::vips::LocalVips;

#[tokio::test]
async fn vips_are_added_removed_and_cleaned_up() {
    if !netns_tests_enabled("vips").unwrap() {
        return;
    }
    let ns = Netns::new("vips").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    vips.ensure_interface().await.unwrap(); // idempotent
    let first: BTreeSet<IpAddr> = [
        "192.0.2.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    ]
    .into();
    let change = vips.apply(&first).await.unwrap();
    assert_eq!(change.added, first);
    assert_eq!(vips.current().await.unwrap(), first);
    // The host now accepts traffic for the IP: it answers a ping from inside.
    ns.exec(&["ping", "-c1", "-W2", "192.0.2.10"]).unwrap();
    let second: BTreeSet<IpAddr> = ["192.0.2.11".parse().unwrap()].into();
    let change = vips.apply(&second).await.unwrap();
    assert_eq!(change.removed, first);
    assert_eq!(vips.current().await.unwrap(), second);
    vips.remove_interface().await.unwrap();
    assert!(vips.current().await.is_err());
}

fn many(count: u32) -> BTreeSet<IpAddr> {
    // Half IPv4 (10.100.0.0/16), half IPv6 (fd00:100::/64).
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                IpAddr::from([10, 100, (i >> 8) as u8, i as u8])
            } else {
                IpAddr::from([0xfd00, 0x100, 0, 0, 0, 0, (i >> 16) as u16, i as u16])
            }
        })
        .collect()
}

/// Issue 22: 10,000 addresses land in one batch and leave in one batch, and what the
/// kernel holds afterwards is read back (by netlink and by `ip` as a second witness).
#[tokio::test]
async fn ten_thousand_addresses_are_added_and_removed_in_batch() {
    if !netns_tests_enabled("vips").unwrap() {
        return;
    }
    let ns = Netns::new("l2sbatch").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    let all = many(10_000);
    let change = vips.apply(&all).await.unwrap();
    assert_eq!(change.added.len(), 10_000);
    assert_eq!(vips.current().await.unwrap(), all);
    let listed = ns
        .exec_stdout(&["ip", "-o", "address", "show", "dev", "oxlb0"])
        .unwrap();
    assert!(listed.contains("10.100.39.14/32"), "ip lists them too");
    assert!(listed.contains("fd00:100::270f/128"), "ip lists them too");
    // Keep a tenth, drop the rest: one batch of removals.
    let kept: BTreeSet<IpAddr> = all.iter().copied().step_by(10).collect();
    let change = vips.apply(&kept).await.unwrap();
    assert_eq!(change.removed.len(), 9_000);
    assert!(change.added.is_empty());
    assert_eq!(vips.current().await.unwrap(), kept);
    assert_eq!(vips.apply(&kept).await.unwrap(), Default::default());
    vips.apply(&BTreeSet::new()).await.unwrap();
    assert!(vips.current().await.unwrap().is_empty());
}

/// The figures of issue 22 (a benchmark, not a timed assertion): 10,000 addresses by
/// netlink in batch, against the old way (one `ip address add` process per address)
/// measured on 500 addresses in the same run and extrapolated to 10,000 (linear: each
/// is one process start). Run:
/// `cargo test -p oxlb-standalone --test vips -- --ignored --nocapture batch_figures`
#[tokio::test]
#[ignore = "benchmark: prints figures"]
async fn batch_figures() {
    if !netns_tests_enabled("vips").unwrap() {
        return;
    }
    let ns = Netns::new("l2sbench").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    let ipv4_only: BTreeSet<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::from([10, 101, (i >> 8) as u8, i as u8]))
        .collect();
    let mut rows = Vec::new();
    let ipv6_only: BTreeSet<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::from([0xfd00, 0x101, 0, 0, 0, 0, (i >> 16) as u16, i as u16]))
        .collect();
    for (what, set) in [
        ("IPv4 only", ipv4_only),
        ("IPv6 only", ipv6_only),
        ("half IPv4, half IPv6", many(10_000)),
    ] {
        let started = std::time::Instant::now();
        vips.apply(&set).await.unwrap();
        let add = started.elapsed();
        let started = std::time::Instant::now();
        vips.apply(&BTreeSet::new()).await.unwrap();
        rows.push((what, add, started.elapsed()));
    }
    let add = rows[0].1;

    let sample: Vec<IpAddr> = many(500).into_iter().collect();
    let started = std::time::Instant::now();
    for ip in &sample {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        ns.exec(&[
            "ip",
            "address",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            "oxlb0",
            "nodad",
        ])
        .or_else(|_| {
            ns.exec(&[
                "ip",
                "address",
                "add",
                &format!("{ip}/{prefix}"),
                "dev",
                "oxlb0",
            ])
        })
        .unwrap();
    }
    let old_500 = started.elapsed();
    let old_10k = old_500 * 20;
    println!("10,000 addresses on oxlb's interface in a namespace (target <= 1 s each way):");
    for (what, add, remove) in &rows {
        println!(
            "  netlink batch, {what:<22} add {:>7.3} s   remove {:>7.3} s",
            add.as_secs_f64(),
            remove.as_secs_f64()
        );
    }
    println!(
        "  one `ip` per address (the old way): 500 took {:.3} s -> 10,000 extrapolated x20: {:.1} s",
        old_500.as_secs_f64(),
        old_10k.as_secs_f64()
    );
    println!(
        "  ratio old/new for adding 10,000 IPv4: {:.0}x",
        old_10k.as_secs_f64() / add.as_secs_f64().max(1e-9)
    );
}
