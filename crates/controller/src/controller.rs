//! The reconcile core: a stateful but pure `Controller` fed snapshots or changes.
//!
//! Each reconcile runs in phases so that held addresses always win over new requests:
//! 1. *settle*: every Service whose input changed (all of them after a config or
//!    namespace change, or on a fresh controller) re-claims what it holds, or, the first
//!    time it is seen, what its status says it holds. What the config no longer allows
//!    is cleared (`ClearAssignment`).
//! 2. *allocate*: every Service still without addresses, in key order.
//! 3. *complete*: PreferDualStack Services holding one family try to add the other;
//!    phases 2 and 3 repeat while 3 changes anything.
//!
//! Services are always visited in `namespace/name` order, so the same snapshot gives
//! the same result whatever order it arrived in, and a restart (a fresh controller fed
//! the Services with their statuses) re-claims every held address before allocating.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
use oxlb_allocator::{AllocError, Allocator, PoolCounters, QuotedList, Scope};
use oxlb_config::Config;

use crate::events::Event;
use crate::outcome::{Desired, Outcome, ServiceOutcome};
use crate::service::{
    DEPRECATED_POOL_ANNOTATION, FamilyPolicy, RequestError, ServiceFamily, ServiceView,
    family_of_addresses, same_families,
};

type Labels = BTreeMap<String, String>;

/// One input change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Shared, not copied: the core keeps only its compact view of it (a store's
    /// `Arc` is handed over as it is).
    UpsertService(Arc<Service>),
    /// A Service already in the core's view (a cache that keeps views, not objects):
    /// the core keeps this very `Arc`, so cache and core share one copy.
    UpsertView(Arc<ServiceView>),
    DeleteService {
        namespace: String,
        name: String,
    },
    UpsertNamespace(Box<Namespace>),
    DeleteNamespace(String),
    SetConfig(Box<Config>),
}

/// A Service's key (`namespace/name`): the view's own, shared by the maps and sets
/// that name the Service (a refcount, not a copy of the text per map; issue 22).
type Key = Arc<str>;

#[derive(Debug, Clone)]
struct Tracked {
    /// Shared so a reconcile step reads it while the controller changes (a refcount,
    /// not a copy of the labels and annotations per step).
    view: Arc<ServiceView>,
    /// `None` while nothing failed, as for most Services: three messages inline
    /// widened every entry of the map by 72 bytes (issue 22).
    reported: Option<Box<Reported>>,
}

/// The last failure messages reported for a Service, so a retry that fails the same
/// way is quiet.
#[derive(Debug, Clone, Default)]
struct Reported {
    /// Last `AllocationFailed` message.
    failure: Option<String>,
    /// Last `AdditionalAssignFailed` message.
    additional_failure: Option<String>,
    /// Last `LoadBalancerFailed` / `not enough clusterips` message.
    warning: Option<String>,
}

impl Tracked {
    fn new(view: Arc<ServiceView>) -> Tracked {
        Tracked {
            view,
            reported: None,
        }
    }

    fn last(&self, which: fn(&Reported) -> &Option<String>) -> Option<&str> {
        self.reported.as_deref().and_then(|r| which(r).as_deref())
    }

    fn remember(
        &mut self,
        which: fn(&mut Reported) -> &mut Option<String>,
        message: Option<String>,
    ) {
        if message.is_none() && self.reported.is_none() {
            return;
        }
        let reported = self.reported.get_or_insert_with(Box::default);
        *which(reported) = message;
        if reported.failure.is_none()
            && reported.additional_failure.is_none()
            && reported.warning.is_none()
        {
            self.reported = None;
        }
    }
}

/// One step of a reconcile: a Service already in its compact view, or any other
/// change.
enum Step {
    Service(Arc<ServiceView>),
    DeleteService { namespace: String, name: String },
    UpsertNamespace(Box<Namespace>),
    DeleteNamespace(String),
    SetConfig(Box<Config>),
}

impl From<Change> for Step {
    fn from(change: Change) -> Step {
        match change {
            Change::UpsertService(service) => {
                Step::Service(Arc::new(ServiceView::from_service(&service)))
            }
            Change::UpsertView(view) => Step::Service(view),
            Change::DeleteService { namespace, name } => Step::DeleteService { namespace, name },
            Change::UpsertNamespace(namespace) => Step::UpsertNamespace(namespace),
            Change::DeleteNamespace(name) => Step::DeleteNamespace(name),
            Change::SetConfig(config) => Step::SetConfig(config),
        }
    }
}

/// Why a Service got no address; `Display` is the MetalLB reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Request(RequestError),
    Alloc(AllocError),
    FamilyMismatch(Vec<IpAddr>),
    PoolMismatch(Vec<IpAddr>, String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Request(e) => e.fmt(f),
            Failure::Alloc(e) => e.fmt(f),
            Failure::FamilyMismatch(ips) => write!(
                f,
                "requested loadBalancer IP(s) {} does not match the ipFamily of the service",
                QuotedList(ips)
            ),
            Failure::PoolMismatch(ips, pool) => write!(
                f,
                "requested loadBalancer IP(s) {} is not compatible with requested address pool {pool}",
                QuotedList(ips)
            ),
        }
    }
}

/// The controller's state: the config, the Services and Namespaces it was told about,
/// and who holds what.
#[derive(Debug, Clone)]
pub struct Controller {
    config: Config,
    lb_class: Option<String>,
    allocator: Allocator,
    services: BTreeMap<Key, Tracked>,
    namespaces: BTreeMap<String, Labels>,
    /// Handled Services without addresses (or, with `keep_on_unmet_request`, holding
    /// one while asking for another).
    pending: BTreeSet<Key>,
    /// PreferDualStack dual-family Services holding one address.
    incomplete: BTreeSet<Key>,
    /// A Service asking for addresses other than those it holds keeps them until the
    /// request can be met (`oxlb run`); MetalLB (the default) releases them first, so
    /// a request that cannot be met leaves the Service without an IP.
    keep_on_unmet_request: bool,
    /// At most this many LoadBalancer Services of this class are handled; more are
    /// refused (not tracked, no address), so a flood of Services costs no memory here.
    service_limit: Option<usize>,
    /// Refused Services (each event is emitted once), with whether their status
    /// carries addresses (cleared once, as nothing holds them here).
    refused: BTreeMap<String, bool>,
}

/// Per-reconcile scratch: events and which Services to report.
#[derive(Default)]
struct Run {
    /// Services to settle (any input changed).
    dirty: BTreeSet<Key>,
    /// Services whose input changed other than by a status write-back.
    changed: BTreeSet<Key>,
    touched: BTreeSet<Key>,
    events: BTreeMap<Key, Vec<Event>>,
}

impl Run {
    fn emit(&mut self, key: &Key, event: Event) {
        self.touched.insert(key.clone());
        self.events.entry(key.clone()).or_default().push(event);
    }
}

impl Controller {
    /// A controller with `config` and no Services. `lb_class`: handle only Services of
    /// this `loadBalancerClass` (`None`: only those without one).
    pub fn new(config: Config, lb_class: Option<String>) -> Controller {
        Controller {
            allocator: Allocator::new(&config.pools),
            config,
            lb_class,
            services: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            pending: BTreeSet::new(),
            incomplete: BTreeSet::new(),
            keep_on_unmet_request: false,
            service_limit: None,
            refused: BTreeMap::new(),
        }
    }

    /// Handles at most `limit` LoadBalancer Services of this controller's class
    /// (`None`: no limit). A Service beyond it, in arrival order, is refused: it gets
    /// no address, its status is cleared, and one `ServiceLimitExceeded` warning
    /// event says why; Services already handled keep what they hold. A refused
    /// Service is taken when it is seen again (any update, or every `sync`) once
    /// there is room.
    pub fn with_service_limit(mut self, limit: Option<usize>) -> Controller {
        self.service_limit = limit;
        self
    }

    /// The Services refused for the limit, by key.
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        self.refused.keys().map(String::as_str)
    }

    /// A Service whose requested addresses change to ones that cannot be given (outside
    /// every pool, taken, ...) keeps what it holds, with an `AllocationFailed` event,
    /// instead of losing it as under MetalLB. The request is retried on every
    /// reconcile and replaces the held addresses once it can be met.
    pub fn keep_held_on_unmet_request(mut self) -> Controller {
        self.keep_on_unmet_request = true;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// Replaces the whole picture: Services and Namespaces not listed are forgotten.
    /// Each Service is read in place into the core's compact view (never copied).
    pub fn sync<S: Borrow<Service>>(
        &mut self,
        services: &[S],
        namespaces: &[Namespace],
    ) -> Outcome {
        let listed: BTreeSet<String> = services.iter().map(|s| key_of(s.borrow())).collect();
        let views = services
            .iter()
            .map(|s| Arc::new(ServiceView::from_service(s.borrow())));
        self.sync_views(&listed, views, namespaces)
    }

    /// [`Self::sync`] with Services already in the core's view, shared: the core keeps
    /// these `Arc`s, so a cache of views and the core hold one copy between them.
    pub fn sync_shared(&mut self, views: &[Arc<ServiceView>], namespaces: &[Namespace]) -> Outcome {
        let listed: BTreeSet<String> = views.iter().map(|v| v.key.to_string()).collect();
        self.sync_views(&listed, views.iter().cloned(), namespaces)
    }

    /// [`Self::sync`] with the Services made one at a time: each is turned into the
    /// controller's compact view and dropped before the next is made, so a caller
    /// deriving them from objects it holds never holds a second copy of the whole list
    /// (10,000 Services: about 9 MB less at the peak). `listed`: the keys
    /// (`namespace/name`) of every Service `services` yields.
    pub fn sync_each(
        &mut self,
        listed: &BTreeSet<String>,
        services: impl IntoIterator<Item = Service>,
        namespaces: &[Namespace],
    ) -> Outcome {
        let views = services
            .into_iter()
            .map(|service| Arc::new(ServiceView::from_service(&service)));
        self.sync_views(listed, views, namespaces)
    }

    /// [`Self::sync_each`] with the views made by the caller: one it keeps and gives
    /// again unchanged is shared with the controller rather than copied.
    pub fn sync_views(
        &mut self,
        listed: &BTreeSet<String>,
        views: impl IntoIterator<Item = Arc<ServiceView>>,
        namespaces: &[Namespace],
    ) -> Outcome {
        let listed_ns: BTreeSet<&str> = namespaces
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        let mut changes: Vec<Change> = self
            .services
            .keys()
            .map(|k| &**k)
            .chain(self.refused.keys().map(String::as_str))
            .filter(|k| !listed.contains(*k))
            .map(|k| {
                let (namespace, name) = k.split_once('/').unwrap_or((k, ""));
                Change::DeleteService {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
            })
            .collect();
        changes.extend(
            self.namespaces
                .keys()
                .filter(|n| !listed_ns.contains(n.as_str()))
                .map(|n| Change::DeleteNamespace(n.clone())),
        );
        changes.extend(
            namespaces
                .iter()
                .map(|n| Change::UpsertNamespace(Box::new(n.clone()))),
        );
        let steps = changes
            .into_iter()
            .map(Step::from)
            .chain(views.into_iter().map(Step::Service));
        self.reconcile(steps)
    }

    /// Applies `changes` and reconciles.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> Outcome {
        self.reconcile(changes.into_iter().map(Step::from))
    }

    fn reconcile(&mut self, changes: impl IntoIterator<Item = Step>) -> Outcome {
        let mut run = Run::default();
        let mut first_sight = BTreeSet::new();
        let mut carried: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        let mut everything = false;
        // LoadBalancer Services of this class tracked now (counted once per reconcile,
        // then kept up to date), for the limit.
        let mut load_balancers = match self.service_limit {
            Some(_) => self
                .services
                .values()
                .filter(|t| t.view.is_load_balancer && self.is_ours(&t.view))
                .count(),
            None => 0,
        };
        for change in changes {
            match change {
                Step::Service(view) => {
                    let key = view.key.clone();
                    let counts = view.is_load_balancer && self.is_ours(&view);
                    let was_counted = self
                        .services
                        .get(&key)
                        .is_some_and(|t| t.view.is_load_balancer && self.is_ours(&t.view));
                    if let Some(limit) = self.service_limit
                        && counts
                        && !was_counted
                        && load_balancers >= limit
                    {
                        if self.services.remove(&key).is_some() {
                            // Tracked before as something else (not a LoadBalancer).
                            self.allocator.unassign(&key);
                            self.pending.remove(&key);
                            self.incomplete.remove(&key);
                        }
                        if !self.refused.contains_key(&*key) {
                            self.refused
                                .insert(key.to_string(), !view.status_ips.is_empty());
                            run.emit(&key, Event::service_limit_exceeded(limit));
                        }
                        run.dirty.remove(&key);
                        run.changed.remove(&key);
                        first_sight.remove(&key);
                        continue;
                    }
                    self.refused.remove(&*key);
                    if counts && !was_counted {
                        load_balancers += 1;
                    } else if !counts && was_counted {
                        load_balancers = load_balancers.saturating_sub(1);
                    }
                    match self.services.get_mut(&key) {
                        Some(tracked) if tracked.view == view => {}
                        Some(tracked) => {
                            // A status write-back is not news: only a changed spec,
                            // labels or annotations repeat a failure event.
                            if !tracked.view.same_input(&view) {
                                run.changed.insert(key.clone());
                            }
                            tracked.view = view;
                            run.dirty.insert(key);
                        }
                        None => {
                            self.services.insert(key.clone(), Tracked::new(view));
                            first_sight.insert(key.clone());
                            run.changed.insert(key.clone());
                            run.dirty.insert(key);
                        }
                    }
                }
                Step::DeleteService { namespace, name } => {
                    let key = format!("{namespace}/{name}");
                    self.refused.remove(&key);
                    if self
                        .services
                        .remove(key.as_str())
                        .is_some_and(|t| t.view.is_load_balancer && self.is_ours(&t.view))
                    {
                        load_balancers = load_balancers.saturating_sub(1);
                    }
                    self.allocator.unassign(&key);
                    carried.remove(&key);
                    self.pending.remove(key.as_str());
                    self.incomplete.remove(key.as_str());
                    run.dirty.remove(key.as_str());
                    run.changed.remove(key.as_str());
                    first_sight.remove(key.as_str());
                }
                Step::UpsertNamespace(namespace) => {
                    let name = namespace.metadata.name.clone().unwrap_or_default();
                    let labels = namespace.metadata.labels.clone().unwrap_or_default();
                    if self.namespaces.get(&name) != Some(&labels) {
                        self.namespaces.insert(name, labels);
                        everything = true;
                    }
                }
                Step::DeleteNamespace(name) => {
                    everything |= self.namespaces.remove(&name).is_some();
                }
                Step::SetConfig(config) => {
                    if *config != self.config {
                        // Addresses held under the old config are re-claimed (or
                        // cleared) under the new one in phase 1.
                        for (key, held) in self.allocator.services() {
                            carried
                                .entry(key.to_string())
                                .or_insert_with(|| held.ips.to_vec());
                        }
                        self.allocator = Allocator::new(&config.pools);
                        self.config = *config;
                        everything = true;
                    }
                }
            }
        }
        if everything {
            run.dirty = self.services.keys().cloned().collect();
            run.changed = run.dirty.clone();
        }
        let dirty = std::mem::take(&mut run.dirty);
        for key in &dirty {
            let hint = match carried.remove(&**key) {
                Some(ips) => ips,
                None if first_sight.contains(key) => self
                    .services
                    .get(key)
                    .map(|t| t.view.status_ips.to_vec())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            self.settle(key, hint, &mut run);
        }
        // Allocate until nothing moves: an address taken or shared in one pass can
        // change why an earlier Service failed, and the state must be a fixpoint so a
        // restart finds nothing left to do. Only each Service's final reason is
        // reported. Each Service progresses at most twice (an address, then the second
        // family), so this ends.
        let mut failures: BTreeMap<Key, Event> = BTreeMap::new();
        let mut additional_failures: BTreeMap<Key, Event> = BTreeMap::new();
        loop {
            let mut progress = false;
            let pending: Vec<Key> = self.pending.iter().cloned().collect();
            for key in pending {
                match self.allocate(&key, &mut run) {
                    Ok(()) => {
                        failures.remove(&key);
                        progress = true;
                    }
                    Err(event) => {
                        failures.insert(key, event);
                    }
                }
            }
            let incomplete: Vec<Key> = self.incomplete.iter().cloned().collect();
            for key in incomplete {
                match self.complete(&key, &mut run) {
                    Ok(()) => {
                        additional_failures.remove(&key);
                        progress = true;
                    }
                    Err(event) => {
                        additional_failures.insert(key, event);
                    }
                }
            }
            if !progress {
                break;
            }
        }
        for (key, event) in failures {
            let changed = run.changed.contains(&key);
            if let Some(tracked) = self.services.get_mut(&key)
                && (changed || tracked.last(|r| &r.failure) != Some(&event.message))
            {
                tracked.remember(|r| &mut r.failure, Some(event.message.clone()));
                run.emit(&key, event);
            }
        }
        for (key, event) in additional_failures {
            if let Some(tracked) = self.services.get_mut(&key)
                && tracked.last(|r| &r.additional_failure) != Some(&event.message)
            {
                tracked.remember(|r| &mut r.additional_failure, Some(event.message.clone()));
                run.emit(&key, event);
            }
        }
        self.outcome(run)
    }

    /// Counters of every pool.
    pub fn pool_counters(&self) -> BTreeMap<String, PoolCounters> {
        self.config
            .pools
            .keys()
            .filter_map(|name| Some((name.clone(), self.allocator.counters(name)?)))
            .collect()
    }

    /// The desired managed fields of one Service (`namespace/name`).
    pub fn desired(&self, key: &str) -> Option<Desired> {
        let tracked = self.services.get(key)?;
        Some(self.desired_for(&tracked.view))
    }

    /// The desired fields of every known Service.
    pub fn all_desired(&self) -> BTreeMap<String, Desired> {
        self.services
            .iter()
            .map(|(k, t)| (k.to_string(), self.desired_for(&t.view)))
            .collect()
    }

    fn is_ours(&self, view: &ServiceView) -> bool {
        view.class.as_deref() == self.lb_class.as_deref()
    }

    fn handled(&self, view: &ServiceView) -> bool {
        self.is_ours(view) && view.is_load_balancer && !self.config.pools.is_empty()
    }

    /// Phase 1 for one Service: keep what it holds (or `hint`) if still allowed.
    fn settle(&mut self, key: &Key, hint: Vec<IpAddr>, run: &mut Run) {
        run.touched.insert(key.clone());
        self.pending.remove(key);
        self.incomplete.remove(key);
        let Some(view) = self.services.get(key).map(|t| Arc::clone(&t.view)) else {
            return;
        };
        // Not a LoadBalancer (any more), another class, or no pools: release, and do
        // not re-allocate.
        if !self.handled(&view) {
            self.allocator.unassign(key);
            return;
        }
        if view.policy == FamilyPolicy::RequireDualStack
            && matches!(view.family(), ServiceFamily::Single(_))
        {
            self.warn_once(key, Event::not_enough_cluster_ips(&view.cluster_ips), run);
            self.allocator.unassign(key);
            return;
        }
        let mut current = match self.allocator.held(key) {
            Some(held) => held.ips.to_vec(),
            None => hint,
        };
        if !current.is_empty() {
            let family_changed = match family_of_addresses(&current) {
                None => true,
                Some(held) => {
                    {
                        // PreferDualStack accepts holding only one of its two families.
                        let partial_ok = matches!(view.family(), ServiceFamily::Dual { .. })
                            && view.policy == FamilyPolicy::PreferDualStack;
                        !(same_families(held, view.family()) || partial_ok)
                    }
                }
            };
            if family_changed {
                self.allocator.unassign(key);
                current.clear();
            }
        }
        let mut retarget = false;
        if !current.is_empty() {
            let scope = scope(&self.namespaces, &view);
            let assigned = self.allocator.assign(key, &current, &view.usage, &scope);
            match assigned {
                Err(e) => {
                    run.emit(key, Event::clear_assignment(key, &e));
                    self.allocator.unassign(key);
                    current.clear();
                }
                Ok(pool) => {
                    if view.pool.as_ref().is_some_and(|wanted| **wanted != *pool) {
                        self.allocator.unassign(key);
                        current.clear();
                    }
                }
            }
            match &view.requested {
                Err(e) if !current.is_empty() => {
                    self.warn_once(key, Event::load_balancer_failed(e), run);
                    self.classify(key, &view, current.len());
                    return;
                }
                Ok(requested) if !requested.is_empty() && !same_set(requested, &current) => {
                    if self.keep_on_unmet_request {
                        // Phase 2 tries the request and keeps `current` if it fails.
                        retarget = true;
                    } else {
                        self.allocator.unassign(key);
                        current.clear();
                    }
                }
                _ => {}
            }
        }
        if let Some(tracked) = self.services.get_mut(key) {
            tracked.remember(|r| &mut r.warning, None);
        }
        self.classify(key, &view, current.len());
        if retarget {
            self.pending.insert(key.clone());
        }
    }

    /// Emits a warning unless the last one for this Service said the same.
    fn warn_once(&mut self, key: &Key, event: Event, run: &mut Run) {
        if let Some(tracked) = self.services.get_mut(key)
            && tracked.last(|r| &r.warning) != Some(&event.message)
        {
            tracked.remember(|r| &mut r.warning, Some(event.message.clone()));
            run.emit(key, event);
        }
    }

    /// Files a handled Service holding `held` addresses under pending / incomplete.
    fn classify(&mut self, key: &Key, view: &ServiceView, held: usize) {
        if held == 0 {
            self.pending.insert(key.clone());
        } else if held == 1
            // Requested addresses pin the set: never add to them.
            && view.requested.as_ref().is_ok_and(|ips| ips.is_empty())
            && view.policy == FamilyPolicy::PreferDualStack
            && matches!(view.family(), ServiceFamily::Dual { .. })
        {
            self.incomplete.insert(key.clone());
        }
    }

    /// Phase 2 for one Service: MetalLB's `allocateIPs`.
    /// Phase 2 for one Service: MetalLB's `allocateIPs`. The error is the
    /// `AllocationFailed` event to report if this stays the final reason.
    fn allocate(&mut self, key: &Key, run: &mut Run) -> Result<(), Event> {
        let Some(view) = self.services.get(key).map(|t| Arc::clone(&t.view)) else {
            self.pending.remove(key);
            return Ok(());
        };
        let before = self.allocator.held(key).map(|h| h.ips.to_vec());
        let ips = match self.try_allocate(key, &view) {
            Ok(ips) => ips,
            Err(failure) => {
                // Keep mode: what the Service held stays (a pool mismatch found after
                // the assignment released it: give it back).
                if let Some(before) = before
                    && self.allocator.held(key).is_none()
                {
                    let scope = scope(&self.namespaces, &view);
                    let _ = self.allocator.assign(key, &before, &view.usage, &scope);
                }
                return Err(Event::allocation_failed(key, &failure));
            }
        };
        self.pending.remove(key);
        run.emit(key, Event::ip_allocated(&ips));
        if let Some(tracked) = self.services.get_mut(key) {
            tracked.remember(|r| &mut r.failure, None);
        }
        self.classify(key, &view, ips.len());
        Ok(())
    }

    fn try_allocate(&mut self, key: &str, view: &ServiceView) -> Result<Vec<IpAddr>, Failure> {
        let requested = match &view.requested {
            Ok(ips) => ips.to_vec(),
            Err(e) => return Err(Failure::Request((**e).clone())),
        };
        let want = view.want();
        let scope = scope(&self.namespaces, view);
        if requested.is_empty() {
            let allocated = match &view.pool {
                Some(pool) => {
                    self.allocator
                        .allocate_from_pool(key, pool, want, &view.usage, &scope)
                }
                None => self.allocator.allocate(key, want, &view.usage, &scope),
            };
            return allocated.map_err(Failure::Alloc);
        }
        let matches_service = family_of_addresses(&requested)
            .is_some_and(|f| same_families(f, view.family()))
            && !(requested.len() == 1 && matches!(view.family(), ServiceFamily::Dual { .. }));
        if !matches_service {
            return Err(Failure::FamilyMismatch(requested));
        }
        let pool = self
            .allocator
            .assign(key, &requested, &view.usage, &scope)
            .map_err(Failure::Alloc)?;
        if let Some(wanted) = &view.pool
            && **wanted != *pool
        {
            self.allocator.unassign(key);
            return Err(Failure::PoolMismatch(requested, wanted.to_string()));
        }
        Ok(requested)
    }

    /// Phase 3 for one Service: PreferDualStack adds the missing family. The error is
    /// the `AdditionalAssignFailed` event to report if this stays the final reason.
    fn complete(&mut self, key: &Key, run: &mut Run) -> Result<(), Event> {
        let Some(view) = self.services.get(key).map(|t| Arc::clone(&t.view)) else {
            self.incomplete.remove(key);
            return Ok(());
        };
        let scope = scope(&self.namespaces, &view);
        let ip = self
            .allocator
            .add_missing_family(key, &view.usage, &scope)
            .map_err(|e| Event::additional_assign_failed(&e))?;
        self.incomplete.remove(key);
        run.emit(key, Event::additional_ip_allocated(ip));
        if let Some(tracked) = self.services.get_mut(key) {
            tracked.remember(|r| &mut r.additional_failure, None);
        }
        Ok(())
    }

    fn desired_for(&self, view: &ServiceView) -> Desired {
        if !self.is_ours(view) {
            return Desired::Unmanaged;
        }
        match self.allocator.held(&view.key) {
            Some(held) if self.handled(view) => Desired::Status {
                ingress: held.ips.to_vec(),
                pool: Some(held.pool.to_string()),
            },
            _ => Desired::Status {
                ingress: Vec::new(),
                pool: None,
            },
        }
    }

    fn outcome(&self, mut run: Run) -> Outcome {
        let mut services = BTreeMap::new();
        for key in &run.touched {
            let Some(tracked) = self.services.get(key) else {
                if let Some(had_status) = self.refused.get(&**key) {
                    // Refused for the limit: nothing is held here, so a status that
                    // names addresses is cleared (once).
                    services.insert(
                        key.to_string(),
                        ServiceOutcome {
                            desired: Desired::Status {
                                ingress: Vec::new(),
                                pool: None,
                            },
                            needs_update: *had_status,
                            events: run.events.remove(key).unwrap_or_default(),
                        },
                    );
                }
                continue;
            };
            let view = &tracked.view;
            let desired = self.desired_for(view);
            let needs_update = match &desired {
                Desired::Unmanaged => false,
                Desired::Status { ingress, pool } => {
                    ingress[..] != view.status_ips[..]
                        || pool.as_deref() != view.status_pool()
                        || view.annotations.contains_key(DEPRECATED_POOL_ANNOTATION)
                }
            };
            let mut events = run.events.remove(key).unwrap_or_default();
            // Like MetalLB, warn about deprecated annotations only when there is
            // something to write, not on every reconcile.
            if needs_update {
                events.extend(
                    view.deprecated_annotations()
                        .map(Event::deprecated_annotation),
                );
            }
            services.insert(
                key.to_string(),
                ServiceOutcome {
                    desired,
                    needs_update,
                    events,
                },
            );
        }
        Outcome {
            services,
            pools: self.pool_counters(),
        }
    }
}

fn scope<'a>(namespaces: &'a BTreeMap<String, Labels>, view: &'a ServiceView) -> Scope<'a> {
    static NONE: Labels = BTreeMap::new();
    Scope {
        namespace: view.namespace(),
        service_labels: &view.labels,
        namespace_labels: namespaces.get(view.namespace()).unwrap_or(&NONE),
    }
}

fn key_of(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let a: BTreeSet<&IpAddr> = a.iter().collect();
    let b: BTreeSet<&IpAddr> = b.iter().collect();
    a == b
}
