//! The responder against real clients (arping, ndisc6) on a bridge: only the owner
//! answers, only for owned IPs, only on selected interfaces; gratuitous ARP moves
//! the workstation's neighbour entry.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Lab, V4, V6, enabled};
use oxlb_netlab::wait_until;

#[test]
fn only_the_owner_answers_arp_and_ndp() {
    if !enabled("only_the_owner_answers_arp_and_ndp") {
        return;
    }
    let mut lab = Lab::new("own");
    lab.start_probe(0, &["--owned", &format!("{V4},{V6}")]);
    // Owned, but only to be announced on an interface node 2 does not have.
    lab.start_probe(
        1,
        &["--owned", "10.9.0.201,fd00:9::201", "--interfaces", "eth9"],
    );
    lab.start_probe(2, &[]);
    let owner = lab.mac(0);

    let macs = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let m = lab.arping(V4);
        (!m.is_empty()).then_some(m)
    })
    .expect("an ARP reply for the owned IP");
    assert_eq!(
        macs,
        BTreeSet::from([owner.clone()]),
        "only the owner answers ARP"
    );

    let macs = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let m = lab.ndisc6(V6);
        (!m.is_empty()).then_some(m)
    })
    .expect("an NA for the owned IPv6 address");
    assert_eq!(macs, BTreeSet::from([owner]), "only the owner answers NS");

    assert!(lab.arping("10.9.0.202").is_empty(), "nobody owns .202");
    assert!(lab.arping("10.9.0.201").is_empty(), "eth9 is not selected");
    assert!(lab.ndisc6("fd00:9::201").is_empty(), "eth9 is not selected");
    assert!(lab.ndisc6("fd00:9::202").is_empty(), "nobody owns ::202");
}

#[test]
fn gratuitous_arp_updates_the_workstations_neighbour_entry() {
    if !enabled("gratuitous_arp_updates_the_workstations_neighbour_entry") {
        return;
    }
    let mut lab = Lab::new("garp");
    lab.start_probe(0, &["--owned", V4]);
    // The workstation resolves the IP through the kernel (a ping nobody answers at
    // the IP layer still leaves a neighbour entry with node 1's MAC).
    let first = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let _ = lab.workstation.exec(&["ping", "-c", "1", "-W", "1", V4]);
        lab.neighbour(V4)
    })
    .expect("a neighbour entry");
    assert_eq!(first, lab.mac(0));

    // Node 1 goes, node 2 takes the IP over: its gratuitous ARP alone must move
    // the entry (nothing on the workstation asks again).
    lab.probes[0] = None;
    lab.start_probe(1, &["--owned", V4]);
    let second = lab.mac(1);
    let moved = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        (lab.neighbour(V4).as_deref() == Some(second.as_str())).then_some(())
    });
    assert!(
        moved.is_some(),
        "neighbour entry still {:?}",
        lab.neighbour(V4)
    );
}

#[test]
fn excluded_interfaces_stay_silent_and_replies_leave_where_requests_came_in() {
    if !enabled("excluded_interfaces_stay_silent_and_replies_leave_where_requests_came_in") {
        return;
    }
    let mut lab = Lab::new("excl");
    // Node 1 has a second link on the same bridge, named like container plumbing
    // (veth*), and another one, lan0, that is allowed.
    oxlb_netlab::veth(&lab.switch, "p8", &lab.nodes[0], "veth9").unwrap();
    lab.switch.attach_to_bridge("p8", "br0").unwrap();
    oxlb_netlab::veth(&lab.switch, "p9", &lab.nodes[0], "lan0").unwrap();
    lab.switch.attach_to_bridge("p9", "br0").unwrap();
    let mac_of = |name: &str| {
        lab.nodes[0]
            .exec_stdout(&["cat", &format!("/sys/class/net/{name}/address")])
            .unwrap()
            .trim()
            .to_string()
    };
    let (eth1, veth9, lan0) = (mac_of("eth1"), mac_of("veth9"), mac_of("lan0"));
    lab.start_probe(0, &["--owned", &format!("{V4},{V6}")]);

    // The broadcast request reaches all three links; each allowed link answers with
    // its own MAC, the excluded veth9 does not answer at all.
    let want = BTreeSet::from([eth1.clone(), lan0.clone()]);
    let got = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let m = lab.arping(V4);
        (m == want).then_some(m)
    });
    assert!(
        got.is_some(),
        "ARP answers {:?}, want {want:?} (veth9 {veth9})",
        lab.arping(V4)
    );
    let got = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let m = lab.ndisc6(V6);
        (m == want).then_some(m)
    });
    assert!(
        got.is_some(),
        "NA answers {:?}, want {want:?}",
        lab.ndisc6(V6)
    );

    // Restricted to lan0 (L2Advertisement interfaces): only lan0 answers.
    lab.probes[0] = None;
    lab.start_probe(0, &["--owned", V4, "--interfaces", "lan0"]);
    let only = BTreeSet::from([lan0]);
    let got = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let m = lab.arping(V4);
        (m == only).then_some(m)
    });
    assert!(
        got.is_some(),
        "ARP answers {:?}, want {only:?}",
        lab.arping(V4)
    );
}
