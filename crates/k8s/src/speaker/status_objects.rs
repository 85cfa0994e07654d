//! The writers of the speaker's per-node status kinds (ServiceL2Status,
//! ServiceBGPStatus): one object per Service this node announces by that protocol,
//! named [`crate::stable_name::status_name`], labelled with the node and Service, owned
//! by the Node ([`super::owner_references`]); objects of this node no longer wanted are
//! deleted. What to write is decided by [`super::status_plan`], how fast by
//! [`super::write_budget`]; one task per kind sends it. MetalLB's
//! `layer2_status_controller.go` / `service_bgp_status_controller.go` shape: a kind
//! says how its status looks ([`StatusKind`]), the loop is the same.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use oxlb_announce::ServiceKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::SpeakerOptions;
use super::announced::Announced;
use super::status_plan::{Presence, StatusPlanner, StatusView, StatusWrite};
use super::write_budget::SharedBudget;
use super::{FIELD_MANAGER, NODE_LABEL, SERVICE_NAME_LABEL, SERVICE_NAMESPACE_LABEL};
use crate::projected::Projected;

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
/// keeping per object only the digest of its status: the writer only asks whether it
/// is the status it wants (issue 22: 10,000 ServiceBGPStatus objects were 14 MB in the
/// speaker's cache as objects, 2.5 MB as their statuses).
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

/// Whether this node's object of kind `prefix` for the Service `key` is in `store`.
pub fn holds(
    store: &Projected<Option<Digest>>,
    options: &SpeakerOptions,
    prefix: &str,
    key: &ServiceKey,
) -> bool {
    let name = crate::stable_name::status_name(prefix, &options.node_name, key);
    store
        .get(&format!("{}/{name}", options.namespace))
        .is_some()
}

/// This node's cached objects of one kind, as the planner sees them.
struct CachedStatuses<'a> {
    store: &'a Projected<Option<Digest>>,
    namespace: &'a str,
}

impl<S: Serialize> StatusView<S> for CachedStatuses<'_> {
    fn presence(&self, name: &str, _: &ServiceKey, status: &S) -> Presence {
        match self.store.get(&format!("{}/{name}", self.namespace)) {
            None => Presence::Absent,
            Some(cached) if *cached == Some(digest(status)) => Presence::Same,
            Some(_) => Presence::Differs,
        }
    }

    fn names(&self) -> Vec<String> {
        self.store
            .keys()
            .into_iter()
            .map(|key| match key.split_once('/') {
                Some((_, name)) => name.to_string(),
                None => key,
            })
            .collect()
    }
}

/// What the status writers are asked to make true.
#[derive(Debug, Clone)]
pub struct WantedStatuses {
    /// Per Service, what this node announces: the speaker's own map, shared (each kind
    /// derives its statuses from it as it plans, so no second map of 10,000 statuses
    /// is kept).
    pub announced: Arc<BTreeMap<ServiceKey, Announced>>,
    /// The owners of new objects ([`super::owner_references`]).
    pub owners: Vec<OwnerReference>,
    /// Live speakers sharing the cluster's write budget.
    pub speakers: usize,
}

/// A kind's status of one Service announced here, if it is announced by that kind.
pub type StatusOf<S> = fn(&str, &ServiceKey, &Announced) -> Option<S>;

/// A failed write is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// With writes left over for want of budget, the next plan waits at least this long:
/// the backlog is re-planned (from the newest wish) once a second, not on every token.
const REPLAN_PAUSE: Duration = Duration::from_secs(1);

/// Starts the writer of one status kind: it makes this node's objects match the newest
/// [`WantedStatuses`], under this speaker's [`SharedBudget`], apart from the speaker's loop (at
/// 10,000 Services the writes take minutes; the loop must go on reacting to membership
/// and health meanwhile). `wake` is notified by the kind's cache.
pub fn spawn_writer<K: StatusKind>(
    client: &Client,
    options: &SpeakerOptions,
    store: Projected<Option<Digest>>,
    wake: Arc<Notify>,
    mut wanted: watch::Receiver<WantedStatuses>,
    budget: SharedBudget,
    status_of: StatusOf<K::Status>,
) -> JoinHandle<()> {
    let api: Api<K> = Api::namespaced(client.clone(), &options.namespace);
    let node = options.node_name.clone();
    let namespace = options.namespace.clone();
    let cluster_budget = options.status_writes_per_second;
    tokio::spawn(async move {
        let mut planner = StatusPlanner::<K::Status>::new(K::PREFIX);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        // Writes sent since the last time there was nothing to write: a backlog of
        // thousands leaves freed plans and responses behind, given back once it is
        // done (the speaker's loop, quiet meanwhile, does not trim for it).
        let mut sent_since_idle = false;
        loop {
            let current = wanted.borrow_and_update().clone();
            budget.share(cluster_budget, current.speakers);
            let limit = budget.available() as usize;
            if limit == 0 {
                tokio::time::sleep(REPLAN_PAUSE).await;
                continue;
            }
            let view = CachedStatuses {
                store: &store,
                namespace: &namespace,
            };
            let want = current
                .announced
                .iter()
                .filter_map(|(key, a)| Some((key, status_of(&node, key, a)?)));
            let writes = planner.plan(&node, want, &view, limit);
            if writes.is_empty() && std::mem::take(&mut sent_since_idle) {
                oxlb_node::memory::release_freed();
            }
            sent_since_idle |= !writes.is_empty();
            // Out of budget with writes left, or a write failed: pause before planning
            // again (a plan costs a pass over every wanted object, and every write of
            // ours comes back through the cache as a wake-up).
            let mut pause: Option<Duration> = (writes.len() >= limit).then_some(REPLAN_PAUSE);
            for write in writes {
                if let Err(until) = budget.take(write.requests()) {
                    pause = Some(until.max(REPLAN_PAUSE));
                    break;
                }
                planner.sent(&write);
                if let Err(e) =
                    send(&api, &params, &namespace, &node, &current.owners, &write).await
                {
                    planner.failed(write.name());
                    pause = Some(pause.map_or(RETRY_AFTER, |p| p.max(RETRY_AFTER)));
                    tracing::warn!(error = %e, status = %write.name(), kind = %K::kind(&()), "writing the status object failed");
                }
            }
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
                continue;
            }
            tokio::select! {
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = wake.notified() => {}
            }
        }
    })
}

/// Sends one planned write.
async fn send<K: StatusKind>(
    api: &Api<K>,
    params: &PatchParams,
    namespace: &str,
    node: &str,
    owners: &[OwnerReference],
    write: &StatusWrite<K::Status>,
) -> kube::Result<()> {
    match write {
        StatusWrite::Create { name, key, status } => {
            let object = K::object(metadata(namespace, node, owners, name, key));
            let with_status = object.clone().with_status(status.clone());
            api.patch(name, params, &Patch::Apply(&object)).await?;
            api.patch_status(name, params, &Patch::Apply(&with_status))
                .await?;
        }
        StatusWrite::SetStatus { name, status } => {
            let object = K::object(ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            })
            .with_status(status.clone());
            api.patch_status(name, params, &Patch::Apply(&object))
                .await?;
        }
        StatusWrite::Delete { name } => {
            api.delete(name, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

/// The metadata of every status object: this node's label and the Service's, owned by
/// `owners`.
fn metadata(
    namespace: &str,
    node: &str,
    owners: &[OwnerReference],
    name: &str,
    key: &ServiceKey,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([
            (NODE_LABEL.to_string(), node.to_string()),
            (SERVICE_NAME_LABEL.to_string(), key.name.clone()),
            (SERVICE_NAMESPACE_LABEL.to_string(), key.namespace.clone()),
        ])),
        owner_references: Some(owners.to_vec()),
        ..ObjectMeta::default()
    }
}

/// Hands one kind's newest wish to its writer, starting the writer (`spawn`) with the
/// first one; a wish equal to the last one wakes nobody.
pub fn want(
    writer: &mut Option<watch::Sender<WantedStatuses>>,
    announced: &Arc<BTreeMap<ServiceKey, Announced>>,
    owners: &[OwnerReference],
    speakers: usize,
    spawn: impl FnOnce(watch::Receiver<WantedStatuses>) -> JoinHandle<()>,
    tasks: &mut Vec<JoinHandle<()>>,
) {
    let wish = || WantedStatuses {
        announced: Arc::clone(announced),
        owners: owners.to_vec(),
        speakers,
    };
    match writer {
        Some(sender) => {
            sender.send_if_modified(|current| {
                let same = Arc::ptr_eq(&current.announced, announced)
                    && current.owners == owners
                    && current.speakers == speakers;
                if !same {
                    *current = wish();
                }
                !same
            });
        }
        None => {
            let (sender, receiver) = watch::channel(wish());
            tasks.push(spawn(receiver));
            *writer = Some(sender);
        }
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
