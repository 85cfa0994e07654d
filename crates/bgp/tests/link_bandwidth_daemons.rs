//! Weighted ECMP (issue 19): BIRD 2 and GoBGP receive the link bandwidth extended
//! community of a weighted route unchanged (eight octets: type 0x40, sub-type 0x04,
//! AS 64500, 3 × 125 000 bytes/s as an IEEE-754 float = 0x48B71B00).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, peer, router_and_node, scratch, wait};
use oxlb_netlab::netns_tests_enabled;
use serde_json::{Value, json};

fn probe_config() -> Value {
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["routes"] = json!([{ "prefix": "10.1.0.3/32", "link_bandwidth": 3 }]);
    json!({ "status_interval_ms": 200, "peers": [p] })
}

#[test]
fn bird2_shows_the_link_bandwidth_community_unchanged() {
    if !netns_tests_enabled("bird2").unwrap() {
        return;
    }
    let dir = scratch("we-bird");
    let (router, node) = router_and_node(&[]);
    let conf = dir.join("bird.conf");
    let socket = dir.join("bird.ctl");
    std::fs::write(
        &conf,
        "router id 10.0.0.1;\nprotocol device {}\nprotocol bgp oxlb {\n local 10.0.0.1 as 64501;\n \
         neighbor 10.0.0.2 as 64500;\n ipv4 { import all; export none; };\n}\n",
    )
    .unwrap();
    let _bird = router
        .spawn(
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
        .unwrap();
    let _probe = Probe::start(&node, &dir, "probe", &probe_config());
    let route = wait("route in BIRD", 30, || {
        let out = router
            .exec_stdout(&[
                "birdc",
                "-s",
                socket.to_str().unwrap(),
                "show",
                "route",
                "for",
                "10.1.0.3/32",
                "all",
            ])
            .ok()?;
        out.contains("BGP.as_path").then_some(out)
    });
    eprintln!("{route}");
    // BIRD prints a two-octet-AS community of a sub-type it has no name for as
    // (unknown TYPE+SUBTYPE, AS, value): 1219959552 = 0x48B71B00, 375 000.0 as a float.
    assert_eq!(1_219_959_552u32, 375_000f32.to_bits());
    assert!(
        route.contains("BGP.ext_community: (unknown 0x4004, 64500, 1219959552)"),
        "{route}"
    );
}

#[test]
fn gobgp_shows_the_link_bandwidth_community_unchanged() {
    if !netns_tests_enabled("gobgp").unwrap() {
        return;
    }
    let dir = scratch("we-gobgp");
    let (router, node) = router_and_node(&[]);
    let conf = dir.join("gobgpd.toml");
    std::fs::write(
        &conf,
        "[global.config]\n  as = 64501\n  router-id = \"10.0.0.1\"\n\n[[neighbors]]\n  [neighbors.config]\n    \
         neighbor-address = \"10.0.0.2\"\n    peer-as = 64500\n",
    )
    .unwrap();
    // Inside the router namespace: the port cannot clash with another test's.
    let _gobgpd = router
        .spawn(
            &[
                "gobgpd",
                "-f",
                conf.to_str().unwrap(),
                "--api-hosts",
                "127.0.0.1:50093",
                "--pprof-disable",
            ],
            Some(&dir.join("gobgpd.log")),
        )
        .unwrap();
    let _probe = Probe::start(&node, &dir, "probe", &probe_config());
    let paths = wait("route in GoBGP", 40, || {
        let out = router
            .exec_stdout(&[
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50093",
                "global",
                "rib",
                "-a",
                "ipv4",
                "-j",
            ])
            .ok()?;
        let rib: Value = serde_json::from_str(&out).ok()?;
        rib.get("10.1.0.3/32").cloned()
    });
    eprintln!("{paths:#}");
    let ext = paths[0]["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == 16)
        .cloned()
        .unwrap_or_else(|| panic!("no EXTENDED_COMMUNITIES: {paths:#}"));
    let value = ext["value"][0].clone();
    // GoBGP decodes it as a link bandwidth community (type 0x40, sub-type 0x04).
    assert_eq!(value["type"], 0x40, "{ext}");
    assert_eq!(value["subtype"], 4, "{ext}");
    assert_eq!(value["asn"], 64500, "{ext}");
    assert_eq!(value["bandwidth"], 375000.0, "{ext}");
}
