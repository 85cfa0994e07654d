//! Sessions with BIRD 2, GoBGP and ExaBGP as the router: each must establish with the
//! probe and see our route with the exact attributes. ExaBGP connects to us, so it also
//! covers the accepting (passive) side of the speaker.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, peer, router_and_node, scratch, wait};
use oxlb_netlab::{Netns, netns_tests_enabled};
use serde_json::{Value, json};
use std::path::Path;

fn probe_config(listen: bool) -> Value {
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["routes"] = json!([{
        "prefix": "10.1.0.1/32",
        "communities": ["65535:65282", "64512:100"],
        "large_communities": ["64500:1:2"],
    }]);
    let mut config = json!({ "status_interval_ms": 200, "peers": [p] });
    if listen {
        config["listen"] = json!("0.0.0.0:179");
    }
    config
}

fn start_probe(node: &Netns, dir: &Path, listen: bool) -> Probe {
    Probe::start(node, dir, "probe", &probe_config(listen))
}

#[test]
fn bird2_receives_our_route_with_exact_attributes() {
    if !netns_tests_enabled("bird2").unwrap() {
        return;
    }
    let dir = scratch("bird");
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
    let _probe = start_probe(&node, &dir, false);
    let route = wait("route in BIRD", 30, || {
        let out = router
            .exec_stdout(&[
                "birdc",
                "-s",
                socket.to_str().unwrap(),
                "show",
                "route",
                "for",
                "10.1.0.1/32",
                "all",
            ])
            .ok()?;
        out.contains("BGP.as_path").then_some(out)
    });
    assert!(route.contains("BGP.origin: IGP"), "{route}");
    assert!(route.contains("BGP.as_path: 64500\n"), "{route}");
    assert!(route.contains("BGP.next_hop: 10.0.0.2"), "{route}");
    assert!(
        route.contains("BGP.community: (64512,100) (65535,65282)"),
        "{route}"
    );
    assert!(
        route.contains("BGP.large_community: (64500, 1, 2)"),
        "{route}"
    );
    // BIRD itself attaches its default local_pref (100) to routes learned over eBGP,
    // so the wire check for "no LOCAL_PREF over eBGP" lives in the GoBGP/ExaBGP tests.
}

#[test]
fn gobgp_receives_our_route_with_exact_attributes() {
    if !netns_tests_enabled("gobgp").unwrap() {
        return;
    }
    let dir = scratch("gobgp");
    let (router, node) = router_and_node(&[]);
    let conf = dir.join("gobgpd.toml");
    std::fs::write(
        &conf,
        "[global.config]\n  as = 64501\n  router-id = \"10.0.0.1\"\n\n[[neighbors]]\n  [neighbors.config]\n    \
         neighbor-address = \"10.0.0.2\"\n    peer-as = 64500\n",
    )
    .unwrap();
    let _gobgpd = router
        .spawn(
            &[
                "gobgpd",
                "-f",
                conf.to_str().unwrap(),
                "--api-hosts",
                "127.0.0.1:50061",
                "--pprof-disable",
            ],
            Some(&dir.join("gobgpd.log")),
        )
        .unwrap();
    let _probe = start_probe(&node, &dir, false);
    let paths = wait("route in GoBGP", 40, || {
        let out = router
            .exec_stdout(&[
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50061",
                "global",
                "rib",
                "-a",
                "ipv4",
                "-j",
            ])
            .ok()?;
        let rib: Value = serde_json::from_str(&out).ok()?;
        rib.get("10.1.0.1/32").cloned()
    });
    let attrs = paths[0]["attrs"].as_array().unwrap();
    let attr = |t: u64| {
        attrs
            .iter()
            .find(|a| a["type"] == t)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(attr(1)["value"], 0, "{paths:#}");
    assert_eq!(attr(2)["as_paths"][0]["asns"], json!([64500]), "{paths:#}");
    assert_eq!(attr(3)["nexthop"], "10.0.0.2", "{paths:#}");
    assert!(attr(5).is_null(), "no LOCAL_PREF over eBGP: {paths:#}");
    assert_eq!(
        attr(8)["communities"],
        json!([0xfc00_0064u32, 0xffff_ff02u32]),
        "{paths:#}"
    );
    assert_eq!(
        attr(32)["value"],
        json!([{"ASN": 64500, "LocalData1": 1, "LocalData2": 2}]),
        "{paths:#}"
    );
}

#[test]
fn exabgp_connects_to_us_and_sees_our_route() {
    if !netns_tests_enabled("exabgp").unwrap() {
        return;
    }
    let dir = scratch("exabgp");
    let (router, node) = router_and_node(&[]);
    let dump = dir.join("received.json");
    let script = dir.join("dump.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile IFS= read -r line; do printf '%s\\n' \"$line\" >> {}; done\n",
            dump.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    let conf = dir.join("exabgp.conf");
    std::fs::write(
        &conf,
        format!(
            "process dump {{\n  run {};\n  encoder json;\n}}\n\nneighbor 10.0.0.2 {{\n  router-id 10.0.0.1;\n  \
             local-address 10.0.0.1;\n  local-as 64501;\n  peer-as 64500;\n  family {{ ipv4 unicast; }}\n  \
             api {{\n    processes [ dump ];\n    receive {{ parsed; update; }}\n  }}\n}}\n",
            script.display()
        ),
    )
    .unwrap();
    // The probe listens; ExaBGP (not listening itself) opens the connection.
    let probe = start_probe(&node, &dir, true);
    let mut command = router.command("exabgp");
    command
        .arg(conf.to_str().unwrap())
        .env("exabgp.daemon.user", "root")
        .env("exabgp.tcp.bind", "")
        .env(
            "exabgp.log.destination",
            dir.join("exabgp.log").to_str().unwrap(),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _exabgp = oxlb_netlab::Guarded::new(command.spawn().unwrap());
    let update = wait("UPDATE at ExaBGP", 40, || {
        let text = std::fs::read_to_string(&dump).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "update" && v.to_string().contains("10.1.0.1/32"))
    });
    let attribute = &update["neighbor"]["message"]["update"]["attribute"];
    assert_eq!(attribute["origin"], "igp", "{update:#}");
    assert_eq!(attribute["as-path"], json!([64500]), "{update:#}");
    assert_eq!(
        attribute["community"],
        json!([[64512, 100], [65535, 65282]]),
        "{update:#}"
    );
    assert_eq!(
        attribute["large-community"],
        json!([[64500, 1, 2]]),
        "{update:#}"
    );
    assert!(attribute.get("local-preference").is_none());
    let nlri = &update["neighbor"]["message"]["update"]["announce"]["ipv4 unicast"]["10.0.0.2"];
    assert!(nlri.to_string().contains("10.1.0.1/32"), "{update:#}");
    wait("probe to report Established", 10, || {
        probe
            .peer_status("r")
            .filter(|s| s["state"] == "Established")
    });
}
