//! Records, on each metallb.io object in force as written, the spec in force as the
//! annotation `oxlb.io/last-valid-spec` (quarantine's memory). If a later edit makes the
//! object invalid, every controller and speaker, also after a restart or a leader
//! change, reads the last valid version from the object itself and keeps it in force:
//! no process needs its own state, and all decide the same.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use oxlb_config::{Built, LAST_VALID_ANNOTATION, ObjectKind};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::stores::Stores;

/// Patches the annotation on every object in force as written whose annotation is
/// missing or older. Failures are logged and retried on the next round.
pub async fn record(client: &Client, namespace: &str, stores: &Stores, built: &Built) {
    let valid: BTreeSet<(ObjectKind, String)> = built
        .valid_as_written()
        .map(|(k, n)| (k, n.to_string()))
        .collect();
    let ctx = Ctx {
        client,
        namespace,
        built,
        valid: &valid,
    };
    ctx.kind(ObjectKind::IPAddressPool, &stores.pools.state())
        .await;
    ctx.kind(
        ObjectKind::L2Advertisement,
        &stores.l2_advertisements.state(),
    )
    .await;
    ctx.kind(
        ObjectKind::BGPAdvertisement,
        &stores.bgp_advertisements.state(),
    )
    .await;
    ctx.kind(ObjectKind::BGPPeer, &stores.bgp_peers.state())
        .await;
    ctx.kind(ObjectKind::BFDProfile, &stores.bfd_profiles.state())
        .await;
    ctx.kind(ObjectKind::Community, &stores.communities.state())
        .await;
}

struct Ctx<'a> {
    client: &'a Client,
    namespace: &'a str,
    built: &'a Built,
    valid: &'a BTreeSet<(ObjectKind, String)>,
}

impl Ctx<'_> {
    async fn kind<K>(&self, kind: ObjectKind, objects: &[Arc<K>])
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), self.namespace);
        for object in objects {
            let meta = object.meta();
            let Some(name) = meta.name.as_deref() else {
                continue;
            };
            if !self.valid.contains(&(kind, name.to_string())) {
                continue;
            }
            let Some(value) = self.built.in_force.annotation_value(kind, name) else {
                continue;
            };
            let current = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(LAST_VALID_ANNOTATION));
            if current == Some(&value) {
                continue;
            }
            // The resourceVersion makes the write fail (409) if the object changed
            // since it was judged valid; the next round judges the new version.
            let patch = json!({"metadata": {
                "resourceVersion": meta.resource_version,
                "annotations": {LAST_VALID_ANNOTATION: value},
            }});
            if let Err(e) = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(kind = kind.as_str(), name, error = %e, "could not record the last valid version");
            }
        }
    }
}
