//! The protocol side of `oxlb speaker`: what [`crate::run_speaker`] computes (the config
//! in force, this node's announcements, this node's labels and address) drives the BGP
//! sessions (`oxlb_bgp::Speaker`), the Layer 2 responder and BFD, as `oxlb run` does.
//!
//! The speaker's callback is synchronous; [`Protocols::apply`] only stores the latest
//! desired state in a watch channel, and one tokio task that owns the speaker, the
//! responder and the BFD sessions applies it. A burst of changes therefore collapses
//! into the newest one (older desired states are never worth applying).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oxlb_announce::Announcements;
use oxlb_config::Config;
use oxlb_standalone::bfd_glue::{self, BfdSessions};
use oxlb_standalone::bgp_glue;
use oxlb_standalone::bgp_glue::local_address_toward;
use oxlb_standalone::status::{BfdSessionStatus, BgpSessionStatus, L2Status};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

/// What the protocols need to know about this node besides the announcements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// The Node's labels (BGPPeer nodeSelectors).
    pub labels: BTreeMap<String, String>,
    /// The Node's first IPv4 InternalIP: the router ID when a BGPPeer gives none
    /// (MetalLB's default).
    pub internal_ipv4: Option<Ipv4Addr>,
}

impl NodeInfo {
    pub fn from_node(node: &k8s_openapi::api::core::v1::Node) -> NodeInfo {
        NodeInfo {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            internal_ipv4: node
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .find_map(|a| a.address.parse::<Ipv4Addr>().ok()),
        }
    }
}

/// Session state for `/metrics` (`metallb_bgp_session_up`, `metallb_bfd_session_up`...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolStatus {
    pub bgp_sessions: Vec<BgpSessionStatus>,
    pub bfd_sessions: Vec<BfdSessionStatus>,
    /// Per owned IP, the Layer 2 counters (`metallb_layer2_requests_received`...).
    pub l2: Vec<L2Status>,
    /// The ARP sysctls of every interface the responder serves, as found or set;
    /// `None`: no responder (no Layer 2 configured).
    pub kernel_arp: Option<BTreeMap<String, oxlb_l2::sysctl::InterfaceArp>>,
}

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
}

impl ProtocolOptions {
    pub fn new(node_name: &str) -> ProtocolOptions {
        ProtocolOptions {
            node_name: node_name.to_string(),
            bgp_listen: None,
            l2_exclude: None,
            status_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Desired {
    config: Config,
    announcements: Announcements,
    node: NodeInfo,
}

/// Handle to the task that owns the protocol shells.
pub struct Protocols {
    desired: watch::Sender<Option<Arc<Desired>>>,
    status: watch::Receiver<ProtocolStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Protocols {
    /// Starts the BGP speaker (no session until the first [`Protocols::apply`]). Must be
    /// called inside a tokio runtime.
    pub async fn start(options: ProtocolOptions) -> std::io::Result<Protocols> {
        let speaker = oxlb_bgp::Speaker::start(oxlb_bgp::SpeakerOptions {
            listen: options.bgp_listen,
            on_event: Some(Arc::new(|peer: &str, message: &str| {
                info!(peer, "{message}");
            })),
        })
        .await?;
        let (desired_tx, desired_rx) = watch::channel(None);
        let (status_tx, status_rx) = watch::channel(ProtocolStatus::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let shells = Shells {
            options,
            speaker,
            layer2: None,
            bfd: None,
            bfd_down: None,
            graceful: false,
            ports: BTreeMap::new(),
            vrfs: BTreeMap::new(),
            l2: BTreeMap::new(),
            status: status_tx,
            router_ids: bgp_glue::RouterIds::default(),
            weights: Default::default(),
            weight_wake: None,
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
        self.desired.send_replace(Some(Arc::new(Desired {
            config: config.clone(),
            announcements: announcements.clone(),
            node: node.clone(),
        })));
    }

    /// Session state, refreshed every `status_interval`.
    pub fn status(&self) -> watch::Receiver<ProtocolStatus> {
        self.status.clone()
    }

    /// Stops cleanly: graceful restart if any BGPPeer in force asks for it (routers keep
    /// our routes while we restart), else Cease / Administrative Shutdown to every peer.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
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
    options: ProtocolOptions,
    speaker: oxlb_bgp::Speaker,
    layer2: Option<oxlb_l2::Responder>,
    bfd: Option<BfdSessions>,
    bfd_down: Option<mpsc::UnboundedReceiver<String>>,
    /// Whether the config in force asks for graceful restart on some peer.
    graceful: bool,
    /// Per BGPPeer name, its port (the metrics' `peer` label is `ip:port`).
    ports: BTreeMap<String, u16>,
    /// Per BGPPeer name, its `vrf` (the metrics' `vrf` label).
    vrfs: BTreeMap<String, Option<String>>,
    /// The Layer 2 announcements in force (for the per-IP counters).
    l2: BTreeMap<IpAddr, oxlb_announce::L2Announcement>,
    status: watch::Sender<ProtocolStatus>,
    /// Router IDs derived for BGPPeers that give none (logged once each).
    router_ids: bgp_glue::RouterIds,
    /// Weighted ECMP: at most one weight change per prefix per second (issue 19).
    weights: oxlb_announce::WeightDamper,
    weight_wake: Option<tokio::time::Instant>,
    last: Option<Arc<Desired>>,
}

impl Shells {
    async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut refresh = tokio::time::interval(self.options.status_interval);
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
                Some(peer) = recv(&mut self.bfd_down) => {
                    warn!(peer, "BFD session went Down: closing the BGP session at once");
                    self.speaker.reset_peer(&peer, "BFD session went Down");
                }
                _ = refresh.tick() => self.refresh().await,
                () = oxlb_standalone::weights::due(self.weight_wake) => {
                    if let Some(last) = self.last.clone() {
                        self.apply(&last).await;
                    }
                }
                _ = &mut stop => break,
            }
        }
        self.stop().await;
    }

    async fn apply(&mut self, desired: &Desired) {
        let config = &desired.config;
        if !config.l2_advertisements.is_empty() && self.layer2.is_none() {
            let mut settings = oxlb_l2::responder::Settings {
                // Set where the container may (privileged, writable /proc/sys); else
                // the host check warns if it matters (see crate::host_warning).
                arp_sysctls: oxlb_l2::sysctl::Policy::SetIfAllowed,
                ..Default::default()
            };
            if let Some(exclude) = &self.options.l2_exclude {
                settings.exclude = exclude.clone();
            }
            match oxlb_l2::Responder::start(settings) {
                Ok(responder) => self.layer2 = Some(responder),
                Err(e) => error!("cannot start the Layer 2 responder (needs CAP_NET_RAW): {e}"),
            }
        }
        if let Some(responder) = &self.layer2 {
            responder.set_owned(oxlb_l2::owned_from(&desired.announcements));
        }
        self.l2 = desired.announcements.l2.clone();
        let mut damped = desired.announcements.clone();
        self.weight_wake = oxlb_standalone::weights::damp(&mut self.weights, &mut damped);
        let (sessions, skipped) = self.router_ids.desired_sessions(
            config,
            &desired.node.labels,
            &damped,
            desired.node.internal_ipv4,
            local_address_toward,
        );
        for skip in &skipped {
            warn!("{skip}");
        }
        let bfd_wanted = bfd_glue::desired(
            config,
            sessions
                .iter()
                .map(|(name, (s, _))| (name.clone(), s.peer_address, s.source_address)),
            local_address_toward,
        );
        self.graceful = sessions.values().any(|(s, _)| s.graceful_restart);
        self.vrfs = config
            .peers
            .iter()
            .map(|(name, p)| (name.clone(), p.vrf.clone()))
            .collect();
        self.ports = sessions
            .iter()
            .map(|(name, (s, _))| (name.clone(), s.peer_port))
            .collect();
        self.speaker.set_desired(sessions);
        bfd_glue::start_and_apply(&mut self.bfd, &mut self.bfd_down, bfd_wanted).await;
    }

    async fn refresh(&self) {
        let now = SystemTime::now();
        let bgp_sessions: Vec<BgpSessionStatus> = self
            .speaker
            .status()
            .into_iter()
            .map(|s| BgpSessionStatus {
                address: SocketAddr::new(
                    s.address,
                    self.ports.get(&s.name).copied().unwrap_or(179),
                )
                .to_string(),
                state: s.state,
                established_seconds: s
                    .established_since
                    .and_then(|since| now.duration_since(since).ok())
                    .map(|d| d.as_secs()),
                prefixes_announced: s.prefixes_announced as u64,
                prefixes_pending: s.prefixes_pending as u64,
                updates_sent: s.updates_sent,
                messages: (&s.messages).into(),
                vrf: self.vrfs.get(&s.name).cloned().flatten(),
                // A family withheld on an up session (no IPv6 next hop on that link)
                // is shown where operators look for what is wrong with the session.
                last_error: s
                    .last_error
                    .clone()
                    .or_else(|| s.withheld.map(|w| w.to_string())),
                peer: s.name,
            })
            .collect();
        let bfd_sessions = match &self.bfd {
            Some(bfd) => {
                bfd.status(|name| self.vrfs.get(name).cloned().flatten())
                    .await
            }
            None => Vec::new(),
        };
        let kernel_arp = self.layer2.as_ref().map(|r| r.stats().kernel_arp);
        let l2 = match &self.layer2 {
            Some(responder) => {
                let stats = responder.stats();
                self.l2
                    .iter()
                    .map(|(ip, l2)| {
                        let counters = stats.per_ip.get(ip);
                        L2Status {
                            ip: Some(*ip),
                            interfaces: match &l2.interfaces {
                                oxlb_announce::Interfaces::All => Vec::new(),
                                oxlb_announce::Interfaces::Only(names) => {
                                    names.iter().cloned().collect()
                                }
                            },
                            services: l2.services.iter().map(ToString::to_string).collect(),
                            requests_received: counters.map_or(0, |c| c.requests_received),
                            responses_sent: counters.map_or(0, |c| c.responses_sent),
                            gratuitous_sent: counters.map_or(0, |c| c.gratuitous_sent),
                        }
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let new = ProtocolStatus {
            bgp_sessions,
            bfd_sessions,
            l2,
            kernel_arp,
        };
        self.status.send_if_modified(|current| {
            if *current == new {
                false
            } else {
                *current = new;
                true
            }
        });
    }

    async fn stop(self) {
        let mode = if self.graceful {
            info!("stopping: graceful restart, routers keep our routes until we are back");
            oxlb_bgp::ShutdownMode::GracefulRestart
        } else {
            info!("stopping: withdrawing every route");
            oxlb_bgp::ShutdownMode::Withdraw {
                message: format!("oxlb speaker on {} is stopping", self.options.node_name),
            }
        };
        // Layer 2 first: another node takes the IPs over while BGP winds down.
        drop(self.layer2);
        self.speaker.shutdown(mode).await;
    }
}

async fn recv(receiver: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match receiver {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
