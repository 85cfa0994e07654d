//! Three speakers with membership on a bridge, a workstation asking with arping:
//! SIGKILL of the owner moves the IP (and the workstation's neighbour entry), a clean
//! stop hands over, a partition and its heal end with exactly one owner.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Lab, V4, V6, enabled};
use oxlb_netlab::wait_until;

const WAIT: Duration = Duration::from_secs(30);

fn three_members(tag: &str) -> (Lab, usize) {
    let mut lab = Lab::new(tag);
    for i in 0..3 {
        lab.start_member(i);
    }
    let mac = lab.single_owner(V4, WAIT).expect("one owner after start");
    let owner = lab.node_of(&mac).unwrap();
    // The election winner among all three, and the IPv6 address follows the rule too.
    let expected =
        oxlb_announce::l2_owner(["node1", "node2", "node3"], &V4.parse().unwrap()).unwrap();
    assert_eq!(format!("node{}", owner + 1), expected);
    (lab, owner)
}

#[test]
fn sigkill_of_the_owner_moves_the_ip_and_the_neighbour_entry() {
    if !enabled("sigkill_of_the_owner_moves_the_ip_and_the_neighbour_entry") {
        return;
    }
    let (lab, owner) = three_members("kill");
    let v6_owner = wait_until(WAIT, Duration::from_millis(200), || {
        let m = lab.ndisc6(V6);
        (m.len() == 1).then(|| m.into_iter().next()).flatten()
    })
    .expect("one NA for the IPv6 address");
    let expected_v6 =
        oxlb_announce::l2_owner(["node1", "node2", "node3"], &V6.parse().unwrap()).unwrap();
    assert_eq!(
        format!("node{}", lab.node_of(&v6_owner).unwrap() + 1),
        expected_v6
    );

    wait_until(WAIT, Duration::from_millis(200), || {
        let _ = lab.workstation.exec(&["ping", "-c", "1", "-W", "1", V4]);
        lab.neighbour(V4)
    })
    .expect("neighbour entry");
    assert_eq!(lab.neighbour(V4).unwrap(), lab.mac(owner));

    lab.probes[owner].as_ref().unwrap().signal("KILL").unwrap();
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i != owner)
        .map(|i| format!("node{}", i + 1))
        .collect();
    let next = oxlb_announce::l2_owner(survivors.iter().map(String::as_str), &V4.parse().unwrap())
        .unwrap();
    let next_index: usize = next.trim_start_matches("node").parse::<usize>().unwrap() - 1;
    let next_mac = lab.mac(next_index);
    // The gratuitous ARP alone moves the workstation's entry.
    let moved = wait_until(WAIT, Duration::from_millis(50), || {
        (lab.neighbour(V4).as_deref() == Some(next_mac.as_str())).then_some(())
    });
    assert!(
        moved.is_some(),
        "neighbour still {:?}; logs {}",
        lab.neighbour(V4),
        lab.log(next_index)
    );
    assert_eq!(lab.single_owner(V4, WAIT), Some(next_mac));
}

#[test]
fn clean_stop_hands_over() {
    if !enabled("clean_stop_hands_over") {
        return;
    }
    let (mut lab, owner) = three_members("stop");
    let old_mac = lab.mac(owner);
    lab.probes[owner].as_ref().unwrap().signal("TERM").unwrap();
    let new_mac = wait_until(WAIT, Duration::from_millis(50), || {
        let macs = lab.arping(V4);
        (macs.len() == 1 && !macs.contains(&old_mac))
            .then(|| macs.into_iter().next())
            .flatten()
    })
    .expect("a new single owner");
    assert_ne!(lab.node_of(&new_mac), Some(owner));
    let exited = wait_until(WAIT, Duration::from_millis(50), || {
        lab.probes[owner]
            .as_mut()
            .unwrap()
            .has_exited()
            .then_some(())
    });
    assert!(exited.is_some(), "the stopped speaker exits");
    assert!(lab.log(owner).contains("owned"), "{}", lab.log(owner));
}

#[test]
fn partition_and_heal_end_with_one_owner() {
    if !enabled("partition_and_heal_end_with_one_owner") {
        return;
    }
    let (lab, owner) = three_members("part");
    let before = lab.mac(owner);
    lab.nodes[owner].link_down("eth1").unwrap();
    // The other side elects a new owner among the two it still sees.
    let during = wait_until(WAIT, Duration::from_millis(100), || {
        lab.single_owner(V4, Duration::from_secs(5))
            .filter(|m| *m != before)
    })
    .expect("a new owner while the old one is cut off");
    assert_ne!(during, before);
    // Long enough for both sides to back off announcing to the missing seeds.
    std::thread::sleep(Duration::from_secs(8));
    lab.nodes[owner].link_up("eth1").unwrap();
    let healing = std::time::Instant::now();
    // Healed: membership converges to all three and the winner among them, the old
    // owner, is again the only one answering.
    let healed = wait_until(WAIT, Duration::from_millis(200), || {
        let macs = lab.arping(V4);
        (macs == BTreeSet::from([before.clone()])).then_some(())
    });
    assert!(healed.is_some(), "after heal: {:?}", lab.arping(V4));
    eprintln!("healed to one owner within {:?}", healing.elapsed());
    // And it stays so.
    for _ in 0..5 {
        assert_eq!(lab.arping(V4), BTreeSet::from([before.clone()]));
    }
}
