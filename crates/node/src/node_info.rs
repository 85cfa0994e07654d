//! This node as the protocols need it, read from its Node object in one place: the labels
//! (BGPPeer nodeSelectors) and the InternalIP addresses (the default router ID, the
//! Layer 2 membership address).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Node;

/// What the protocols need to know about this node besides the announcements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// The Node's labels (BGPPeer nodeSelectors).
    pub labels: BTreeMap<String, String>,
    /// The Node's first IPv4 InternalIP: the router ID when a BGPPeer gives none
    /// (MetalLB's default).
    pub internal_ipv4: Option<Ipv4Addr>,
}

impl NodeInfo {
    pub fn from_node(node: &Node) -> NodeInfo {
        NodeInfo {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            internal_ipv4: internal_ips(node).find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            }),
        }
    }

    /// The Node named `name` among `nodes`; a node without a Node object has no labels
    /// and no address.
    pub fn find<'a>(nodes: impl IntoIterator<Item = &'a Node>, name: &str) -> NodeInfo {
        nodes
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .map(NodeInfo::from_node)
            .unwrap_or_default()
    }
}

/// The Node's InternalIP addresses in the order the Node lists them (unparsable ones
/// left out).
pub fn internal_ips(node: &Node) -> impl Iterator<Item = IpAddr> + '_ {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse::<IpAddr>().ok())
}

/// The Node's first InternalIP of either family: the address the other speakers know it
/// by.
pub fn first_internal_ip(node: &Node) -> Option<IpAddr> {
    internal_ips(node).next()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    use super::*;

    fn node(addresses: &[(&str, &str)]) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some("n1".into());
        node.metadata.labels = Some(BTreeMap::from([("zone".into(), "a".into())]));
        node.status = Some(NodeStatus {
            addresses: Some(
                addresses
                    .iter()
                    .map(|(type_, address)| NodeAddress {
                        type_: type_.to_string(),
                        address: address.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        node
    }

    #[test]
    fn the_first_ipv4_internal_ip_is_the_router_id_fallback() {
        let n = node(&[
            ("ExternalIP", "192.0.2.1"),
            ("InternalIP", "fd00::5"),
            ("InternalIP", "not-an-ip"),
            ("InternalIP", "10.0.0.5"),
            ("InternalIP", "10.0.0.6"),
        ]);
        let info = NodeInfo::from_node(&n);
        assert_eq!(info.internal_ipv4, Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(info.labels.get("zone").map(String::as_str), Some("a"));
        // The membership address keeps the Node's order, either family.
        assert_eq!(first_internal_ip(&n), Some("fd00::5".parse().unwrap()));
    }

    #[test]
    fn a_node_without_an_object_or_addresses_has_none() {
        assert_eq!(NodeInfo::find(&[node(&[])], "n1").internal_ipv4, None);
        assert_eq!(NodeInfo::find(&[node(&[])], "other"), NodeInfo::default());
    }
}
