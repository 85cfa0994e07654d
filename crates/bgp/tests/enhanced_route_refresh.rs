//! RFC 7313 Enhanced Route Refresh with real routers: the capability is negotiated, a
//! route refresh request after a withdrawal is answered with BoRR/EoRR (what `oxlb drain`
//! uses as the peer's confirmation), and at the moment it is confirmed FRR has no path
//! left. A router without the capability (GoBGP 3) leaves the request unconfirmable.
//!
//! Prints the time from the request to the EoRR as the speaker measured it (its log
//! line): a figure, not an assertion.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, frr_neighbor, frr_path, peer, router_and_node, scratch, wait};
use oxlb_netlab::{Frr, netns_tests_enabled};
use serde_json::{Value, json};

fn config(routes: Value) -> Value {
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["routes"] = routes;
    json!({ "status_interval_ms": 20, "peers": [p] })
}

fn route() -> Value {
    json!([{"prefix": "10.8.0.1/32"}])
}

/// Withdraws the route, waits until the session's Adj-RIB-Out is empty (the UPDATE is
/// written), then asks for the confirmation; returns the status once confirmed (or
/// `None` when the peer cannot confirm) and the speaker's log line about it.
fn withdraw_and_confirm(
    probe: &Probe,
    router_view: impl Fn() -> String,
) -> (Option<Value>, Option<String>) {
    probe.reconfigure(&config(json!([])));
    let before = wait("withdrawal written", 20, || {
        probe
            .peer_status("r")
            .filter(|s| s["prefixes_announced"] == 0 && s["state"] == "Established")
    });
    let asked = before["confirm_requested"].as_u64().unwrap();
    probe.process.signal("USR2").unwrap();
    if before["enhanced_route_refresh"] != true {
        return (None, None);
    }
    let confirmed = oxlb_netlab::wait_until(
        // FRR 8.4 writes its EoRR only with its next message when it has nothing to
        // re-advertise: up to one keepalive interval (30 s with the default 90 s hold).
        std::time::Duration::from_secs(95),
        std::time::Duration::from_millis(20),
        || {
            probe
                .peer_status("r")
                .filter(|s| s["confirmed"].as_u64().is_some_and(|c| c > asked))
        },
    )
    .unwrap_or_else(|| {
        panic!(
            "no EoRR within 95 s; router's view:\n{}\nprobe log:\n{}",
            router_view(),
            probe.log_text()
        )
    });
    let line = probe
        .log_text()
        .lines()
        .find(|l| l.contains("End-of-Route-Refresh"))
        .map(str::to_string);
    (Some(confirmed), line)
}

#[test]
fn frr_confirms_a_withdrawal_with_eorr_and_has_no_path_left() {
    if !netns_tests_enabled("err_frr").unwrap() {
        return;
    }
    let dir = scratch("err-frr");
    let (router, node) = router_and_node(&[]);
    let frr = Frr::start(
        &router,
        "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n \
         no bgp ebgp-requires-policy\n neighbor 10.0.0.2 remote-as 64500\n",
        &["bgpd"],
    )
    .unwrap();
    let probe = Probe::start(&node, &dir, "probe", &config(route()));
    wait("route at FRR", 30, || frr_path(&frr, "ipv4", "10.8.0.1/32"));
    let neighbor = frr_neighbor(&frr, "10.0.0.2").unwrap();
    let caps = &neighbor["neighborCapabilities"];
    assert_eq!(
        caps["enhancedRouteRefresh"], "advertisedAndReceived",
        "{caps:#}"
    );
    let (confirmed, line) = withdraw_and_confirm(&probe, || {
        format!("{:#}", frr_neighbor(&frr, "10.0.0.2").unwrap_or_default())
    });
    // The real proof: right when the speaker says FRR confirmed, FRR has no path.
    let path = frr_path(&frr, "ipv4", "10.8.0.1/32");
    assert!(confirmed.is_some());
    assert!(path.is_none(), "FRR still has the path: {path:#?}");
    println!("FRR: {}", line.unwrap_or_default());
    // FRR's own answer counters: it got our request.
    let stats = &frr_neighbor(&frr, "10.0.0.2").unwrap()["messageStats"];
    assert!(
        stats["routeRefreshRecv"].as_u64().unwrap() >= 1,
        "{stats:#}"
    );
}

#[test]
fn bird2_confirms_a_withdrawal_with_eorr() {
    if !netns_tests_enabled("err_bird").unwrap() {
        return;
    }
    let dir = scratch("err-bird");
    let (router, node) = router_and_node(&[]);
    let conf = dir.join("bird.conf");
    let socket = dir.join("bird.ctl");
    std::fs::write(
        &conf,
        "router id 10.0.0.1;\nprotocol device {}\nprotocol bgp oxlb {\n local 10.0.0.1 as 64501;\n \
         neighbor 10.0.0.2 as 64500;\n enable route refresh on;\n \
 ipv4 { import all; export none; };\n}\n",
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
    let birdc = |args: &[&str]| {
        let mut all = vec!["birdc", "-s", socket.to_str().unwrap()];
        all.extend_from_slice(args);
        router.exec_stdout(&all).ok()
    };
    let probe = Probe::start(&node, &dir, "probe", &config(route()));
    wait("route in BIRD", 30, || {
        birdc(&["show", "route", "for", "10.8.0.1/32"]).filter(|o| o.contains("10.8.0.1/32"))
    });
    let protocol = birdc(&["show", "protocols", "all", "oxlb"]).unwrap_or_else(|| {
        let log = std::fs::read_to_string(dir.join("bird.log")).unwrap_or_default();
        panic!("birdc failed; bird log:\n{log}")
    });
    let caps: Vec<&str> = protocol.lines().filter(|l| l.contains("caps:")).collect();
    assert!(
        caps.iter().all(|l| l.contains("enhanced-refresh")),
        "{protocol}"
    );
    let (confirmed, line) = withdraw_and_confirm(&probe, || {
        birdc(&["show", "protocols", "all", "oxlb"]).unwrap_or_default()
    });
    assert!(confirmed.is_some());
    // birdc fails ("Network not found") once the route is gone.
    let left = birdc(&["show", "route", "for", "10.8.0.1/32"]).unwrap_or_default();
    assert!(!left.contains("10.8.0.1/32"), "BIRD still has it: {left}");
    println!("BIRD: {}", line.unwrap_or_default());
}

#[test]
fn gobgp_without_enhanced_route_refresh_is_unconfirmable() {
    if !netns_tests_enabled("err_gobgp").unwrap() {
        return;
    }
    let dir = scratch("err-gobgp");
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
                "127.0.0.1:50062",
                "--pprof-disable",
            ],
            Some(&dir.join("gobgpd.log")),
        )
        .unwrap();
    let probe = Probe::start(&node, &dir, "probe", &config(route()));
    let gobgp = |args: &[&str]| {
        let mut all = vec!["gobgp", "-u", "127.0.0.1", "-p", "50062"];
        all.extend_from_slice(args);
        router.exec_stdout(&all).ok()
    };
    wait("route in GoBGP", 40, || {
        gobgp(&["global", "rib", "-a", "ipv4"]).filter(|o| o.contains("10.8.0.1/32"))
    });
    let neighbor = gobgp(&["neighbor", "10.0.0.2"]).unwrap();
    println!("GoBGP neighbor:\n{neighbor}");
    let err_line = neighbor
        .lines()
        .find(|l| l.contains("enhanced-route-refresh"))
        .unwrap_or_default()
        .to_string();
    let (confirmed, _) = withdraw_and_confirm(&probe, String::new);
    let status = probe.peer_status("r").unwrap();
    if err_line.contains("advertised and received") {
        // A GoBGP that negotiates it must confirm like the others.
        assert!(confirmed.is_some());
    } else {
        assert_eq!(status["enhanced_route_refresh"], false, "{status}");
        assert!(confirmed.is_none());
        // The request is never sent to a peer that cannot answer it.
        assert_eq!(status["confirm_requested"], 0, "{status}");
    }
    assert_eq!(status["state"], "Established", "{status}");
}

/// The Graceful Restart capability oxlb now always sends (so FRR answers refresh
/// requests) lists no address family when graceful restart is not configured: FRR must
/// still drop our routes at once when the session goes, never keep them as stale
/// (RFC 4724 §3, §4.2).
#[test]
fn without_graceful_restart_frr_keeps_no_stale_route_when_the_session_drops() {
    if !netns_tests_enabled("err_no_gr").unwrap() {
        return;
    }
    let dir = scratch("err-no-gr");
    let (router, node) = router_and_node(&[]);
    let frr = Frr::start(
        &router,
        "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n \
         no bgp ebgp-requires-policy\n neighbor 10.0.0.2 remote-as 64500\n",
        &["bgpd"],
    )
    .unwrap();
    let probe = Probe::start(&node, &dir, "probe", &config(route()));
    wait("route at FRR", 30, || frr_path(&frr, "ipv4", "10.8.0.1/32"));
    let gr = &frr_neighbor(&frr, "10.0.0.2").unwrap()["gracefulRestartInfo"];
    assert_eq!(gr["remoteGrMode"], "Helper", "{gr:#}");
    // Gone without a NOTIFICATION (the process dies; the kernel closes the socket).
    probe.process.signal("KILL").unwrap();
    let mut stale_seen = None;
    wait("FRR to drop the path", 30, || {
        match frr_path(&frr, "ipv4", "10.8.0.1/32") {
            Some(path) => {
                if path["stale"] == true {
                    stale_seen = Some(path);
                }
                None
            }
            None => Some(()),
        }
    });
    assert!(
        stale_seen.is_none(),
        "FRR kept the route as stale: {stale_seen:#?}"
    );
}
