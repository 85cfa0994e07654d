//! The allocator on its own: sizes that must not cost memory per address, ordering,
//! sharing and dual-stack rules at the API level.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use oxlb_allocator::{AllocError, Allocator, Family, Port, Scope, ShareKey, Usage, Want};
use oxlb_config::{AddressRange, Pool};

fn pool(name: &str, cidrs: &[&str], buggy: bool) -> (String, Pool) {
    let mut ranges: Vec<AddressRange> = cidrs
        .iter()
        .map(|c| AddressRange::from_cidr(c.parse().unwrap()))
        .collect();
    ranges.sort();
    let pool = Pool {
        name: name.to_string(),
        ranges,
        addresses_as_written: cidrs.iter().map(|c| c.to_string()).collect(),
        auto_assign: true,
        avoid_buggy_ips: buggy,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    (name.to_string(), pool)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const V4: Want = Want::Single(Family::V4);

#[test]
fn a_slash_64_allocates_lowest_first_with_one_interval() {
    let mut a = Allocator::new(&[pool("p", &["fc00::/64"], false)].into());
    let scope = Scope::plain("ns");
    for i in 0..1000u32 {
        let got = a
            .allocate(
                &format!("ns/s{i}"),
                Want::Single(Family::V6),
                &Usage::default(),
                &scope,
            )
            .unwrap();
        assert_eq!(
            got,
            vec![IpAddr::V6((0xfc00u128 << 112 | u128::from(i)).into())]
        );
    }
    assert_eq!(a.free_intervals(), 1);
    let c = a.counters("p").unwrap();
    assert_eq!(
        (c.assigned_ipv6, c.available_ipv6),
        (1000, (1u128 << 64) - 1000)
    );
}

#[test]
fn released_holes_are_reused_lowest_first() {
    let mut a = Allocator::new(&[pool("p", &["10.0.0.0/8"], true)].into());
    let scope = Scope::plain("ns");
    for i in 0..600 {
        a.allocate(&format!("ns/s{i}"), V4, &Usage::default(), &scope)
            .unwrap();
    }
    // s254 holds 10.0.1.1 (the .255 and .0 in between are skipped).
    assert_eq!(
        a.held("ns/s254").unwrap().ips.to_vec(),
        vec![ip("10.0.1.1")]
    );
    a.unassign("ns/s300");
    a.unassign("ns/s10");
    assert_eq!(a.free_intervals(), 3);
    assert_eq!(
        a.allocate("ns/new1", V4, &Usage::default(), &scope)
            .unwrap(),
        vec![ip("10.0.0.11")]
    );
    assert_eq!(
        a.allocate("ns/new2", V4, &Usage::default(), &scope)
            .unwrap(),
        vec![ip("10.0.1.47")]
    );
    assert_eq!(a.free_intervals(), 1);
}

#[test]
fn exhaustion_and_messages() {
    let mut a = Allocator::new(&[pool("p", &["10.0.0.0/31"], false)].into());
    let scope = Scope::plain("ns");
    a.allocate("ns/a", V4, &Usage::default(), &scope).unwrap();
    a.allocate("ns/b", V4, &Usage::default(), &scope).unwrap();
    let err = a
        .allocate("ns/c", V4, &Usage::default(), &scope)
        .unwrap_err();
    assert_eq!(err, AllocError::NoAvailable);
    assert_eq!(err.to_string(), "no available IPs");
    let err = a
        .allocate_from_pool("ns/c", "p", V4, &Usage::default(), &scope)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no available IPs in pool p for ipv4 IPFamily"
    );
    let err = a
        .assign("ns/c", &[ip("10.9.9.9")], &Usage::default(), &scope)
        .unwrap_err();
    assert_eq!(err.to_string(), "[\"10.9.9.9\"] is not allowed in config");
}

#[test]
fn sharing_needs_same_key_and_distinct_ports() {
    let mut a = Allocator::new(&[pool("p", &["10.0.0.0/30"], false)].into());
    let scope = Scope::plain("ns");
    let web = |port| Usage {
        ports: [Port::tcp(port)].into(),
        key: ShareKey::new("k", ""),
    };
    assert_eq!(
        a.allocate("ns/a", V4, &web(80), &scope).unwrap(),
        vec![ip("10.0.0.0")]
    );
    assert_eq!(
        a.allocate("ns/b", V4, &web(443), &scope).unwrap(),
        vec![ip("10.0.0.0")]
    );
    assert_eq!(
        a.allocate("ns/c", V4, &web(80), &scope).unwrap(),
        vec![ip("10.0.0.1")]
    );
    let users: Vec<&str> = a.users_of(&ip("10.0.0.0")).collect();
    assert_eq!(users, ["ns/a", "ns/b"]);
    assert_eq!(a.counters("p").unwrap().assigned_ipv4, 2);
    let err = a
        .assign("ns/d", &[ip("10.0.0.0")], &web(443), &scope)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "port TCP/443 is already in use on \"10.0.0.0\""
    );
    // Releasing one sharer keeps the address for the other.
    a.unassign("ns/a");
    assert_eq!(a.counters("p").unwrap().assigned_ipv4, 2);
    a.unassign("ns/b");
    assert_eq!(a.counters("p").unwrap().assigned_ipv4, 1);
}

#[test]
fn dual_stack_comes_from_one_pool() {
    let pools: BTreeMap<String, Pool> = [
        pool("a", &["10.0.0.0/30"], false),
        pool("b", &["10.0.1.0/30", "fc00::/126"], false),
    ]
    .into();
    let mut a = Allocator::new(&pools);
    let scope = Scope::plain("ns");
    let got = a
        .allocate("ns/d", Want::RequireDual, &Usage::default(), &scope)
        .unwrap();
    assert_eq!(got, vec![ip("10.0.1.0"), ip("fc00::")]);
    assert_eq!(&*a.held("ns/d").unwrap().pool, "b");
    let err = a.assign(
        "ns/e",
        &[ip("10.0.0.1"), ip("fc00::1")],
        &Usage::default(),
        &scope,
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "[\"10.0.0.1\" \"fc00::1\"] is not allowed in config"
    );
    let err = a.assign(
        "ns/e",
        &[ip("10.0.1.1"), ip("10.0.1.2")],
        &Usage::default(),
        &scope,
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "\"10.0.1.1\" \"10.0.1.2\" has the same family"
    );
}

#[test]
fn prefer_dual_takes_one_family_then_completes() {
    let pools: BTreeMap<String, Pool> = [pool("a", &["10.0.0.0/31", "fc00::/128"], false)].into();
    let mut a = Allocator::new(&pools);
    let scope = Scope::plain("ns");
    let prefer = Want::PreferDual {
        primary: Family::V4,
    };
    a.allocate("ns/x", Want::Single(Family::V6), &Usage::default(), &scope)
        .unwrap();
    assert_eq!(
        a.allocate("ns/p", prefer, &Usage::default(), &scope)
            .unwrap(),
        vec![ip("10.0.0.0")]
    );
    let err = a
        .add_missing_family("ns/p", &Usage::default(), &scope)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no available IPs in pool a for ipv6 IPFamily"
    );
    a.unassign("ns/x");
    assert_eq!(
        a.add_missing_family("ns/p", &Usage::default(), &scope)
            .unwrap(),
        ip("fc00::")
    );
    assert_eq!(
        a.held("ns/p").unwrap().ips.to_vec(),
        vec![ip("10.0.0.0"), ip("fc00::")]
    );
}
