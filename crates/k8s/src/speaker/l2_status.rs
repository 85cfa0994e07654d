//! ServiceL2Status: per Service this node answers ARP/NDP for, the node and the
//! interfaces (MetalLB's `layer2_status_controller.go`).

use std::collections::BTreeMap;

use oxlb_announce::ServiceKey;
use oxlb_api::status::{InterfaceInfo, ServiceL2StatusSpec};
use oxlb_api::{ServiceL2Status, ServiceL2StatusStatus};

use super::announced::Announced;
use super::status_objects::status_kind;

status_kind!(
    ServiceL2Status,
    ServiceL2StatusSpec {},
    ServiceL2StatusStatus,
    "l2"
);

/// The status of every Service announced here by Layer 2.
pub fn desired(
    node: &str,
    announced: &BTreeMap<ServiceKey, Announced>,
) -> BTreeMap<ServiceKey, ServiceL2StatusStatus> {
    announced
        .iter()
        .filter_map(|(key, a)| Some((key.clone(), status(node, key, a)?)))
        .collect()
}

/// The status of one Service if it is announced here by Layer 2.
pub fn status(node: &str, key: &ServiceKey, a: &Announced) -> Option<ServiceL2StatusStatus> {
    let interfaces = a.l2_interfaces.as_ref()?;
    Some(ServiceL2StatusStatus {
        node: Some(node.to_string()),
        service_name: Some(key.name.clone()),
        service_namespace: Some(key.namespace.clone()),
        interfaces: Some(
            interfaces
                .iter()
                .map(|i| InterfaceInfo {
                    name: Some(i.clone()),
                })
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The typed status is the object MetalLB's speaker writes, field for field.
    #[test]
    fn only_layer2_services_get_a_status_with_their_interfaces() {
        let key = |name: &str| ServiceKey {
            namespace: "ns".into(),
            name: name.into(),
        };
        let announced = BTreeMap::from([
            (
                key("l2"),
                Announced {
                    l2_interfaces: Some(["eth0".to_string()].into()),
                    bgp_peers: None,
                },
            ),
            (
                key("bgp"),
                Announced {
                    l2_interfaces: None,
                    bgp_peers: Some(["r".to_string()].into()),
                },
            ),
        ]);
        let want = desired("n1", &announced);
        assert_eq!(want.keys().collect::<Vec<_>>(), [&key("l2")]);
        assert_eq!(
            serde_json::to_value(&want[&key("l2")]).unwrap(),
            json!({"node": "n1", "serviceName": "l2", "serviceNamespace": "ns",
                "interfaces": [{"name": "eth0"}]})
        );
    }
}
