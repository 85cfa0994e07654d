//! The Service-count limit (issue 22): beyond `with_service_limit(N)` LoadBalancer
//! Services, a new one is refused with one `ServiceLimitExceeded` warning, gets no
//! address and has a status naming addresses cleared; the ones handled keep theirs;
//! room made by a deletion is taken on the next sight. Services that do not count
//! (ClusterIP, another class) are never refused.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::*;
use oxlb_controller::{Change, Controller, Desired, EventReason, Outcome};

fn upsert(c: &mut Controller, s: Svc) -> Outcome {
    c.apply([Change::UpsertService(std::sync::Arc::new(s.0))])
}

fn reasons(outcome: &Outcome, key: &str) -> Vec<EventReason> {
    outcome
        .services
        .get(key)
        .map(|o| o.events.iter().map(|e| e.reason).collect())
        .unwrap_or_default()
}

fn ingress(c: &Controller, key: &str) -> Vec<String> {
    match c.desired(key) {
        Some(Desired::Status { ingress, .. }) => ingress.iter().map(|ip| ip.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn services_beyond_the_limit_are_refused_with_one_event_and_no_address() {
    let cfg = config(vec![pool("p", &["10.0.0.0/24"])]);
    let mut c = Controller::new(cfg, None).with_service_limit(Some(2));
    upsert(&mut c, svc("a"));
    upsert(&mut c, svc("b"));
    // Not LoadBalancer / another class: not counted, not refused.
    upsert(&mut c, svc("cluster").kind("ClusterIP"));
    upsert(&mut c, svc("other").class("someone-else"));
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.0"]);
    assert_eq!(ingress(&c, "default/b"), ["10.0.0.1"]);

    // The third, carrying a status from elsewhere: refused, status cleared.
    let outcome = upsert(&mut c, svc("c").status(&["10.0.0.9"]));
    assert_eq!(
        reasons(&outcome, "default/c"),
        [EventReason::ServiceLimitExceeded]
    );
    let refused = &outcome.services["default/c"];
    assert_eq!(
        refused.desired,
        Desired::Status {
            ingress: vec![],
            pool: None
        }
    );
    assert!(refused.needs_update);
    let message = &refused.events[0].message;
    assert!(
        message.contains("at most 2 LoadBalancer Services"),
        "{message}"
    );
    assert_eq!(c.refused().collect::<Vec<_>>(), ["default/c"]);
    assert!(c.desired("default/c").is_none());
    // Seen again: quiet (the event was given once).
    let outcome = upsert(&mut c, svc("c"));
    assert!(!outcome.services.contains_key("default/c"), "{outcome:?}");
    // The handled ones keep what they hold.
    assert_eq!(ingress(&c, "default/a"), ["10.0.0.0"]);
    assert_eq!(c.pool_counters()["p"].assigned_ipv4, 2);

    // Room made: the refused Service is taken on its next sight.
    c.apply([Change::DeleteService {
        namespace: "default".into(),
        name: "a".into(),
    }]);
    let outcome = upsert(&mut c, svc("c"));
    assert_eq!(reasons(&outcome, "default/c"), [EventReason::IpAllocated]);
    assert_eq!(ingress(&c, "default/c"), ["10.0.0.0"]);
    assert_eq!(c.refused().count(), 0);
}

#[test]
fn sync_refuses_the_same_way_and_forgets_refused_services_that_are_gone() {
    let cfg = config(vec![pool("p", &["10.0.0.0/24"])]);
    let mut c = Controller::new(cfg, None).with_service_limit(Some(3));
    let all: Vec<_> = (0..5).map(|i| svc(&format!("s{i}")).0).collect();
    let outcome = c.sync(&all, &[]);
    let refused: Vec<&str> = c.refused().collect();
    assert_eq!(refused, ["default/s3", "default/s4"]);
    for key in &refused {
        assert_eq!(reasons(&outcome, key), [EventReason::ServiceLimitExceeded]);
    }
    assert_eq!(c.pool_counters()["p"].assigned_ipv4, 3);
    // A second sync is quiet and changes nothing.
    let again = c.sync(&all, &[]);
    assert!(
        again
            .services
            .values()
            .all(|o| o.events.is_empty() && !o.needs_update),
        "{again:?}"
    );
    // s4 deleted, s0 deleted: s3 gets in; nothing refused is remembered for s4.
    let fewer: Vec<_> = all[1..4].to_vec();
    c.sync(&fewer, &[]);
    assert_eq!(c.refused().count(), 0);
    assert!(!ingress(&c, "default/s3").is_empty());
    // No limit (the default): nothing is ever refused.
    let mut unlimited = Controller::new(config(vec![pool("p", &["10.0.0.0/24"])]), None);
    unlimited.sync(&all, &[]);
    assert_eq!(unlimited.refused().count(), 0);
    assert_eq!(unlimited.pool_counters()["p"].assigned_ipv4, 5);
}
