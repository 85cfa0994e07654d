//! The CustomResourceDefinitions of every kind, as `oxlb crds` prints them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;

use crate::{bgppeer, bgppeer_v1beta1};

/// Every CRD, BGPPeer with both versions (v1beta2 stored, v1beta1 served, deprecated),
/// sorted by name so the output is stable.
pub fn all() -> Result<Vec<CustomResourceDefinition>, String> {
    let peer = merge_crds(
        vec![bgppeer::BGPPeer::crd(), bgppeer_v1beta1::BGPPeer::crd()],
        "v1beta2",
    )
    .map_err(|e| format!("merging BGPPeer versions: {e}"))?;
    let mut crds = vec![
        crate::BFDProfile::crd(),
        crate::BGPAdvertisement::crd(),
        peer,
        crate::Community::crd(),
        crate::IPAddressPool::crd(),
        crate::L2Advertisement::crd(),
        crate::ServiceBGPStatus::crd(),
        crate::ServiceL2Status::crd(),
        crate::ConfigurationState::crd(),
    ];
    for crd in &mut crds {
        // Status written through the subresource, as MetalLB's CRDs declare.
        for version in &mut crd.spec.versions {
            let subresources = version.subresources.get_or_insert_with(Default::default);
            subresources.status.get_or_insert_with(Default::default);
        }
    }
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(crds)
}
