//! `BGPAdvertisement` (metallb.io/v1beta1): announce pools by BGP, with attributes.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LabelSelector;

/// Announces the IPs of the selected pools to the selected BGP peers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    plural = "bgpadvertisements",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "BGPAdvertisement allows to advertise the IPs coming from the selected IPAddressPools via BGP, setting the parameters of the BGP Advertisement.",
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
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers")
)]
pub struct BGPAdvertisementSpec {
    /// Roll the /32s up into a larger IPv4 prefix. 1..32, default 32; not shorter than
    /// the pool's shortest CIDR.
    #[serde(
        rename = "aggregationLength",
        default = "default_aggregation_v4",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 32))]
    pub aggregation_length: Option<i32>,

    /// Roll the /128s up into a larger IPv6 prefix. 1..128, default 128.
    #[serde(
        rename = "aggregationLengthV6",
        default = "default_aggregation_v6",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 128))]
    pub aggregation_length_v6: Option<i32>,

    /// BGP LOCAL_PREF (sent to iBGP peers only; higher is preferred).
    #[serde(rename = "localPref", default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,

    /// Communities: `65535:65282`, `large:1:2:3`, or the name of a `Community` alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<String>>,

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

    /// Nodes announced as next hops; empty = all nodes.
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_selectors: Option<Vec<LabelSelector>>,

    /// BGPPeer names to advertise to; empty = every peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<String>>,
    /// Services this advertisement applies to, by label (any selector matching); empty =
    /// every Service of the selected pools. Not with a non-default aggregation length.
    /// (MetalLB main branch.)
    #[serde(
        rename = "serviceSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_selectors: Option<Vec<LabelSelector>>,
}

fn default_aggregation_v4() -> Option<i32> {
    Some(32)
}

fn default_aggregation_v6() -> Option<i32> {
    Some(128)
}
