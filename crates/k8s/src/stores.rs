//! The controller's caches: one reflector (list + watch, re-listing after a 410 Gone)
//! per kind it reads, each waking the reconcile loop when anything changes.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use oxlb_api::{BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement};
use oxlb_config::{Diagnostic, Origin, Snapshot, Sourced};

use crate::cached_service::CachedService;
use crate::projected::Projected;
use crate::speaker::SpeakerService;
use oxlb_node::views::SliceView;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The legacy MetalLB ConfigMap's name.
pub const LEGACY_CONFIGMAP: &str = "config";

/// Read-only views of every cache but the Services (the controller keeps them as its
/// compact views, [`cached_services`]; the speaker as objects, [`service_objects`]).
#[derive(Clone)]
pub struct Stores {
    pub namespaces: Store<Namespace>,
    pub secrets: Store<Secret>,
    pub config_maps: Store<ConfigMap>,
    pub pools: Store<IPAddressPool>,
    pub l2_advertisements: Store<L2Advertisement>,
    pub bgp_advertisements: Store<BGPAdvertisement>,
    pub bgp_peers: Store<BGPPeer>,
    pub bfd_profiles: Store<BFDProfile>,
    pub communities: Store<Community>,
}

/// The reflector tasks; aborted when dropped.
pub struct Reflectors(Vec<JoinHandle<()>>);

impl Reflectors {
    /// Where a cache started elsewhere puts its task, to be aborted with these.
    pub fn tasks(&mut self) -> &mut Vec<JoinHandle<()>> {
        &mut self.0
    }
}

/// Every object of kind `K` in the cluster, each kept as `project` makes it.
fn projected_cluster_wide<K, V>(
    client: &Client,
    project: fn(&K) -> V,
    notify: &Arc<Notify>,
    reflectors: &mut Reflectors,
) -> Projected<V>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    V: Send + Sync + 'static,
{
    let events =
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff();
    crate::projected::spawn(events, project, notify, &mut reflectors.0)
}

/// Every Service in the cluster as the controller core's compact view
/// ([`CachedService`]): no object is kept whole.
pub fn cached_services(
    client: &Client,
    notify: &Arc<Notify>,
    reflectors: &mut Reflectors,
) -> Projected<CachedService> {
    projected_cluster_wide(client, CachedService::from_service, notify, reflectors)
}

/// Every Service in the cluster with only what the speaker reads
/// ([`SpeakerService`]).
pub fn speaker_services(
    client: &Client,
    notify: &Arc<Notify>,
    reflectors: &mut Reflectors,
) -> Projected<SpeakerService> {
    projected_cluster_wide(client, SpeakerService::from_service, notify, reflectors)
}

/// Every EndpointSlice in the cluster as the announce decision reads it
/// ([`oxlb_node::views::SliceView`]).
pub fn endpoint_slices(
    client: &Client,
    notify: &Arc<Notify>,
    reflectors: &mut Reflectors,
) -> Projected<SliceView> {
    projected_cluster_wide(client, oxlb_node::views::slice_view, notify, reflectors)
}

impl Drop for Reflectors {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn spawn<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: &Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    spawn_stream(watcher(api, config).default_backoff(), notify, tasks)
}

/// A metallb.io kind in `namespace`, decoded object by object ([`crate::lenient`]): an
/// object stored without `spec`, or one that does not decode, cannot stop the kind.
fn spawn_lenient<K>(
    client: &Client,
    namespace: &str,
    notify: &Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Default
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    spawn_stream(
        crate::lenient::watch_namespaced(client.clone(), namespace, watcher::Config::default()),
        notify,
        tasks,
    )
}

fn spawn_stream<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    notify: &Arc<Notify>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let notify = notify.clone();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = reflector::reflector(writer, events.modify(slim::<K>));
    tasks.push(tokio::spawn(async move {
        stream
            .for_each(|event| {
                match event {
                    Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
                    Ok(_) => notify.notify_one(),
                }
                futures::future::ready(())
            })
            .await;
    }));
    reader
}

/// What no decision reads but can dominate a cache's memory: managedFields and
/// kubectl's copy of the whole object in an annotation.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

impl Stores {
    /// Starts every reflector but the Services'. Namespaces are watched cluster-wide; the
    /// metallb.io objects, Secrets and the legacy ConfigMap only in `namespace`.
    pub fn start(client: &Client, namespace: &str, notify: &Arc<Notify>) -> (Stores, Reflectors) {
        let mut tasks = Vec::new();
        let all = watcher::Config::default;
        let ns = |c: &Client| c.clone();
        let stores = Stores {
            namespaces: spawn(Api::all(ns(client)), all(), notify, &mut tasks),
            secrets: spawn(
                Api::namespaced(ns(client), namespace),
                all(),
                notify,
                &mut tasks,
            ),
            config_maps: spawn(
                Api::namespaced(ns(client), namespace),
                all().fields(&format!("metadata.name={LEGACY_CONFIGMAP}")),
                notify,
                &mut tasks,
            ),
            pools: spawn_lenient(client, namespace, notify, &mut tasks),
            l2_advertisements: spawn_lenient(client, namespace, notify, &mut tasks),
            bgp_advertisements: spawn_lenient(client, namespace, notify, &mut tasks),
            bgp_peers: spawn_lenient(client, namespace, notify, &mut tasks),
            bfd_profiles: spawn_lenient(client, namespace, notify, &mut tasks),
            communities: spawn_lenient(client, namespace, notify, &mut tasks),
        };
        (stores, Reflectors(tasks))
    }

    /// Resolves once every cache has been listed.
    pub async fn wait_ready(&self) {
        let _ = futures::join!(
            self.namespaces.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.config_maps.wait_until_ready(),
            self.pools.wait_until_ready(),
            self.l2_advertisements.wait_until_ready(),
            self.bgp_advertisements.wait_until_ready(),
            self.bgp_peers.wait_until_ready(),
            self.bfd_profiles.wait_until_ready(),
            self.communities.wait_until_ready(),
        );
    }

    /// The configuration objects as a Snapshot for `build_config` (no Services or
    /// Namespaces: the controller core takes those directly).
    pub fn config_snapshot(&self, namespace: &str) -> Result<Snapshot, Vec<Diagnostic>> {
        config_snapshot(
            namespace,
            &self.pools.state(),
            &self.l2_advertisements.state(),
            &self.bgp_advertisements.state(),
            &self.bgp_peers.state(),
            &self.bfd_profiles.state(),
            &self.communities.state(),
            &self.secrets.state(),
            &self.config_maps.state(),
        )
    }
}

/// Objects from the API carry no file: their diagnostics name kind, namespace/name and
/// field instead.
fn sourced<T: Clone + Resource>(objects: &[Arc<T>]) -> Vec<Sourced<T>> {
    let mut out: Vec<Sourced<T>> = objects
        .iter()
        .map(|o| {
            let origin = Origin::api(o.meta().namespace.as_deref());
            Sourced::new((**o).clone(), origin)
        })
        .collect();
    out.shrink_to_fit();
    out
}

/// Builds the Snapshot from cached objects. The legacy ConfigMap is converted by the
/// config crate's own loader (the same code `oxlb run` and `oxlb convert` use), fed
/// the object as JSON; its errors make the whole configuration invalid.
#[allow(clippy::too_many_arguments)]
pub fn config_snapshot(
    namespace: &str,
    pools: &[Arc<IPAddressPool>],
    l2: &[Arc<L2Advertisement>],
    bgp: &[Arc<BGPAdvertisement>],
    peers: &[Arc<BGPPeer>],
    bfd: &[Arc<BFDProfile>],
    communities: &[Arc<Community>],
    secrets: &[Arc<Secret>],
    config_maps: &[Arc<ConfigMap>],
) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut snapshot = Snapshot::new(namespace);
    snapshot.ip_address_pools = sourced(pools);
    snapshot.l2_advertisements = sourced(l2);
    snapshot.bgp_advertisements = sourced(bgp);
    snapshot.bgp_peers = sourced(peers);
    snapshot.bfd_profiles = sourced(bfd);
    snapshot.communities = sourced(communities);
    snapshot.secrets = sourced(secrets);
    for map in config_maps {
        if map.metadata.name.as_deref() != Some(LEGACY_CONFIGMAP) {
            continue;
        }
        let mut map = (**map).clone();
        // Managed fields and the like are noise to the loader (unknown-field warnings).
        map.metadata = kube::api::ObjectMeta {
            name: map.metadata.name.clone(),
            namespace: map.metadata.namespace.clone(),
            ..Default::default()
        };
        let json = serde_json::to_string(&map).map_err(|e| {
            vec![Diagnostic::error(
                oxlb_config::Code::Yaml,
                format!("cannot encode ConfigMap {LEGACY_CONFIGMAP}: {e}"),
            )]
        })?;
        // The loader places what it reads by line of its input: for an object from the
        // API that is meaningless, the object is the ConfigMap in its namespace.
        let from_api = |mut d: Diagnostic| {
            d.origin = Origin::api(Some(namespace));
            if d.kind.is_empty() {
                d.kind = "ConfigMap".to_string();
                d.name = LEGACY_CONFIGMAP.to_string();
            }
            d
        };
        let mut legacy = oxlb_config::load_str(&json, None, namespace)
            .map_err(|errors| errors.into_iter().map(from_api).collect::<Vec<_>>())?;
        legacy.warnings = legacy.warnings.into_iter().map(from_api).collect();
        let origin = Origin::api(Some(namespace));
        let origins = legacy.ip_address_pools.iter_mut().map(|o| &mut o.origin);
        let origins = origins
            .chain(legacy.l2_advertisements.iter_mut().map(|o| &mut o.origin))
            .chain(legacy.bgp_advertisements.iter_mut().map(|o| &mut o.origin))
            .chain(legacy.bgp_peers.iter_mut().map(|o| &mut o.origin))
            .chain(legacy.bfd_profiles.iter_mut().map(|o| &mut o.origin))
            .chain(legacy.communities.iter_mut().map(|o| &mut o.origin));
        for o in origins {
            *o = origin.clone();
        }
        snapshot.ip_address_pools.extend(legacy.ip_address_pools);
        snapshot.l2_advertisements.extend(legacy.l2_advertisements);
        snapshot
            .bgp_advertisements
            .extend(legacy.bgp_advertisements);
        snapshot.bgp_peers.extend(legacy.bgp_peers);
        snapshot.bfd_profiles.extend(legacy.bfd_profiles);
        snapshot.communities.extend(legacy.communities);
        snapshot.warnings.extend(legacy.warnings);
        snapshot.config_maps.extend(legacy.config_maps);
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_api_objects_name_kind_namespace_name_and_field_not_a_file() {
        let pool: IPAddressPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "pool1", "namespace": "metallb-system"},
            "spec": {"addresses": ["10.0.0.0/24", "10.0.0.10-10.0.0.20"]},
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let other: IPAddressPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "pool2", "namespace": "metallb-system"},
            "spec": {"addresses": ["10.0.0.5/32"]},
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let snapshot = config_snapshot(
            "metallb-system",
            &[Arc::new(pool), Arc::new(other)],
            &[],
            &[],
            &[],
            &[],
            &[],
            &[],
            &[],
        )
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let errors = match oxlb_config::build_config(&snapshot).config {
            Ok(_) => unreachable!("overlapping pools are an error"),
            Err(errors) => errors,
        };
        assert!(!errors.is_empty());
        for error in errors.iter().map(ToString::to_string) {
            assert!(!error.contains("<input>"), "{error}");
            assert!(!error.contains("(at "), "{error}");
            assert!(error.starts_with("error: IPAddressPool \"pool"), "{error}");
            assert!(
                error.contains("\" (namespace metallb-system) spec.addresses["),
                "{error}"
            );
        }
    }

    #[test]
    fn a_legacy_configmap_from_the_api_is_named_not_placed_by_line() {
        let map: ConfigMap = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": LEGACY_CONFIGMAP, "namespace": "metallb-system"},
            "data": {"config": "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [nonsense]\n"},
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let errors: Vec<String> = match config_snapshot(
            "metallb-system",
            &[],
            &[],
            &[],
            &[],
            &[],
            &[],
            &[],
            &[Arc::new(map)],
        ) {
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
            Ok(snapshot) => match oxlb_config::build_config(&snapshot).config {
                Ok(_) => unreachable!("an invalid address is an error"),
                Err(errors) => errors.iter().map(ToString::to_string).collect(),
            },
        };
        assert!(!errors.is_empty());
        for error in errors {
            assert!(!error.contains("<input>"), "{error}");
            assert!(error.contains("metallb-system"), "{error}");
        }
    }
}
