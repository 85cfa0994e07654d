//! The one protocol driver of a node, shared by `oxlb run` and `oxlb speaker`: the
//! shells hand it the desired state (the config in force, this node's announcements,
//! this node's identity) and it drives the BGP speaker, the Layer 2 responder and BFD,
//! reports their state, and stops cleanly.
//!
//! The shape is MetalLB's speaker `Protocol` interface (one `SetBalancer` fan-out to the
//! BGP and Layer 2 controllers), with the fan-out in one place instead of per protocol:
//! the BGP sessions and the BFD sessions are derived from the same desired sessions, so
//! they cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use oxlb_announce::{Announcements, Interfaces, L2Announcement};
use oxlb_config::Config;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::bfd::{self, BfdSessions};
use crate::bgp::{self, DesiredSessions, local_address_toward};
use crate::node_info::NodeInfo;
use crate::status::{BfdSessionStatus, BgpSessionStatus, L2Status};

#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Who is stopping, as the Cease message peers log says it (`"oxlb on NODE"`).
    pub who: String,
    /// Accept BGP connections here too; `None`: connect only (MetalLB's speaker).
    pub bgp_listen: Option<SocketAddr>,
    /// The Layer 2 responder's settings (excluded interfaces, the ARP sysctl policy).
    pub layer2: oxlb_l2::responder::Settings,
    /// `--second-chance`: hand connections the router re-hashed to the node that has
    /// them.
    pub second_chance: crate::second_chance::Options,
}

/// The protocols' state for the node's report and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolStatus {
    pub bgp_sessions: Vec<BgpSessionStatus>,
    pub bfd_sessions: Vec<BfdSessionStatus>,
    /// Per IP this node answers for by Layer 2: the counters
    /// (`metallb_layer2_requests_received`...), zero while no responder runs.
    pub l2: Vec<L2Status>,
    /// The ARP sysctls of every interface the responder serves, as found or set;
    /// `None`: no responder (no Layer 2 configured, or it could not start).
    pub kernel_arp: Option<crate::host_check::KernelArp>,
    pub second_chance: crate::second_chance::State,
}

/// How a node stops (chosen in [`StopMode::choose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// A session in force asks for graceful restart (RFC 4724): close the connections
    /// without a NOTIFICATION so the routers keep our routes until we are back. The
    /// service IPs stay on the host meanwhile: traffic still comes here.
    GracefulRestart,
    /// Cease / Administrative Shutdown (RFC 4486 §2) to every peer: the routes go now.
    Withdraw,
}

impl StopMode {
    /// Graceful restart when any session this node runs asks for it, else withdrawal.
    pub fn choose(sessions: &DesiredSessions) -> StopMode {
        if sessions.values().any(|(s, _)| s.graceful_restart) {
            StopMode::GracefulRestart
        } else {
            StopMode::Withdraw
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::GracefulRestart => "graceful-restart",
            StopMode::Withdraw => "withdraw",
        }
    }
}

/// The protocols of one node. Owned by one task; every method is quick except
/// [`Driver::apply`] and [`Driver::status`] (they talk to the BFD task).
pub struct Driver {
    options: DriverOptions,
    speaker: oxlb_bgp::Speaker,
    responder: Option<oxlb_l2::Responder>,
    bfd: Option<BfdSessions>,
    bfd_events: Option<mpsc::UnboundedReceiver<bfd::BfdEvent>>,
    /// The sessions in force: ports for the `peer` label, the stop choice.
    sessions: BTreeMap<String, SessionFacts>,
    /// Per BGPPeer name, its `vrf` (the metrics' `vrf` label).
    vrfs: BTreeMap<String, Option<String>>,
    /// The BGPPeers given no session at the last apply, logged once per change (apply
    /// runs on every change of anything).
    skipped_sessions: Vec<crate::bgp::SessionSkip>,
    /// The Layer 2 announcements in force (the per-IP rows).
    l2: BTreeMap<IpAddr, L2Announcement>,
    stop_mode: StopMode,
    /// Router IDs derived for BGPPeers that give none (logged once each).
    router_ids: bgp::RouterIds,
    /// Weighted ECMP: at most one weight change per prefix per second (issue 19), the
    /// same for both shells.
    weights: oxlb_announce::WeightDamper,
    /// When a held weight change is due ([`Driver::weight_due`]).
    weight_wake: Option<tokio::time::Instant>,
    second_chance: crate::second_chance::SecondChance,
}

#[derive(Debug, Clone, Copy)]
struct SessionFacts {
    port: u16,
}

impl Driver {
    /// Starts the BGP speaker (no session until the first [`Driver::apply`]). Must be
    /// called inside a tokio runtime.
    pub async fn start(options: DriverOptions) -> std::io::Result<Driver> {
        let speaker = oxlb_bgp::Speaker::start(oxlb_bgp::SpeakerOptions {
            listen: options.bgp_listen,
            on_event: Some(std::sync::Arc::new(|peer: &str, message: &str| {
                info!(peer, "{message}");
            })),
        })
        .await?;
        Ok(Driver {
            second_chance: crate::second_chance::SecondChance::new(options.second_chance),
            options,
            speaker,
            responder: None,
            bfd: None,
            bfd_events: None,
            sessions: BTreeMap::new(),
            vrfs: BTreeMap::new(),
            skipped_sessions: Vec::new(),
            l2: BTreeMap::new(),
            stop_mode: StopMode::Withdraw,
            router_ids: bgp::RouterIds::default(),
            weights: oxlb_announce::WeightDamper::default(),
            weight_wake: None,
        })
    }

    /// Starts the Layer 2 responder the first time the config has an L2Advertisement
    /// (nothing runs for BGP-only configs). Returns whether a responder runs: a shell
    /// that elects Layer 2 owners joins the election only then.
    pub fn start_layer2_if_wanted(&mut self, config: &Config) -> bool {
        if self.responder.is_none() && !config.l2_advertisements.is_empty() {
            match oxlb_l2::Responder::start(self.options.layer2.clone()) {
                Ok(responder) => self.responder = Some(responder),
                Err(e) => error!("cannot start the Layer 2 responder (needs CAP_NET_RAW): {e}"),
            }
        }
        self.responder.is_some()
    }

    /// Makes the desired state true: Layer 2 ownership, BGP sessions and their routes,
    /// BFD sessions. Sessions whose settings did not change are kept; only the route
    /// difference is sent. Weight changes are damped: one held back is applied when
    /// [`Driver::weight_due`] resolves and the shell calls `apply` again.
    pub async fn apply(&mut self, config: &Config, announcements: &Announcements, node: &NodeInfo) {
        self.start_layer2_if_wanted(config);
        self.second_chance.apply(config);
        if let Some(responder) = &self.responder {
            responder.set_owned(oxlb_l2::owned_from(announcements));
        }
        self.l2 = announcements.l2.clone();
        let mut damped = announcements.clone();
        self.weight_wake = crate::weights::damp(&mut self.weights, &mut damped);
        // A peer reachable only inside a VRF: our address toward it there (router ID).
        let vrf_names: BTreeSet<&str> = config
            .peers
            .values()
            .filter_map(|p| p.vrf.as_deref())
            .collect();
        let toward = |ip: &IpAddr| {
            local_address_toward(ip).or_else(|| {
                vrf_names
                    .iter()
                    .find_map(|vrf| bgp::local_address_toward_in(ip, Some(vrf)))
            })
        };
        let (sessions, skipped) = self.router_ids.desired_sessions(
            config,
            &node.labels,
            &damped,
            node.internal_ipv4,
            toward,
        );
        if skipped != self.skipped_sessions {
            for skip in skipped
                .iter()
                .filter(|s| !self.skipped_sessions.contains(s))
            {
                warn!("{skip}");
            }
            self.skipped_sessions = skipped;
        }
        let bfd_wanted = bfd::desired(
            config,
            sessions
                .iter()
                // BFD needs the peer's address: an unnumbered peer's is found later.
                .filter(|(_, (s, _))| s.interface.is_none())
                .map(|(name, (s, _))| (name.clone(), s.peer_address, s.source_address)),
            bgp::local_address_toward_in,
            |vrf| oxlb_bgp::vrf::resolve(vrf).map_err(|e| e.to_string()),
        );
        self.stop_mode = StopMode::choose(&sessions);
        self.vrfs = config
            .peers
            .iter()
            .map(|(name, p)| (name.clone(), p.vrf.clone()))
            .collect();
        self.sessions = sessions
            .iter()
            .map(|(name, (s, _))| (name.clone(), SessionFacts { port: s.peer_port }))
            .collect();
        self.speaker.set_desired(sessions);
        let settled = bfd::settled(&self.speaker.status(), SystemTime::now());
        bfd::start_and_apply(&mut self.bfd, &mut self.bfd_events, bfd_wanted, &settled).await;
    }

    /// What changes on the host without a new desired state: the second chance's
    /// links. The shells call it with their one-second refresh.
    pub fn recheck_host(&mut self) {
        self.second_chance.recheck();
    }

    /// Waits for a BFD session to go Down for a failed path and closes its BGP session
    /// at once (RFC 5882 §4.3: BFD Down is a fast failure signal for the client
    /// protocol); meanwhile starts BFD sessions whose BGP session has settled (see
    /// [`bfd::SETTLE`]). Never resolves while no BFD runs. Cancel-safe (for `select!`):
    /// every await is a channel receive or a sleep, the work after them is synchronous.
    pub async fn bfd_down(&mut self) {
        loop {
            let waiting = self.bfd.as_ref().is_some_and(BfdSessions::is_waiting);
            let event = tokio::select! {
                event = async {
                    match &mut self.bfd_events {
                        Some(receiver) => receiver.recv().await,
                        None => std::future::pending().await,
                    }
                } => match event {
                    Some(event) => Some(event),
                    None => std::future::pending().await,
                },
                () = tokio::time::sleep(bfd::SETTLE_CHECK), if waiting => None,
            };
            match event {
                Some(bfd::BfdEvent::PathFailed(peer)) => {
                    warn!(
                        peer,
                        "BFD session went Down: closing the BGP session at once"
                    );
                    self.speaker.reset_peer(&peer, "BFD session went Down");
                    return;
                }
                Some(bfd::BfdEvent::StartFailed(peer, key)) => {
                    if let Some(bfd) = &mut self.bfd {
                        bfd.forget(&peer, key);
                    }
                }
                None => {
                    let settled = bfd::settled(&self.speaker.status(), SystemTime::now());
                    if let Some(bfd) = &mut self.bfd {
                        bfd.start_settled(&settled);
                    }
                }
            }
        }
    }

    /// When a weight change held back by the damping is due (`None`: nothing held): the
    /// shell then calls [`Driver::apply`] again with its latest desired state (wait with
    /// [`crate::weights::due`]).
    pub fn weight_wake(&self) -> Option<tokio::time::Instant> {
        self.weight_wake
    }

    /// Asks the peers of these sessions to confirm that they processed every UPDATE
    /// sent so far (RFC 7313 route refresh; see [`oxlb_bgp::Speaker::confirm`]).
    pub fn confirm(&self, peers: &[String]) {
        for peer in peers {
            self.speaker.confirm(peer);
        }
    }

    /// The protocols' state now.
    pub async fn status(&self) -> ProtocolStatus {
        let now = SystemTime::now();
        let bgp_sessions = self
            .speaker
            .status()
            .into_iter()
            .map(|s| self.session_row(s, now))
            .collect();
        let bfd_sessions = match &self.bfd {
            Some(bfd) => bfd.status(|name| self.vrf(name)).await,
            None => Vec::new(),
        };
        let stats = self.responder.as_ref().map(oxlb_l2::Responder::stats);
        let l2 = self
            .l2
            .iter()
            .map(|(ip, l2)| {
                let counters = stats.as_ref().and_then(|s| s.per_ip.get(ip));
                L2Status {
                    ip: Some(*ip),
                    interfaces: match &l2.interfaces {
                        Interfaces::All => Vec::new(),
                        Interfaces::Only(names) => names.iter().cloned().collect(),
                    },
                    services: l2.services.iter().map(ToString::to_string).collect(),
                    requests_received: counters.map_or(0, |c| c.requests_received),
                    responses_sent: counters.map_or(0, |c| c.responses_sent),
                    gratuitous_sent: counters.map_or(0, |c| c.gratuitous_sent),
                }
            })
            .collect();
        ProtocolStatus {
            bgp_sessions,
            bfd_sessions,
            l2,
            kernel_arp: stats.map(|s| s.kernel_arp),
            second_chance: self.second_chance.state().clone(),
        }
    }

    fn session_row(&self, s: oxlb_bgp::speaker::PeerStatus, now: SystemTime) -> BgpSessionStatus {
        let port = self.sessions.get(&s.name).map_or(179, |f| f.port);
        BgpSessionStatus {
            address: match &s.interface {
                // Unnumbered: the router's link-local address (`::` until found) on its
                // interface, the scope written by name.
                Some(interface) => format!("[{}%{interface}]:{port}", s.address),
                None => SocketAddr::new(s.address, port).to_string(),
            },
            state: s.state,
            established_seconds: s
                .established_since
                .and_then(|since| now.duration_since(since).ok())
                .map(|d| d.as_secs()),
            prefixes_announced: s.prefixes_announced as u64,
            prefixes_pending: s.prefixes_pending as u64,
            updates_sent: s.updates_sent,
            messages: (&s.messages).into(),
            vrf: self.vrf(&s.name),
            enhanced_route_refresh: s.enhanced_route_refresh,
            confirm_requested: s.confirm_requested,
            confirmed: s.confirmed,
            // A family withheld on an up session (no IPv6 next hop on that link) is
            // shown where operators look for what is wrong with the session.
            last_error: s
                .last_error
                .clone()
                .or_else(|| s.withheld.map(|w| w.to_string())),
            peer: s.name,
        }
    }

    fn vrf(&self, peer: &str) -> Option<String> {
        self.vrfs.get(peer).cloned().flatten()
    }

    /// How [`Driver::stop`] would stop now.
    pub fn stop_mode(&self) -> StopMode {
        self.stop_mode
    }

    /// Stops cleanly: Layer 2 first (another node takes the IPs over while BGP winds
    /// down), then every BGP session as [`StopMode::choose`] decided. Returns the choice
    /// (a shell keeps the service IPs on the host under graceful restart).
    pub async fn stop(self) -> StopMode {
        let mode = self.stop_mode;
        self.stop_as(mode).await
    }

    /// [`Driver::stop`] with the mode the shell chose (its stop plan: a drained or
    /// cordoned node withdraws even where graceful restart is configured).
    pub async fn stop_as(self, mode: StopMode) -> StopMode {
        let shutdown = match mode {
            StopMode::GracefulRestart => {
                info!(
                    mode = mode.as_str(),
                    "stopping: graceful restart, routers keep our routes until we are back"
                );
                oxlb_bgp::ShutdownMode::GracefulRestart
            }
            StopMode::Withdraw => {
                info!(mode = mode.as_str(), "stopping: withdrawing every route");
                oxlb_bgp::ShutdownMode::Withdraw {
                    message: format!("{} is stopping", self.options.who),
                }
            }
        };
        drop(self.responder);
        self.speaker.shutdown(shutdown).await;
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(
        name: &str,
        graceful_restart: bool,
    ) -> (
        String,
        (
            oxlb_bgp::PeerSettings,
            BTreeMap<ipnet::IpNet, oxlb_bgp::RouteAttributes>,
        ),
    ) {
        let mut settings = oxlb_bgp::PeerSettings::new(
            name.to_string(),
            64500,
            oxlb_bgp::PeerAsn::Fixed(64501),
            "192.0.2.1".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
        );
        settings.graceful_restart = graceful_restart;
        (name.to_string(), (settings, BTreeMap::new()))
    }

    #[test]
    fn graceful_restart_when_any_session_in_force_asks_for_it() {
        assert_eq!(
            StopMode::choose(&DesiredSessions::new()),
            StopMode::Withdraw
        );
        let plain = DesiredSessions::from([session("a", false)]);
        assert_eq!(StopMode::choose(&plain), StopMode::Withdraw);
        let mixed = DesiredSessions::from([session("a", false), session("b", true)]);
        assert_eq!(StopMode::choose(&mixed), StopMode::GracefulRestart);
    }
}
