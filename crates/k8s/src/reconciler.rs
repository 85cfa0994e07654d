//! One reconcile round over the caches: build the config, feed what changed to the
//! pure controller core, write what it decided. Only the leader keeps a core and writes;
//! a replica that becomes leader starts from a fresh core fed every Service at once,
//! so every held address is re-claimed before any pending Service gets one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::cached_service::CachedService;
use crate::event_sink::EventSink;
use crate::projected::Projected;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Client;
use oxlb_config::{Built, Config, LastValid, build_config_with};
use oxlb_controller::{Change, Controller, Outcome, PoolStatus};
use oxlb_node::status::{ConfigStatus, PoolStatus as ReportPool, StatusReport};

use crate::speaker::PodIdentity;
use crate::stores::Stores;
use crate::writer::{self, ConfigState};

/// How many times a write that hit a 409 is retried at once with a fresh read.
const CONFLICT_RETRIES: usize = 3;

/// A reconcile that reported at least this many Services returns freed memory to the
/// system afterwards (`malloc_trim`: a few milliseconds, worth it only after a bulk).
const BULK_OUTCOME: usize = 1_000;

pub struct Reconciler {
    client: Client,
    namespace: String,
    lb_class: Option<String>,
    /// At most this many LoadBalancer Services are handled (`--max-services`).
    service_limit: Option<usize>,
    identity: String,
    recorder: EventSink,
    core: Option<Controller>,
    /// resourceVersion of every Service / Namespace as last fed to the core.
    seen_services: HashMap<String, String>,
    seen_namespaces: HashMap<String, String>,
    /// Per Service, the resourceVersions our own writes replaced: when the watch
    /// delivers one of them late, it is ignored rather than written over again.
    superseded: HashMap<String, Vec<String>>,
    /// Services whose write failed (API unavailable...): retried on a timer.
    pub retry: BTreeSet<String>,
    written_pools: BTreeMap<String, PoolStatus>,
    written_state: Option<ConfigState>,
    state_object_exists: bool,
    /// Tells when someone deleted the ConfigurationState written.
    own_state: Option<crate::own_state::OwnStateWatch>,
    state_target: writer::StateObject,
    pub config_status: ConfigStatus,
    /// The objects in force after the last build (quarantine's memory; after a restart
    /// the objects' last-valid annotations take its place).
    last_valid: LastValid,
    /// The last build, for recording last valid versions on the objects.
    last_built: Option<Built>,
    /// Errors already recorded as events (each is recorded once while it lasts).
    reported_errors: BTreeSet<String>,
}

fn rv(meta: &kube::api::ObjectMeta) -> String {
    meta.resource_version.clone().unwrap_or_default()
}

impl Reconciler {
    /// Refuse LoadBalancer Services beyond `limit` (see
    /// [`Controller::with_service_limit`]).
    pub fn set_service_limit(&mut self, limit: Option<usize>) {
        self.service_limit = limit;
    }

    pub fn new(
        client: Client,
        namespace: &str,
        lb_class: Option<String>,
        identity: &str,
        pod: Option<PodIdentity>,
    ) -> Reconciler {
        Reconciler {
            recorder: writer::recorder(&client, identity),
            client,
            namespace: namespace.to_string(),
            lb_class,
            service_limit: None,
            identity: identity.to_string(),
            core: None,
            seen_services: HashMap::new(),
            seen_namespaces: HashMap::new(),
            superseded: HashMap::new(),
            retry: BTreeSet::new(),
            written_pools: BTreeMap::new(),
            written_state: None,
            state_object_exists: false,
            own_state: None,
            state_target: writer::StateObject::controller(pod),
            config_status: ConfigStatus::default(),
            last_valid: LastValid::default(),
            last_built: None,
            reported_errors: BTreeSet::new(),
        }
    }

    /// Watches this controller's ConfigurationState so that a deleted one is written
    /// again; `notify` wakes the reconcile loop then.
    pub fn watch_own_state(&mut self, notify: &std::sync::Arc<tokio::sync::Notify>) {
        self.own_state = Some(crate::own_state::OwnStateWatch::start(
            &self.client,
            &self.namespace,
            &self.state_target.name,
            notify,
        ));
    }

    /// The core, for tests and measurements.
    pub fn core(&self) -> Option<&Controller> {
        self.core.as_ref()
    }

    /// Builds the configuration in force (quarantine: invalid objects left out or held
    /// at their last valid version) and records loaded / stale / errors. `None` only
    /// when the objects cannot be read at all (a legacy ConfigMap that does not
    /// convert): then the previous configuration stays.
    fn build(&mut self, stores: &Stores) -> Option<Config> {
        let snapshot = match stores.config_snapshot(&self.namespace) {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                // One failed update per new rejection (MetalLB counts the failed
                // reconcile of the configuration).
                if self.config_status.record_errors(errors) {
                    for e in &self.config_status.errors {
                        tracing::error!(error = %e, "configuration unreadable; the last one stays in force");
                    }
                }
                self.config_status.stale = self.config_status.loaded;
                return None;
            }
        };
        let built = build_config_with(&snapshot, &self.last_valid);
        self.config_status.warnings = built.warnings.iter().map(ToString::to_string).collect();
        let errors: Vec<String> = built.errors.iter().map(ToString::to_string).collect();
        // A new set of left-out objects is a configuration MetalLB would have refused:
        // it counts once as a failed update, as on the speaker.
        if self.config_status.record_errors(errors) {
            for e in &self.config_status.errors {
                tracing::error!(error = %e, "invalid object left out (or held at its last valid version); the rest applies");
            }
            if self.config_status.errors.is_empty() {
                tracing::info!("configuration loaded");
            }
        }
        self.config_status.loaded = true;
        self.config_status.stale = !self.config_status.errors.is_empty();
        self.last_valid = built.in_force.clone();
        let config = built.applied.clone();
        self.last_built = Some(built);
        Some(config)
    }

    /// One round. `leader`: whether this replica may write.
    pub async fn reconcile(
        &mut self,
        stores: &Stores,
        services: &Projected<CachedService>,
        leader: bool,
    ) {
        let config = self.build(stores);
        if leader && let Some(built) = &self.last_built {
            crate::last_valid::record(&self.client, &self.namespace, stores, built).await;
            // Each error once, as a Warning event on the object it is about.
            let fresh: Vec<oxlb_config::Diagnostic> = built
                .errors
                .iter()
                .filter(|e| !self.reported_errors.contains(&e.to_string()))
                .cloned()
                .collect();
            writer::publish_config_errors(&self.recorder, &self.namespace, &fresh).await;
            self.reported_errors = built.errors.iter().map(ToString::to_string).collect();
        }
        if !leader {
            // A follower keeps its caches warm but no core: when it becomes leader it
            // starts from what the previous leader wrote.
            self.core = None;
            self.written_pools.clear();
            self.written_state = None;
            self.retry.clear();
            return;
        }
        let outcome = match (&mut self.core, config) {
            (None, None) => None,
            (None, Some(config)) => {
                // The cache's views, shared with the core: no copy of any Service.
                let services: Vec<Arc<CachedService>> = services.state();
                let namespaces: Vec<Namespace> = stores
                    .namespaces
                    .state()
                    .iter()
                    .map(|n| (**n).clone())
                    .collect();
                self.seen_services = services
                    .iter()
                    .map(|s| (s.key().to_string(), version_of(s)))
                    .collect();
                self.seen_namespaces = namespaces
                    .iter()
                    .map(|n| (n.metadata.name.clone().unwrap_or_default(), rv(&n.metadata)))
                    .collect();
                // Every Service and Namespace, and the configuration, processed once.
                self.config_status.updates += (services.len() + namespaces.len() + 1) as u64;
                let mut core = Controller::new(config, self.lb_class.clone())
                    .with_service_limit(self.service_limit);
                let views: Vec<_> = services.iter().map(|s| s.view.clone()).collect();
                drop(services);
                let outcome = core.sync_shared(&views, &namespaces);
                self.core = Some(core);
                Some(outcome)
            }
            (Some(core), config) => {
                let mut changes = diff_services(
                    &mut self.seen_services,
                    &mut self.superseded,
                    &services.state(),
                );
                changes.extend(diff_namespaces(
                    &mut self.seen_namespaces,
                    &stores.namespaces.state(),
                ));
                if let Some(config) = config
                    && &config != core.config()
                {
                    changes.push(Change::SetConfig(Box::new(config)));
                }
                self.config_status.updates += changes.len() as u64;
                (!changes.is_empty()).then(|| core.apply(changes))
            }
        };
        if let Some(outcome) = outcome {
            let bulk = outcome.services.len() >= BULK_OUTCOME;
            self.write_outcome(services, outcome).await;
            if bulk {
                // A start-up or a config change over many Services frees megabytes
                // of scratch (the outcome, the events, decoded pages): hand them back
                // rather than keep the resident size at that peak.
                oxlb_node::memory::release_freed();
            }
        }
        self.retry_failed(services).await;
        self.write_pools(stores).await;
        self.write_state().await;
    }

    async fn write_outcome(&mut self, services: &Projected<CachedService>, outcome: Outcome) {
        for (key, service_outcome) in outcome.services {
            for record in crate::allocation_log::records(&key, &service_outcome) {
                record.emit();
            }
            let Some(service) = services.get(&key) else {
                continue;
            };
            writer::publish_events(&self.recorder, &service, &service_outcome.events).await;
            if service_outcome.needs_update {
                self.write_with_retries(key, service).await;
            }
        }
    }

    /// Writes one Service; on 409 re-reads it, lets the core reconsider it, and tries
    /// again with the fresh resourceVersion.
    async fn write_with_retries(&mut self, key: String, mut service: Arc<CachedService>) {
        for _ in 0..CONFLICT_RETRIES {
            let Some(desired) = self.core.as_ref().and_then(|c| c.desired(&key)) else {
                return;
            };
            if !writer::differences(&service.view, &desired).any() {
                self.retry.remove(&key);
                return;
            }
            match writer::write_service(&self.client, &service, &desired).await {
                Ok(versions) => {
                    self.superseded
                        .entry(key.clone())
                        .or_default()
                        .extend(versions);
                    self.retry.remove(&key);
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    tracing::debug!(service = %key, "conflict writing status; re-reading");
                    let Some(fresh) = self.reread(&service).await else {
                        self.retry.insert(key);
                        return;
                    };
                    let fresh = Arc::new(CachedService::from_service(&fresh));
                    self.seen_services.insert(key.clone(), version_of(&fresh));
                    if let Some(core) = self.core.as_mut() {
                        let outcome = core.apply([Change::UpsertView(fresh.view.clone())]);
                        if let Some(o) = outcome.services.get(&key) {
                            for record in crate::allocation_log::records(&key, o) {
                                record.emit();
                            }
                            writer::publish_events(&self.recorder, &fresh, &o.events).await;
                        }
                    }
                    service = fresh;
                }
                Err(e) => {
                    tracing::warn!(service = %key, error = %e, "writing service failed; will retry");
                    self.config_status.update_errors += 1;
                    self.retry.insert(key);
                    return;
                }
            }
        }
        self.retry.insert(key);
    }

    async fn reread(&self, service: &CachedService) -> Option<Service> {
        let api: kube::Api<Service> =
            kube::Api::namespaced(self.client.clone(), service.namespace());
        api.get_opt(service.name()).await.ok().flatten()
    }

    async fn retry_failed(&mut self, services: &Projected<CachedService>) {
        let keys: Vec<String> = self.retry.iter().cloned().collect();
        for key in keys {
            match services.get(&key) {
                Some(service) => self.write_with_retries(key, service).await,
                None => {
                    self.retry.remove(&key);
                }
            }
        }
    }

    async fn write_pools(&mut self, stores: &Stores) {
        let Some(core) = &self.core else {
            return;
        };
        let counters = core.pool_counters();
        for pool in stores.pools.state() {
            let name = pool.metadata.name.clone().unwrap_or_default();
            let Some(c) = counters.get(&name) else {
                continue;
            };
            let status = PoolStatus::from(*c);
            let stored = pool.status.as_ref().map(|s| PoolStatus {
                assigned_ipv4: s.assigned_ipv4,
                assigned_ipv6: s.assigned_ipv6,
                available_ipv4: s.available_ipv4,
                available_ipv6: s.available_ipv6,
            });
            if stored == Some(status) || self.written_pools.get(&name) == Some(&status) {
                continue;
            }
            match writer::write_pool_status(&self.client, &self.namespace, &name, &status).await {
                Ok(()) => {
                    self.written_pools.insert(name, status);
                }
                Err(e) => tracing::warn!(pool = %name, error = %e, "writing pool status failed"),
            }
        }
    }

    async fn write_state(&mut self) {
        if self.own_state.as_ref().is_some_and(|w| w.take_gone()) {
            // Deleted by someone: the same result is written again, object first.
            self.written_state = None;
            self.state_object_exists = false;
        }
        if !self.config_status.loaded && self.config_status.errors.is_empty() {
            return;
        }
        let state = ConfigState {
            valid: self.config_status.errors.is_empty(),
            errors: self.config_status.errors.clone(),
        };
        if self.written_state.as_ref() == Some(&state) {
            return;
        }
        match writer::write_configuration_state(
            &self.client,
            &self.namespace,
            &self.state_target,
            &state,
            !self.state_object_exists,
        )
        .await
        {
            Ok(()) => {
                self.state_object_exists = true;
                self.written_state = Some(state);
            }
            Err(e) => tracing::warn!(error = %e, "writing ConfigurationState failed"),
        }
    }

    /// The report behind /metrics, /healthz and /readyz.
    pub fn report(&self) -> StatusReport {
        let pools = self
            .core
            .as_ref()
            .map(|core| {
                core.pool_counters()
                    .into_iter()
                    .map(|(name, c)| ReportPool {
                        auto_assign: core
                            .config()
                            .pools
                            .get(&name)
                            .is_some_and(|p| p.auto_assign),
                        name,
                        addresses: Vec::new(),
                        ipv4_total: c.total_ipv4(),
                        ipv4_in_use: c.assigned_ipv4,
                        ipv6_total: c.total_ipv6(),
                        ipv6_in_use: c.assigned_ipv6,
                    })
                    .collect()
            })
            .unwrap_or_default();
        StatusReport {
            node: self.identity.clone(),
            config: self.config_status.clone(),
            pools,
            ..StatusReport::default()
        }
    }
}

fn version_of(service: &CachedService) -> String {
    service.resource_version.clone().unwrap_or_default()
}

/// The Services that changed since last fed to the core (by resourceVersion, so a
/// re-list after a watch restart that brings nothing new is no change at all).
fn diff_services(
    seen: &mut HashMap<String, String>,
    superseded: &mut HashMap<String, Vec<String>>,
    state: &[Arc<CachedService>],
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut next = HashMap::with_capacity(state.len());
    for service in state {
        let key = service.key().to_string();
        let mut version = version_of(service);
        if let Some(old) = superseded.get(&key) {
            if old.contains(&version) {
                // Our own write already replaced this version; the newer one is on
                // its way through the watch. Keep what the core knows.
                version = seen.get(&key).cloned().unwrap_or_default();
            } else {
                superseded.remove(&key);
            }
        }
        if seen.get(&key) != Some(&version) {
            changes.push(Change::UpsertView(service.view.clone()));
        }
        next.insert(key, version);
    }
    for key in seen.keys().filter(|k| !next.contains_key(*k)) {
        let (namespace, name) = key.split_once('/').unwrap_or((key, ""));
        changes.push(Change::DeleteService {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    superseded.retain(|k, _| next.contains_key(k));
    *seen = next;
    changes
}

fn diff_namespaces(seen: &mut HashMap<String, String>, state: &[Arc<Namespace>]) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut next = HashMap::with_capacity(state.len());
    for namespace in state {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let version = rv(&namespace.metadata);
        if seen.get(&name) != Some(&version) {
            changes.push(Change::UpsertNamespace(Box::new((**namespace).clone())));
        }
        next.insert(name, version);
    }
    for name in seen.keys().filter(|k| !next.contains_key(*k)) {
        changes.push(Change::DeleteNamespace(name.clone()));
    }
    *seen = next;
    changes
}
