//! The bounded event memory (crates/k8s/src/event_sink.rs) against the fake API server:
//! a repeat is folded into its series (a PATCH) while the sink remembers the first
//! event, and recorded afresh (a POST) once more than `REMEMBERED_EVENTS` others came
//! between — the memory stays bounded, as client-go's LRU of 4,096 events.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use oxlb_k8s::event_sink::REMEMBERED_EVENTS;
use support::*;

fn event(reason: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note: Some(format!("{reason} happened")),
        action: reason.to_string(),
        secondary: None,
    }
}

fn service(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

/// The methods of the event writes since the log was cleared.
fn event_writes(api: &FakeApi) -> Vec<String> {
    api.writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.method)
        .collect()
}

#[tokio::test]
async fn a_repeat_is_folded_while_remembered_and_recorded_afresh_after_the_bound() {
    let api = FakeApi::new();
    let sink = oxlb_k8s::writer::speaker_recorder(&api.client(), "n1");
    let web = service("web");

    sink.publish(&event("nodeAssigned"), &web).await.unwrap();
    sink.publish(&event("nodeAssigned"), &web).await.unwrap();
    assert_eq!(event_writes(&api), ["POST", "PATCH"]);

    // As many other events as the sink remembers: the first one is forgotten.
    for i in 0..REMEMBERED_EVENTS {
        sink.publish(&event("nodeAssigned"), &service(&format!("s{i}")))
            .await
            .unwrap();
    }
    api.clear_log();
    sink.publish(&event("nodeAssigned"), &web).await.unwrap();
    assert_eq!(event_writes(&api), ["POST"]);
}
