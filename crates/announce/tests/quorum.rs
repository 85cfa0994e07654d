//! The Layer 2 quorum rule under random partitions and deaths: every speaker decides
//! alone from its own view (the group it can gossip with, the speakers a witness has
//! confirmed gone), and still at most one running speaker answers for each IP, and one
//! does whenever a majority of the speakers can gossip with each other.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use oxlb_announce::l2_owner;
use oxlb_announce::quorum::{Standing, standing};
use proptest::prelude::*;

/// One speaker in the scenario: dead, or running in a gossip group (the speakers it
/// hears from: a partition splits the running ones into groups), and which dead
/// speakers its witness has already confirmed gone.
#[derive(Debug, Clone)]
struct Speaker {
    group: Option<usize>,
    witness_saw: Vec<bool>,
}

fn name(i: usize) -> String {
    format!("node{i}")
}

/// Whether speaker `i` answers for `ip`, deciding alone from its view.
fn answers(speakers: &[Speaker], i: usize, ip: &IpAddr) -> bool {
    let me = &speakers[i];
    let Some(group) = me.group else {
        return false;
    };
    let dead = |j: usize| speakers[j].group.is_none();
    let known: BTreeSet<String> = (0..speakers.len())
        .filter(|&j| !(dead(j) && me.witness_saw[j]))
        .map(name)
        .collect();
    let heard: BTreeSet<String> = (0..speakers.len())
        .filter(|&j| speakers[j].group == Some(group))
        .map(name)
        .collect();
    if !standing(&known, &heard).may_claim() {
        return false;
    }
    l2_owner(heard.iter().map(String::as_str), ip) == Some(name(i).as_str())
}

fn scenario() -> impl Strategy<Value = Vec<Speaker>> {
    (1usize..=9).prop_flat_map(|n| {
        prop::collection::vec(
            (
                prop_oneof![1 => Just(None), 4 => (0usize..3).prop_map(Some)],
                prop::collection::vec(any::<bool>(), n),
            )
                .prop_map(|(group, witness_saw)| Speaker { group, witness_saw }),
            n,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn at_most_one_answerer_and_one_when_a_majority_is_connected(
        speakers in scenario(),
        last_octets in prop::collection::vec(any::<u8>(), 1..6),
    ) {
        let n = speakers.len();
        for octet in last_octets {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet));
            let answering: Vec<usize> = (0..n).filter(|&i| answers(&speakers, i, &ip)).collect();
            prop_assert!(answering.len() <= 1, "{ip}: {answering:?} answer in {speakers:?}");
            let biggest = (0..3)
                .map(|g| speakers.iter().filter(|s| s.group == Some(g)).count())
                .max()
                .unwrap_or(0);
            if biggest * 2 > n {
                prop_assert_eq!(answering.len(), 1, "{}: majority connected, {:?}", ip, speakers);
            }
        }
    }
}

/// The cases the rule was chosen for, spelled out.
#[test]
fn two_node_and_three_node_cases() {
    let known = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // Three speakers, the owner cut off from the other two: it alone is a minority.
    let three = known(&["a", "b", "c"]);
    assert_eq!(standing(&three, &known(&["a"])), Standing::Minority);
    assert_eq!(standing(&three, &known(&["b", "c"])), Standing::Majority);
    // Two speakers split: only the half with the tie-breaker ("a") answers.
    let two = known(&["a", "b"]);
    assert!(standing(&two, &known(&["a"])).may_claim());
    assert!(!standing(&two, &known(&["b"])).may_claim());
    // "a" really died and the witness confirmed it: "b" alone is all that is known.
    assert!(standing(&known(&["b"]), &known(&["b"])).may_claim());
}
