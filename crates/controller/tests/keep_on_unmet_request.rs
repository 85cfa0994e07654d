//! `keep_held_on_unmet_request` (used by `oxlb run`): a Service whose requested IP
//! changes to one that cannot be given keeps the IP it holds, with the failure as an
//! event, and moves once the request can be met. The default stays MetalLB's (release).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::*;
use oxlb_controller::{Change, Controller, Desired};

fn ingress(c: &Controller, key: &str) -> Vec<String> {
    match c.desired(key) {
        Some(Desired::Status { ingress, .. }) => ingress.iter().map(|ip| ip.to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

fn upsert(c: &mut Controller, s: Svc) -> Vec<(String, String)> {
    let outcome = c.apply([Change::UpsertService(std::sync::Arc::new(s.0))]);
    outcome
        .services
        .values()
        .flat_map(|o| o.events.iter())
        .map(|e| (e.reason.as_str().to_string(), e.message.clone()))
        .collect()
}

#[test]
fn an_unmet_request_keeps_the_held_ip_in_keep_mode() {
    let cfg = config(vec![
        pool("p", &["10.0.0.0/30"]),
        pool("q", &["10.1.0.0/30"]),
    ]);
    let mut c = Controller::new(cfg, None).keep_held_on_unmet_request();
    upsert(&mut c, svc("a").ips("10.0.0.1"));
    upsert(&mut c, svc("b").ips("10.0.0.2"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.1"]);

    // Outside every pool: kept, and the failure is reported.
    let events = upsert(&mut c, svc("a").ips("192.168.3.2"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.1"]);
    assert!(
        events.iter().any(|(r, m)| r == "AllocationFailed"
            && m.contains(r#"["192.168.3.2"] is not allowed in config"#)),
        "{events:?}"
    );
    // Held by another Service (no sharing key): kept.
    upsert(&mut c, svc("a").ips("10.0.0.2"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.1"]);
    // In a pool other than the one asked for: kept, the held IP still counted.
    upsert(&mut c, svc("a").ips("10.1.0.1").in_pool("p"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.1"]);
    assert_eq!(c.pool_counters()["p"].assigned_ipv4, 2);
    // The other Service lets go: the pending request is met on the next reconcile.
    c.apply([Change::DeleteService {
        namespace: "default".into(),
        name: "b".into(),
    }]);
    upsert(&mut c, svc("a").ips("10.0.0.2"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.2"]);
    // A request that can be met moves it at once.
    let events = upsert(&mut c, svc("a").ips("10.1.0.2"));
    assert_eq!(ingress(&c, "default/a"), ["10.1.0.2"]);
    assert!(events.iter().any(|(r, _)| r == "IPAllocated"), "{events:?}");
    assert_eq!(c.pool_counters()["p"].assigned_ipv4, 0);
}

#[test]
fn an_unmet_request_releases_the_ip_by_default_like_metallb() {
    let mut c = Controller::new(config(vec![pool("p", &["10.0.0.0/30"])]), None);
    upsert(&mut c, svc("a").ips("10.0.0.1"));
    upsert(&mut c, svc("a").ips("192.168.3.2"));
    assert!(ingress(&c, "default/a").is_empty());
}
