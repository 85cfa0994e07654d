//! Writes to the API server: a Service's managed fields, IPAddressPool status, the
//! ConfigurationState object and events. Each write says exactly what changes (JSON
//! merge patches carrying the `resourceVersion` they were decided from, so a write
//! based on an outdated object gets a 409 instead of overwriting newer data).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::{Client, Resource};
use oxlb_api::{
    ConfigurationState, ConfigurationStateResult, ConfigurationStateStatus, IPAddressPool,
};
use oxlb_controller::{
    DEPRECATED_POOL_ANNOTATION, Desired, Event, EventType, POOL_ANNOTATION, PoolStatus,
};
use serde_json::{Value, json};

/// The field manager named in server-side apply and shown in managedFields.
pub const FIELD_MANAGER: &str = "oxlb-controller";
/// The ConfigurationState object the controller writes (MetalLB's controller uses
/// the same name).
pub const CONFIGURATION_STATE: &str = "controller";

/// What differs between a Service as stored and what it should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Differences {
    pub annotation: bool,
    pub status: bool,
}

impl Differences {
    pub fn any(self) -> bool {
        self.annotation || self.status
    }
}

fn current_ips(service: &Service) -> Vec<IpAddr> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

/// Compares `desired` with the stored Service (used for retries, where the core's
/// `needs_update` refers to an older read).
pub fn differences(service: &Service, desired: &Desired) -> Differences {
    let Desired::Status { ingress, pool } = desired else {
        return Differences::default();
    };
    let annotations = service.metadata.annotations.as_ref();
    let current_pool = annotations.and_then(|a| a.get(POOL_ANNOTATION));
    let deprecated = annotations.is_some_and(|a| a.contains_key(DEPRECATED_POOL_ANNOTATION));
    Differences {
        annotation: current_pool != pool.as_ref() || deprecated,
        status: current_ips(service) != *ingress,
    }
}

/// The merge patch of the annotations (`null` removes).
pub fn annotation_patch(resource_version: Option<&str>, pool: Option<&str>) -> Value {
    json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {
                POOL_ANNOTATION: pool,
                DEPRECATED_POOL_ANNOTATION: Value::Null,
            }
        }
    })
}

/// The merge patch of `status.loadBalancer` (an empty list clears the ingress).
pub fn status_patch(resource_version: Option<&str>, ingress: &[IpAddr]) -> Value {
    let ingress: Value = if ingress.is_empty() {
        Value::Null
    } else {
        ingress
            .iter()
            .map(|ip| json!({ "ip": ip.to_string() }))
            .collect()
    };
    json!({
        "metadata": { "resourceVersion": resource_version },
        "status": { "loadBalancer": { "ingress": ingress } }
    })
}

/// Writes what differs on one Service: annotations first, then the status, each with
/// the resourceVersion of the previous step. Returns the resourceVersions this write
/// superseded (the one it was decided from and any intermediate one): versions the
/// watch will still deliver but that are already outdated.
pub async fn write_service(
    client: &Client,
    service: &Service,
    desired: &Desired,
) -> Result<Vec<String>, kube::Error> {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let diff = differences(service, desired);
    let mut version = service.metadata.resource_version.clone();
    let mut superseded = Vec::new();
    let params = PatchParams::default();
    if diff.annotation {
        let patch = annotation_patch(version.as_deref(), desired.pool());
        superseded.extend(version.take());
        version = api
            .patch(name, &params, &Patch::Merge(&patch))
            .await?
            .metadata
            .resource_version;
    }
    if diff.status {
        let patch = status_patch(version.as_deref(), desired.ingress());
        superseded.extend(version.take());
        api.patch_status(name, &params, &Patch::Merge(&patch))
            .await?;
    }
    Ok(superseded)
}

/// Records the core's events on a Service.
pub async fn publish_events(recorder: &Recorder, service: &Service, events: &[Event]) {
    let reference = service.object_ref(&());
    for event in events {
        let kube_event = KubeEvent {
            type_: match event.event_type {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: event.reason.as_str().to_string(),
            note: Some(event.message.clone()),
            // kube's Recorder folds events with the same (reason, action, object) into
            // one series and keeps the first note: a distinct action per message keeps
            // a new failure reason from being hidden under an old one.
            action: action_for(event),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&kube_event, &reference).await {
            tracing::warn!(error = %e, reason = event.reason.as_str(), "recording event failed");
        }
    }
}

fn action_for(event: &Event) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    event.message.hash(&mut hasher);
    format!(
        "{}-{:08x}",
        event.reason.as_str(),
        hasher.finish() & 0xffff_ffff
    )
}

/// An event recorder reporting as `component` (the event's reportingController, shown
/// by `kubectl describe` as `From`), instance `identity`.
pub fn recorder(client: &Client, component: &str, identity: &str) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: component.to_string(),
            instance: Some(identity.to_string()),
        },
    )
}

/// The IPAddressPool status as the CRD spells it.
pub fn pool_status_value(status: &PoolStatus) -> Value {
    json!({
        "status": {
            "assignedIPv4": status.assigned_ipv4,
            "assignedIPv6": status.assigned_ipv6,
            "availableIPv4": status.available_ipv4,
            "availableIPv6": status.available_ipv6,
        }
    })
}

pub async fn write_pool_status(
    client: &Client,
    namespace: &str,
    pool: &str,
    status: &PoolStatus,
) -> Result<(), kube::Error> {
    let api: Api<IPAddressPool> = Api::namespaced(client.clone(), namespace);
    api.patch_status(
        pool,
        &PatchParams::default(),
        &Patch::Merge(&pool_status_value(status)),
    )
    .await
    .map(|_| ())
}

/// The ConfigurationState the controller reports: Valid, or Invalid with every error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigState {
    pub valid: bool,
    pub errors: Vec<String>,
}

pub fn configuration_state_status(state: &ConfigState) -> ConfigurationStateStatus {
    ConfigurationStateStatus {
        result: Some(if state.valid {
            ConfigurationStateResult::Valid
        } else {
            ConfigurationStateResult::Invalid
        }),
        last_error: (!state.errors.is_empty()).then(|| state.errors.join("\n")),
        conditions: None,
    }
}

/// Creates the ConfigurationState object if needed (server-side apply of the object,
/// idempotent), then applies its status.
pub async fn write_configuration_state(
    client: &Client,
    namespace: &str,
    state: &ConfigState,
    ensure_object: bool,
) -> Result<(), kube::Error> {
    let api: Api<ConfigurationState> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let head = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "ConfigurationState",
        "metadata": { "name": CONFIGURATION_STATE, "namespace": namespace },
    });
    if ensure_object {
        let mut object = head.clone();
        object["spec"] = json!({});
        api.patch(CONFIGURATION_STATE, &params, &Patch::Apply(&object))
            .await?;
    }
    let mut status = head;
    status["status"] =
        serde_json::to_value(configuration_state_status(state)).unwrap_or(Value::Null);
    api.patch_status(CONFIGURATION_STATE, &params, &Patch::Apply(&status))
        .await?;
    Ok(())
}
