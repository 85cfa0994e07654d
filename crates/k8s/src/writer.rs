//! Writes to the API server: a Service's managed fields, IPAddressPool status, the
//! ConfigurationState object and events. Each write says exactly what changes (JSON
//! merge patches carrying the `resourceVersion` they were decided from, so a write
//! based on an outdated object gets a 409 instead of overwriting newer data).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Reporter};
use oxlb_api::{
    ConfigurationState, ConfigurationStateResult, ConfigurationStateStatus, IPAddressPool,
};
use oxlb_controller::service::ServiceView;
use oxlb_controller::{
    DEPRECATED_POOL_ANNOTATION, Desired, Event, EventType, POOL_ANNOTATION, PoolStatus,
};
use serde_json::{Value, json};

use crate::cached_service::CachedService;
use crate::event_sink::EventSink;
use crate::speaker::PodIdentity;

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

/// Compares `desired` with the cached Service (used for retries, where the core's
/// `needs_update` refers to an older read).
pub fn differences(service: &ServiceView, desired: &Desired) -> Differences {
    let Desired::Status { ingress, pool } = desired else {
        return Differences::default();
    };
    let deprecated = service.annotations.contains_key(DEPRECATED_POOL_ANNOTATION);
    Differences {
        annotation: service.status_pool() != pool.as_deref() || deprecated,
        status: service.status_ips[..] != ingress[..],
    }
}

/// The merge patch of what differs: the pool annotation (`null` removes) and/or
/// `status.loadBalancer` (an empty list clears the ingress), with the resourceVersion
/// it was decided from.
pub fn service_patch(
    resource_version: Option<&str>,
    diff: Differences,
    pool: Option<&str>,
    ingress: &[IpAddr],
) -> Value {
    let mut patch = json!({ "metadata": { "resourceVersion": resource_version } });
    if diff.annotation {
        patch["metadata"]["annotations"] = json!({
            POOL_ANNOTATION: pool,
            DEPRECATED_POOL_ANNOTATION: Value::Null,
        });
    }
    if diff.status {
        let ingress: Value = if ingress.is_empty() {
            Value::Null
        } else {
            ingress
                .iter()
                .map(|ip| json!({ "ip": ip.to_string() }))
                .collect()
        };
        patch["status"] = json!({ "loadBalancer": { "ingress": ingress } });
    }
    patch
}

/// Writes what differs on one Service in one request to the status subresource, which
/// carries the annotation too: for Services the API server's status strategy resets
/// only `spec` on a status write (kubernetes pkg/registry/core/service/strategy.go,
/// serviceStatusStrategy), so metadata goes through, and the controller needs no
/// write access to Services themselves (MetalLB's controller writes both the same way,
/// with only `update services/status`). Returns the resourceVersion this write
/// superseded (the one it was decided from): a version the watch will still deliver
/// but that is already outdated.
pub async fn write_service(
    client: &Client,
    service: &CachedService,
    desired: &Desired,
) -> Result<Vec<String>, kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), service.namespace());
    let name = service.name();
    let diff = differences(&service.view, desired);
    if !diff.any() {
        return Ok(Vec::new());
    }
    let version = service.resource_version.clone();
    let patch = service_patch(version.as_deref(), diff, desired.pool(), desired.ingress());
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(version.into_iter().collect())
}

/// Records the core's events on a Service.
pub async fn publish_events(recorder: &EventSink, service: &CachedService, events: &[Event]) {
    let reference = service.object_ref();
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

/// Reason of the Warning event recorded on a metallb.io object that is invalid (left out,
/// or held at its last valid version).
pub const INVALID_OBJECT_REASON: &str = "InvalidConfiguration";

/// Records each error on the object it is about (a Warning event naming the field and
/// what would be valid), so `kubectl describe` on the object shows why it is not in
/// force as written.
pub async fn publish_config_errors(
    recorder: &EventSink,
    namespace: &str,
    errors: &[oxlb_config::Diagnostic],
) {
    for error in errors {
        let Some(kind) = oxlb_config::ObjectKind::from_name(&error.kind) else {
            continue;
        };
        let version = if kind == oxlb_config::ObjectKind::BGPPeer {
            "metallb.io/v1beta2"
        } else {
            "metallb.io/v1beta1"
        };
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(version.to_string()),
            kind: Some(error.kind.clone()),
            name: Some(error.name.clone()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        };
        let mut note = error.to_string();
        // The API server limits an event's note to 1 kB.
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = KubeEvent {
            type_: KubeEventType::Warning,
            reason: INVALID_OBJECT_REASON.to_string(),
            action: format!(
                "{INVALID_OBJECT_REASON}-{}",
                crate::stable_name::short_hash(&note)
            ),
            note: Some(note),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, kind = %error.kind, name = %error.name, "recording event failed");
        }
    }
}

fn action_for(event: &Event) -> String {
    format!(
        "{}-{}",
        event.reason.as_str(),
        crate::stable_name::short_hash(&event.message)
    )
}

/// The component named on the controller's events (`From` in `kubectl describe`,
/// `reportingController`, `source.component`): MetalLB's own name. Events are the one
/// place where users, runbooks and tools (`kubectl get events
/// --field-selector reportingComponent=metallb-controller`, event exporters with
/// per-component routes) select by component, and oxlb stands in for MetalLB's
/// controller, with MetalLB's reasons and messages; a new name would silently empty
/// those filters. Field ownership (managedFields) keeps oxlb's own name
/// ([`FIELD_MANAGER`]): nothing filters on it, and it tells who really wrote a field.
pub const CONTROLLER_COMPONENT: &str = "metallb-controller";
/// The same for the speakers' events (`nodeAssigned`).
pub const SPEAKER_COMPONENT: &str = "metallb-speaker";

pub fn recorder(client: &Client, identity: &str) -> EventSink {
    component_recorder(client, CONTROLLER_COMPONENT, identity)
}

pub fn speaker_recorder(client: &Client, node: &str) -> EventSink {
    component_recorder(client, SPEAKER_COMPONENT, node)
}

fn component_recorder(client: &Client, component: &str, identity: &str) -> EventSink {
    EventSink::new(
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

/// What a component reports in its ConfigurationState: Valid, or Invalid with every error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigState {
    pub valid: bool,
    pub errors: Vec<String>,
}

/// Label naming the component of a ConfigurationState (MetalLB's; users select on it:
/// `kubectl get configurationstates -l metallb.io/component-type=speaker`).
pub const COMPONENT_TYPE_LABEL: &str = "metallb.io/component-type";
/// Label naming the node of a speaker's ConfigurationState.
pub const NODE_NAME_LABEL: &str = "metallb.io/node-name";

/// Which ConfigurationState object a component writes, as MetalLB names and labels it:
/// `controller`, or `speaker-<node>` per speaker, owned by the pod that writes it (so a
/// removed speaker's object goes with its pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateObject {
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
    /// The writing pod: its owner reference. None outside a pod (tests, a controller
    /// run by hand): no owner then, rather than a dangling one.
    pub owner: Option<PodIdentity>,
    /// The condition type carrying the result (MetalLB: one per reconciler).
    pub condition: &'static str,
}

impl StateObject {
    pub fn controller(pod: Option<PodIdentity>) -> StateObject {
        StateObject {
            name: CONFIGURATION_STATE.to_string(),
            labels: vec![(COMPONENT_TYPE_LABEL, "controller".to_string())],
            owner: pod,
            condition: "poolReconcilerValid",
        }
    }

    pub fn speaker(node: &str, pod: Option<PodIdentity>) -> StateObject {
        StateObject {
            name: format!("speaker-{node}"),
            labels: vec![
                (COMPONENT_TYPE_LABEL, "speaker".to_string()),
                (NODE_NAME_LABEL, node.to_string()),
            ],
            owner: pod,
            condition: "configReconcilerValid",
        }
    }

    /// The object (metadata only) as server-side applied.
    pub fn object(&self, namespace: &str) -> Value {
        let labels: serde_json::Map<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
            .collect();
        let mut metadata = json!({
            "name": self.name,
            "namespace": namespace,
            "labels": labels,
        });
        if let Some(PodIdentity { name: pod, uid }) = &self.owner {
            // As controllerutil.SetOwnerReference: an owner, not a controller.
            metadata["ownerReferences"] =
                json!([{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}]);
        }
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": metadata,
            "spec": {},
        })
    }

    /// The status as server-side applied: result, errorSummary, one condition.
    pub fn status(&self, namespace: &str, state: &ConfigState, now: &str) -> Value {
        let status = configuration_state_status(state);
        let mut status = serde_json::to_value(status).unwrap_or(Value::Null);
        status["conditions"] = json!([{
            "type": self.condition,
            "status": if state.valid { "True" } else { "False" },
            "reason": if state.valid { "Valid" } else { "ConfigurationError" },
            "message": state.errors.join("\n"),
            "lastTransitionTime": now,
        }]);
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "ConfigurationState",
            "metadata": { "name": self.name, "namespace": namespace },
            "status": status,
        })
    }
}

pub fn configuration_state_status(state: &ConfigState) -> ConfigurationStateStatus {
    ConfigurationStateStatus {
        result: Some(if state.valid {
            ConfigurationStateResult::Valid
        } else {
            ConfigurationStateResult::Invalid
        }),
        error_summary: (!state.errors.is_empty()).then(|| state.errors.join("\n")),
        conditions: None,
    }
}

/// Creates the ConfigurationState object if needed (server-side apply of the object,
/// idempotent), then applies its status. Fields oxlb applied before and no longer
/// applies (an old `lastError`) are dropped by the apply.
pub async fn write_configuration_state(
    client: &Client,
    namespace: &str,
    target: &StateObject,
    state: &ConfigState,
    ensure_object: bool,
) -> Result<(), kube::Error> {
    let api: Api<ConfigurationState> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    if ensure_object {
        api.patch(
            &target.name,
            &params,
            &Patch::Apply(&target.object(namespace)),
        )
        .await?;
    }
    // metav1.Time: RFC 3339 in whole seconds.
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    api.patch_status(
        &target.name,
        &params,
        &Patch::Apply(&target.status(namespace, state, &now)),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_state_is_named_labelled_and_owned_as_metallb_does() {
        let target = StateObject::speaker(
            "n1",
            Some(PodIdentity {
                name: "speaker-x".into(),
                uid: "u-1".into(),
            }),
        );
        let object = target.object("metallb-system");
        assert_eq!(object["metadata"]["name"], "speaker-n1");
        assert_eq!(
            object["metadata"]["labels"],
            json!({"metallb.io/component-type": "speaker", "metallb.io/node-name": "n1"})
        );
        assert_eq!(
            object["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "speaker-x", "uid": "u-1"}])
        );
        let invalid = ConfigState {
            valid: false,
            errors: vec!["a".into(), "b".into()],
        };
        let status = target.status("metallb-system", &invalid, "2026-01-01T00:00:00Z");
        assert_eq!(status["status"]["result"], "Invalid");
        assert_eq!(status["status"]["errorSummary"], "a\nb");
        assert_eq!(status["status"]["conditions"][0]["status"], "False");
        assert!(status["status"].get("lastError").is_none());
        let valid = ConfigState {
            valid: true,
            errors: vec![],
        };
        let status = target.status("metallb-system", &valid, "2026-01-01T00:00:00Z");
        assert_eq!(status["status"]["result"], "Valid");
        assert!(status["status"].get("errorSummary").is_none());
        assert_eq!(status["status"]["conditions"][0]["reason"], "Valid");
        assert_eq!(
            status["status"]["conditions"][0]["type"],
            "configReconcilerValid"
        );
        // Without a pod (no downward API): no owner rather than a wrong one.
        let bare = StateObject::controller(None).object("ns");
        assert!(bare["metadata"].get("ownerReferences").is_none());
        assert_eq!(bare["metadata"]["name"], "controller");
    }

    #[test]
    fn an_old_last_error_is_still_read() {
        let old: ConfigurationStateStatus =
            serde_json::from_value(json!({"result": "Invalid", "lastError": "x"})).unwrap();
        assert_eq!(old.error_summary.as_deref(), Some("x"));
    }
}
