//! Sessions with FRR (bgpd + zebra) in network namespaces: eBGP and iBGP over IPv4,
//! eBGP over IPv6 (MP-BGP), the exact attributes FRR sees, withdrawal, and a change to
//! one peer's routes leaving the other sessions up.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, json, peer, scratch, wait};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth};
use serde_json::{Value, json};

const FRR_CONF: &str = "frr defaults traditional
hostname router
router bgp 64501
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 10.0.0.2 remote-as 64500
 neighbor 10.0.0.3 remote-as 64501
 neighbor fd00::2 remote-as 64500
 address-family ipv4 unicast
  neighbor 10.0.0.2 activate
  neighbor 10.0.0.3 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00::2 activate
 exit-address-family
";

fn probe_config(ebgp_routes: Value) -> Value {
    let mut ebgp = peer("ebgp", 64500, 64501, "10.0.0.1", "10.0.0.2");
    ebgp["source_address"] = json!("10.0.0.2");
    ebgp["ipv6"] = json!(false);
    ebgp["routes"] = ebgp_routes;
    let mut ibgp = peer("ibgp", 64501, 64501, "10.0.0.1", "10.0.0.3");
    ibgp["source_address"] = json!("10.0.0.3");
    ibgp["ipv6"] = json!(false);
    ibgp["routes"] = json!([
        {"prefix": "10.2.0.1/32", "local_pref": 250, "communities": ["64512:7"]},
    ]);
    let mut v6 = peer("v6", 64500, 64501, "fd00::1", "10.0.0.2");
    v6["source_address"] = json!("fd00::2");
    v6["ipv4"] = json!(false);
    v6["routes"] = json!([
        {"prefix": "2001:db8:5::1/128", "communities": ["64512:6"]},
    ]);
    json!({ "status_interval_ms": 200, "peers": [ebgp, ibgp, v6] })
}

fn path(frr: &Frr, family: &str, prefix: &str) -> Option<Value> {
    let out = json(&frr.vtysh(&format!("show bgp {family} unicast {prefix} json")).ok()?)?;
    out["paths"].as_array()?.first().cloned()
}

fn sessions(frr: &Frr, neighbor: &str) -> Option<u64> {
    let out = json(&frr.vtysh(&format!("show bgp neighbors {neighbor} json")).ok()?)?;
    let n = &out[neighbor];
    // The number of sessions FRR has established with this neighbor so far.
    (n["bgpState"] == "Established").then(|| n["connectionsEstablished"].as_u64().unwrap_or(0))
}

#[test]
fn frr_sees_exact_attributes_over_ebgp_ibgp_and_ipv6() {
    if !netns_tests_enabled("frr_interop").unwrap() {
        return;
    }
    let dir = scratch("frr");
    let router = Netns::new("rt").unwrap();
    let node = Netns::new("nd").unwrap();
    veth(&router, "r0", &node, "n0").unwrap();
    router.add_address("r0", "10.0.0.1/24").unwrap();
    router.add_address("r0", "fd00::1/64").unwrap();
    node.add_address("n0", "10.0.0.2/24").unwrap();
    node.add_address("n0", "10.0.0.3/24").unwrap();
    node.add_address("n0", "fd00::2/64").unwrap();
    let frr = Frr::start(&router, FRR_CONF, &["zebra", "bgpd"]).unwrap();

    let ebgp_routes = json!([{
        "prefix": "10.1.0.1/32",
        "local_pref": 200,
        "communities": ["65535:65282", "64512:100"],
        "large_communities": ["64500:1:2"],
    }, {"prefix": "10.1.0.0/24"}]);
    let mut probe = Probe::start(&node, &dir, "probe", &probe_config(ebgp_routes));

    // eBGP IPv4: AS_PATH [64500], NEXT_HOP our session address, no LOCAL_PREF.
    let p = wait("10.1.0.1/32 at FRR", 30, || path(&frr, "ipv4", "10.1.0.1/32"));
    assert_eq!(p["aspath"]["string"], "64500", "{p:#}");
    assert_eq!(p["origin"], "IGP");
    assert_eq!(p["nexthops"][0]["ip"], "10.0.0.2");
    assert_eq!(p["community"]["string"], "64512:100 no-advertise", "{p:#}");
    assert_eq!(p["largeCommunity"]["string"], "64500:1:2");
    assert!(p.get("locPrf").is_none() || p["locPrf"] == 100, "eBGP must not carry LOCAL_PREF: {p:#}");
    assert!(path(&frr, "ipv4", "10.1.0.0/24").is_some());

    // iBGP: empty AS_PATH, LOCAL_PREF as configured.
    let p = wait("10.2.0.1/32 at FRR", 30, || path(&frr, "ipv4", "10.2.0.1/32"));
    assert_eq!(p["aspath"]["string"], "Local", "{p:#}");
    assert_eq!(p["locPrf"], 250, "{p:#}");
    assert_eq!(p["community"]["string"], "64512:7");

    // IPv6 over an IPv6 session (MP_REACH_NLRI), next hop our address.
    let p = wait("2001:db8:5::1/128 at FRR", 30, || path(&frr, "ipv6", "2001:db8:5::1/128"));
    assert_eq!(p["aspath"]["string"], "64500");
    assert_eq!(p["nexthops"][0]["ip"], "fd00::2", "{p:#}");

    // Withdraw one prefix of one peer: the others keep their sessions.
    let ibgp_up = wait("iBGP up", 10, || sessions(&frr, "10.0.0.3"));
    let v6_up = wait("v6 up", 10, || sessions(&frr, "fd00::2"));
    probe.reconfigure(&probe_config(json!([{"prefix": "10.1.0.0/24"}])));
    wait("10.1.0.1/32 withdrawn", 30, || path(&frr, "ipv4", "10.1.0.1/32").is_none().then_some(()));
    assert!(path(&frr, "ipv4", "10.1.0.0/24").is_some());
    assert_eq!(sessions(&frr, "10.0.0.3"), Some(ibgp_up), "unchanged peer kept its session");
    assert_eq!(sessions(&frr, "fd00::2"), Some(v6_up));
    let status = wait("probe status", 10, || {
        probe.peer_status("ebgp").filter(|s| s["prefixes_announced"] == 1)
    });
    assert_eq!(status["state"], "Established");
    assert_eq!(status["prefixes_pending"], 0);

    // Clean stop: Cease / Administrative Shutdown with our message, routes gone at once.
    probe.stop();
    let last = wait("FRR to see the shutdown", 15, || {
        let out = json(&frr.vtysh("show bgp neighbors 10.0.0.2 json").ok()?)?;
        let n = &out["10.0.0.2"];
        (n["bgpState"] != "Established").then(|| n.clone())
    });
    let text = last.to_string();
    assert!(text.contains("Administrative Shutdown"), "{text}");
    assert!(path(&frr, "ipv4", "10.1.0.0/24").is_none());
    let _ = std::fs::remove_dir_all(dir);
}
