//! The CustomResourceDefinitions of every kind, as `oxlb crds` prints them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps,
};
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
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                spec_may_be_omitted(schema);
            }
        }
    }
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(crds)
}

/// MetalLB's kinds declare `spec,omitempty`: an object without a spec is valid (the
/// documented L2Advertisement has none). kube-derive makes the root require `spec`, which
/// would make the API server refuse such objects. Where the spec requires no field, the
/// root stops requiring it and `spec` defaults to `{}`, so the API server stores a spec
/// and the typed watchers (whose `spec` field is not optional) still deserialize it.
/// Where the spec has required fields (IPAddressPool `addresses`, BGPPeer `myASN`) an
/// object without spec is invalid anyway and `spec` stays required.
fn spec_may_be_omitted(root: &mut JSONSchemaProps) {
    let Some(spec) = root.properties.as_mut().and_then(|p| p.get_mut("spec")) else {
        return;
    };
    if spec.required.as_ref().is_some_and(|r| !r.is_empty()) {
        return;
    }
    spec.default = Some(JSON(serde_json::json!({})));
    if let Some(required) = root.required.as_mut() {
        required.retain(|r| r != "spec");
        if required.is_empty() {
            root.required = None;
        }
    }
}
