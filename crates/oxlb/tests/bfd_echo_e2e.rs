//! BFD echo mode in `oxlb run`, end to end against FRR 8.4's bfdd with `echo-mode`:
//! the session comes Up, the Echo function starts (FRR advertises a non-zero Required
//! Min Echo RX) and our Echo packets are looped back by the router's forwarding plane
//! (IP forwarding on in the router namespace, as on any router). Then only the echo
//! path is broken (the router drops forwarded UDP to port 3785, Control packets to the
//! router itself still flow): oxlb takes the session Down with diagnostic 2 (Echo
//! Function Failed), FRR sees it, and the BGP session is torn down as for any BFD path
//! failure. The detection time is measured from oxlb's log against the echo interval x
//! detect multiplier and printed as a ratio (a measurement, no timed assertion). The
//! node namespace stays at kernel defaults (no forwarding): oxlb advertises Required
//! Min Echo RX 0 and FRR sends no echoes of its own.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod bfd_lab;

use std::time::{Duration, SystemTime};

use bfd_lab::{Detection, Lab, NODE_IP, ROUTER_IP, WAIT};
use oxlb_netlab::wait_until;

const ECHO_MS: u32 = 100;
const MULT: u32 = 3;
/// How many times the echo path is broken and restored.
const RUNS: usize = 5;

fn bfd_session(status: &serde_json::Value) -> serde_json::Value {
    bfd_lab::bfd_session_to(status, ROUTER_IP)
}

fn bgp_session(status: &serde_json::Value) -> serde_json::Value {
    status["bgp_sessions"]
        .as_array()
        .and_then(|s| s.first().cloned())
        .unwrap_or_default()
}

fn wait_status(
    lab: &Lab,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(WAIT, Duration::from_millis(100), || {
        lab.status().filter(|s| check(s))
    })
    .unwrap_or_else(|| {
        panic!(
            "oxlb status never showed {what}: {:?}\nFRR: {}\noxlb log:\n{}",
            lab.status(),
            lab.frr.vtysh("show bfd peers json").unwrap_or_default(),
            lab.oxlb_log()
        )
    })
}

fn wait_frr(
    lab: &Lab,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(WAIT, Duration::from_millis(100), || {
        lab.frr_bfd_peer().filter(|p| check(p))
    })
    .unwrap_or_else(|| {
        panic!(
            "FRR's BFD peer never showed {what}: {}\noxlb log:\n{}",
            lab.frr.vtysh("show bfd peers json").unwrap_or_default(),
            lab.oxlb_log()
        )
    })
}

fn echo_active(status: &serde_json::Value) -> bool {
    bfd_lab::echo_active_to(status, ROUTER_IP)
}

fn echo_in(status: &serde_json::Value) -> u64 {
    bfd_lab::echo_in_from(status, ROUTER_IP)
}

#[test]
fn echo_failure_takes_bfd_and_bgp_down_with_diag_echo_function_failed() {
    if !oxlb_netlab::netns_tests_enabled("bfd_echo_e2e").unwrap() {
        return;
    }
    let lab = Lab::new(Detection::BfdEcho {
        hold_s: 90,
        echo_ms: ECHO_MS,
    });

    // Up, and the Echo function running: our echoes come back through the router.
    wait_frr(&lab, "up", |p| p["status"] == "up");
    lab.wait_route(true);
    let status = wait_status(&lab, "BFD up with echo active", echo_active);
    eprintln!("oxlb BFD session: {}", bfd_session(&status));
    let first = echo_in(&status);
    let status = wait_status(&lab, "echo packets coming back", |s| {
        echo_in(s) > first + 20
    });
    let session = bfd_session(&status);
    assert_eq!(
        session["echo"],
        format!(
            "active: every {ECHO_MS} ms, detection {} ms",
            ECHO_MS * MULT
        ),
        "{session}"
    );
    assert!(session["echo_packets_out"].as_u64().unwrap() >= echo_in(&status));
    // FRR's view: it advertises its echo receive interval, we advertise 0 (the node
    // does not forward, so it would not loop FRR's echoes) and, per RFC 5880 §6.8.3,
    // slowed our Control packets to 1 s while echo is active.
    let peer = wait_frr(&lab, "our 1 s transmit interval", |p| {
        p["remote-transmit-interval"] == 1000
    });
    eprintln!("FRR's BFD peer with echo active: {peer}");
    assert_eq!(peer["peer"], NODE_IP, "{peer}");
    assert_eq!(peer["echo-receive-interval"], ECHO_MS, "{peer}");
    assert_eq!(peer["remote-echo-receive-interval"], 0, "{peer}");
    assert_eq!(peer["remote-receive-interval"], 100, "{peer}");
    // The router side of this profile as `oxlb router-config` writes it is what the lab
    // runs FRR with (bfd_lab): echo-mode and both echo intervals.
    let file = lab.dir.path.join("config/oxlb.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["router-config", "--flavor", "frr", "--node"])
        .arg(format!("node1={NODE_IP}"))
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "  echo-mode".to_string(),
        format!("  echo transmit-interval {ECHO_MS}"),
        format!("  echo receive-interval {ECHO_MS}"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // Prometheus counters of MetalLB's FRR mode.
    let metrics = lab.metrics().unwrap_or_default();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("metallb_bfd_echo_packet_input{"))
        .unwrap_or_default()
        .to_string();
    let value: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(value > 0, "{metrics}");

    let mut ratios = Vec::new();
    for run in 1..=RUNS {
        let status = wait_status(&lab, "BFD up with echo active", echo_active);
        let before_in = echo_in(&status);
        wait_status(&lab, "echoes flowing", |s| echo_in(s) > before_in + 5);
        let log_len = lab.oxlb_log().len();
        let downs_before = bfd_session(&lab.status().unwrap())["down_transitions"]
            .as_u64()
            .unwrap_or(0);

        let before = SystemTime::now();
        lab.break_echo();
        let after = SystemTime::now();

        let line = wait_until(WAIT, Duration::from_millis(20), || {
            let log = lab.oxlb_log();
            log.get(log_len..)?
                .lines()
                .find(|l| l.contains("went Down") && l.contains("echo_function_failed"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            panic!(
                "no echo failure logged\nstatus: {:?}\noxlb log:\n{}",
                lab.status(),
                lab.oxlb_log()
            )
        });
        let at = bfd_lab::log_time(&line).unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        let floor = f64::from(ECHO_MS * MULT) / 1000.0;
        let (low, high) = (at - bfd_lab::epoch_s(after), at - bfd_lab::epoch_s(before));
        eprintln!(
            "run {run}: echo failure detected {:.0}..{:.0} ms after the echo path broke; \
             echo interval x multiplier = {:.0} ms; ratio {:.2}..{:.2}",
            low * 1000.0,
            high * 1000.0,
            floor * 1000.0,
            low / floor,
            high / floor
        );
        ratios.push((low / floor, high / floor));

        // oxlb: Down with diagnostic 2, counted; FRR: our diagnostic seen.
        let status = wait_status(&lab, "a BFD down event", |s| {
            bfd_session(s)["down_transitions"].as_u64().unwrap_or(0) > downs_before
        });
        eprintln!(
            "run {run}: oxlb BFD session after: {}",
            bfd_session(&status)
        );
        let peer = wait_frr(&lab, "remote diagnostic echo function failed", |p| {
            p["remote-diagnostic"] == "echo function failed"
        });
        if run == 1 {
            eprintln!("run {run}: FRR's BFD peer after the echo failure: {peer}");
            // The BGP session is torn down as for any BFD path failure (it comes back
            // at once, as Control packets still flow, and goes again at the next echo
            // failure: the log and FRR's counters say it, not a status snapshot).
            let log = lab.oxlb_log();
            let closed = log
                .get(log_len..)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains("BFD session went Down: closing the BGP session"));
            assert!(closed.is_some(), "BGP not closed:\n{log}");
            eprintln!("run {run}: {}", closed.unwrap_or_default());
            let text = lab
                .frr
                .vtysh(&format!("show bgp neighbors {NODE_IP} json"))
                .unwrap();
            let neighbour: serde_json::Value = serde_json::from_str(&text).unwrap();
            let dropped = neighbour[NODE_IP]["connectionsDropped"]
                .as_u64()
                .unwrap_or(0);
            eprintln!(
                "run {run}: FRR's BGP neighbour: connectionsDropped {dropped}, last reset: {}",
                neighbour[NODE_IP]["lastResetDueTo"]
            );
            assert!(dropped >= 1, "FRR: {}", neighbour[NODE_IP]);
        }
        lab.restore_echo();
    }
    let lows: Vec<f64> = ratios.iter().map(|r| r.0).collect();
    let highs: Vec<f64> = ratios.iter().map(|r| r.1).collect();
    eprintln!(
        "echo detection / (echo interval x multiplier) over {RUNS} runs: \
         lower bounds {lows:.2?}, upper bounds {highs:.2?}"
    );

    // Restored: BFD and echo back, BGP and the route back.
    wait_status(&lab, "BFD up with echo active again", echo_active);
    wait_status(&lab, "BGP Established again", |s| {
        bgp_session(s)["state"] == "Established"
    });
    lab.wait_route(true);
}
