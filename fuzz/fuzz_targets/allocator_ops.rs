//! Random operation sequences against the allocator: allocate, allocate from a pool,
//! assign requested addresses, release, add the missing family, rebuild from what is
//! held. After every step: no address held by two services that may not share, every
//! address inside its pool (and not .0/.255 with avoidBuggyIPs), pool counters equal a
//! count of what is held, and a rebuild re-claims everything unchanged.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use oxlb_allocator::{
    Allocator, Family, PoolCounters, Port, Protocol, Scope, ShareKey, Usage, Want, is_buggy_v4, pool_allows,
};
use oxlb_config::{AddressRange, Pool, ServiceAllocation};

fn range(a: &str, b: &str) -> AddressRange {
    AddressRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
}

fn pools() -> BTreeMap<String, Pool> {
    let pool = |name: &str, ranges: Vec<AddressRange>| Pool {
        name: name.to_string(),
        ranges,
        addresses_as_written: vec![],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    let mut p0 = pool(
        "p0",
        vec![range("10.0.0.0", "10.0.0.3"), range("fc00::", "fc00::3")],
    );
    p0.ranges.sort();
    let mut p1 = pool("p1", vec![range("10.0.1.254", "10.0.2.1")]);
    p1.avoid_buggy_ips = true;
    p1.auto_assign = false;
    let mut p2 = pool(
        "p2",
        vec![
            range("10.0.3.0", "10.0.3.0"),
            range("fc00:1::", "fc00:1::1"),
        ],
    );
    p2.service_allocation = Some(ServiceAllocation {
        priority: 1,
        namespaces: ["team".to_string()].into(),
        ..ServiceAllocation::default()
    });
    [p0, p1, p2]
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect()
}

const CANDIDATES: [&str; 12] = [
    "10.0.0.0",
    "10.0.0.3",
    "fc00::1",
    "10.0.1.255",
    "10.0.1.254",
    "10.0.2.1",
    "10.0.3.0",
    "fc00:1::1",
    "192.168.3.2",
    "fc00::3",
    "10.0.2.0",
    "10.0.0.1",
];

fn service(id: u8) -> String {
    format!("{}/s{}", namespace(id), id % 16)
}

fn namespace(id: u8) -> &'static str {
    if id % 2 == 0 { "default" } else { "team" }
}

fn usage(b: u8) -> Usage {
    let sharing = ["", "a", "b"][usize::from(b % 3)];
    let backend = ["", "app=x"][usize::from((b >> 2) % 2)];
    let mut ports = Vec::new();
    for (bit, port) in [(3, Port::tcp(80)), (4, Port::tcp(443))] {
        if b & (1 << bit) != 0 {
            ports.push(port);
        }
    }
    if b & (1 << 5) != 0 {
        ports.push(Port {
            protocol: Protocol::from("UDP"),
            port: 53,
        });
    }
    Usage {
        ports: ports.into(),
        key: ShareKey::new(sharing, backend),
    }
}

fn want(b: u8) -> Want {
    match b % 5 {
        0 | 1 => Want::Single(Family::V4),
        2 => Want::Single(Family::V6),
        3 => Want::RequireDual,
        _ => Want::PreferDual {
            primary: if b & 8 == 0 { Family::V4 } else { Family::V6 },
        },
    }
}

fn scope_of(id_key: &str) -> Scope<'_> {
    Scope::plain(id_key.split('/').next().unwrap_or(""))
}

fn check(allocator: &Allocator, totals: &BTreeMap<String, (u128, u128)>) {
    let config = allocator.pools();
    let mut held: BTreeMap<String, (BTreeSet<IpAddr>, BTreeSet<IpAddr>)> = BTreeMap::new();
    let mut by_ip: BTreeMap<IpAddr, Vec<(&str, &Usage)>> = BTreeMap::new();
    for (key, h) in allocator.services() {
        let pool = &config[&*h.pool];
        assert!(
            pool_allows(pool, &scope_of(key)),
            "{key} may not use {}",
            pool.name
        );
        assert!(!h.ips.is_empty() && h.ips.len() <= 2);
        if let [a, b] = &*h.ips {
            assert_ne!(Family::of(a), Family::of(b));
        }
        for ip in h.ips.iter() {
            assert!(pool.contains(ip), "{ip} outside {}", pool.name);
            assert!(!(pool.avoid_buggy_ips && is_buggy_v4(ip)));
            let entry = held.entry(pool.name.clone()).or_default();
            match Family::of(ip) {
                Family::V4 => entry.0.insert(*ip),
                Family::V6 => entry.1.insert(*ip),
            };
            by_ip.entry(*ip).or_default().push((key, &h.usage));
        }
    }
    for (ip, users) in &by_ip {
        let listed: BTreeSet<&str> = allocator.users_of(ip).collect();
        let seen: BTreeSet<&str> = users.iter().map(|(k, _)| *k).collect();
        assert_eq!(listed, seen, "holders of {ip}");
        if users.len() > 1 {
            let mut ports = BTreeSet::new();
            for (_, u) in users {
                assert!(
                    u.key.allows_sharing() && u.key == users[0].1.key,
                    "{ip} shared badly"
                );
                for p in u.ports.iter().collect::<BTreeSet<_>>() {
                    assert!(ports.insert(p.clone()), "{ip}: {p} twice");
                }
            }
        }
    }
    for (name, (total4, total6)) in totals {
        let c = allocator.counters(name).unwrap();
        let (v4, v6) = held.get(name).cloned().unwrap_or_default();
        let want = PoolCounters {
            assigned_ipv4: v4.len() as u128,
            assigned_ipv6: v6.len() as u128,
            available_ipv4: total4 - v4.len() as u128,
            available_ipv6: total6 - v6.len() as u128,
        };
        assert_eq!(c, want, "counters of {name}");
    }
}

/// A fresh allocator re-claiming everything held, in key order: nothing may fail or move.
fn rebuild(allocator: &Allocator) -> Allocator {
    let mut fresh = Allocator::new(allocator.pools());
    let held: BTreeMap<String, (Vec<IpAddr>, Usage, String)> = allocator
        .services()
        .map(|(k, h)| {
            (
                k.to_string(),
                (h.ips.to_vec(), h.usage.clone(), h.pool.to_string()),
            )
        })
        .collect();
    for (key, (ips, usage, pool)) in &held {
        let got = fresh.assign(key, ips, usage, &scope_of(key));
        assert_eq!(got.as_deref().ok(), Some(pool.as_str()), "rebuild of {key}");
    }
    fresh
}

fuzz_target!(|data: &[u8]| {
    let pools = pools();
    let mut allocator = Allocator::new(&pools);
    let totals: BTreeMap<String, (u128, u128)> = pools
        .keys()
        .map(|name| {
            let c = allocator.counters(name).unwrap();
            (name.clone(), (c.total_ipv4(), c.total_ipv6()))
        })
        .collect();
    for op in data.chunks(4).take(64) {
        let [kind, id, a, b] = [0, 1, 2, 3].map(|i| op.get(i).copied().unwrap_or(0));
        let key = service(id);
        let scope = scope_of(&key);
        match kind % 6 {
            0 => {
                let _ = allocator.allocate(&key, want(a), &usage(b), &scope);
            }
            1 => {
                let pool = ["p0", "p1", "p2", "nope"][usize::from(a % 4)];
                let _ = allocator.allocate_from_pool(&key, pool, want(a >> 2), &usage(b), &scope);
            }
            2 => {
                let first: IpAddr = CANDIDATES[usize::from(a % 12)].parse().unwrap();
                let mut ips = vec![first];
                if a >= 128 {
                    ips.push(CANDIDATES[usize::from((a >> 4) % 12)].parse().unwrap());
                }
                let _ = allocator.assign(&key, &ips, &usage(b), &scope);
            }
            3 => {
                allocator.unassign(&key);
            }
            4 => {
                let u = allocator
                    .held(&key)
                    .map(|h| h.usage.clone())
                    .unwrap_or_default();
                let _ = allocator.add_missing_family(&key, &u, &scope);
            }
            _ => {
                allocator = rebuild(&allocator);
            }
        }
        check(&allocator, &totals);
    }
    rebuild(&allocator);
});
