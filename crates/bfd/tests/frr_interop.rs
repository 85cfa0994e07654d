//! Interop with FRR's bfdd in network namespaces: oxlb-bfd-probe in one namespace,
//! FRR (zebra + bfdd) in the other. The session comes Up with the probe's timers as
//! FRR reports them, goes Down on both sides when every packet is dropped (nftables in
//! FRR's namespace, so no link-state event helps either side), and comes back Up.
//! Generous waits, no timed assertions.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{Lab, ProbeLog};

fn scenario(name: &str, ipv6: bool, multihop: bool) {
    if !oxlb_netlab::netns_tests_enabled(name).unwrap() {
        return;
    }
    let lab = Lab::new(ipv6);
    let frr = lab.start_frr(multihop, 100, 100, 3);
    // The probe asks for different timers than FRR so we can see ours on FRR's side.
    let log = ProbeLog::new(name);
    let _probe = lab.start_probe(
        &log,
        multihop,
        &["--rx", "200", "--tx", "150", "--mult", "4"],
    );

    let peer = Lab::wait_frr_status(&frr, "up");
    assert_eq!(peer["remote-receive-interval"], 200, "{peer}");
    assert_eq!(peer["remote-transmit-interval"], 150, "{peer}");
    assert_eq!(peer["remote-detect-multiplier"], 4, "{peer}");
    assert_eq!(peer["multihop"], multihop, "{peer}");
    log.wait_for_count("state Up", 1);

    lab.cut();
    let peer = Lab::wait_frr_status(&frr, "down");
    assert_eq!(
        peer["diagnostic"], "control detection time expired",
        "{peer}"
    );
    log.wait_for_count("state Down", 1);

    lab.restore();
    Lab::wait_frr_status(&frr, "up");
    log.wait_for_count("state Up", 2);
}

#[test]
fn frr_single_hop_ipv4() {
    scenario("frr_single_hop_ipv4", false, false);
}

#[test]
fn frr_single_hop_ipv6() {
    scenario("frr_single_hop_ipv6", true, false);
}

#[test]
fn frr_multihop_ipv4() {
    scenario("frr_multihop_ipv4", false, true);
}

#[test]
fn frr_multihop_ipv6() {
    scenario("frr_multihop_ipv6", true, true);
}

#[test]
fn echo_mode_is_refused_by_the_probe() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb-bfd-probe"))
        .args(["--peer", "127.0.0.1", "--local", "127.0.0.1", "--echo"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("echo mode is not supported; remove echoMode from BFDProfile probe"),
        "{stderr}"
    );
}

#[test]
fn two_probes_come_up_with_each_other() {
    if !oxlb_netlab::netns_tests_enabled("two_probes").unwrap() {
        return;
    }
    let lab = Lab::new(false);
    let node_log = ProbeLog::new("two_probes_node");
    let router_log = ProbeLog::new("two_probes_router");
    let _a = lab.start_probe(&node_log, false, &["--rx", "100", "--tx", "100"]);
    let _b = lab.start_probe_in_router(&router_log, &["--rx", "100", "--tx", "100", "--passive"]);
    node_log.wait_for_count("state Up", 1);
    router_log.wait_for_count("state Up", 1);
    lab.cut();
    node_log.wait_for_count("state Down", 1);
    router_log.wait_for_count("state Down", 1);
    lab.restore();
    node_log.wait_for_count("state Up", 2);
    router_log.wait_for_count("state Up", 2);
}
