//! ServiceBGPStatus: per Service this node advertises by BGP, the node and the peers
//! (MetalLB's `service_bgp_status_controller.go`).

use std::collections::BTreeMap;

use oxlb_announce::ServiceKey;
use oxlb_api::status::ServiceBGPStatusSpec;
use oxlb_api::{ServiceBGPStatus, ServiceBGPStatusStatus};

use super::announced::Announced;
use super::status_objects::status_kind;

status_kind!(
    ServiceBGPStatus,
    ServiceBGPStatusSpec {},
    ServiceBGPStatusStatus,
    "bgp"
);

/// The status of every Service announced here by BGP.
pub fn desired(
    node: &str,
    announced: &BTreeMap<ServiceKey, Announced>,
) -> BTreeMap<ServiceKey, ServiceBGPStatusStatus> {
    announced
        .iter()
        .filter_map(|(key, a)| Some((key.clone(), status(node, key, a)?)))
        .collect()
}

/// The status of one Service if it is announced here by BGP.
pub fn status(node: &str, key: &ServiceKey, a: &Announced) -> Option<ServiceBGPStatusStatus> {
    let peers = a.bgp_peers.as_ref()?;
    Some(ServiceBGPStatusStatus {
        node: Some(node.to_string()),
        service_name: Some(key.name.clone()),
        service_namespace: Some(key.namespace.clone()),
        peers: Some(peers.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The typed status is the object MetalLB's speaker writes, field for field.
    #[test]
    fn only_bgp_services_get_a_status_with_their_peers() {
        let key = |name: &str| ServiceKey {
            namespace: "ns".into(),
            name: name.into(),
        };
        let announced = BTreeMap::from([
            (
                key("l2"),
                Announced {
                    l2_interfaces: Some([].into()),
                    bgp_peers: None,
                },
            ),
            (
                key("bgp"),
                Announced {
                    l2_interfaces: None,
                    bgp_peers: Some(["r1".to_string(), "r2".to_string()].into()),
                },
            ),
        ]);
        let want = desired("n1", &announced);
        assert_eq!(want.keys().collect::<Vec<_>>(), [&key("bgp")]);
        assert_eq!(
            serde_json::to_value(&want[&key("bgp")]).unwrap(),
            json!({"node": "n1", "serviceName": "bgp", "serviceNamespace": "ns",
                "peers": ["r1", "r2"]})
        );
    }
}
