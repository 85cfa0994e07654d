//! Both families over one session, against FRR (bgpd + zebra) with three nodes for ECMP:
//! - IPv4 routes over an IPv6 session with an IPv6 next hop (RFC 8950; FRR needs
//!   `neighbor X capability extended-nexthop` and the IPv4 family activated on the IPv6
//!   neighbour), installed by zebra as `via inet6 fe80::...`;
//! - IPv6 routes over an IPv4 session (dual-stack address family) with each node's own
//!   IPv6 addresses as next hop.
//!
//! Every session carries both families (both activated at FRR).
//! Each node is its own namespace on its own link to the router; all three announce the
//! same prefixes, so FRR has three equal paths (`maximum-paths`) and the kernel route
//! has three next hops. Prints the time until all six sessions were Established.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, json, peer, scratch, wait};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth};
use serde_json::{Value, json};
use std::time::Instant;

const NODES: usize = 3;

fn frr_conf() -> String {
    let mut c = String::from(
        "frr defaults traditional
hostname router
router bgp 64501
 bgp router-id 10.70.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
",
    );
    let mut v4 = String::from(" address-family ipv4 unicast\n  maximum-paths 8\n");
    let mut v6 = String::from(" address-family ipv6 unicast\n  maximum-paths 8\n");
    for i in 0..NODES {
        let over_v6 = format!("fd00:7{i}::2");
        let over_v4 = format!("10.7{i}.0.2");
        c += &format!(" neighbor {over_v6} remote-as 64500\n");
        c += &format!(" neighbor {over_v6} capability extended-nexthop\n");
        c += &format!(" neighbor {over_v4} remote-as 64500\n");
        // Both families on both sessions.
        for n in [&over_v6, &over_v4] {
            v4 += &format!("  neighbor {n} activate\n");
            v6 += &format!("  neighbor {n} activate\n");
        }
    }
    c + &v4 + " exit-address-family\n" + &v6 + " exit-address-family\n"
}

fn probe_config(i: usize) -> Value {
    let router_id = format!("10.7{i}.0.2");
    let mut over_v6 = peer("overv6", 64500, 64501, &format!("fd00:7{i}::1"), &router_id);
    over_v6["source_address"] = json!(format!("fd00:7{i}::2"));
    over_v6["routes"] = json!([{"prefix": "10.99.0.1/32"}, {"prefix": "2001:db8:99::1/128"}]);
    let mut over_v4 = peer("overv4", 64500, 64501, &format!("10.7{i}.0.1"), &router_id);
    over_v4["source_address"] = json!(format!("10.7{i}.0.2"));
    over_v4["routes"] = json!([{"prefix": "10.98.0.1/32"}, {"prefix": "2001:db8:98::1/128"}]);
    json!({ "status_interval_ms": 100, "peers": [over_v6, over_v4] })
}

fn route(frr: &Frr, family: &str, prefix: &str) -> Option<Value> {
    json(
        &frr.vtysh(&format!("show bgp {family} unicast {prefix} json"))
            .ok()?,
    )
    .filter(|v| v["paths"].is_array())
}

fn link_local(ns: &Netns, dev: &str) -> Option<String> {
    let out = ns
        .exec_stdout(&[
            "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link",
        ])
        .ok()?;
    if out.contains("tentative") {
        return None;
    }
    out.split_whitespace()
        .nth(3)?
        .split('/')
        .next()
        .map(String::from)
}

#[test]
fn both_families_over_one_session_with_ecmp_over_three_nodes() {
    if !netns_tests_enabled("frr_extended_nexthop").unwrap() {
        return;
    }
    let dir = scratch("bgf-enh");
    let router = Netns::new("bgfrt").unwrap();
    let mut nodes = Vec::new();
    let mut node_lls = Vec::new();
    for i in 0..NODES {
        let node = Netns::new(&format!("bgfnd{i}")).unwrap();
        let (r, n) = (format!("r{i}"), format!("n{i}"));
        veth(&router, &r, &node, &n).unwrap();
        router.add_address(&r, &format!("10.7{i}.0.1/24")).unwrap();
        router.add_address(&r, &format!("fd00:7{i}::1/64")).unwrap();
        node.add_address(&n, &format!("10.7{i}.0.2/24")).unwrap();
        node.add_address(&n, &format!("fd00:7{i}::2/64")).unwrap();
        nodes.push(node);
    }
    for (i, node) in nodes.iter().enumerate() {
        node_lls.push(wait("node link-local", 20, || {
            link_local(node, &format!("n{i}"))
        }));
        wait("node global address past DAD", 20, || {
            let out = node
                .exec_stdout(&["ip", "-6", "-o", "addr", "show", "scope", "global"])
                .ok()?;
            (!out.is_empty() && !out.contains("tentative")).then_some(())
        });
        wait("router global address past DAD", 20, || {
            let out = router
                .exec_stdout(&["ip", "-6", "-o", "addr", "show", "scope", "global"])
                .ok()?;
            (!out.is_empty() && !out.contains("tentative")).then_some(())
        });
    }
    let frr = Frr::start(&router, &frr_conf(), &["zebra", "bgpd"]).unwrap();
    let started = Instant::now();
    let probes: Vec<Probe> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| Probe::start(node, &dir, &format!("probe{i}"), &probe_config(i)))
        .collect();
    wait("all six sessions Established", 60, || {
        let out = json(&frr.vtysh("show bgp neighbors json").ok()?)?;
        let up = out
            .as_object()?
            .values()
            .filter(|n| n["bgpState"] == "Established")
            .count();
        (up == 2 * NODES).then_some(())
    });
    let up_after = started.elapsed();

    // RFC 8950: IPv4 prefix, IPv6 next hops, three equal paths.
    // FRR lists a new path before its best-path run marks it multipath: wait for both.
    let r = wait("10.99.0.1/32 with three multipaths", 30, || {
        route(&frr, "ipv4", "10.99.0.1/32").filter(|r| {
            r["paths"]
                .as_array()
                .is_some_and(|p| p.len() == NODES && p.iter().all(|path| path["multipath"] == true))
        })
    });
    let ecmp_v4 = started.elapsed();
    let mut seen = Vec::new();
    for p in r["paths"].as_array().unwrap() {
        assert_eq!(p["multipath"], true, "{p:#}");
        let hops = p["nexthops"].as_array().unwrap();
        assert_eq!(
            hops[0]["afi"], "ipv6",
            "IPv6 next hop for an IPv4 route: {p:#}"
        );
        assert_eq!(hops[1]["scope"], "link-local", "{p:#}");
        seen.push(hops[0]["ip"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["fd00:70::2", "fd00:71::2", "fd00:72::2"]);
    let kernel = wait(
        "10.99.0.1 in the kernel over three inet6 next hops",
        20,
        || {
            router
                .exec_stdout(&["ip", "route", "show", "10.99.0.1"])
                .ok()
                .filter(|r| r.matches("via inet6 fe80::").count() == NODES)
        },
    );
    for ll in &node_lls {
        assert!(
            kernel.contains(&format!("via inet6 {ll} ")),
            "{ll}: {kernel}"
        );
    }
    println!("kernel IPv4 route at the router:\n{}", kernel.trim_end());

    // Dual-stack: IPv6 prefix over the IPv4 sessions, each node's own IPv6 next hop.
    let r = wait("2001:db8:98::1/128 with three paths", 30, || {
        route(&frr, "ipv6", "2001:db8:98::1/128")
            .filter(|r| r["paths"].as_array().is_some_and(|p| p.len() == NODES))
    });
    let mut seen: Vec<String> = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nexthops"][0]["ip"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["fd00:70::2", "fd00:71::2", "fd00:72::2"], "{r:#}");
    let kernel6 = wait(
        "2001:db8:98::1 in the kernel over three next hops",
        20,
        || {
            router
                .exec_stdout(&["ip", "-6", "route", "show", "2001:db8:98::1"])
                .ok()
                .filter(|r| r.matches("via fe80::").count() == NODES)
        },
    );
    println!("kernel IPv6 route at the router:\n{}", kernel6.trim_end());
    // The native family of each session, from the same three nodes.
    for (family, prefix, want) in [
        (
            "ipv4",
            "10.98.0.1/32",
            ["10.70.0.2", "10.71.0.2", "10.72.0.2"],
        ),
        (
            "ipv6",
            "2001:db8:99::1/128",
            ["fd00:70::2", "fd00:71::2", "fd00:72::2"],
        ),
    ] {
        let r = wait(prefix, 30, || {
            route(&frr, family, prefix).filter(|r| {
                r["paths"].as_array().is_some_and(|p| {
                    p.len() == NODES && p.iter().all(|path| path["multipath"] == true)
                })
            })
        });
        let mut seen: Vec<String> = r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["nexthops"][0]["ip"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        assert_eq!(seen, want, "{r:#}");
        assert!(
            r["paths"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["multipath"] == true)
        );
    }
    for p in &probes {
        for name in ["overv6", "overv4"] {
            let s = p.peer_status(name).unwrap();
            assert_eq!(s["prefixes_announced"], 2, "{s:#}");
            assert_eq!(s["prefixes_pending"], 0, "{s:#}");
        }
    }
    // Withdrawal of the IPv4 prefix learned over IPv6 (plain Withdrawn Routes field):
    // FRR drops it from every node, the other prefixes stay.
    for (i, p) in probes.iter().enumerate() {
        let mut c = probe_config(i);
        c["peers"][0]["routes"] = json!([{"prefix": "2001:db8:99::1/128"}]);
        p.reconfigure(&c);
    }
    wait("10.99.0.1/32 withdrawn at FRR", 30, || {
        route(&frr, "ipv4", "10.99.0.1/32").is_none().then_some(())
    });
    wait("10.99.0.1 gone from the kernel", 20, || {
        router
            .exec_stdout(&["ip", "route", "show", "10.99.0.1"])
            .ok()
            .filter(|r| r.trim().is_empty())
    });
    assert!(route(&frr, "ipv6", "2001:db8:99::1/128").is_some());
    println!(
        "figures: 6 sessions Established {:.0} ms after the probes started; \
         IPv4 route with 3 ECMP paths at FRR after {:.0} ms",
        up_after.as_secs_f64() * 1000.0,
        ecmp_v4.as_secs_f64() * 1000.0
    );
    drop(probes);
    let _ = std::fs::remove_dir_all(dir);
}
