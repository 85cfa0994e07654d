//! Dual-stack address family against FRR (bgpd + zebra): IPv6 routes over an IPv4
//! session carry the node's own IPv6 addresses on that link as next hop (global plus
//! link-local, RFC 4760 §3 / RFC 2545 §3), never the IPv4-mapped session address, and
//! land in the router's kernel. On a link where the node has no IPv6 address, the IPv6
//! routes are withheld and the peer status says why; the IPv4 routes still flow.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, json, peer, scratch, wait};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth};
use serde_json::{Value, json};

const FRR_CONF: &str = "frr defaults traditional
hostname router
router bgp 64501
 bgp router-id 10.80.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 10.80.0.2 remote-as 64500
 neighbor 10.81.0.2 remote-as 64500
 address-family ipv4 unicast
  neighbor 10.80.0.2 activate
  neighbor 10.81.0.2 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 10.80.0.2 activate
  neighbor 10.81.0.2 activate
 exit-address-family
";

fn probe_config() -> Value {
    let mut dual = peer("dual", 64500, 64501, "10.80.0.1", "10.80.0.2");
    dual["source_address"] = json!("10.80.0.2");
    dual["routes"] = json!([{"prefix": "10.90.0.1/32"}, {"prefix": "2001:db8:90::1/128"}]);
    let mut nov6 = peer("nov6", 64500, 64501, "10.81.0.1", "10.80.0.2");
    nov6["source_address"] = json!("10.81.0.2");
    nov6["routes"] = json!([{"prefix": "10.91.0.1/32"}, {"prefix": "2001:db8:91::1/128"}]);
    json!({ "status_interval_ms": 200, "peers": [dual, nov6] })
}

fn path(frr: &Frr, family: &str, prefix: &str) -> Option<Value> {
    let out = json(
        &frr.vtysh(&format!("show bgp {family} unicast {prefix} json"))
            .ok()?,
    )?;
    out["paths"].as_array()?.first().cloned()
}

#[test]
fn ipv6_over_ipv4_uses_the_nodes_ipv6_addresses_on_the_link() {
    if !netns_tests_enabled("frr_dual_stack").unwrap() {
        return;
    }
    let dir = scratch("bgf-dual");
    let router = Netns::new("bgfrt").unwrap();
    let node = Netns::new("bgfnd").unwrap();
    veth(&router, "r0", &node, "n0").unwrap();
    veth(&router, "r1", &node, "n1").unwrap();
    router.add_address("r0", "10.80.0.1/24").unwrap();
    router.add_address("r0", "fd00:80::1/64").unwrap();
    router.add_address("r1", "10.81.0.1/24").unwrap();
    node.add_address("n0", "10.80.0.2/24").unwrap();
    node.add_address("n0", "fd00:80::2/64").unwrap();
    // n1: IPv4 only (the kernel still gives it a link-local address).
    node.add_address("n1", "10.81.0.2/24").unwrap();
    let node_link_local = wait("n0's link-local address", 20, || {
        let out = node
            .exec_stdout(&[
                "ip", "-6", "-o", "addr", "show", "dev", "n0", "scope", "link",
            ])
            .ok()?;
        (!out.contains("tentative"))
            .then(|| {
                out.split_whitespace()
                    .nth(3)?
                    .split('/')
                    .next()
                    .map(String::from)
            })
            .flatten()
    });
    // The global address must be past DAD too, or it is not usable as a next hop.
    wait("n0's global address usable", 20, || {
        let out = node
            .exec_stdout(&[
                "ip", "-6", "-o", "addr", "show", "dev", "n0", "scope", "global",
            ])
            .ok()?;
        (out.contains("fd00:80::2") && !out.contains("tentative")).then_some(())
    });
    let frr = Frr::start(&router, FRR_CONF, &["zebra", "bgpd"]).unwrap();
    let probe = Probe::start(&node, &dir, "probe", &probe_config());

    let p = wait("2001:db8:90::1/128 at FRR", 30, || {
        path(&frr, "ipv6", "2001:db8:90::1/128")
    });
    let hops = p["nexthops"].as_array().cloned().unwrap_or_default();
    let ips: Vec<&str> = hops.iter().filter_map(|h| h["ip"].as_str()).collect();
    assert_eq!(
        ips,
        vec!["fd00:80::2", node_link_local.as_str()],
        "global then link-local, not IPv4-mapped: {p:#}"
    );
    assert_eq!(hops[1]["scope"], "link-local", "{p:#}");
    let kernel = wait("the IPv6 route in the router's kernel", 20, || {
        router
            .exec_stdout(&["ip", "-6", "route", "show", "2001:db8:90::1"])
            .ok()
            .filter(|r| r.contains("via"))
    });
    assert!(kernel.contains("dev r0"), "{kernel}");
    assert!(!kernel.contains("::ffff:"), "{kernel}");
    println!("kernel route at the router: {}", kernel.trim());

    // The IPv4-only link: IPv4 route announced, IPv6 withheld with the reason.
    wait("10.91.0.1/32 at FRR", 30, || {
        path(&frr, "ipv4", "10.91.0.1/32")
    });
    let status = wait("nov6 status says IPv6 is withheld", 10, || {
        probe
            .peer_status("nov6")
            .filter(|s| s["withheld"].is_string())
    });
    assert!(
        status["withheld"]
            .as_str()
            .unwrap()
            .contains("no global IPv6 address on the interface"),
        "{status:#}"
    );
    assert_eq!(status["prefixes_announced"], 1, "{status:#}");
    assert_eq!(status["prefixes_pending"], 1, "{status:#}");
    assert!(path(&frr, "ipv6", "2001:db8:91::1/128").is_none());
    let dual = probe.peer_status("dual").unwrap();
    assert!(dual["withheld"].is_null(), "{dual:#}");
    let logged = probe.log_text().lines().any(|l| {
        json(l).is_some_and(|v| {
            v["peer"] == "nov6"
                && v["event"]
                    .as_str()
                    .is_some_and(|e| e.contains("IPv6 prefixes withheld"))
        })
    });
    assert!(logged, "the reason is logged as an event of that peer");
    let _ = std::fs::remove_dir_all(dir);
}
