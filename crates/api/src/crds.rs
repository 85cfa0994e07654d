//! The CustomResourceDefinitions of every kind, as `oxlb crds` prints them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresourceStatus, JSON, JSONSchemaProps,
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
    let crds = vec![
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
    // Rules the derive attributes cannot state (through JSON: one walk over every
    // schema node); first, since the typed round trip drops empty objects.
    let mut crds = crds
        .into_iter()
        .map(|crd| {
            let mut value = serde_json::to_value(crd).map_err(|e| e.to_string())?;
            crate::crd_rules::apply(&mut value);
            serde_json::from_value::<CustomResourceDefinition>(value).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    for crd in &mut crds {
        // Status written through the subresource, as MetalLB's CRDs declare.
        for version in &mut crd.spec.versions {
            let subresources = version.subresources.get_or_insert_with(Default::default);
            // `{}`, not the type's default `null`: the API server reads `status: null`
            // as no status subresource at all, and every status write would 404.
            if subresources.status.as_ref().is_none_or(|s| s.0.is_null()) {
                subresources.status = Some(CustomResourceSubresourceStatus(serde_json::json!({})));
            }
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
