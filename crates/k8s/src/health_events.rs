//! Kubernetes events for health-check state changes (`oxlb.io/health-check`), on the
//! Service: `HealthCheckFailed` (Warning) when this node withdraws it,
//! `HealthCheckPassed` (Normal) when it announces it again, `HealthCheckInvalid`
//! (Warning) when its annotations are invalid (then it is announced as if unchecked).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::event_sink::EventSink;
use oxlb_health::CheckState;
use oxlb_node::health::CheckEvent;

pub async fn publish(recorder: &EventSink, service: &ObjectReference, change: &CheckEvent) {
    let (type_, reason) = match change.state {
        CheckState::Up => (EventType::Normal, "HealthCheckPassed"),
        CheckState::Down => (EventType::Warning, "HealthCheckFailed"),
        CheckState::Pending => return,
    };
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(change.message.clone()),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, service).await {
        tracing::warn!(error = %e, "recording {reason} failed");
    }
}

pub async fn publish_invalid(recorder: &EventSink, service: &ObjectReference, message: &str) {
    let event = Event {
        type_: EventType::Warning,
        reason: "HealthCheckInvalid".to_string(),
        note: Some(message.to_string()),
        action: "HealthCheckInvalid".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, service).await {
        tracing::warn!(error = %e, "recording HealthCheckInvalid failed");
    }
}
