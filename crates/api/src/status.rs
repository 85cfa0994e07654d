//! Status-only kinds written by oxlb: which node announces a service, and whether the
//! configuration was accepted.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

// Absent is empty too (`empty_spec!` below); not in the doc comment, which is the
// CRD's description.
/// Empty spec of ServiceL2Status (everything is in status).
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceL2Status",
    plural = "servicel2statuses",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ServiceL2StatusStatus",
    doc = "ServiceL2Status reveals the actual traffic status of loadbalancer services in layer2 mode.",
    printcolumn(name = "Allocated Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
pub struct ServiceL2StatusSpec {}

/// The spec of a status-only kind is empty and may be absent. oxlb's CRDs default it to
/// `{}` (crds.rs, `spec_may_be_omitted`), but MetalLB's do not and neither requires it,
/// so under MetalLB's CRDs (kept on a migration: Helm never replaces an existing CRD)
/// an object made by hand without `spec` is stored without one. The type kube derives
/// names `spec` without `#[serde(default)]` (kube-derive takes no serde attribute), and
/// one such object would make the whole typed list fail to decode, holding the
/// speaker's watch of its status objects at start. So the spec's own `Deserialize`
/// takes a missing or null `spec` as empty: serde deserializes a missing field as an
/// option (how `Option` fields default to `None`). Whatever an object has under `spec`
/// is ignored, as the derived empty struct ignored unknown fields. A missing `status`
/// is `None` already.
macro_rules! empty_spec {
    ($($spec:ident),*) => {$(
        impl<'de> Deserialize<'de> for $spec {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Option::<serde::de::IgnoredAny>::deserialize(deserializer).map(|_| Self {})
            }
        }
    )*};
}
empty_spec!(
    ServiceL2StatusSpec,
    ServiceBGPStatusSpec,
    ConfigurationStateSpec
);

/// The node answering ARP/NDP for a service, and on which interfaces.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceL2StatusStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(
        rename = "serviceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<String>,
    #[serde(
        rename = "serviceNamespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<InterfaceInfo>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InterfaceInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

// Absent is empty too (`empty_spec!` below).
/// Empty spec of ServiceBGPStatus.
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    plural = "servicebgpstatuses",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ServiceBGPStatusStatus",
    doc = "ServiceBGPStatus exposes the BGP peers a service is configured to be advertised to, per relevant node.",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
pub struct ServiceBGPStatusSpec {}

/// The BGP peers a node is configured to advertise a service to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceBGPStatusStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(
        rename = "serviceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<String>,
    #[serde(
        rename = "serviceNamespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<String>>,
}

// Absent is empty too (`empty_spec!` below).
/// Empty spec of ConfigurationState (a status-only kind).
#[derive(CustomResource, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ConfigurationState",
    plural = "configurationstates",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigurationStateStatus",
    doc = "ConfigurationState is a status-only CRD that reports configuration validation results from MetalLB components.",
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "ErrorSummary",
        type_ = "string",
        json_path = ".status.errorSummary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ConfigurationStateSpec {}

/// Whether a component accepted the configuration, and why not.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ConfigurationStateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConfigurationStateResult>,
    /// The errors of the rejected configuration, one per line; absent when Valid.
    /// MetalLB v0.15.3's field; `lastError` (what oxlb wrote before, and MetalLB's
    /// first ConfigurationState) is still read.
    #[serde(
        rename = "errorSummary",
        alias = "lastError",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConfigurationStateResult {
    Valid,
    Invalid,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Objects made by hand without `spec` (or `status`) decode, alone and in a list
    /// (what kube's typed list and watch decode); `spec: null`, `spec: {}` and a spec
    /// with fields too.
    #[test]
    fn a_missing_spec_or_status_decodes_as_the_default() {
        let object = |kind: &str, extra: serde_json::Value| {
            let mut object = json!({"apiVersion": "metallb.io/v1beta1", "kind": kind,
                "metadata": {"name": "by-hand", "namespace": "metallb-system"}});
            for (key, value) in extra.as_object().into_iter().flatten() {
                object[key] = value.clone();
            }
            object
        };
        for extra in [
            json!({}),
            json!({"spec": null}),
            json!({"spec": {}}),
            json!({"spec": {"unknown": 1}}),
        ] {
            let l2: ServiceL2Status =
                serde_json::from_value(object("ServiceL2Status", extra.clone())).unwrap();
            assert_eq!(l2.spec, ServiceL2StatusSpec {});
            assert_eq!(l2.status, None);
            let bgp: ServiceBGPStatus =
                serde_json::from_value(object("ServiceBGPStatus", extra.clone())).unwrap();
            assert_eq!(bgp.spec, ServiceBGPStatusSpec {});
            let state: ConfigurationState =
                serde_json::from_value(object("ConfigurationState", extra.clone())).unwrap();
            assert_eq!(state.spec, ConfigurationStateSpec {});
        }
        let status = json!({"node": "n1", "serviceName": "web", "serviceNamespace": "default",
                            "interfaces": [{"name": "eth0"}]});
        let list = json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2StatusList",
            "metadata": {"resourceVersion": "7"},
            "items": [object("ServiceL2Status", json!({"status": status})),
                      object("ServiceL2Status", json!({"spec": {}}))]});
        let list: kube::core::ObjectList<ServiceL2Status> =
            serde_json::from_str(&list.to_string()).unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(
            list.items[0]
                .status
                .as_ref()
                .and_then(|s| s.node.as_deref()),
            Some("n1")
        );
        // What oxlb writes keeps `spec: {}`, and reads back the same.
        let written = serde_json::to_value(&list.items[0]).unwrap();
        assert_eq!(written["spec"], json!({}));
        let back: ServiceL2Status = serde_json::from_value(written).unwrap();
        assert_eq!(back, list.items[0]);
    }

    /// The CRDs agree: `spec` is not required (so the API server accepts such an
    /// object), and oxlb's own CRDs give it the empty default.
    #[test]
    fn the_crds_do_not_require_a_spec() {
        let crds = crate::crds::all().unwrap();
        for kind in ["ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"] {
            let crd = crds.iter().find(|c| c.spec.names.kind == kind).unwrap();
            let crd = serde_json::to_value(crd).unwrap();
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            assert!(!required.contains(&json!("spec")), "{kind}: {schema:#}");
            assert_eq!(
                schema["properties"]["spec"]["default"],
                json!({}),
                "{kind}: {schema:#}"
            );
        }
    }
}
