//! Kubernetes events for health-check state changes (`oxlb.io/health-check`), on the
//! Service: `HealthCheckFailed` (Warning) when this node withdraws it,
//! `HealthCheckPassed` (Normal) when it announces it again.

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use oxlb_health::CheckState;
use oxlb_standalone::health_glue::CheckEvent;

pub async fn publish(recorder: &Recorder, service: &Service, change: &CheckEvent) {
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
    if let Err(e) = recorder.publish(&event, &service.object_ref(&())).await {
        tracing::warn!(error = %e, "recording {reason} failed");
    }
}
