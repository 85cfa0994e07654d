//! `metallb.io` custom resource types, field for field as MetalLB v0.15 names them, so a
//! MetalLB user's YAML deserializes unchanged. No logic beyond defaults and the v1beta1 →
//! v1beta2 BGPPeer conversion; validation lives in `oxlb-config`.
//!
//! Unknown fields are *accepted* here (no `deny_unknown_fields`): the config loader walks
//! the raw object against the CRD schema and reports typos as warnings with the nearest
//! known name, which is kinder than a hard parse error.

// `#[kube(printcolumn(type_ = ...), printcolumn(type_ = ...))]` repeats keys inside
// different printcolumn groups; clippy reads that as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

pub mod bfdprofile;
pub mod bgpadvertisement;
pub mod bgppeer;
pub mod bgppeer_v1beta1;
pub mod community;
mod crd_rules;
pub mod crds;
pub mod ipaddresspool;
pub mod l2advertisement;
pub mod status;

pub use bfdprofile::{BFDProfile, BFDProfileSpec};
pub use bgpadvertisement::{BGPAdvertisement, BGPAdvertisementSpec};
pub use bgppeer::{BGPPeer, BGPPeerSpec, DynamicASNMode};
pub use community::{Community, CommunityAlias, CommunitySpec};
pub use ipaddresspool::{IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation};
pub use l2advertisement::{L2Advertisement, L2AdvertisementSpec, PreferredNodeSelector};
pub use status::{
    ConfigurationState, ConfigurationStateResult, ConfigurationStateStatus, InterfaceInfo,
    ServiceBGPStatus, ServiceBGPStatusStatus, ServiceL2Status, ServiceL2StatusStatus,
};

/// The API group of every kind here.
pub const GROUP: &str = "metallb.io";

/// Kubernetes label selector, as MetalLB uses it (`metav1.LabelSelector`).
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
