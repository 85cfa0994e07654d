//! Issue #21: when the router's bgpd restarts, the speaker must be back as soon as the
//! router listens again: at once on an inbound connection (with a listener), and by an
//! outbound retry that starts well under 200 ms and then backs off. FRR in a namespace;
//! the times are printed (not asserted: timings on a shared machine vary); that the
//! session and its route come back is asserted.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Probe, frr_established, frr_path, peer, scratch, wait};
use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth, wait_until};
use serde_json::json;
use std::time::{Duration, Instant};

const CONF: &str = "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.0.1\n no bgp ebgp-requires-policy\n neighbor 10.0.0.2 remote-as 64500\n";

fn fast_wait<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    wait_until(Duration::from_secs(30), Duration::from_millis(5), probe)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Restarts bgpd; returns the time from SIGTERM until the new bgpd listens on port
/// 179, and from then until the session is Established again.
fn restart_and_time(router: &Netns, frr: &Frr) -> (Duration, Duration) {
    let killed = Instant::now();
    frr.restart("bgpd").unwrap();
    // Polled tightly: `ss` in the namespace costs a few ms.
    fast_wait("the new bgpd to listen", || {
        router
            .exec_stdout(&["ss", "-Hltn", "sport = :179"])
            .ok()
            .filter(|out| !out.trim().is_empty())
    });
    let listening = Instant::now();
    let up = wait("session re-established after the bgpd restart", 60, || {
        // FRR says how long the session has been up: exact, whatever vtysh costs.
        let n = frr_established(frr, "10.0.0.2")?;
        let up_ms = n["bgpTimerUpMsec"].as_u64()?;
        Some(Instant::now() - Duration::from_millis(up_ms))
    });
    wait("the route again", 30, || {
        frr_path(frr, "ipv4", "10.9.0.1/32")
    });
    (listening - killed, up.saturating_duration_since(listening))
}

fn run(listen: bool) {
    let dir = scratch(if listen { "restart-listen" } else { "restart" });
    let router = Netns::new("bgprt").unwrap();
    let node = Netns::new("bgpnd").unwrap();
    veth(&router, "r0", &node, "n0").unwrap();
    router.add_address("r0", "10.0.0.1/24").unwrap();
    node.add_address("n0", "10.0.0.2/24").unwrap();
    let frr = Frr::start(&router, CONF, &["bgpd"]).unwrap();
    let mut p = peer("r", 64500, 64501, "10.0.0.1", "10.0.0.2");
    p["routes"] = json!([{"prefix": "10.9.0.1/32"}]);
    // The default connectTime (120 s) as in production, not the tests' usual 2 s.
    p["connect_retry_time"] = json!(120);
    let mut config = json!({"status_interval_ms": 200, "peers": [p]});
    if listen {
        config["listen"] = json!("10.0.0.2:179");
    }
    let _probe = Probe::start(&node, &dir, "probe", &config);
    wait("first session", 30, || {
        frr_path(&frr, "ipv4", "10.9.0.1/32")
    });
    let mode = if listen {
        "with listener"
    } else {
        "active only"
    };
    for round in 1..=3 {
        let (down, back) = restart_and_time(&router, &frr);
        println!(
            "{mode} round {round}: bgpd listened again {:.3} s after SIGTERM; Established {:.3} s after that",
            down.as_secs_f64(),
            back.as_secs_f64()
        );
    }
    if std::env::var_os("BGP_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn reconnects_at_once_after_a_bgpd_restart_active_only() {
    if !netns_tests_enabled("frr_restart").unwrap() {
        return;
    }
    run(false);
}

#[test]
fn reconnects_at_once_after_a_bgpd_restart_with_a_listener() {
    if !netns_tests_enabled("frr_restart_listen").unwrap() {
        return;
    }
    run(true);
}
