//! Per-object quarantine: one bad object never blocks the rest, an invalid edit keeps
//! the last valid version (from memory or from the object's annotation), and conflicts
//! go to the older (or unchanged) object.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_config::{
    Decision, LAST_VALID_ANNOTATION, LastValid, ObjectKind, Quarantined, build_config,
    build_config_with, load_str,
};

fn pool(name: &str, created: &str, addresses: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {name}\n  namespace: metallb-system\n  creationTimestamp: \"{created}\"\nspec:\n  addresses: {addresses}\n"
    )
}

const L2: &str = "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n  namespace: metallb-system\n";

fn build(text: &str, previous: &LastValid) -> oxlb_config::Built {
    build_config_with(&load_str(text, None, "metallb-system").unwrap(), previous)
}

fn left_out(kind: ObjectKind, name: &str) -> Quarantined {
    Quarantined {
        kind,
        name: name.into(),
        decision: Decision::LeftOut,
    }
}

#[test]
fn a_new_invalid_object_is_left_out_and_the_rest_applies() {
    let text = [
        pool("good", "2024-01-01T00:00:00Z", "[10.0.0.0/24]"),
        pool("typo", "2024-01-02T00:00:00Z", "[10.0.0.300/24]"),
        pool("garbage", "2024-01-02T00:00:00Z", "[hello]"),
        L2.to_string(),
    ]
    .concat();
    let built = build(&text, &LastValid::default());
    assert_eq!(built.applied.pools.keys().collect::<Vec<_>>(), ["good"]);
    assert!(built.applied.l2_advertisements.contains_key("l2"));
    let named: Vec<(&str, &str)> = built
        .errors
        .iter()
        .map(|e| (e.name.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        named,
        // Oldest first, then by name.
        [
            ("garbage", "spec.addresses[0]"),
            ("typo", "spec.addresses[0]")
        ]
    );
    assert_eq!(
        built.quarantined,
        [
            left_out(ObjectKind::IPAddressPool, "garbage"),
            left_out(ObjectKind::IPAddressPool, "typo")
        ]
    );
    // The strict view still says the configuration has errors.
    assert!(built.config.is_err());
}

#[test]
fn an_invalid_edit_keeps_the_last_valid_version_from_memory() {
    let v1 = [
        pool("a", "2024-01-01T00:00:00Z", "[10.0.0.0/24]"),
        L2.to_string(),
    ]
    .concat();
    let first = build(&v1, &LastValid::default());
    assert!(first.errors.is_empty());
    let v2 = [
        pool("a", "2024-01-01T00:00:00Z", "[10.0.0.5-10.0.0.1]"),
        L2.to_string(),
    ]
    .concat();
    let second = build(&v2, &first.in_force);
    assert_eq!(
        second.applied.pools["a"].addresses_as_written,
        ["10.0.0.0/24"]
    );
    assert_eq!(second.errors.len(), 1);
    assert_eq!(second.errors[0].name, "a");
    assert_eq!(second.quarantined[0].decision, Decision::KeptLastValid);
    // Without the memory (a restart) and without an annotation, the pool is left out.
    let cold = build(&v2, &LastValid::default());
    assert!(cold.applied.pools.is_empty());
}

#[test]
fn after_a_restart_the_annotation_holds_the_last_valid_version() {
    let v1 = [
        pool("a", "2024-01-01T00:00:00Z", "[10.0.0.0/24]"),
        L2.to_string(),
    ]
    .concat();
    let first = build(&v1, &LastValid::default());
    let annotation = first
        .in_force
        .annotation_value(ObjectKind::IPAddressPool, "a")
        .unwrap();
    let edited = pool("a", "2024-01-01T00:00:00Z", "[10.0.0.300/24]").replace(
        "  creationTimestamp",
        &format!(
            "  annotations:\n    {LAST_VALID_ANNOTATION}: '{annotation}'\n  creationTimestamp"
        ),
    );
    let text = [edited, L2.to_string()].concat();
    let snapshot = load_str(&text, None, "metallb-system").unwrap();
    let built = build_config(&snapshot);
    assert_eq!(
        built.applied.pools["a"].addresses_as_written,
        ["10.0.0.0/24"]
    );
    assert_eq!(built.quarantined[0].decision, Decision::KeptLastValid);
    // Every speaker reading the same objects decides the same.
    assert_eq!(build_config(&snapshot).applied, built.applied);
}

#[test]
fn overlapping_pools_go_to_the_older_one_whatever_the_order() {
    let text = [
        pool("newer", "2024-02-01T00:00:00Z", "[10.0.0.0/25]"),
        pool("older", "2024-01-01T00:00:00Z", "[10.0.0.0/24]"),
        L2.to_string(),
    ]
    .concat();
    let built = build(&text, &LastValid::default());
    assert_eq!(built.applied.pools.keys().collect::<Vec<_>>(), ["older"]);
    assert_eq!(built.errors.len(), 1);
    assert_eq!(built.errors[0].name, "newer");
    // Same second: the name decides.
    let tie = [
        pool("b", "2024-01-01T00:00:00Z", "[10.0.0.0/25]"),
        pool("a", "2024-01-01T00:00:00Z", "[10.0.0.0/24]"),
    ]
    .concat();
    assert_eq!(build(&tie, &LastValid::default()).errors[0].name, "b");
}

#[test]
fn an_edit_cannot_take_addresses_from_an_unchanged_pool() {
    let v1 = [
        pool("old", "2024-01-01T00:00:00Z", "[10.0.1.0/24]"),
        pool("young", "2024-02-01T00:00:00Z", "[10.0.0.0/24]"),
        L2.to_string(),
    ]
    .concat();
    let first = build(&v1, &LastValid::default());
    assert!(first.errors.is_empty());
    // The older pool is edited to overlap the younger one: the edit loses.
    let v2 = v1.replace("[10.0.1.0/24]", "[10.0.0.0/23]");
    let second = build(&v2, &first.in_force);
    assert_eq!(
        second.applied.pools["young"].addresses_as_written,
        ["10.0.0.0/24"]
    );
    assert_eq!(
        second.applied.pools["old"].addresses_as_written,
        ["10.0.1.0/24"]
    );
    assert_eq!(second.errors[0].name, "old");
}

#[test]
fn two_peers_for_one_session_go_to_the_older() {
    let peer = |name: &str, created: &str| {
        format!(
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: {name}\n  namespace: metallb-system\n  creationTimestamp: \"{created}\"\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 10.0.0.1\n"
        )
    };
    let text = [
        peer("aaa-new", "2024-02-01T00:00:00Z"),
        peer("zzz-old", "2024-01-01T00:00:00Z"),
    ]
    .concat();
    let built = build(&text, &LastValid::default());
    assert_eq!(built.applied.peers.keys().collect::<Vec<_>>(), ["zzz-old"]);
    assert_eq!(built.errors[0].name, "aaa-new");
}

#[test]
fn a_peer_keeps_its_session_when_its_bfd_profile_is_left_out() {
    let text = "---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata:\n  name: fast\n  namespace: metallb-system\nspec:\n  receiveInterval: 1\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: r\n  namespace: metallb-system\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 10.0.0.1\n  bfdProfile: fast\n";
    let built = build(text, &LastValid::default());
    assert!(built.applied.peers.contains_key("r"));
    assert!(built.applied.bfd_profiles.is_empty());
    assert_eq!(
        built.quarantined,
        [left_out(ObjectKind::BFDProfile, "fast")]
    );
}
