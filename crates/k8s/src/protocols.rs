//! The protocol side of `oxlb speaker`: what [`crate::run_speaker`] computes (the config
//! in force, this node's announcements, this node's labels and address) goes to the
//! node driver (`oxlb_node::driver::Driver`: BGP, the Layer 2 responder, BFD), the one
//! `oxlb run` uses too.
//!
//! The speaker's callback is synchronous; [`Protocols::apply`] only stores the latest
//! desired state in a watch channel, and one tokio task that owns the driver applies
//! it. A burst of changes therefore collapses
//! into the newest one (older desired states are never worth applying).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oxlb_announce::Announcements;
use oxlb_config::Config;
pub use oxlb_node::driver::ProtocolStatus;
use oxlb_node::driver::{Driver, DriverOptions};
pub use oxlb_node::node_info::NodeInfo;
use tokio::sync::{oneshot, watch};

#[derive(Debug, Clone)]
pub struct ProtocolOptions {
    /// Used in the Cease message peers log when this speaker stops.
    pub node_name: String,
    /// Accept BGP connections here too; `None`: connect only (MetalLB's speaker).
    pub bgp_listen: Option<SocketAddr>,
    /// Interface name patterns never answered on by Layer 2 (`None`: the defaults).
    pub l2_exclude: Option<Vec<String>>,
    /// How often session counters are refreshed for `/metrics`.
    pub status_interval: Duration,
    /// `--drain-delay-seconds`: on a stop that withdraws ([`oxlb_node::stop`]), how long
    /// the sessions stay up after the withdrawals before the Cease.
    pub drain_delay: Duration,
    /// `--second-chance`, `--second-chance-rate`.
    pub second_chance: oxlb_node::second_chance::Options,
}

impl ProtocolOptions {
    /// The responder's settings in a Pod: the ARP sysctls are set where the container
    /// may (privileged, writable /proc/sys); else the host check warns if it matters
    /// (see crate::host_warning).
    fn layer2_settings(&self) -> oxlb_l2::responder::Settings {
        let mut settings = oxlb_l2::responder::Settings {
            arp_sysctls: oxlb_l2::sysctl::Policy::SetIfAllowed,
            ..Default::default()
        };
        if let Some(exclude) = &self.l2_exclude {
            settings.exclude = exclude.clone();
        }
        settings
    }

    pub fn new(node_name: &str) -> ProtocolOptions {
        ProtocolOptions {
            node_name: node_name.to_string(),
            bgp_listen: None,
            l2_exclude: None,
            status_interval: Duration::from_secs(1),
            drain_delay: Duration::ZERO,
            second_chance: oxlb_node::second_chance::Options::default(),
        }
    }
}

#[derive(Debug)]
struct Desired {
    config: Config,
    /// Shared with the speaker's last announcements (one copy of 10,000 routes).
    announcements: Arc<Announcements>,
    node: NodeInfo,
}

/// Handle to the task that owns the node driver.
pub struct Protocols {
    desired: watch::Sender<Option<Arc<Desired>>>,
    status: watch::Receiver<ProtocolStatus>,
    stop: Option<oneshot::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Protocols {
    /// Starts the BGP speaker (no session until the first [`Protocols::apply`]). Must be
    /// called inside a tokio runtime.
    pub async fn start(options: ProtocolOptions) -> std::io::Result<Protocols> {
        let driver = Driver::start(DriverOptions {
            who: format!("oxlb speaker on {}", options.node_name),
            bgp_listen: options.bgp_listen,
            layer2: options.layer2_settings(),
            second_chance: options.second_chance,
        })
        .await?;
        let (desired_tx, desired_rx) = watch::channel(None);
        let (status_tx, status_rx) = watch::channel(ProtocolStatus::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let shells = Shells {
            interval: options.status_interval,
            drain_delay: options.drain_delay,
            driver,
            status: status_tx,
            last: None,
        };
        let task = tokio::spawn(shells.run(desired_rx, stop_rx));
        Ok(Protocols {
            desired: desired_tx,
            status: status_rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// Hands over the new desired state; never blocks (the speaker's callback is sync).
    pub fn apply(&self, config: &Config, announcements: &Announcements, node: &NodeInfo) {
        self.apply_shared(config, Arc::new(announcements.clone()), node);
    }

    /// [`Protocols::apply`] with announcements the caller keeps too, without a copy.
    pub fn apply_shared(
        &self,
        config: &Config,
        announcements: Arc<Announcements>,
        node: &NodeInfo,
    ) {
        self.desired.send_replace(Some(Arc::new(Desired {
            config: config.clone(),
            announcements,
            node: node.clone(),
        })));
    }

    /// Session state, refreshed every `status_interval`.
    pub fn status(&self) -> watch::Receiver<ProtocolStatus> {
        self.status.clone()
    }

    /// Stops cleanly, as a restart ([`Protocols::shutdown_as`] with `going_down` false).
    pub async fn shutdown(self) {
        self.shutdown_as(false).await;
    }

    /// Stops cleanly by the stop plan ([`oxlb_node::stop`]): `going_down` (the Node is
    /// cordoned) withdraws without graceful restart, at once if the cordon withdrew the
    /// routes already; a restart keeps the routes by graceful restart where a BGPPeer in
    /// force asks for it, else withdraws, waits the drain delay, then sends the Cease.
    pub async fn shutdown_as(mut self, going_down: bool) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(going_down);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Protocols {
    fn drop(&mut self) {
        // Without shutdown() the task must not outlive its handle.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the task owns.
struct Shells {
    interval: Duration,
    drain_delay: Duration,
    driver: Driver,
    status: watch::Sender<ProtocolStatus>,
    /// The desired state last applied: applied again when the driver's weight damping
    /// releases a held weight change (issue 19).
    last: Option<Arc<Desired>>,
}

impl Shells {
    async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        mut stop: oneshot::Receiver<bool>,
    ) {
        // Dropped without a word (the handle gone): a restart.
        let mut going_down = false;
        let mut refresh = tokio::time::interval(self.interval);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = desired.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let latest = desired.borrow_and_update().clone();
                    if let Some(latest) = latest {
                        self.last = Some(Arc::clone(&latest));
                        self.apply(&latest).await;
                        self.refresh().await;
                    }
                }
                () = oxlb_node::weights::due(self.driver.weight_wake()) => {
                    if let Some(last) = self.last.clone() {
                        self.apply(&last).await;
                    }
                }
                () = self.driver.bfd_down() => {}
                _ = refresh.tick() => {
                    self.driver.recheck_host();
                    self.refresh().await;
                }
                down = &mut stop => {
                    going_down = down.unwrap_or(false);
                    break;
                }
            }
        }
        self.stop(going_down).await;
    }

    /// The shared stop plan, carried out: the withdrawals go first (the sessions stay
    /// up, so the routers drop the paths before any session closes), the sessions stay
    /// `drain_delay`, then the driver closes them.
    async fn stop(mut self, going_down: bool) {
        let status = self.driver.status().await;
        let going = oxlb_node::stop::going(going_down, &status.bgp_sessions);
        let plan = oxlb_node::stop::stop_plan(going, self.driver.stop_mode(), self.drain_delay);
        tracing::info!(?going, ?plan, "stopping");
        let delay = plan.delay();
        if !delay.is_zero()
            && let Some(last) = self.last.clone()
        {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "stopping: withdrawing every route first, closing after the drain delay"
            );
            // Layer 2 leaves too: the membership has been left, the others answer now.
            let mut withdrawn = Announcements::clone(&last.announcements);
            for routes in withdrawn.bgp.values_mut() {
                routes.clear();
            }
            withdrawn.l2.clear();
            self.driver
                .apply(&last.config, &withdrawn, &last.node)
                .await;
            self.refresh().await;
            tokio::time::sleep(delay).await;
        }
        self.driver.stop_as(plan.mode()).await;
    }

    async fn apply(&mut self, desired: &Desired) {
        self.driver
            .apply(&desired.config, &desired.announcements, &desired.node)
            .await;
    }

    async fn refresh(&self) {
        let new = self.driver.status().await;
        self.status.send_if_modified(|current| {
            if *current == new {
                false
            } else {
                *current = new;
                true
            }
        });
    }
}
