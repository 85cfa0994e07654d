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
    assert_source_port_in_range(&lab);

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

/// RFC 5881 §4: our sending socket is bound to a source port in 49152..=65535. (The
/// receive socket is bound to the same address, on the well-known port 3784 or 4784
/// (RFC 5883 §5): not a sending socket.)
fn assert_source_port_in_range(lab: &Lab) {
    let sockets = lab.node.exec_stdout(&["ss", "-uanH"]).unwrap();
    let ports: Vec<u16> = sockets
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter(|local| local.contains(lab.node_ip))
        .filter_map(|local| local.rsplit(':').next()?.parse().ok())
        .filter(|port| ![3784, 4784].contains(port))
        .collect();
    assert!(
        !ports.is_empty() && ports.iter().all(|p| *p >= 49152),
        "sending ports {ports:?} in:\n{sockets}"
    );
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

/// IPv6 link-local single hop (as under BGP unnumbered): the session is tied to the
/// interface on both ends.
#[test]
fn frr_single_hop_ipv6_link_local() {
    if !oxlb_netlab::netns_tests_enabled("frr_link_local").unwrap() {
        return;
    }
    let lab = Lab::new(true);
    lab.router.add_address("r0", "fe80::1/64").unwrap();
    lab.node.add_address("n0", "fe80::2/64").unwrap();
    let config = "frr defaults traditional\nbfd\n peer fe80::2 interface r0 local-address fe80::1\n  \
                  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !\n!\n";
    let frr = oxlb_netlab::Frr::start(&lab.router, config, &["zebra", "bfdd"]).unwrap();
    let log = ProbeLog::new("frr_link_local");
    let argv = [
        env!("CARGO_BIN_EXE_oxlb-bfd-probe"),
        "--peer",
        "fe80::1",
        "--local",
        "fe80::2",
        "--interface",
        "n0",
        "--rx",
        "200",
        "--tx",
        "150",
    ];
    let _probe = lab.node.spawn(&argv, Some(&log.path)).unwrap();
    let peer = Lab::wait_frr_status(&frr, "up");
    assert_eq!(peer["remote-receive-interval"], 200, "{peer}");
    log.wait_for_count("state Up", 1);
    lab.cut();
    Lab::wait_frr_status(&frr, "down");
    log.wait_for_count("state Down", 1);
    lab.restore();
    Lab::wait_frr_status(&frr, "up");
    log.wait_for_count("state Up", 2);
}

#[test]
fn frr_follows_a_poll_sequence_when_our_timers_change() {
    if !oxlb_netlab::netns_tests_enabled("frr_poll").unwrap() {
        return;
    }
    let lab = Lab::new(false);
    let frr = lab.start_frr(false, 100, 100, 3);
    let log = ProbeLog::new("frr_poll");
    let _probe = lab.start_probe(
        &log,
        false,
        &[
            "--rx",
            "200",
            "--tx",
            "150",
            "--mult",
            "4",
            "--retime",
            "300:250:5",
        ],
    );
    Lab::wait_frr_status(&frr, "up");
    log.wait_for_count("retimed", 1);
    let peer = oxlb_netlab::wait_until(common::WAIT, std::time::Duration::from_millis(100), || {
        Lab::frr_peer(&frr).filter(|p| p["remote-transmit-interval"] == 300)
    })
    .expect("FRR never saw the new transmit interval");
    assert_eq!(peer["remote-receive-interval"], 250, "{peer}");
    assert_eq!(peer["remote-detect-multiplier"], 5, "{peer}");
    assert_eq!(peer["status"], "up", "{peer}");
    assert_eq!(
        log.count("state Down"),
        0,
        "the change must not flap the session"
    );
}

#[test]
fn frr_brings_up_a_passive_probe() {
    if !oxlb_netlab::netns_tests_enabled("frr_passive").unwrap() {
        return;
    }
    let lab = Lab::new(true);
    let frr = lab.start_frr(false, 100, 100, 3);
    let log = ProbeLog::new("frr_passive");
    let _probe = lab.start_probe(&log, false, &["--passive", "--rx", "100", "--tx", "100"]);
    Lab::wait_frr_status(&frr, "up");
    log.wait_for_count("state Up", 1);
}

/// Packets a single-hop session must refuse (RFC 5881 §5 TTL, RFC 5880 §6.8.6 A bit)
/// are dropped and counted by reason, and the session carries on.
#[test]
fn bad_ttl_and_authenticated_packets_are_dropped_and_counted() {
    if !oxlb_netlab::netns_tests_enabled("bfd_drops").unwrap() {
        return;
    }
    let lab = Lab::new(false);
    let log = ProbeLog::new("bfd_drops");
    let _probe = lab.start_probe(&log, false, &[]);
    // Down, my discriminator 4242, your 0, 1 s / 1 s, mult 3.
    let script = format!(
        "import socket\n\
         down = bytes([0x20,0x40,3,24, 0,0,0x10,0x92, 0,0,0,0, 0,0x0f,0x42,0x40, 0,0x0f,0x42,0x40, 0,0,0,0])\n\
         auth = bytes([0x20,0x44,3,31]) + down[4:] + bytes([1,7,1]) + b'abcd'\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{r}', 49999))\n\
         s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)\n\
         s.sendto(down, ('{n}', 3784))\n\
         s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)\n\
         s.sendto(auth, ('{n}', 3784))\n",
        r = lab.router_ip,
        n = lab.node_ip,
    );
    lab.router.exec(&["python3", "-c", &script]).unwrap();
    log.wait_for_count("dropped bad_ttl 1", 1);
    log.wait_for_count("dropped authentication_unsupported 1", 1);
    assert_eq!(log.count("state"), 0, "nothing got through to the session");
}

/// Removing a session tells the peer AdminDown (RFC 5880 §6.8.16): FRR goes down at
/// once with the peer's diagnostic "administratively down", no detection timeout.
#[test]
fn removing_a_session_signals_admin_down_to_frr() {
    if !oxlb_netlab::netns_tests_enabled("frr_admin_down").unwrap() {
        return;
    }
    let lab = Lab::new(false);
    // Long detection time on FRR's side, so only our AdminDown can bring it down soon.
    let frr = lab.start_frr(false, 100, 100, 3);
    let log = ProbeLog::new("frr_admin_down");
    let _probe = lab.start_probe(
        &log,
        false,
        &[
            "--tx",
            "100",
            "--rx",
            "100",
            "--mult",
            "50",
            "--remove-after-up",
            "1",
        ],
    );
    Lab::wait_frr_status(&frr, "up");
    log.wait_for_count("removed", 1);
    let peer = Lab::wait_frr_status(&frr, "down");
    assert_eq!(peer["remote-diagnostic"], "administratively down", "{peer}");
}

#[test]
fn an_echo_interval_out_of_range_is_refused_by_the_probe() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb-bfd-probe"))
        .args(["--peer", "127.0.0.1", "--local", "127.0.0.1", "--echo", "5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BFDProfile probe: echoInterval 5 ms is outside 10..60000 ms"),
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
