//! BFD in `oxlb run`, end to end against FRR (zebra, bgpd, bfdd) in network namespaces:
//! a BGPPeer naming a BFDProfile gets a BFD session that FRR sees Up with our timers;
//! dropping every packet at the router (nftables, link stays up) brings BFD Down, which
//! tears the BGP session down on both sides and FRR withdraws the service route, with a
//! 90 s hold time that cannot be what did it within the test's waits; lifting the drop
//! brings BFD, BGP and the route back. Generous waits, no timed assertions.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod bfd_lab;

use std::time::Duration;

use bfd_lab::{Detection, Lab, NODE_IP, ROUTER_IP, WAIT};
use oxlb_netlab::wait_until;

fn wait_frr_bfd(lab: &Lab, status: &str) -> serde_json::Value {
    wait_until(WAIT, Duration::from_millis(100), || {
        lab.frr_bfd_peer().filter(|p| p["status"] == status)
    })
    .unwrap_or_else(|| {
        panic!(
            "FRR's BFD peer never became {status}: {}\noxlb log:\n{}",
            lab.frr.vtysh("show bfd peers json").unwrap_or_default(),
            lab.oxlb_log()
        )
    })
}

/// Waits until `oxlb status -o json` satisfies `check`; returns that report.
fn wait_status(
    lab: &Lab,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(WAIT, Duration::from_millis(200), || {
        lab.status().filter(|s| check(s))
    })
    .unwrap_or_else(|| {
        panic!(
            "oxlb status never showed {what}: {:?}\noxlb log:\n{}",
            lab.status(),
            lab.oxlb_log()
        )
    })
}

fn bgp_session(status: &serde_json::Value) -> serde_json::Value {
    status["bgp_sessions"]
        .as_array()
        .and_then(|s| s.first().cloned())
        .unwrap_or_default()
}

fn bfd_up(status: &serde_json::Value) -> Option<bool> {
    status["bfd_sessions"]
        .as_array()?
        .iter()
        .find(|s| s["peer"] == ROUTER_IP)?["up"]
        .as_bool()
}

/// Waits for `NAME{peer="<router>",vrf="default"} VALUE` on /metrics.
fn wait_bfd_metric(lab: &Lab, name: &str, value: u64) {
    wait_metric(
        lab,
        &format!("{name}{{peer=\"{ROUTER_IP}\",vrf=\"default\"}} {value}"),
    );
}

fn wait_metric(lab: &Lab, line: &str) {
    let seen = wait_until(WAIT, Duration::from_millis(200), || {
        lab.metrics()
            .filter(|m| m.lines().any(|l| l.trim() == line))
    });
    assert!(
        seen.is_some(),
        "/metrics never had {line:?}:\n{}",
        lab.metrics().unwrap_or_default()
    );
}

#[test]
fn bfd_down_tears_bgp_down_and_frr_withdraws_the_route() {
    if !oxlb_netlab::netns_tests_enabled("bfd_e2e").unwrap() {
        return;
    }
    let lab = Lab::new(Detection::Bfd { hold_s: 90 });

    // Up: FRR's bfdd sees the session with the profile's timers from our side.
    let peer = wait_frr_bfd(&lab, "up");
    assert_eq!(peer["peer"], NODE_IP, "{peer}");
    assert_eq!(peer["remote-receive-interval"], 100, "{peer}");
    assert_eq!(peer["remote-transmit-interval"], 100, "{peer}");
    assert_eq!(peer["remote-detect-multiplier"], 3, "{peer}");
    assert_eq!(peer["receive-interval"], 100, "{peer}");
    assert_eq!(peer["transmit-interval"], 100, "{peer}");
    lab.wait_route(true);
    let status = wait_status(&lab, "BGP Established and BFD up", |s| {
        bgp_session(s)["state"] == "Established" && bfd_up(s) == Some(true)
    });
    // The BGP label is host:port as in MetalLB's native speaker.
    assert_eq!(
        bgp_session(&status)["address"],
        format!("{ROUTER_IP}:179"),
        "{status}"
    );
    wait_bfd_metric(&lab, "metallb_bfd_session_up", 1);
    // MetalLB's FRR-mode counters: control packets both ways, messages of the BGP
    // session by type (an OPEN each way at least: a connection collision adds one).
    let metrics = lab.metrics().unwrap_or_default();
    let value = |name: &str, peer: &str| -> u64 {
        let prefix = format!("{name}{{peer=\"{peer}\",vrf=\"default\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{metrics}"))
    };
    assert!(value("metallb_bfd_control_packet_input", ROUTER_IP) > 0);
    assert!(value("metallb_bfd_control_packet_output", ROUTER_IP) > 0);
    let bgp_peer = format!("{ROUTER_IP}:179");
    assert!(value("metallb_bgp_opens_sent", &bgp_peer) >= 1);
    assert!(value("metallb_bgp_opens_received", &bgp_peer) >= 1);
    assert!(value("metallb_bgp_keepalives_received", &bgp_peer) >= 1);
    assert!(value("metallb_bgp_total_sent", &bgp_peer) >= 3);

    // Cut: every packet dropped at the router, the link stays up.
    lab.cut();
    let peer = wait_frr_bfd(&lab, "down");
    assert_eq!(
        peer["diagnostic"], "control detection time expired",
        "{peer}"
    );
    lab.wait_route(false);
    let status = wait_status(&lab, "BGP torn down by BFD", |s| {
        let session = bgp_session(s);
        session["state"] != "Established"
            && session["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("BFD"))
            && bfd_up(s) == Some(false)
    });
    let state = lab.frr_bgp_state();
    assert_ne!(state.as_deref(), Some("Established"), "FRR: {state:?}");
    wait_bfd_metric(&lab, "metallb_bfd_session_up", 0);
    wait_bfd_metric(&lab, "metallb_bfd_session_down_events", 1);
    eprintln!("after the cut: {}", bgp_session(&status));

    // Restore: BFD Up, BGP back, the route back.
    lab.restore();
    wait_frr_bfd(&lab, "up");
    wait_status(&lab, "BGP Established again with BFD up", |s| {
        bgp_session(s)["state"] == "Established" && bfd_up(s) == Some(true)
    });
    lab.wait_route(true);
    wait_bfd_metric(&lab, "metallb_bfd_session_up", 1);
    wait_bfd_metric(&lab, "metallb_bfd_session_up_events", 2);
}

/// FRR (8.4 as in Debian 12, and later) registers a BGP neighbour's BFD session before
/// the BGP session exists, without a source address; when BGP reaches Established it
/// learns the local address and replaces the BFD session (`bgp_peer_bfd_update_source`).
/// If that first session was Up, FRR's bgpd reads the replacement as BFD Down and resets
/// the BGP session it just brought up (Cease, subcode 10), and our side hears the old
/// session say Down ("neighbor signaled session down", though we never did). Seen in CI
/// as a lost request through the router in `cp_vip_beside_speaker` whenever a node's
/// BGP session came up later than its BFD session. So oxlb starts BFD only once the BGP
/// session has settled: here BGP is held back by the router for a few seconds while
/// FRR's BFD session waits, and the BGP session must come up once and stay.
#[test]
fn bfd_starts_after_bgp_so_frr_never_resets_the_new_session() {
    if !oxlb_netlab::netns_tests_enabled("bfd_e2e").unwrap() {
        return;
    }
    let lab = Lab::start(Detection::Bfd { hold_s: 90 }, true);
    // BGP blocked: FRR's BFD session exists and calls; ours does not answer yet.
    std::thread::sleep(Duration::from_secs(3));
    let peer = lab.frr_bfd_peer().unwrap_or_default();
    assert_ne!(peer["status"], "up", "BFD Up before BGP: {peer}");
    let status = lab.status().unwrap_or_default();
    assert_eq!(bfd_up(&status), None, "{status}");

    lab.unblock_bgp();
    lab.wait_route(true);
    wait_frr_bfd(&lab, "up");
    wait_status(&lab, "BGP Established and BFD up", |s| {
        bgp_session(s)["state"] == "Established" && bfd_up(s) == Some(true)
    });
    std::thread::sleep(Duration::from_secs(2));
    let text = lab
        .frr
        .vtysh(&format!("show bgp neighbors {NODE_IP} json"))
        .unwrap();
    let neighbour: serde_json::Value = serde_json::from_str(&text).unwrap();
    let neighbour = &neighbour[NODE_IP];
    assert_eq!(neighbour["bgpState"], "Established", "{neighbour}");
    assert_eq!(
        (
            neighbour["connectionsEstablished"].as_u64(),
            neighbour["connectionsDropped"].as_u64()
        ),
        (Some(1), Some(0)),
        "the BGP session was reset after it came up\nFRR BFD: {}\noxlb log:\n{}",
        lab.frr.vtysh("show bfd peers json").unwrap_or_default(),
        lab.oxlb_log()
    );
    let log = lab.oxlb_log();
    assert!(!log.contains("went Down"), "{log}");
    assert!(lab.has_route());
}
