//! `BGPPeer` metallb.io/v1beta1: deprecated, still accepted and converted to v1beta2.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LabelSelector;
use crate::bgppeer::{BGPPeer as BGPPeerV1beta2, BGPPeerSpec as BGPPeerSpecV1beta2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

/// The v1beta1 shape: fixed peerASN and peerAddress, own node selector type.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    deprecated = "v1beta1 is deprecated, please use v1beta2",
    doc = "BGPPeer is the Schema for the peers API.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "string", json_path = ".spec.peerASN"),
    printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
    printcolumn(
        name = "Multi Hops",
        type_ = "string",
        json_path = ".spec.ebgpMultiHop"
    )
)]
pub struct BGPPeerSpec {
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    #[serde(rename = "peerAddress")]
    pub peer_address: String,
    #[serde(
        rename = "sourceAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_address: Option<String>,
    #[serde(rename = "peerPort", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16384))]
    pub peer_port: Option<u16>,
    #[serde(rename = "holdTime", default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<String>,
    #[serde(
        rename = "keepaliveTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive_time: Option<String>,
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_selectors: Option<Vec<NodeSelector>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(
        rename = "bfdProfile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bfd_profile: Option<String>,
    #[serde(
        rename = "ebgpMultiHop",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ebgp_multi_hop: Option<bool>,
}

/// v1beta1's own selector type (same shape as a LabelSelector).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NodeSelector {
    #[serde(
        rename = "matchLabels",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub match_labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(
        rename = "matchExpressions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub match_expressions: Option<Vec<MatchExpression>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MatchExpression {
    pub key: String,
    pub operator: String,
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

impl From<BGPPeerSpec> for BGPPeerSpecV1beta2 {
    /// Field for field; v1beta1 has no dynamicASN/interface, and port 0 meant "default".
    fn from(old: BGPPeerSpec) -> Self {
        BGPPeerSpecV1beta2 {
            my_asn: old.my_asn,
            peer_asn: Some(old.peer_asn),
            peer_address: Some(old.peer_address),
            source_address: old.source_address,
            peer_port: Some(old.peer_port.filter(|p| *p != 0).unwrap_or(179)),
            hold_time: old.hold_time,
            keepalive_time: old.keepalive_time,
            router_id: old.router_id,
            node_selectors: old.node_selectors.map(|selectors| {
                selectors
                    .into_iter()
                    .map(|s| LabelSelector {
                        match_labels: s.match_labels,
                        match_expressions: s.match_expressions.map(|exprs| {
                            exprs
                                .into_iter()
                                .map(|e| LabelSelectorRequirement {
                                    key: e.key,
                                    operator: e.operator,
                                    values: Some(e.values),
                                })
                                .collect()
                        }),
                    })
                    .collect()
            }),
            password: old.password,
            bfd_profile: old.bfd_profile,
            ebgp_multi_hop: old.ebgp_multi_hop,
            ..Default::default()
        }
    }
}

impl From<BGPPeer> for BGPPeerV1beta2 {
    fn from(old: BGPPeer) -> Self {
        BGPPeerV1beta2 {
            metadata: old.metadata,
            spec: old.spec.into(),
        }
    }
}
