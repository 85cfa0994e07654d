//! Property: for random sets of valid objects and random invalid changes on top of them
//! (typos in a pool's addresses, reversed ranges, an edit that overlaps another pool,
//! new garbage or overlapping pools, broken peers), no Service that held an IP before
//! the change loses it or moves, whether the controller remembers the previous build or
//! restarted and reads the last valid versions from the objects' annotations.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::svc;
use oxlb_config::{LAST_VALID_ANNOTATION, LastValid, ObjectKind, build_config_with, load_str};
use oxlb_controller::{Change, Controller};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Bad {
    /// Pool `n` gets an address that does not parse.
    Typo(usize),
    /// Pool `n` gets a range that ends before it starts.
    Reversed(usize),
    /// Pool `n` is edited to overlap pool `m` (older or younger).
    OverlapEdit(usize, usize),
    /// A new pool that does not parse.
    NewGarbage,
    /// A new pool overlapping pool `n`.
    NewOverlap(usize),
    /// A new BGPPeer with myASN 0.
    BrokenPeer,
}

fn bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        (0usize..8).prop_map(Bad::Typo),
        (0usize..8).prop_map(Bad::Reversed),
        (0usize..8, 0usize..8).prop_map(|(a, b)| Bad::OverlapEdit(a, b)),
        Just(Bad::NewGarbage),
        (0usize..8).prop_map(Bad::NewOverlap),
        Just(Bad::BrokenPeer),
    ]
}

struct Pool {
    name: String,
    created: String,
    addresses: String,
    annotation: Option<String>,
}

impl Pool {
    fn yaml(&self) -> String {
        let annotation = self
            .annotation
            .as_ref()
            .map(|a| format!("  annotations:\n    {LAST_VALID_ANNOTATION}: '{a}'\n"))
            .unwrap_or_default();
        format!(
            "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {}\n  namespace: metallb-system\n  creationTimestamp: \"{}\"\n{annotation}spec:\n  addresses: {}\n",
            self.name, self.created, self.addresses
        )
    }
}

const L2: &str = "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n  namespace: metallb-system\n";

fn text(pools: &[Pool], extra: &str) -> String {
    let mut out: String = pools.iter().map(Pool::yaml).collect();
    out.push_str(L2);
    out.push_str(extra);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_service_loses_its_ip_to_an_invalid_change(
        pool_count in 1usize..6,
        services in 1usize..20,
        changes in proptest::collection::vec(bad(), 1..5),
        restarted in any::<bool>(),
    ) {
        // Each pool a /29: 8 addresses, so several pools fill up.
        let mut pools: Vec<Pool> = (0..pool_count)
            .map(|i| Pool {
                name: format!("p{i}"),
                created: format!("2024-01-0{}T00:00:00Z", i + 1),
                addresses: format!("[10.0.{i}.0/29]"),
                annotation: None,
            })
            .collect();
        let first = build_config_with(
            &load_str(&text(&pools, ""), None, "metallb-system").unwrap(),
            &LastValid::default(),
        );
        prop_assert!(first.errors.is_empty(), "{:?}", first.errors);
        let mut controller = Controller::new(first.applied.clone(), None);
        let svcs: Vec<_> = (0..services)
            .map(|i| svc(&format!("default/s{i}")).tcp(80).0)
            .collect();
        controller.sync(&svcs, &[]);
        let before = controller.all_desired();

        // What the controller writes on every object in force as written.
        for p in &mut pools {
            p.annotation = first
                .in_force
                .annotation_value(ObjectKind::IPAddressPool, &p.name);
        }
        let mut extra = String::new();
        for (k, change) in changes.iter().enumerate() {
            match change {
                Bad::Typo(n) => {
                    let i = n % pool_count;
                    pools[i].addresses = format!("[10.0.{i}.300/29]");
                }
                Bad::Reversed(n) => {
                    let i = n % pool_count;
                    pools[i].addresses = format!("[10.0.{i}.7-10.0.{i}.1]");
                }
                Bad::OverlapEdit(n, m) => {
                    let (i, j) = (n % pool_count, m % pool_count);
                    if i != j {
                        pools[i].addresses = format!("[10.0.{j}.0/28]");
                    }
                }
                Bad::NewGarbage => extra.push_str(&Pool {
                    name: format!("new{k}"),
                    created: "2025-01-01T00:00:00Z".into(),
                    addresses: "[hello]".into(),
                    annotation: None,
                }.yaml()),
                Bad::NewOverlap(n) => extra.push_str(&Pool {
                    name: format!("new{k}"),
                    created: "2025-01-01T00:00:00Z".into(),
                    addresses: format!("[10.0.{}.0/30]", n % pool_count),
                    annotation: None,
                }.yaml()),
                Bad::BrokenPeer => extra.push_str(&format!(
                    "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: broken{k}\n  namespace: metallb-system\nspec:\n  myASN: 0\n  peerASN: 1\n  peerAddress: 10.9.9.9\n"
                )),
            }
        }
        let previous = if restarted { LastValid::default() } else { first.in_force.clone() };
        let second = build_config_with(
            &load_str(&text(&pools, &extra), None, "metallb-system").unwrap(),
            &previous,
        );
        controller.apply(vec![Change::SetConfig(Box::new(second.applied.clone()))]);
        for (key, desired) in before {
            if !desired.ingress().is_empty() {
                prop_assert_eq!(
                    controller.desired(&key).as_ref().map(|d| d.ingress().to_vec()),
                    Some(desired.ingress().to_vec()),
                    "{} lost or moved its IP; errors {:?}",
                    key,
                    second.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
                );
            }
        }
    }
}
