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
    let ns = Netns::new("scvips").unwrap();
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
    // The host now accepts traffic for the IPs: it answers a ping from inside, and
    // `ip` shows them as local routes through oxlb0.
    ns.exec(&["ping", "-c1", "-W2", "192.0.2.10"]).unwrap();
    ns.exec(&["ping", "-6", "-c1", "-W2", "2001:db8::10"])
        .unwrap();
    let v4 = ns
        .exec_stdout(&["ip", "route", "show", "table", "local", "dev", "oxlb0"])
        .unwrap();
    assert!(
        v4.contains("local 192.0.2.10 proto static scope host"),
        "{v4}"
    );
    let v6 = ns
        .exec_stdout(&[
            "ip", "-6", "route", "show", "table", "local", "dev", "oxlb0",
        ])
        .unwrap();
    assert!(v6.contains("local 2001:db8::10 proto static"), "{v6}");
    // No address on the interface: the routes alone make the IPs local.
    let addresses = ns
        .exec_stdout(&["ip", "-o", "address", "show", "dev", "oxlb0"])
        .unwrap();
    assert!(!addresses.contains("192.0.2.10"), "{addresses}");
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
    let ns = Netns::new("scbatch").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    let all = many(10_000);
    let change = vips.apply(&all).await.unwrap();
    assert_eq!(change.added.len(), 10_000);
    assert_eq!(vips.current().await.unwrap(), all);
    let listed = ns
        .exec_stdout(&["ip", "route", "show", "table", "local", "dev", "oxlb0"])
        .unwrap();
    assert!(listed.contains("local 10.100.39.14 "), "ip lists them too");
    let listed = ns
        .exec_stdout(&[
            "ip", "-6", "route", "show", "table", "local", "dev", "oxlb0",
        ])
        .unwrap();
    assert!(
        listed.contains("local fd00:100::270f "),
        "ip lists them too"
    );
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

/// The figures of issue 22 (a benchmark, not a timed assertion): 10,000 service IPs
/// made local as oxlb does (local routes in table `local`, netlink in batch), against
/// the same IPs as addresses on the interface (netlink in batch, what oxlb did before)
/// measured in the same run, and against the older way (one `ip address add` process
/// per address) measured on 500 and extrapolated to 10,000 (linear: each is one
/// process start). Run:
/// `cargo test -p oxlb-standalone --test vips -- --ignored --nocapture batch_figures`
#[tokio::test]
#[ignore = "benchmark: prints figures"]
async fn batch_figures() {
    use oxlb_l2::host_addrs::HostAddrs;
    use oxlb_l2::netlink::AddrOp;
    if !netns_tests_enabled("vips").unwrap() {
        return;
    }
    let ns = Netns::new("scbench").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    let path = std::path::PathBuf::from("/run/netns").join(ns.name());
    let ipv4_only: BTreeSet<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::from([10, 101, (i >> 8) as u8, i as u8]))
        .collect();
    let ipv6_only: BTreeSet<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::from([0xfd00, 0x101, 0, 0, 0, 0, (i >> 16) as u16, i as u16]))
        .collect();
    let mut rows = Vec::new();
    for (what, set) in [
        ("IPv4 only", ipv4_only),
        ("IPv6 only", ipv6_only),
        ("half IPv4, half IPv6", many(10_000)),
    ] {
        let started = std::time::Instant::now();
        vips.apply(&set).await.unwrap();
        let route_add = started.elapsed();
        assert_eq!(vips.current().await.unwrap().len(), 10_000);
        let started = std::time::Instant::now();
        vips.apply(&BTreeSet::new()).await.unwrap();
        let route_remove = started.elapsed();
        // The same IPs as addresses, on the same interface.
        let ips: Vec<IpAddr> = set.iter().copied().collect();
        let path = path.clone();
        let (addr_add, addr_remove) = tokio::task::spawn_blocking(move || {
            let mut host = HostAddrs::open(Some(&path), "oxlb0").unwrap();
            let started = std::time::Instant::now();
            host.change(AddrOp::Add, &ips).unwrap().unwrap();
            let add = started.elapsed();
            let started = std::time::Instant::now();
            host.change(AddrOp::Remove, &ips).unwrap().unwrap();
            (add, started.elapsed())
        })
        .await
        .unwrap();
        rows.push((what, route_add, route_remove, addr_add, addr_remove));
    }

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
    println!("10,000 service IPs made local in a namespace (target <= 1 s each way):");
    println!(
        "  {:<22} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "", "routes add", "routes del", "addrs add", "addrs del", "add x", "del x"
    );
    let secs = |d: std::time::Duration| d.as_secs_f64();
    for (what, ra, rr, aa, ar) in &rows {
        println!(
            "  {what:<22} {:>10.3} s {:>10.3} s {:>10.3} s {:>10.3} s {:>8.1}x {:>8.1}x",
            secs(*ra),
            secs(*rr),
            secs(*aa),
            secs(*ar),
            secs(*aa) / secs(*ra).max(1e-9),
            secs(*ar) / secs(*rr).max(1e-9),
        );
    }
    println!("  (routes: what oxlb does; addrs: addresses by netlink in batch, as before;");
    println!("   x: how many times longer the addresses took)");
    println!(
        "  one `ip` per address (the oldest way): 500 took {:.3} s -> 10,000 extrapolated \
         x20: {:.1} s ({:.0}x the IPv4 routes)",
        secs(old_500),
        secs(old_10k),
        secs(old_10k) / secs(rows[0].1).max(1e-9)
    );
}
