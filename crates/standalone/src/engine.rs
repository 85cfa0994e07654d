//! The shell of `oxlb run`: loads the files, runs the pure planner, and applies the
//! plan — persisted assignments, BGP sessions, local service IPs — then keeps the status
//! report current for `/metrics`, `/api/v1/status` and `oxlb status`.
//!
//! A configuration change applies as a diff: the speaker keeps sessions whose settings
//! did not change and sends only the route difference. An invalid change is rejected
//! with every error logged; the last valid configuration stays in force and the report
//! says stale.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oxlb_config::Config;
use oxlb_config::snapshot::Snapshot;
use oxlb_node::driver::{Driver, DriverOptions, ProtocolStatus, StopMode};
use oxlb_node::host_check::{self, HostCheck};
use oxlb_node::node_info::NodeInfo;
use oxlb_node::status::{DerivedRows, RowSource, StatusReport};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::l2_glue::Layer2;
use crate::plan::{Planner, RunRows};
use crate::services::{FileService, take_services};
use crate::state::{Assignments, StateStore};
use crate::vips::LocalVips;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub node: String,
    pub paths: Vec<PathBuf>,
    pub namespace: String,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    /// Handle only Services of this `loadBalancerClass`.
    pub lb_class: Option<String>,
    /// At most this many LoadBalancer Services are handled (`--max-services`).
    pub max_services: Option<usize>,
    /// Accept BGP connections here too (normally `[::]:179`); `None`: connect only.
    pub bgp_listen: Option<SocketAddr>,
    /// The interface that carries the announced service IPs; `None`: leave them off the
    /// host (something else, such as kube-proxy, makes them local).
    pub local_ip_interface: Option<String>,
    pub layer2: crate::l2_glue::Layer2Options,
    /// On SIGTERM without graceful restart (or on a drained host): how long to keep the
    /// sessions and service IPs after withdrawing the routes, before closing.
    pub drain_delay: Duration,
    /// `--second-chance`, `--second-chance-rate`.
    pub second_chance: oxlb_node::second_chance::Options,
}

#[derive(Debug)]
pub enum RunError {
    State(crate::state::StateError),
    Io(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::State(e) => write!(f, "state: {e}"),
            RunError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What stays in force between reloads.
struct Current {
    /// Everything loaded but the Services, which are kept compact in `services`.
    snapshot: Snapshot,
    services: Vec<FileService>,
    config: Config,
}

struct Engine {
    options: RunOptions,
    store: StateStore,
    /// Shared with the report's rows ([`RunRows`]).
    held: Arc<Assignments>,
    planner: Planner,
    current: Option<Current>,
    /// BGP, the Layer 2 responder and BFD (shared with `oxlb speaker`).
    driver: Driver,
    vips: Option<LocalVips>,
    report: watch::Sender<StatusReport>,
    /// The IPs this node answered for by Layer 2 at the last plan (the host check).
    layer2_owned: BTreeSet<std::net::IpAddr>,
    /// Gives memory back once the heap fell after a burst (the sessions' UPDATEs).
    trim: crate::trim::TrimAfterFall,
    /// The Layer 2 membership (the election's candidates), once the responder runs.
    layer2: Option<Layer2>,
    live: Option<watch::Receiver<BTreeSet<String>>>,
    /// Whether this host's kernel would answer for Layer 2 IPs it does not own.
    host_check: HostCheck,
    /// The objects in force after the last build: an object whose edit is invalid stays
    /// at this version (quarantine).
    last_valid: oxlb_config::LastValid,
    /// `oxlb drain`: withdraw everything while the host keeps its service IPs.
    drain: oxlb_announce::drain::DrainState,
    /// `oxlb.io/health-check`: the checks this node runs, and their change counter.
    health: oxlb_node::health::HealthChecks,
    health_changes: watch::Receiver<u64>,
    /// Layer 2: which checked Services pass on the other speakers.
    peer_health: Option<watch::Receiver<oxlb_node::health::PeerHealth>>,
    /// The other speakers' flags (drained, link bandwidth), for every speaker heard.
    peer_flags: Option<watch::Receiver<crate::l2_glue::PeerFlags>>,
    /// Weighted ECMP with mixed paths: logged once per change.
    mixed_paths_log: oxlb_node::mixed_paths::MixedPathsLog,
    /// Who has read this speaker's latest flag change (its undrain).
    flag_acks: Option<watch::Receiver<oxlb_l2::membership::FlagAcks>>,
    /// After an undrain, this node stays out of the Layer 2 election until every live
    /// speaker acknowledged it (`oxlb_announce::undrain`): the owner of its IPs lets go
    /// first, so two never answer.
    undrain: Option<UndrainWait>,
}

/// An undrain waiting for the other speakers to read it.
struct UndrainWait {
    started: tokio::time::Instant,
    /// The number of this speaker's flag news before the undrain: acknowledgements
    /// count only once the membership has sent the undrain news (a newer number).
    since_before: u64,
    /// When to look again without news (the older speakers' time, the slow warning).
    wake: Option<tokio::time::Instant>,
    warned: bool,
}

/// Runs until `shutdown` resolves, then stops cleanly (Cease to every peer, or graceful
/// restart where negotiated) and returns.
pub async fn run(
    options: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let store = StateStore::open(&options.state_dir).map_err(RunError::State)?;
    let held = store.load().map_err(RunError::State)?;
    info!(
        node = %options.node,
        held = held.services.len(),
        state = %store.path().display(),
        "starting; assignments held before are re-claimed first"
    );
    let (report_tx, report_rx) = watch::channel(StatusReport {
        node: options.node.clone(),
        ..Default::default()
    });
    let listener = oxlb_node::http::bind(options.listen)
        .await
        .map_err(|e| RunError::Io(e.to_string()))?;
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let (drain_tx, mut drain_rx) = watch::channel(false);
    let extra_routes =
        crate::drain_http::router(drain_tx, report_rx.clone()).merge(crate::memory::router());
    let http = oxlb_node::http::serve_with(listener, report_rx, extra_routes, async {
        let _ = stop_http_rx.await;
    });
    let (_watcher, mut reloads) = crate::watch::watch(&options.paths)
        .map_err(|e| RunError::Io(format!("cannot watch the configuration files: {e}")))?;
    let driver = Driver::start(DriverOptions {
        who: format!("oxlb on {}", options.node),
        bgp_listen: options.bgp_listen,
        layer2: options.layer2.responder_settings(),
        second_chance: options.second_chance,
    })
    .await
    .map_err(|e| RunError::Io(format!("cannot start the BGP speaker: {e}")))?;
    let vips = match &options.local_ip_interface {
        Some(interface) => {
            let vips = LocalVips::new(interface, None);
            vips.ensure_interface()
                .await
                .map_err(|e| RunError::Io(format!("interface {interface}: {e}")))?;
            Some(vips)
        }
        None => None,
    };
    let health = oxlb_node::health::HealthChecks::default();
    let health_changes = health.subscribe();
    let mut engine = Engine {
        health,
        health_changes,
        peer_health: None,
        peer_flags: None,
        mixed_paths_log: oxlb_node::mixed_paths::MixedPathsLog::default(),
        flag_acks: None,
        undrain: None,
        planner: Planner::new(&options.node, options.lb_class.clone())
            .with_service_limit(options.max_services),
        options,
        store,
        held: Arc::new(held),
        current: None,
        driver,
        vips,
        report: report_tx,
        layer2_owned: BTreeSet::new(),
        trim: crate::trim::TrimAfterFall::default(),
        layer2: None,
        live: None,
        last_valid: oxlb_config::LastValid::default(),
        host_check: HostCheck::default(),
        drain: oxlb_announce::drain::DrainState::default(),
    };
    engine.reload("start").await;

    tokio::pin!(shutdown);
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            cause = reloads.recv() => match cause {
                Some(cause) => engine.reload(&format!("{cause:?}")).await,
                None => break,
            },
            _ = refresh.tick() => engine.refresh_counters().await,
            Some(()) = changed(&mut engine.live) => {
                info!("layer2: live speakers changed");
                engine.apply().await;
            }
            // A weight change held back by the driver's damping is due.
            () = oxlb_node::weights::due(engine.driver.weight_wake()) => engine.apply().await,
            Ok(()) = drain_rx.changed() => {
                let wish = *drain_rx.borrow_and_update();
                let was = engine.drain.is_drained();
                crate::drain::request(&mut engine.drain, wish);
                if was && !engine.drain.is_drained() {
                    engine.begin_undrain_hold();
                }
                engine.apply().await;
                engine.observe_drain().await;
            }
            () = oxlb_node::weights::due(engine.undrain.as_ref().and_then(|u| u.wake)) => {
                engine.apply().await;
            }
            Some(()) = changed(&mut engine.flag_acks) => {
                if engine.undrain.is_some() {
                    engine.apply().await;
                }
            }
            Some(()) = changed(&mut engine.peer_flags) => engine.apply().await,
            () = oxlb_node::weights::due(crate::drain::poll(&engine.drain)) => {
                engine.observe_drain().await;
            }
            Ok(()) = engine.health_changes.changed() => engine.apply().await,
            Some(()) = changed(&mut engine.peer_health) => engine.apply().await,
            () = engine.driver.bfd_down() => {}
            () = &mut shutdown => break,
        }
    }
    engine.stop().await;
    let _ = stop_http_tx.send(());
    let _ = http.await;
    Ok(())
}

impl Engine {
    async fn reload(&mut self, cause: &str) {
        let loaded = oxlb_config::load_paths(&self.options.paths, &self.options.namespace);
        let mut snapshot = match loaded {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                self.reject(cause, errors.iter().map(|e| e.to_string()).collect());
                return;
            }
        };
        // The parsed Services go first, before the config build copies the snapshot
        // (which reads none of them): only their compact views stay.
        let services = take_services(&mut snapshot);
        // Quarantine: invalid objects are left out (or held at their last valid
        // version) and reported; everything else applies.
        let built = oxlb_config::build_config_with(&snapshot, &self.last_valid);
        let warnings: Vec<String> = built.warnings.iter().map(|w| w.to_string()).collect();
        for warning in &warnings {
            warn!("{warning}");
        }
        let errors: Vec<String> = built.errors.iter().map(|e| e.to_string()).collect();
        for e in &errors {
            error!("{e}");
        }
        let left_out = built.quarantined.len();
        for q in &built.quarantined {
            warn!(
                kind = q.kind.as_str(),
                name = %q.name,
                decision = ?q.decision,
                "object not in force as written"
            );
        }
        let config = built.applied;
        self.last_valid = built.in_force;
        self.report.send_modify(|r| {
            r.config.loaded = true;
            r.config.stale = !errors.is_empty();
            r.config.errors = errors;
            r.config.warnings = warnings;
            r.config.loaded_at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs());
        });
        info!(
            cause,
            pools = config.pools.len(),
            peers = config.peers.len(),
            services = services.len(),
            left_out,
            "configuration loaded"
        );
        // The previous Services and plan go before the new plan is made.
        self.current = None;
        self.current = Some(Current {
            snapshot,
            services,
            config,
        });
        self.apply().await;
        crate::memory::release_freed();
    }

    fn reject(&mut self, cause: &str, errors: Vec<String>) {
        for e in &errors {
            error!("{e}");
        }
        let in_force = self.current.is_some();
        error!(
            cause,
            errors = errors.len(),
            "configuration rejected; {}",
            if in_force {
                "the previous valid configuration stays in force"
            } else {
                "nothing is announced until a valid configuration is given"
            }
        );
        self.report.send_modify(|r| {
            r.config.stale = in_force;
            r.config.errors = errors;
        });
    }

    async fn apply(&mut self) {
        self.start_layer2_if_needed().await;
        self.settle_undrain();
        if self.current.is_none() {
            return;
        }
        let live = self.layer2.as_ref().and_then(Layer2::live);
        if let Some(layer2) = &self.layer2 {
            layer2.set_flags(self.drain.is_drained(), self.undrain.is_some());
        }
        self.planner.set_drained(self.drained_speakers());
        self.planner.set_told(
            self.peer_flags
                .as_ref()
                .map(|flags| oxlb_node::mixed_paths::told(&flags.borrow()))
                .unwrap_or_default(),
        );
        let Some(current) = &mut self.current else {
            return;
        };
        self.health.sync_annotated(
            current
                .services
                .iter()
                .filter_map(|s| Some((s.service_key(), Cow::Borrowed(s.health_annotations()?)))),
        );
        let health_view = self.health.health_view(
            &self.options.node,
            self.peer_health
                .as_ref()
                .map(|p| p.borrow().clone())
                .as_ref(),
            live.as_ref(),
        );
        let mut plan = self.planner.plan_checked(
            &current.snapshot,
            &mut current.services,
            &current.config,
            &self.held,
            live.as_ref(),
            &health_view,
        );
        let current = &*current;
        // The report shows the routes as planned, also while drained (the rows are
        // derived from the announcements later, [`RunRows`]); a copy only then.
        let planned = self.drain.is_drained().then(|| plan.announcements.clone());
        self.drain.withhold(&mut plan.announcements);
        if let Some(layer2) = &self.layer2 {
            layer2.set_passing(self.health.passing());
        }
        let peers = self.peer_health.as_ref().map(|p| p.borrow().clone());
        self.health
            .note_everywhere(&self.options.node, peers.as_ref(), live.as_ref());
        // Logged there, as the speaker records them as events.
        self.health.changes();
        if let Some(layer2) = &self.layer2 {
            layer2.update_seeds(&current.snapshot);
        }
        for (service, reason, message) in &plan.events {
            if *reason == oxlb_controller::EventReason::ServiceLimitExceeded {
                warn!(service, reason = reason.as_str(), "{message}");
            } else {
                info!(service, reason = reason.as_str(), "{message}");
            }
        }
        // The rows show what was planned, also when it could not be persisted.
        let planned_held = if plan.held == *self.held {
            Arc::clone(&self.held)
        } else {
            let held = Arc::new(std::mem::take(&mut plan.held));
            match self.store.save(&held) {
                Ok(()) => self.held = Arc::clone(&held),
                Err(e) => error!("cannot persist assignments (a restart could move IPs): {e}"),
            }
            held
        };
        let node = NodeInfo::find(
            current.snapshot.nodes.iter().map(|n| &n.object),
            &self.options.node,
        );
        self.driver
            .apply(&current.config, &plan.announcements, &node)
            .await;
        if let Some(vips) = &self.vips {
            match vips.apply(&plan.local_ips).await {
                Ok(change) if change.added.is_empty() && change.removed.is_empty() => {}
                Ok(change) => info!(
                    interface = vips.interface(),
                    added = change.added.len(),
                    removed = change.removed.len(),
                    "service IPs on this host changed: {}",
                    change.summary()
                ),
                Err(e) => error!("cannot update the service IPs on this host: {e}"),
            }
        }
        let health_checks = self.health.status();
        let mixed = oxlb_node::mixed_paths::status(&plan.mixed_paths);
        self.mixed_paths_log.observe(&mixed);
        // Only the Layer 2 owners outlive the plan (the host check) and what the
        // report's rows derive from when asked (issue 22: not 40,000 rows held).
        self.layer2_owned = plan.announcements.l2.keys().copied().collect();
        let rows = RunRows::new(
            std::mem::take(&mut plan.service_views),
            planned_held,
            planned.unwrap_or_else(|| std::mem::take(&mut plan.announcements)),
            std::mem::take(&mut plan.failures),
        );
        self.report.send_modify(|r| {
            r.health_checks = health_checks;
            r.weighted_ecmp_mixed = mixed;
            r.services = Vec::new();
            r.bgp_routes = Vec::new();
            r.derived_rows = DerivedRows::from_source(Arc::new(rows));
            r.pools = std::mem::take(&mut plan.pools);
        });
        drop(plan);
        // New IPs or owners: look at the host again at the next refresh.
        self.host_check.expire();
        let status = self.driver.status().await;
        self.publish(status);
    }

    /// The membership joins the election once this node can answer: the driver's
    /// responder started (the first L2Advertisement). Weighted ECMP with other speakers
    /// known starts it too, without a responder: their news tells which of them are
    /// older ([`crate::l2_glue::wanted_for_weighted_ecmp`]). Before planning, so that
    /// the plan sees the live speakers.
    async fn start_layer2_if_needed(&mut self) {
        let Some(current) = &self.current else {
            return;
        };
        if self.layer2.is_some() {
            return;
        }
        let responder = self.driver.start_layer2_if_wanted(&current.config);
        let weighted = crate::l2_glue::wanted_for_weighted_ecmp(
            &current.config,
            &self.options.layer2,
            &current.snapshot,
            &self.options.node,
        );
        if !responder && !weighted {
            return;
        }
        let layer2 =
            Layer2::start(&self.options.node, &self.options.layer2, &current.snapshot).await;
        self.live = layer2.watch_live();
        self.peer_health = layer2.watch_peer_health();
        self.peer_flags = layer2.watch_peer_flags();
        self.flag_acks = layer2.watch_flag_acks();
        self.layer2 = Some(layer2);
    }

    /// Reads the host again (every [`crate::host_check::RECHECK`]) and reports whether
    /// its kernel would answer for Layer 2 IPs this node does not own.
    async fn check_host(&mut self, kernel_arp: Option<&host_check::KernelArp>) {
        let (Some(kernel_arp), Some(current)) = (kernel_arp, &self.current) else {
            return;
        };
        if !self.host_check.due(std::time::Instant::now()) {
            return;
        }
        let layer2_ips = host_check::layer2_ips(
            &current.config,
            self.report
                .borrow()
                .services
                .iter()
                .filter_map(|s| Some((s.pool.as_deref()?, s.ips.as_slice()))),
        );
        let owned = self.layer2_owned.clone();
        let arp = kernel_arp.clone();
        let checked =
            tokio::task::spawn_blocking(move || host_check::check_now(&arp, &layer2_ips, &owned))
                .await;
        match checked {
            Ok(Ok((ghosts, host))) => {
                self.host_check
                    .record(ghosts, &host, std::time::Instant::now());
                let status = self.host_check.status(kernel_arp);
                self.report.send_if_modified(|r| {
                    let changed = r.host != status;
                    r.host = status;
                    changed
                });
            }
            Ok(Err(e)) => warn!("layer2: cannot read this host's addresses: {e}"),
            Err(e) => warn!("layer2: host check failed: {e}"),
        }
    }

    /// Counters that change without a reload: sessions, Layer 2 and BFD.
    async fn refresh_counters(&mut self) {
        if let Some(heap) = crate::memory::heap_use()
            && self.trim.due(heap.in_use_bytes)
        {
            crate::memory::release_freed();
        }
        self.driver.recheck_host();
        let status = self.driver.status().await;
        self.check_host(status.kernel_arp.as_ref()).await;
        let confirm = crate::drain::observe(&mut self.drain, &status.bgp_sessions, &self.report);
        self.driver.confirm(&confirm);
        let health_checks = self.health.status();
        self.report.send_if_modified(|r| {
            let changed = r.health_checks != health_checks;
            r.health_checks = health_checks;
            changed
        });
        self.publish(status);
    }

    /// The protocols' rows of the report.
    fn publish(&self, status: ProtocolStatus) {
        self.report.send_if_modified(|r| {
            let changed = r.bgp_sessions != status.bgp_sessions
                || r.bfd_sessions != status.bfd_sessions
                || r.l2 != status.l2
                || r.second_chance != status.second_chance;
            r.bgp_sessions = status.bgp_sessions;
            r.bfd_sessions = status.bfd_sessions;
            r.l2 = status.l2;
            r.second_chance = status.second_chance;
            changed
        });
    }

    /// After an undrain: stays out of the election until the other speakers read it.
    fn begin_undrain_hold(&mut self) {
        let started = tokio::time::Instant::now();
        self.undrain = Some(UndrainWait {
            started,
            since_before: self.flag_acks.as_ref().map_or(0, |a| a.borrow().since),
            wake: Some(started + oxlb_announce::undrain::OLDER_SPEAKER_HOLD),
            warned: false,
        });
    }

    /// Ends the undrain hold once every live speaker acknowledged it (older speakers:
    /// once they had the time), else sets when to look again.
    fn settle_undrain(&mut self) {
        use oxlb_announce::undrain::{OLDER_SPEAKER_HOLD, SLOW_ACK, Speakers, UndrainHold};
        let Some(wait) = &mut self.undrain else {
            return;
        };
        let elapsed = wait.started.elapsed();
        let acks = self
            .flag_acks
            .as_ref()
            .map(|a| a.borrow().clone())
            .unwrap_or_default();
        let mut live = self
            .layer2
            .as_ref()
            .and_then(Layer2::live)
            .unwrap_or_default();
        live.remove(&self.options.node);
        let sent = acks.since > wait.since_before;
        let speakers = Speakers {
            live,
            can_acknowledge: acks.can_acknowledge,
            acknowledged: if sent {
                acks.acknowledged
            } else {
                BTreeSet::new()
            },
        };
        match oxlb_announce::undrain::undrain_hold(elapsed, &speakers) {
            UndrainHold::Over(end) => {
                info!(
                    after_ms = elapsed.as_millis() as u64,
                    end = end.as_str(),
                    "layer2: undrained; this node stands in the election again"
                );
                self.undrain = None;
            }
            UndrainHold::Waiting {
                unacknowledged,
                older,
            } => {
                if elapsed >= SLOW_ACK && !wait.warned {
                    warn!(
                        waiting_for = ?unacknowledged,
                        "layer2: undrained {} s ago, but these live speakers have not \
                         acknowledged it; this node stays out of the election until they \
                         do (another node answers meanwhile)",
                        elapsed.as_secs()
                    );
                    wait.warned = true;
                }
                wait.wake = if !older.is_empty() {
                    Some(wait.started + OLDER_SPEAKER_HOLD)
                } else if !wait.warned {
                    Some(wait.started + SLOW_ACK)
                } else {
                    None
                };
            }
        }
    }

    /// The speakers the Layer 2 election leaves out while another can answer: the
    /// others that told they are drained, and this one while drained or just undrained
    /// (until the others acknowledged it, [`Engine::settle_undrain`]).
    fn drained_speakers(&self) -> BTreeSet<String> {
        let mut drained: BTreeSet<String> = self
            .peer_flags
            .as_ref()
            .map(|flags| {
                flags
                    .borrow()
                    .iter()
                    .filter(|(_, f)| f.contains(&oxlb_l2::membership::Flag::Drained))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if self.drain.is_drained() || self.undrain.is_some() {
            drained.insert(self.options.node.clone());
        }
        drained
    }

    /// Whether this host's Node object in the files is cordoned (`spec.unschedulable`).
    fn own_node_cordoned(&self) -> bool {
        self.current.as_ref().is_some_and(|c| {
            c.snapshot
                .nodes
                .iter()
                .filter(|n| n.object.metadata.name.as_deref() == Some(self.options.node.as_str()))
                .any(|n| oxlb_node::views::node_view(&n.object).cordoned)
        })
    }

    /// Whether a drain has converged (every session sent the withdrawals); publishes
    /// the drain status.
    async fn observe_drain(&mut self) {
        let status = self.driver.status().await;
        let confirm = crate::drain::observe(&mut self.drain, &status.bgp_sessions, &self.report);
        self.driver.confirm(&confirm);
    }

    /// The stop plan of issue 19 ([`oxlb_node::stop`], shared with `oxlb speaker`): a
    /// host going down (drained, or its Node cordoned in the files) withdraws and closes
    /// without graceful restart, at once if the routes are already gone; any other stop
    /// is a restart: graceful restart where configured, else the routes are withdrawn
    /// first and the sessions close after `--drain-delay-seconds`.
    async fn stop(mut self) {
        let status = self.driver.status().await;
        let going = oxlb_node::stop::going(
            self.drain.is_drained() || self.own_node_cordoned(),
            &status.bgp_sessions,
        );
        let plan =
            oxlb_node::stop::stop_plan(going, self.driver.stop_mode(), self.options.drain_delay);
        info!(?going, ?plan, "stopping");
        let delay = plan.delay();
        if !delay.is_zero() {
            info!(
                delay_ms = delay.as_millis() as u64,
                "stopping: withdrawing every route first, closing after the drain delay"
            );
            crate::drain::request(&mut self.drain, true);
            self.apply().await;
            tokio::time::sleep(delay).await;
        }
        let mode = plan.mode();
        if let Some(layer2) = self.layer2 {
            layer2.stop().await;
        }
        let mode = self.driver.stop_as(mode).await;
        // With graceful restart the routers keep sending traffic here while we are
        // away: keep the service IPs so it is still accepted.
        if let Some(vips) = &self.vips
            && mode == StopMode::Withdraw
            && let Err(e) = vips.remove_interface().await
        {
            warn!("cannot remove {}: {e}", vips.interface());
        }
    }
}

/// Resolves when the watched value changes; never when there is nothing to watch.
async fn changed<T>(receiver: &mut Option<watch::Receiver<T>>) -> Option<()> {
    match receiver {
        Some(r) => r.changed().await.ok(),
        None => std::future::pending().await,
    }
}

/// The report `oxlb explain -f` prints without a running instance: the same planning
/// on the files, with the state directory's assignments if given. Nothing is applied.
pub fn offline_report(
    node: &str,
    paths: &[PathBuf],
    namespace: &str,
    state_dir: Option<&std::path::Path>,
    lb_class: Option<String>,
) -> Result<StatusReport, Vec<String>> {
    let snapshot = oxlb_config::load_paths(paths, namespace)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let built = oxlb_config::build_config(&snapshot);
    let config = built.applied;
    let held = match state_dir {
        Some(dir) => StateStore::open(dir)
            .and_then(|s| s.load())
            .map_err(|e| vec![e.to_string()])?,
        None => Assignments::default(),
    };
    let plan = Planner::new(node, lb_class).plan(&snapshot, &config, &held, None);
    let rows = RunRows::of(&plan);
    let mut report = StatusReport {
        node: node.to_string(),
        services: rows.services(),
        pools: plan.pools,
        bgp_routes: rows.bgp_routes(),
        ..Default::default()
    };
    report.config.loaded = true;
    report.config.stale = !built.errors.is_empty();
    report.config.errors = built.errors.iter().map(|e| e.to_string()).collect();
    report.config.warnings = built.warnings.iter().map(|w| w.to_string()).collect();
    Ok(report)
}
