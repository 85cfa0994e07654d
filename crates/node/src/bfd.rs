//! BFD for `oxlb run` and `oxlb speaker` (through the node driver): one BFD session
//! per BGP session whose BGPPeer names a BFDProfile; when a BFD session goes from Up to
//! Down because the path failed, the BGP session is torn down at once (and
//! re-established as usual when the peer is back). A BFD session starts once its BGP
//! session has been Established for [`SETTLE`], and one that never came Up does not
//! hold BGP back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use oxlb_bfd::{BfdHandle, DownCause, PeerKey, Profile, Report, SessionState};
use oxlb_config::Config;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub struct BfdSessions {
    handle: BfdHandle,
    /// Per BGPPeer name: the BFD session key and profile asked of the BFD task.
    sessions: BTreeMap<String, (PeerKey, Profile)>,
    /// Wanted sessions whose BGP session has not [`SETTLE`]d yet.
    waiting: BTreeMap<String, (PeerKey, Profile)>,
    events_tx: mpsc::UnboundedSender<BfdEvent>,
}

/// A session that was Up is not: passes the BGPPeer's name on to close its BGP session
/// when the path failed, logs why it stays otherwise (RFC 5882 §3.2: a neighbour's
/// AdminDown is not a failure; nor is a neighbour's Down whose diagnostic names no
/// failed path: it reset its session, as FRR does when the BGP session comes up).
/// Returns false when nobody listens any more.
fn report_down(peer: &str, report: Report, events: &mpsc::UnboundedSender<BfdEvent>) -> bool {
    match report.down_cause {
        Some(cause) if !cause.is_path_failure() => {
            info!(
                peer,
                cause = cause.as_str(),
                "BFD session went Down without a path failure: the BGP session stays"
            );
            true
        }
        cause => {
            warn!(
                peer,
                cause = cause.map_or("unknown", DownCause::as_str),
                "BFD session went Down: the path failed"
            );
            events.send(BfdEvent::PathFailed(peer.to_string())).is_ok()
        }
    }
}

/// What BFD sessions should exist: per BGPPeer name, (key, profile).
/// `local_toward(peer, vrf)`: our address toward `peer` in `vrf` (`None`: the default
/// VRF); `vrf_index(name)`: the VRF device's index, or why it cannot be used. A session
/// in a VRF is bound to the VRF device (`PeerKey::interface`), never run outside it.
pub fn desired(
    config: &Config,
    peers: impl Iterator<Item = (String, IpAddr, Option<IpAddr>)>,
    local_toward: impl Fn(&IpAddr, Option<&str>) -> Option<IpAddr>,
    vrf_index: impl Fn(&str) -> Result<u32, String>,
) -> BTreeMap<String, (PeerKey, Profile)> {
    let mut out = BTreeMap::new();
    for (name, address, source) in peers {
        let Some(peer) = config.peers.get(&name) else {
            continue;
        };
        let Some(profile) = peer
            .bfd_profile
            .as_ref()
            .and_then(|p| config.bfd_profiles.get(p))
        else {
            continue;
        };
        let vrf = peer.vrf.as_deref().filter(|v| !v.is_empty());
        let interface = match vrf.map(&vrf_index) {
            None => None,
            Some(Ok(index)) => Some(index),
            Some(Err(e)) => {
                warn!(peer = name, "BFD: {e}");
                continue;
            }
        };
        let Some(local) = source.or_else(|| local_toward(&address, vrf)) else {
            warn!(
                peer = name,
                "BFD: no local address toward {address}; set sourceAddress"
            );
            continue;
        };
        let key = PeerKey {
            peer: address,
            local,
            multihop: peer.ebgp_multihop,
            interface,
        };
        let profile = Profile {
            name: profile.name.clone(),
            receive_interval: Duration::from_millis(u64::from(profile.receive_interval_ms)),
            transmit_interval: Duration::from_millis(u64::from(profile.transmit_interval_ms)),
            detect_multiplier: profile.detect_multiplier,
            minimum_ttl: profile.minimum_ttl,
            passive: profile.passive_mode,
            // The Echo function (RFC 5880 §6.4) runs on single-hop sessions (IPv4 and
            // IPv6 but link-local); on the others the BFD task leaves it inactive and
            // status says why (and `oxlb check` warned of multihop / link-local peers).
            echo: profile.echo_mode,
            echo_interval: Duration::from_millis(u64::from(profile.echo_interval_ms)),
        };
        out.insert(name, (key, profile));
    }
    out
}

/// How long a BGP session must have been Established before its BFD session starts.
/// FRR registers a neighbour's BFD session before BGP is up, without a source address,
/// and replaces it when BGP comes up and the address is known; if that first session
/// was Up by then, FRR's bgpd reads the replacement as BFD Down and resets the BGP
/// session it just brought up (Cease, subcode 10: seen with FRR 8.4 in
/// `tests/bfd_e2e.rs`). Starting ours once BGP has settled means FRR's first session
/// never comes Up. BFD guards an Established session, so nothing is lost: before that
/// there is no route to withdraw.
pub const SETTLE: Duration = Duration::from_secs(1);

/// How often sessions waiting for [`SETTLE`] are looked at.
pub const SETTLE_CHECK: Duration = Duration::from_millis(250);

/// The BGPPeers whose session has been Established for at least [`SETTLE`] at `now`.
pub fn settled(sessions: &[oxlb_bgp::speaker::PeerStatus], now: SystemTime) -> BTreeSet<String> {
    sessions
        .iter()
        .filter(|s| s.state == oxlb_bgp::session::State::Established)
        .filter(|s| {
            s.established_since
                .and_then(|since| now.duration_since(since).ok())
                .is_some_and(|up| up >= SETTLE)
        })
        .map(|s| s.name.clone())
        .collect()
}

/// What the BFD side tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BfdEvent {
    /// This BGPPeer's BFD session went from Up to Down because the path failed: close
    /// its BGP session now.
    PathFailed(String),
    /// The BFD task refused this session (e.g. the local address is not configured):
    /// it is asked for again at the next apply.
    StartFailed(String, PeerKey),
}

/// Starts BFD the first time a session is wanted (nothing runs for configs without
/// BFD), then applies `wanted`; `settled`: see [`settled`]. `events` receives what
/// [`BfdEvent`] says.
pub async fn start_and_apply(
    bfd: &mut Option<BfdSessions>,
    events: &mut Option<mpsc::UnboundedReceiver<BfdEvent>>,
    wanted: BTreeMap<String, (PeerKey, Profile)>,
    settled: &BTreeSet<String>,
) {
    if !wanted.is_empty() && bfd.is_none() {
        match BfdSessions::start() {
            Ok((sessions, receiver)) => {
                *bfd = Some(sessions);
                *events = Some(receiver);
            }
            Err(e) => error!("cannot start BFD: {e}"),
        }
    }
    if let Some(sessions) = bfd {
        sessions.apply(wanted, settled).await;
    }
}

impl BfdSessions {
    /// Starts BFD; the receiver yields what [`BfdEvent`] says.
    pub fn start() -> Result<(BfdSessions, mpsc::UnboundedReceiver<BfdEvent>), String> {
        let handle = oxlb_bfd::Bfd::start().map_err(|e| e.to_string())?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Ok((
            BfdSessions {
                handle,
                sessions: BTreeMap::new(),
                waiting: BTreeMap::new(),
                events_tx,
            },
            events_rx,
        ))
    }

    /// Whether a wanted session waits for its BGP session to settle.
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    pub async fn apply(
        &mut self,
        desired: BTreeMap<String, (PeerKey, Profile)>,
        settled: &BTreeSet<String>,
    ) {
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(name, (key, _))| desired.get(*name).is_none_or(|(k, _)| k != key))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some((key, _)) = self.sessions.remove(&name) {
                self.handle.remove_peer(key).await;
            }
        }
        self.waiting.clear();
        for (name, (key, profile)) in desired {
            match self.sessions.get(&name) {
                Some((_, current)) if *current == profile => {}
                Some(_) => match self.handle.update_peer(key, profile.clone()).await {
                    Ok(_) => {
                        self.sessions.insert(name, (key, profile));
                    }
                    Err(e) => error!(peer = name, "BFD: cannot change timers: {e}"),
                },
                None => {
                    self.waiting.insert(name, (key, profile));
                }
            }
        }
        self.start_settled(settled);
    }

    /// Starts the waiting sessions whose BGP session has settled.
    pub fn start_settled(&mut self, settled: &BTreeSet<String>) {
        let due: Vec<String> = self
            .waiting
            .keys()
            .filter(|name| settled.contains(*name))
            .cloned()
            .collect();
        for name in due {
            if let Some((key, profile)) = self.waiting.remove(&name) {
                self.start_session(name, key, profile);
            }
        }
    }

    /// The BFD task refused a session: forget it so the next apply asks again.
    pub fn forget(&mut self, name: &str, key: PeerKey) {
        if self.sessions.get(name).is_some_and(|(k, _)| *k == key) {
            self.sessions.remove(name);
        }
    }

    /// Asks the BFD task for the session now (queued before this returns, so a later
    /// remove is processed after it) and watches it from a task of its own.
    fn start_session(&mut self, name: String, key: PeerKey, profile: Profile) {
        let starting = self.handle.add_peer(key, profile.clone());
        let events = self.events_tx.clone();
        let peer = name.clone();
        tokio::spawn(async move {
            let mut state = match starting.await {
                Ok(state) => state,
                Err(e) => {
                    error!(peer, "BFD: {e}");
                    let _ = events.send(BfdEvent::StartFailed(peer, key));
                    return;
                }
            };
            info!(peer, "BFD session to {} started", key.peer);
            let mut was_up = false;
            while state.changed().await.is_ok() {
                let report = *state.borrow_and_update();
                let up = report.state == SessionState::Up;
                if was_up && !up && !report_down(&peer, report, &events) {
                    return;
                }
                was_up = up;
            }
        });
        self.sessions.insert(name, (key, profile));
    }

    /// Per BGPPeer name: up, and transitions into / out of Up. `vrf_of`: the VRF of a
    /// BGPPeer by name (the metrics' `vrf` label).
    pub async fn status(
        &self,
        vrf_of: impl Fn(&str) -> Option<String>,
    ) -> Vec<crate::status::BfdSessionStatus> {
        let Ok(status) = self.handle.status().await else {
            return vec![];
        };
        self.sessions
            .iter()
            .filter_map(|(name, (key, _))| {
                let s = status.sessions.iter().find(|s| s.key == *key)?;
                Some(crate::status::BfdSessionStatus {
                    // MetalLB labels metallb_bfd_session_up by the peer address.
                    peer: key.peer.to_string(),
                    up: s.state == SessionState::Up,
                    up_transitions: s.up_events,
                    down_transitions: s.down_events,
                    control_packets_in: s.control_packets_in,
                    control_packets_out: s.control_packets_out,
                    vrf: vrf_of(name),
                    echo: s.echo.to_string(),
                    echo_packets_in: s.echo_packets_in,
                    echo_packets_out: s.echo_packets_out,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxlb_bgp::session::State;
    use oxlb_bgp::speaker::PeerStatus;

    /// A BGPPeer in a VRF gets its BFD session bound to the VRF device, with the local
    /// address looked up in that VRF; a VRF that cannot be used gets no BFD session
    /// (never one outside the VRF).
    #[test]
    fn a_vrf_peer_gets_its_bfd_session_inside_the_vrf() {
        let yaml = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\n\
                    metadata: {name: fast, namespace: metallb-system}\nspec: {}\n\
                    ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: red, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, vrf: red, bfdProfile: fast}\n\
                    ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: plain, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2, bfdProfile: fast}\n";
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let config = oxlb_config::build_config(&snapshot).config.unwrap();
        let peers = || {
            vec![
                ("red".to_string(), IpAddr::from([10, 0, 0, 1]), None),
                ("plain".to_string(), IpAddr::from([10, 0, 0, 2]), None),
            ]
            .into_iter()
        };
        // Our address differs per VRF: 10.9.9.9 only inside red.
        let toward = |_: &IpAddr, vrf: Option<&str>| {
            Some(IpAddr::from(if vrf == Some("red") {
                [10, 9, 9, 9]
            } else {
                [10, 0, 0, 5]
            }))
        };
        let wanted = desired(&config, peers(), toward, |_| Ok(7));
        let (red, _) = wanted["red"];
        assert_eq!(red.interface, Some(7));
        assert_eq!(red.local, IpAddr::from([10, 9, 9, 9]));
        let (plain, _) = wanted["plain"];
        assert_eq!(plain.interface, None);
        assert_eq!(plain.local, IpAddr::from([10, 0, 0, 5]));
        let wanted = desired(&config, peers(), toward, |v| {
            Err(format!("VRF {v} does not exist"))
        });
        assert!(!wanted.contains_key("red"));
        assert!(wanted.contains_key("plain"));
    }

    fn peer(name: &str, state: State, since: Option<SystemTime>) -> PeerStatus {
        let mut status = PeerStatus::idle(name.to_string(), IpAddr::from([10, 0, 0, 1]));
        status.state = state;
        status.established_since = since;
        status
    }

    #[test]
    fn only_sessions_established_for_the_settle_time_are_settled() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let sessions = [
            peer("old", State::Established, Some(now - SETTLE)),
            peer("new", State::Established, Some(now - SETTLE / 2)),
            peer("down", State::Active, Some(now - SETTLE * 10)),
            peer("unknown", State::Established, None),
            peer("future", State::Established, Some(now + SETTLE)),
        ];
        let names: Vec<String> = settled(&sessions, now).into_iter().collect();
        assert_eq!(names, vec!["old".to_string()]);
    }
}
