//! The shell of `oxlb run`: loads the files, runs the pure planner, and applies the
//! plan — persisted assignments, BGP sessions, local service IPs — then keeps the status
//! report current for `/metrics`, `/api/v1/status` and `oxlb status`.
//!
//! A configuration change applies as a diff: the speaker keeps sessions whose settings
//! did not change and sends only the route difference. An invalid change is rejected
//! with every error logged; the last valid configuration stays in force and the report
//! says stale.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use oxlb_config::Config;
use oxlb_config::snapshot::Snapshot;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::bfd_glue::{self, BfdSessions};
use crate::bgp_glue::{self, local_address_toward};
use crate::l2_glue::Layer2;
use crate::plan::{Plan, Planner};
use crate::state::{Assignments, StateStore};
use crate::status::{BgpSessionStatus, StatusReport};
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
    /// Accept BGP connections here too (normally `[::]:179`); `None`: connect only.
    pub bgp_listen: Option<SocketAddr>,
    /// The interface that carries the announced service IPs; `None`: leave them off the
    /// host (something else, such as kube-proxy, makes them local).
    pub local_ip_interface: Option<String>,
    pub layer2: crate::l2_glue::Layer2Options,
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
    snapshot: Snapshot,
    config: Config,
}

struct Engine {
    options: RunOptions,
    store: StateStore,
    held: Assignments,
    planner: Planner,
    current: Option<Current>,
    speaker: oxlb_bgp::Speaker,
    vips: Option<LocalVips>,
    report: watch::Sender<StatusReport>,
    last_plan: Option<Plan>,
    layer2: Option<Layer2>,
    live: Option<watch::Receiver<BTreeSet<String>>>,
    bfd: Option<BfdSessions>,
    bfd_down: Option<mpsc::UnboundedReceiver<String>>,
    /// Derived router IDs already logged (each is logged once, not on every apply).
    router_ids: bgp_glue::RouterIds,
    /// Whether this host's kernel would answer for Layer 2 IPs it does not own.
    host_check: crate::host_check::HostCheck,
    /// The objects in force after the last build: an object whose edit is invalid stays
    /// at this version (quarantine).
    last_valid: oxlb_config::LastValid,
    /// `oxlb.io/health-check`: the checks this node runs, and their change counter.
    health: crate::health_glue::HealthChecks,
    health_changes: watch::Receiver<u64>,
    /// Layer 2: which checked Services pass on the other speakers.
    peer_health: Option<watch::Receiver<crate::health_glue::PeerHealth>>,
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
    let listener = crate::http::bind(options.listen)
        .await
        .map_err(|e| RunError::Io(e.to_string()))?;
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let http = crate::http::serve(listener, report_rx, async {
        let _ = stop_http_rx.await;
    });
    let (_watcher, mut reloads) = crate::watch::watch(&options.paths)
        .map_err(|e| RunError::Io(format!("cannot watch the configuration files: {e}")))?;
    let speaker = oxlb_bgp::Speaker::start(oxlb_bgp::speaker::SpeakerOptions {
        listen: options.bgp_listen,
        on_event: Some(std::sync::Arc::new(|peer: &str, message: &str| {
            info!(peer, "{message}");
        })),
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
    let health = crate::health_glue::HealthChecks::default();
    let health_changes = health.subscribe();
    let mut engine = Engine {
        health,
        health_changes,
        peer_health: None,
        planner: Planner::new(&options.node, options.lb_class.clone()),
        options,
        store,
        held,
        current: None,
        speaker,
        vips,
        report: report_tx,
        last_plan: None,
        layer2: None,
        live: None,
        bfd: None,
        last_valid: oxlb_config::LastValid::default(),
        bfd_down: None,
        router_ids: bgp_glue::RouterIds::default(),
        host_check: crate::host_check::HostCheck::default(),
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
            Ok(()) = engine.health_changes.changed() => engine.apply().await,
            Some(()) = changed(&mut engine.peer_health) => engine.apply().await,
            Some(peer) = recv(&mut engine.bfd_down) => {
                warn!(peer, "BFD session went Down: closing the BGP session at once");
                engine.speaker.reset_peer(&peer, "BFD session went Down");
            }
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
        let snapshot = match loaded {
            Ok(snapshot) => snapshot,
            Err(errors) => {
                self.reject(cause, errors.iter().map(|e| e.to_string()).collect());
                return;
            }
        };
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
            services = snapshot.services.len(),
            left_out = built.quarantined.len(),
            "configuration loaded"
        );
        self.current = Some(Current { snapshot, config });
        self.apply().await;
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
        let Some(current) = &self.current else {
            return;
        };
        let live = self.layer2.as_ref().and_then(Layer2::live);
        self.health
            .sync(current.snapshot.services.iter().map(|s| &s.object));
        let plan = self.planner.plan_checked(
            &current.snapshot,
            &current.config,
            &self.held,
            live.as_ref(),
            &self.health.health_view(
                &self.options.node,
                self.peer_health
                    .as_ref()
                    .map(|p| p.borrow().clone())
                    .as_ref(),
                live.as_ref(),
            ),
        );
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
            layer2
                .responder
                .set_owned(oxlb_l2::owned_from(&plan.announcements));
        }
        for (service, reason, message) in &plan.events {
            info!(service, reason = reason.as_str(), "{message}");
        }
        if plan.held != self.held {
            match self.store.save(&plan.held) {
                Ok(()) => self.held = plan.held.clone(),
                Err(e) => error!("cannot persist assignments (a restart could move IPs): {e}"),
            }
        }
        let node_labels = current
            .snapshot
            .nodes
            .iter()
            .find(|n| n.object.metadata.name.as_deref() == Some(self.options.node.as_str()))
            .and_then(|n| n.object.metadata.labels.clone())
            .unwrap_or_default();
        let node_ipv4 = node_internal_ipv4(&current.snapshot, &self.options.node);
        let (sessions, skipped) = self.router_ids.desired_sessions(
            &current.config,
            &node_labels,
            &plan.announcements,
            node_ipv4,
            local_address_toward,
        );
        for skip in &skipped {
            warn!("{skip}");
        }
        let bfd_wanted = bfd_glue::desired(
            &current.config,
            sessions
                .iter()
                .map(|(name, (s, _))| (name.clone(), s.peer_address, s.source_address)),
            local_address_toward,
        );
        self.speaker.set_desired(sessions);
        bfd_glue::start_and_apply(&mut self.bfd, &mut self.bfd_down, bfd_wanted).await;
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
        self.report.send_modify(|r| {
            r.health_checks = health_checks;
            r.services = plan.services.clone();
            r.pools = plan.pools.clone();
            r.bgp_routes = plan.bgp_routes.clone();
            r.l2 = plan
                .announcements
                .l2
                .iter()
                .map(|(ip, l2)| crate::status::L2Status {
                    ip: Some(*ip),
                    interfaces: match &l2.interfaces {
                        oxlb_announce::Interfaces::All => vec![],
                        oxlb_announce::Interfaces::Only(names) => names.iter().cloned().collect(),
                    },
                    services: l2.services.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                })
                .collect();
        });
        self.last_plan = Some(plan);
        // New IPs or owners: look at the host again at the next refresh.
        self.host_check.expire();
        self.refresh_sessions();
    }

    async fn start_layer2_if_needed(&mut self) {
        let Some(current) = &self.current else {
            return;
        };
        if self.layer2.is_some() || current.config.l2_advertisements.is_empty() {
            return;
        }
        match Layer2::start(&self.options.node, &self.options.layer2, &current.snapshot).await {
            Ok(layer2) => {
                self.live = layer2.watch_live();
                self.peer_health = layer2.watch_peer_health();
                self.layer2 = Some(layer2);
            }
            Err(e) => error!("cannot start the Layer 2 responder (needs root / CAP_NET_RAW): {e}"),
        }
    }

    /// Reads the host again (every [`crate::host_check::RECHECK`]) and reports whether
    /// its kernel would answer for Layer 2 IPs this node does not own.
    async fn check_host(&mut self) {
        let (Some(layer2), Some(current), Some(plan)) =
            (&self.layer2, &self.current, &self.last_plan)
        else {
            return;
        };
        if !self.host_check.due(std::time::Instant::now()) {
            return;
        }
        let kernel_arp = layer2.responder.stats().kernel_arp;
        let layer2_ips = crate::host_check::layer2_ips(
            &current.config,
            plan.services
                .iter()
                .filter_map(|s| Some((s.pool.as_deref()?, s.ips.as_slice()))),
        );
        let owned: BTreeSet<std::net::IpAddr> = plan.announcements.l2.keys().copied().collect();
        let arp = kernel_arp.clone();
        let checked = tokio::task::spawn_blocking(move || {
            crate::host_check::check_now(&arp, &layer2_ips, &owned)
        })
        .await;
        match checked {
            Ok(Ok((ghosts, host))) => {
                self.host_check
                    .record(ghosts, &host, std::time::Instant::now());
                let status = self.host_check.status(&kernel_arp);
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
        self.check_host().await;
        let health_checks = self.health.status();
        self.report.send_if_modified(|r| {
            let changed = r.health_checks != health_checks;
            r.health_checks = health_checks;
            changed
        });
        self.refresh_sessions();
        if let Some(layer2) = &self.layer2 {
            let stats = layer2.responder.stats();
            self.report.send_if_modified(|r| {
                let mut changed = false;
                for entry in &mut r.l2 {
                    let Some(counters) = entry.ip.and_then(|ip| stats.per_ip.get(&ip)) else {
                        continue;
                    };
                    let new = (
                        counters.requests_received,
                        counters.responses_sent,
                        counters.gratuitous_sent,
                    );
                    if new
                        != (
                            entry.requests_received,
                            entry.responses_sent,
                            entry.gratuitous_sent,
                        )
                    {
                        (
                            entry.requests_received,
                            entry.responses_sent,
                            entry.gratuitous_sent,
                        ) = new;
                        changed = true;
                    }
                }
                changed
            });
        }
        if let Some(bfd) = &self.bfd {
            let sessions = bfd.status(|name| self.peer_vrf(name)).await;
            self.report.send_if_modified(|r| {
                if r.bfd_sessions == sessions {
                    false
                } else {
                    r.bfd_sessions = sessions;
                    true
                }
            });
        }
    }

    fn refresh_sessions(&self) {
        let now = SystemTime::now();
        let sessions: Vec<BgpSessionStatus> = self
            .speaker
            .status()
            .into_iter()
            .map(|s| BgpSessionStatus {
                peer: s.name.clone(),
                address: SocketAddr::new(s.address, self.peer_port(&s.name)).to_string(),
                state: s.state,
                established_seconds: s
                    .established_since
                    .and_then(|since| now.duration_since(since).ok())
                    .map(|d| d.as_secs()),
                prefixes_announced: s.prefixes_announced as u64,
                prefixes_pending: s.prefixes_pending as u64,
                updates_sent: s.updates_sent,
                messages: (&s.messages).into(),
                vrf: self.peer_vrf(&s.name),
                // A family withheld on an up session (no IPv6 next hop on that link)
                // is shown where operators look for what is wrong with the session.
                last_error: s
                    .last_error
                    .clone()
                    .or_else(|| s.withheld.map(|w| w.to_string())),
            })
            .collect();
        self.report.send_if_modified(|r| {
            if r.bgp_sessions == sessions {
                false
            } else {
                r.bgp_sessions = sessions;
                true
            }
        });
    }

    fn peer_vrf(&self, name: &str) -> Option<String> {
        self.current
            .as_ref()
            .and_then(|c| c.config.peers.get(name))
            .and_then(|p| p.vrf.clone())
    }

    fn peer_port(&self, name: &str) -> u16 {
        self.current
            .as_ref()
            .and_then(|c| c.config.peers.get(name))
            .map_or(179, |p| p.port)
    }

    async fn stop(self) {
        let graceful = self
            .current
            .as_ref()
            .is_some_and(|c| c.config.peers.values().any(|p| p.graceful_restart));
        let mode = if graceful {
            info!("stopping: graceful restart, routers keep our routes until we are back");
            oxlb_bgp::speaker::ShutdownMode::GracefulRestart
        } else {
            info!("stopping: withdrawing every route");
            oxlb_bgp::speaker::ShutdownMode::Withdraw {
                message: format!("oxlb on {} is stopping", self.options.node),
            }
        };
        if let Some(layer2) = self.layer2 {
            layer2.stop().await;
        }
        self.speaker.shutdown(mode).await;
        // With graceful restart the routers keep sending traffic here while we are
        // away: keep the service IPs so it is still accepted.
        if let Some(vips) = &self.vips
            && !graceful
            && let Err(e) = vips.remove_interface().await
        {
            warn!("cannot remove {}: {e}", vips.interface());
        }
    }
}

/// The node's InternalIP (IPv4) from its Node object, MetalLB's default router ID.
fn node_internal_ipv4(snapshot: &Snapshot, node: &str) -> Option<Ipv4Addr> {
    let node = snapshot
        .nodes
        .iter()
        .find(|n| n.object.metadata.name.as_deref() == Some(node))?;
    node.object
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

/// Resolves when the watched value changes; never when there is nothing to watch.
async fn changed<T>(receiver: &mut Option<watch::Receiver<T>>) -> Option<()> {
    match receiver {
        Some(r) => r.changed().await.ok(),
        None => std::future::pending().await,
    }
}

async fn recv(receiver: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match receiver {
        Some(r) => r.recv().await,
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
    let mut report = StatusReport {
        node: node.to_string(),
        services: plan.services,
        pools: plan.pools,
        bgp_routes: plan.bgp_routes,
        ..Default::default()
    };
    report.config.loaded = true;
    report.config.stale = !built.errors.is_empty();
    report.config.errors = built.errors.iter().map(|e| e.to_string()).collect();
    report.config.warnings = built.warnings.iter().map(|w| w.to_string()).collect();
    Ok(report)
}
