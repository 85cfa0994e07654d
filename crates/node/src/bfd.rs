//! BFD for `oxlb run` and `oxlb speaker` (through the node driver): one BFD session
//! per BGP session whose BGPPeer names a BFDProfile; when a BFD session goes from Up to Down the BGP session is torn down at
//! once (and re-established as usual when the peer is back). A BFD session that never
//! came Up does not hold BGP back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use oxlb_bfd::{BfdHandle, PeerKey, Profile, SessionState};
use oxlb_config::Config;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub struct BfdSessions {
    handle: BfdHandle,
    /// Per BGPPeer name: the BFD session key and profile in force.
    sessions: BTreeMap<String, (PeerKey, Profile)>,
    down_tx: mpsc::UnboundedSender<String>,
}

/// What BFD sessions should exist: per BGPPeer name, (key, profile).
pub fn desired(
    config: &Config,
    peers: impl Iterator<Item = (String, IpAddr, Option<IpAddr>)>,
    local_toward: impl Fn(&IpAddr) -> Option<IpAddr>,
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
        let Some(local) = source.or_else(|| local_toward(&address)) else {
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
            interface: None,
        };
        let profile = Profile {
            name: profile.name.clone(),
            receive_interval: Duration::from_millis(u64::from(profile.receive_interval_ms)),
            transmit_interval: Duration::from_millis(u64::from(profile.transmit_interval_ms)),
            detect_multiplier: profile.detect_multiplier,
            minimum_ttl: profile.minimum_ttl,
            passive: profile.passive_mode,
            // oxlb implements no Echo function (RFC 5880 §6.4); a profile with echoMode
            // (accepted, as MetalLB accepts it, with a warning) runs asynchronous mode.
            echo: false,
        };
        out.insert(name, (key, profile));
    }
    out
}

/// Starts BFD the first time a session is wanted (nothing runs for configs without
/// BFD), then applies `wanted`. `down` receives the BGPPeer names whose BFD session went
/// Down.
pub async fn start_and_apply(
    bfd: &mut Option<BfdSessions>,
    down: &mut Option<mpsc::UnboundedReceiver<String>>,
    wanted: BTreeMap<String, (PeerKey, Profile)>,
) {
    if !wanted.is_empty() && bfd.is_none() {
        match BfdSessions::start() {
            Ok((sessions, receiver)) => {
                *bfd = Some(sessions);
                *down = Some(receiver);
            }
            Err(e) => error!("cannot start BFD: {e}"),
        }
    }
    if let Some(sessions) = bfd {
        sessions.apply(wanted).await;
    }
}

impl BfdSessions {
    /// Starts BFD; the receiver yields the BGPPeer names whose BFD session went Down.
    pub fn start() -> Result<(BfdSessions, mpsc::UnboundedReceiver<String>), String> {
        let handle = oxlb_bfd::Bfd::start().map_err(|e| e.to_string())?;
        let (down_tx, down_rx) = mpsc::unbounded_channel();
        Ok((
            BfdSessions {
                handle,
                sessions: BTreeMap::new(),
                down_tx,
            },
            down_rx,
        ))
    }

    pub async fn apply(&mut self, desired: BTreeMap<String, (PeerKey, Profile)>) {
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
        for (name, (key, profile)) in desired {
            match self.sessions.get(&name) {
                Some((_, current)) if *current == profile => {}
                Some(_) => match self.handle.update_peer(key, profile.clone()).await {
                    Ok(_) => {
                        self.sessions.insert(name, (key, profile));
                    }
                    Err(e) => error!(peer = name, "BFD: cannot change timers: {e}"),
                },
                None => match self.handle.add_peer(key, profile.clone()).await {
                    Ok(mut state) => {
                        info!(peer = name, "BFD session to {} started", key.peer);
                        let down_tx = self.down_tx.clone();
                        let peer = name.clone();
                        tokio::spawn(async move {
                            let mut was_up = false;
                            while state.changed().await.is_ok() {
                                let up = *state.borrow() == SessionState::Up;
                                if was_up && !up && down_tx.send(peer.clone()).is_err() {
                                    return;
                                }
                                was_up = up;
                            }
                        });
                        self.sessions.insert(name, (key, profile));
                    }
                    Err(e) => error!(peer = name, "BFD: {e}"),
                },
            }
        }
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
                })
            })
            .collect()
    }
}
