//! `Community` (metallb.io/v1beta1): named aliases for BGP community values.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A collection of aliases that BGPAdvertisements can use instead of raw values.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "Community is a collection of aliases for communities. Users can define named aliases to be used in the BGPAdvertisement CRD."
)]
pub struct CommunitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<CommunityAlias>>,
}

/// One alias: `name` stands for `value` (`A:B` or `large:A:B:C`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityAlias {
    /// The name of the alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The BGP community value the name stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
