//! FRR scenarios beyond the basics: TCP MD5 right and wrong, hold timer expiry when the
//! router freezes, route refresh, graceful restart keeping routes and forwarding, three
//! speakers giving ECMP, and eBGP multihop through a namespace in between.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, frr_established, frr_neighbor, frr_path, peer, router_and_node, scratch, wait};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth};
use serde_json::json;

const BASE: &str = "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n no bgp ebgp-requires-policy\n";

#[test]
fn md5_right_password_establishes_wrong_one_does_not_and_says_why() {
    if !netns_tests_enabled("md5").unwrap() {
        return;
    }
    let dir = scratch("md5");
    let (router, node) = router_and_node(&["10.0.0.3/24"]);
    let conf = format!(
        "{BASE} neighbor 10.0.0.2 remote-as 64500\n neighbor 10.0.0.2 password s3cret\n \
         neighbor 10.0.0.3 remote-as 64500\n neighbor 10.0.0.3 password s3cret\n"
    );
    let frr = Frr::start(&router, &conf, &["bgpd"]).unwrap();
    let mut good = peer("good", 64500, 64501, "10.0.0.1", "10.0.0.2");
    good["source_address"] = json!("10.0.0.2");
    good["password"] = json!("s3cret");
    good["routes"] = json!([{"prefix": "10.5.0.1/32"}]);
    let mut bad = peer("bad", 64500, 64501, "10.0.0.1", "10.0.0.3");
    bad["source_address"] = json!("10.0.0.3");
    bad["password"] = json!("wrong");
    let probe = Probe::start(&node, &dir, "probe", &json!({"status_interval_ms": 200, "peers": [good, bad]}));
    wait("MD5 session", 30, || frr_path(&frr, "ipv4", "10.5.0.1/32"));
    let status = wait("the wrong password to be reported", 30, || {
        probe.peer_status("bad").filter(|s| s["last_error"].is_string())
    });
    assert_ne!(status["state"], "Established");
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("could not connect to 10.0.0.1") && error.contains("MD5"), "{error}");
    assert!(frr_established(&frr, "10.0.0.3").is_none());
}

#[test]
fn hold_timer_expires_when_the_router_freezes() {
    if !netns_tests_enabled("hold").unwrap() {
        return;
    }
    let dir = scratch("hold");
    let (router, node) = router_and_node(&[]);
    let frr = Frr::start(&router, &format!("{BASE} neighbor 10.0.0.2 remote-as 64500\n"), &["bgpd"]).unwrap();
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["hold_time"] = json!(3);
    let probe = Probe::start(&node, &dir, "probe", &json!({"status_interval_ms": 200, "peers": [p]}));
    wait("session", 30, || frr_established(&frr, "10.0.0.2"));
    let bgpd = frr.pid("bgpd").unwrap().to_string();
    std::process::Command::new("kill").args(["-STOP", &bgpd]).status().unwrap();
    let status = wait("hold timer expiry", 20, || {
        probe.peer_status("r").filter(|s| {
            s["last_error"].as_str().is_some_and(|e| e.starts_with("hold timer expired"))
        })
    });
    std::process::Command::new("kill").args(["-CONT", &bgpd]).status().unwrap();
    assert_ne!(status["state"], "Established", "{status}");
    assert_eq!(
        status["last_error"],
        "hold timer expired: no message from 10.0.0.1 in 3 s"
    );
    // And it comes back once the router thaws.
    wait("re-established", 60, || frr_established(&frr, "10.0.0.2"));
}

#[test]
fn route_refresh_is_answered_with_the_adj_rib_out() {
    if !netns_tests_enabled("refresh").unwrap() {
        return;
    }
    let dir = scratch("refresh");
    let (router, node) = router_and_node(&[]);
    let frr = Frr::start(&router, &format!("{BASE} neighbor 10.0.0.2 remote-as 64500\n"), &["bgpd"]).unwrap();
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["routes"] = json!([{"prefix": "10.6.0.1/32"}, {"prefix": "10.6.0.2/32"}]);
    let probe = Probe::start(&node, &dir, "probe", &json!({"status_interval_ms": 200, "peers": [p]}));
    wait("routes", 30, || frr_path(&frr, "ipv4", "10.6.0.2/32"));
    let before = wait("status", 10, || probe.peer_status("r").filter(|s| s["state"] == "Established"))["updates_sent"]
        .as_u64()
        .unwrap();
    let received = |n: &serde_json::Value| n["messageStats"]["updatesRecv"].as_u64();
    let recv_before = received(&frr_neighbor(&frr, "10.0.0.2").unwrap()).unwrap();
    frr.vtysh("clear bgp ipv4 unicast 10.0.0.2 soft in").unwrap();
    wait("a refreshed UPDATE at FRR", 20, || {
        received(&frr_neighbor(&frr, "10.0.0.2")?).filter(|&n| n > recv_before)
    });
    let after = wait("updates_sent to grow", 10, || {
        probe.peer_status("r").and_then(|s| s["updates_sent"].as_u64()).filter(|&n| n > before)
    });
    assert!(after > before);
    frr.vtysh("clear bgp ipv4 unicast 10.0.0.2 soft out").unwrap();
    assert!(frr_path(&frr, "ipv4", "10.6.0.1/32").is_some());
    assert_eq!(frr_neighbor(&frr, "10.0.0.2").unwrap()["connectionsEstablished"], 1);
}

#[test]
fn graceful_restart_keeps_routes_and_forwarding_at_frr() {
    if !netns_tests_enabled("graceful_restart").unwrap() {
        return;
    }
    let dir = scratch("gr");
    let (router, node) = router_and_node(&[]);
    let conf = format!("{BASE} bgp graceful-restart\n neighbor 10.0.0.2 remote-as 64500\n");
    let frr = Frr::start(&router, &conf, &["zebra", "bgpd"]).unwrap();
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["graceful_restart"] = json!(true);
    p["routes"] = json!([{"prefix": "10.7.0.1/32"}]);
    let config = json!({"status_interval_ms": 200, "on_term": "graceful", "peers": [p]});
    let mut probe = Probe::start(&node, &dir, "probe", &config);
    wait("route", 30, || frr_path(&frr, "ipv4", "10.7.0.1/32"));
    wait("kernel route", 10, || {
        router.exec_stdout(&["ip", "route", "show", "10.7.0.1"]).ok().filter(|r| r.contains("10.0.0.2"))
    });
    probe.stop();
    // FRR holds the route as stale and the kernel keeps forwarding.
    let stale = wait("stale route", 15, || {
        frr_path(&frr, "ipv4", "10.7.0.1/32").filter(|p| p["stale"] == true)
    });
    assert_eq!(stale["nexthops"][0]["ip"], "10.0.0.2");
    let kernel = router.exec_stdout(&["ip", "route", "show", "10.7.0.1"]).unwrap();
    assert!(kernel.contains("via 10.0.0.2"), "kernel route gone during restart: {kernel}");
    // Back up: End-of-RIB clears the stale flag; the route never went away.
    let _probe = Probe::start(&node, &dir, "probe2", &config);
    wait("fresh route", 30, || {
        frr_path(&frr, "ipv4", "10.7.0.1/32").filter(|p| p.get("stale").is_none() && frr_established(&frr, "10.0.0.2").is_some())
    });
}

#[test]
fn three_speakers_give_frr_three_ecmp_paths_and_a_multipath_kernel_route() {
    if !netns_tests_enabled("ecmp").unwrap() {
        return;
    }
    let dir = scratch("ecmp");
    let router = Netns::new("rt").unwrap();
    router.add_bridge("br0").unwrap();
    router.add_address("br0", "10.0.0.1/24").unwrap();
    let conf = format!(
        "{BASE} bgp bestpath as-path multipath-relax\n neighbor 10.0.0.11 remote-as 64500\n neighbor 10.0.0.12 remote-as 64500\n \
         neighbor 10.0.0.13 remote-as 64500\n address-family ipv4 unicast\n  maximum-paths 3\n exit-address-family\n"
    );
    let frr = Frr::start(&router, &conf, &["zebra", "bgpd"]).unwrap();
    let mut nodes = Vec::new();
    let mut probes = Vec::new();
    for i in 1..=3 {
        let node = Netns::new(&format!("n{i}")).unwrap();
        let (r_if, n_if) = (format!("r{i}"), format!("n{i}"));
        veth(&router, &r_if, &node, &n_if).unwrap();
        router.attach_to_bridge(&r_if, "br0").unwrap();
        let address = format!("10.0.0.1{i}");
        node.add_address(&n_if, &format!("{address}/24")).unwrap();
        let mut p = peer("r", 64500, 64501, "10.0.0.1", &address);
        p["routes"] = json!([{"prefix": "10.9.9.9/32"}]);
        probes.push(Probe::start(&node, &dir, &format!("probe{i}"), &json!({"peers": [p]})));
        nodes.push(node);
    }
    let paths = wait("three paths at FRR", 40, || {
        let out = common::json(&frr.vtysh("show bgp ipv4 unicast 10.9.9.9/32 json").ok()?)?;
        let paths = out["paths"].as_array()?.clone();
        (paths.len() == 3 && paths.iter().filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true).count() == 3)
            .then_some(paths)
    });
    assert_eq!(paths.len(), 3);
    let kernel = wait("multipath kernel route", 20, || {
        router
            .exec_stdout(&["ip", "route", "show", "10.9.9.9"])
            .ok()
            .filter(|r| r.matches("nexthop via").count() == 3)
    });
    for i in 1..=3 {
        assert!(kernel.contains(&format!("via 10.0.0.1{i}")), "{kernel}");
    }
}

#[test]
fn ebgp_multihop_through_a_namespace_in_between() {
    if !netns_tests_enabled("multihop").unwrap() {
        return;
    }
    let dir = scratch("multihop");
    let router = Netns::new("rt").unwrap();
    let middle = Netns::new("mid").unwrap();
    let node = Netns::new("nd").unwrap();
    veth(&node, "n0", &middle, "m0").unwrap();
    veth(&middle, "m1", &router, "r0").unwrap();
    node.add_address("n0", "10.1.0.2/24").unwrap();
    middle.add_address("m0", "10.1.0.1/24").unwrap();
    middle.add_address("m1", "10.2.0.1/24").unwrap();
    router.add_address("r0", "10.2.0.2/24").unwrap();
    middle.enable_forwarding().unwrap();
    node.exec(&["ip", "route", "add", "default", "via", "10.1.0.1"]).unwrap();
    router.exec(&["ip", "route", "add", "10.1.0.0/24", "via", "10.2.0.1"]).unwrap();
    let conf = "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.2.0.2\n no bgp ebgp-requires-policy\n \
                neighbor 10.1.0.2 remote-as 64500\n neighbor 10.1.0.2 ebgp-multihop 5\n";
    let frr = Frr::start(&router, conf, &["bgpd"]).unwrap();
    let mut p = peer("r", 64500, 64501, "10.2.0.2", "10.1.0.2");
    p["ebgp_multihop"] = json!(true);
    p["routes"] = json!([{"prefix": "10.8.0.1/32"}]);
    let _probe = Probe::start(&node, &dir, "probe", &json!({"peers": [p]}));
    let path = wait("route over multihop", 30, || frr_path(&frr, "ipv4", "10.8.0.1/32"));
    assert_eq!(path["nexthops"][0]["ip"], "10.1.0.2");
}
