//! Kubernetes objects (as read from files, or later from the API) to the views the pure
//! announce core decides on.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use oxlb_announce::{Endpoint, Endpoints, NodeView, ServiceKey, TrafficPolicy};

/// The label an EndpointSlice carries to say which Service it belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub fn node_view(node: &Node) -> NodeView {
    let network_unavailable = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    NodeView {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        network_unavailable,
        // `kubectl cordon` / the first step of `kubectl drain`.
        cordoned: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        // Known from the speakers' news, not from the object (`oxlb run`'s shell).
        drained: false,
    }
}

/// A node named in `oxlb run --node` without a Node object in the files: no labels.
pub fn bare_node(name: &str) -> NodeView {
    NodeView {
        name: name.to_string(),
        labels: BTreeMap::new(),
        network_unavailable: false,
        cordoned: false,
        drained: false,
    }
}

pub fn service_key(service: &Service) -> ServiceKey {
    ServiceKey {
        namespace: service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name: service.metadata.name.clone().unwrap_or_default(),
    }
}

pub fn traffic_policy(service: &Service) -> TrafficPolicy {
    match service
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
    {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    }
}

/// The Service an EndpointSlice belongs to, by its `kubernetes.io/service-name` label
/// (a slice without a namespace is in `default`, as for Services).
pub fn slice_owner(slice: &EndpointSlice) -> Option<ServiceKey> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(ServiceKey {
        namespace: slice
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name: name.clone(),
    })
}

/// An EndpointSlice as the announce decision reads it: the Service it belongs to and,
/// per endpoint, its node and conditions. The speaker's cache keeps this instead of the
/// object (issue 22, bench speaker_footprint, heaptrack: 10,000 slices of 5 endpoints
/// held 34.8 MB as objects, 30.5 MB even with every unread field dropped: most of a
/// slice's cost is k8s-openapi's wide structs themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceView {
    pub owner: Option<ServiceKey>,
    pub endpoints: Vec<Endpoint>,
}

pub fn slice_view(slice: &EndpointSlice) -> SliceView {
    SliceView {
        owner: slice_owner(slice),
        endpoints: slice
            .endpoints
            .iter()
            .map(|endpoint| {
                let conditions = endpoint.conditions.as_ref();
                // Kubernetes: an unset `ready` means ready; an unset `serving` means
                // the same as `ready`.
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
                let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
                Endpoint {
                    node: endpoint
                        .node_name
                        .as_deref()
                        .map(crate::interner::node_name),
                    ready,
                    serving,
                }
            })
            .collect(),
    }
}

/// The endpoints of `service` from every EndpointSlice labelled with its name in its
/// namespace; no such slice at all means the endpoints are unknown (standalone: served
/// on every node).
pub fn endpoints_of<'a>(
    key: &ServiceKey,
    slices: impl IntoIterator<Item = &'a SliceView>,
) -> Endpoints {
    let mine: Vec<&SliceView> = slices
        .into_iter()
        .filter(|slice| slice.owner.as_ref() == Some(key))
        .collect();
    if mine.is_empty() {
        return Endpoints::Unknown;
    }
    Endpoints::Known(
        mine.iter()
            .flat_map(|slice| slice.endpoints.iter().cloned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::api::discovery::v1::{Endpoint as K8sEndpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn slice(namespace: &str, service: &str, endpoints: Vec<K8sEndpoint>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), service.to_string())].into()),
                ..Default::default()
            },
            endpoints,
            address_type: "IPv4".into(),
            ports: None,
        }
    }

    fn endpoint(node: &str, ready: Option<bool>, serving: Option<bool>) -> K8sEndpoint {
        K8sEndpoint {
            node_name: Some(node.into()),
            conditions: Some(EndpointConditions {
                ready,
                serving,
                terminating: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_come_from_the_services_slices_with_kubernetes_defaults() {
        let key = ServiceKey {
            namespace: "web".into(),
            name: "front".into(),
        };
        let slices = [
            slice(
                "web",
                "front",
                vec![
                    endpoint("n1", None, None),
                    endpoint("n2", Some(false), Some(true)),
                ],
            ),
            slice("web", "other", vec![endpoint("n3", Some(true), None)]),
            slice("default", "front", vec![endpoint("n4", Some(true), None)]),
        ];
        let slices: Vec<SliceView> = slices.iter().map(slice_view).collect();
        let Endpoints::Known(endpoints) = endpoints_of(&key, &slices) else {
            panic!("expected known endpoints");
        };
        assert_eq!(
            endpoints,
            vec![
                Endpoint {
                    node: Some("n1".into()),
                    ready: true,
                    serving: true
                },
                Endpoint {
                    node: Some("n2".into()),
                    ready: false,
                    serving: true
                },
            ]
        );
        let lonely = ServiceKey {
            namespace: "x".into(),
            name: "y".into(),
        };
        assert_eq!(endpoints_of(&lonely, &slices), Endpoints::Unknown);
    }

    #[test]
    fn a_slice_view_keeps_its_owner_and_endpoints_conditions() {
        let full: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "front-x7k2p", "namespace": "web",
                "labels": {SERVICE_NAME_LABEL: "front",
                           "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-12-07T08:00:00Z"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "front", "uid": "u1"}]},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.1.5"], "nodeName": "n1", "zone": "a", "hostname": "h",
                 "targetRef": {"kind": "Pod", "namespace": "web", "name": "front-1"},
                 "hints": {"forZones": [{"name": "a"}]},
                 "conditions": {"ready": true, "serving": true, "terminating": false}},
                {"addresses": ["10.244.2.5"], "nodeName": "n2",
                 "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.244.3.5"]}
            ]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let view = slice_view(&full);
        assert_eq!(
            view.owner,
            Some(ServiceKey {
                namespace: "web".into(),
                name: "front".into()
            })
        );
        let endpoint = |node: Option<&str>, ready, serving| Endpoint {
            node: node.map(Into::into),
            ready,
            serving,
        };
        assert_eq!(
            view.endpoints,
            [
                endpoint(Some("n1"), true, true),
                endpoint(Some("n2"), false, true),
                endpoint(None, true, true),
            ]
        );
    }

    #[test]
    fn cordoned_nodes_are_marked() {
        let node = Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                unschedulable: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(node_view(&node).cordoned);
        assert!(!node_view(&Node::default()).cordoned);
    }

    #[test]
    fn network_unavailable_nodes_are_marked() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "NetworkUnavailable".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let view = node_view(&node);
        assert!(view.network_unavailable && view.is_excluded());
    }
}
