//! The reconciler shared by the speaker's per-node status kinds (ServiceL2Status,
//! ServiceBGPStatus): one object per Service this node announces by that protocol,
//! named [`status_name`], labelled with the node and Service, owned by the speaker Pod;
//! objects of this node no longer wanted are deleted. MetalLB's
//! `layer2_status_controller.go` / `service_bgp_status_controller.go` shape: a kind
//! says how its status looks ([`StatusKind`]), the loop is the same.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use oxlb_announce::ServiceKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{FIELD_MANAGER, NODE_LABEL, SERVICE_NAME_LABEL, SERVICE_NAMESPACE_LABEL};
use super::{SpeakerOptions, owner_references};
use crate::projected::Projected;
use crate::stable_name::status_name;

/// A per-node status kind.
pub trait StatusKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Status: Clone + Debug + PartialEq + Serialize + Send + Sync;
    /// The name prefix of [`status_name`] (`"l2"`, `"bgp"`).
    const PREFIX: &'static str;
    /// An object with `metadata` and no status (the main resource's apply).
    fn object(metadata: ObjectMeta) -> Self;
    fn with_status(self, status: Self::Status) -> Self;
    fn status(&self) -> Option<&Self::Status>;
}

/// Implements [`StatusKind`] for a status-only kind (an empty spec, everything in
/// `status`).
macro_rules! status_kind {
    ($kind:ty, $spec:expr, $status:ty, $prefix:literal) => {
        impl $crate::speaker::status_objects::StatusKind for $kind {
            type Status = $status;
            const PREFIX: &'static str = $prefix;

            fn object(
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            ) -> Self {
                Self {
                    metadata,
                    spec: $spec,
                    status: None,
                }
            }

            fn with_status(mut self, status: Self::Status) -> Self {
                self.status = Some(status);
                self
            }

            fn status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }
        }
    };
}
pub(super) use status_kind;

/// This node's objects of kind `K` (selected by `label`, `metallb.io/node=<node>`),
/// keeping per object only the digest of its status: the reconciler only asks whether
/// it is the status it wants (issue 22: 10,000 ServiceBGPStatus objects were 14 MB in
/// the speaker's cache as objects, 2.5 MB as their statuses).
pub fn cache<K: StatusKind>(
    client: &Client,
    namespace: &str,
    label: &str,
    notify: &std::sync::Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Projected<Option<Digest>> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let events = watcher(api, watcher::Config::default().labels(label)).default_backoff();
    crate::projected::spawn(events, status_of::<K>, notify, tasks)
}

fn status_of<K: StatusKind>(object: &K) -> Option<Digest> {
    object.status().map(digest)
}

/// A status as a 64-bit hash of its JSON. Two different statuses with the same digest
/// (about 1 in 10^19 per comparison) would leave one object unwritten until its
/// status changes again.
pub type Digest = u64;

pub fn digest<S: Serialize>(status: &S) -> Digest {
    let mut hasher = std::hash::DefaultHasher::new();
    // Serializing a typed status cannot fail (no map with non-string keys); if it
    // did, the empty text would only mean one more write.
    std::hash::Hash::hash(&serde_json::to_vec(status).unwrap_or_default(), &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

/// What this speaker last asked the API for, per object name: the cache may not have
/// caught up yet, and asking again would only repeat the same write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Applied(Digest),
    DeletionAsked,
}

/// One status kind's reconciler, kept across passes.
#[derive(Debug)]
pub struct StatusReconciler<K: StatusKind> {
    written: BTreeMap<String, Written>,
    kind: std::marker::PhantomData<K>,
}

impl<K: StatusKind> Default for StatusReconciler<K> {
    fn default() -> Self {
        StatusReconciler {
            written: BTreeMap::new(),
            kind: std::marker::PhantomData,
        }
    }
}

impl<K: StatusKind> StatusReconciler<K> {
    /// Makes this node's objects of kind `K` match `want` (per Service, its status).
    /// A failed write is logged and tried again on the next pass.
    pub async fn reconcile(
        &mut self,
        client: &Client,
        options: &SpeakerOptions,
        store: &Projected<Option<Digest>>,
        want: BTreeMap<ServiceKey, K::Status>,
    ) {
        let node = &options.node_name;
        let api: Api<K> = Api::namespaced(client.clone(), &options.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut wanted = BTreeSet::new();
        for (key, status) in want {
            let name = status_name(K::PREFIX, node, &key);
            wanted.insert(name.clone());
            let cached = store.get(&format!("{}/{name}", options.namespace));
            let wanted_digest = digest(&status);
            if cached.as_deref().copied().flatten() == Some(wanted_digest) {
                // The cache holds it: no second copy here (at 10,000 Services a copy of
                // every status applied stayed in `written` for good).
                self.written.remove(&name);
                continue;
            }
            let asked = Written::Applied(wanted_digest);
            if self.written.get(&name) == Some(&asked) {
                continue;
            }
            self.written.insert(name.clone(), asked);
            let object = K::object(metadata(options, &name, &key));
            let with_status = object.clone().with_status(status);
            if let Err(e) = async {
                api.patch(&name, &params, &Patch::Apply(&object)).await?;
                api.patch_status(&name, &params, &Patch::Apply(&with_status))
                    .await
            }
            .await
            {
                self.written.remove(&name);
                tracing::warn!(error = %e, service = %key, kind = %K::kind(&()), "writing the status object failed");
            }
        }
        let cached: BTreeSet<String> = store
            .keys()
            .into_iter()
            .map(|key| match key.split_once('/') {
                Some((_, name)) => name.to_string(),
                None => key,
            })
            .collect();
        for name in &cached {
            let name = name.clone();
            if wanted.contains(&name) || self.written.get(&name) == Some(&Written::DeletionAsked) {
                continue;
            }
            self.written.insert(name.clone(), Written::DeletionAsked);
            if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
                self.written.remove(&name);
                tracing::warn!(error = %e, status = %name, kind = %K::kind(&()), "deleting the status object failed");
            }
        }
        // Forget names that are neither wanted nor cached any more.
        self.written
            .retain(|name, _| wanted.contains(name) || cached.contains(name));
    }
}

/// The metadata of every status object: this node's label and the Service's, owned by
/// the speaker Pod.
fn metadata(options: &SpeakerOptions, name: &str, key: &ServiceKey) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(options.namespace.clone()),
        labels: Some(BTreeMap::from([
            (NODE_LABEL.to_string(), options.node_name.clone()),
            (SERVICE_NAME_LABEL.to_string(), key.name.clone()),
            (SERVICE_NAMESPACE_LABEL.to_string(), key.namespace.clone()),
        ])),
        owner_references: Some(owner_references(options.pod.as_ref())),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use oxlb_api::ServiceBGPStatusStatus;

    use super::digest;

    fn status(peers: &[&str]) -> ServiceBGPStatusStatus {
        ServiceBGPStatusStatus {
            node: Some("n1".into()),
            service_name: Some("web".into()),
            service_namespace: Some("shop".into()),
            peers: Some(peers.iter().map(|p| p.to_string()).collect()),
        }
    }

    /// The cache's digest of a status read back from the API is the digest of the
    /// same status wanted; any difference in it is another digest.
    #[test]
    fn equal_statuses_and_only_those_have_one_digest() {
        let wanted = status(&["r1", "r2"]);
        let read_back: ServiceBGPStatusStatus =
            serde_json::from_value(serde_json::to_value(&wanted).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(digest(&read_back), digest(&wanted));
        assert_ne!(digest(&status(&["r1"])), digest(&wanted));
        assert_ne!(digest(&status(&["r2", "r1"])), digest(&wanted));
        let other_node = ServiceBGPStatusStatus {
            node: Some("n2".into()),
            ..wanted.clone()
        };
        assert_ne!(digest(&other_node), digest(&wanted));
    }
}
