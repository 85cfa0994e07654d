//! `L2Advertisement` (metallb.io/v1beta1): announce pools by ARP / NDP.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LabelSelector;

/// Announces the IPs of the selected pools from the selected nodes by Layer 2 (ARP for
/// IPv4, NDP for IPv6). Empty lists mean "all".
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    plural = "l2advertisements",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "L2Advertisement allows to advertise the LoadBalancer IPs provided by the selected pools via L2.",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(
        name = "IPAddressPool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors"
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces")
)]
pub struct L2AdvertisementSpec {
    /// Pools to advertise, by name.
    #[serde(
        rename = "ipAddressPools",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address_pools: Option<Vec<String>>,
    /// Pools to advertise, by label. If neither this nor `ipAddressPools` selects a pool,
    /// the advertisement applies to every pool.
    #[serde(
        rename = "ipAddressPoolSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address_pool_selectors: Option<Vec<LabelSelector>>,
    /// Nodes that may announce; empty = all nodes.
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_selectors: Option<Vec<LabelSelector>>,
    /// Interfaces to answer ARP/NDP on; empty = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<String>>,
    /// Services this advertisement applies to, by label (any selector matching); empty =
    /// every Service of the selected pools. (MetalLB main branch.)
    #[serde(
        rename = "serviceSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_selectors: Option<Vec<LabelSelector>>,
    /// Nodes to prefer when electing the announcing node: among the eligible nodes, those
    /// with the highest summed weight of matching preferences win; the usual hash
    /// decides among them. (MetalLB main branch.)
    #[serde(
        rename = "preferredNodeSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_node_selectors: Option<Vec<PreferredNodeSelector>>,
}

/// A weighted node preference (like a Pod's preferred scheduling term).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PreferredNodeSelector {
    /// Added to a node's score when `preference` matches its labels.
    pub weight: i32,
    /// The nodes this weight goes to.
    pub preference: LabelSelector,
}
