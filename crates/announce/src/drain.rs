//! Graceful drain of one node (`oxlb drain`): the node withdraws every BGP route while
//! the service IPs stay on the host, so connections already on this node finish while
//! the routers send new ones elsewhere.
//!
//! Layer 2 IPs move: the drain reaches the other speakers through their health news
//! (a `!drained` flag), and the election leaves a drained node out while another can
//! answer (`Skip::NodeDrained`; in Kubernetes a cordon does the same through
//! `Skip::NodeCordoned`).
//!
//! Pure: the shell feeds requests and session counters in and applies the result.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::Announcements;

/// How long a peer that negotiated Enhanced Route Refresh has to answer the
/// confirmation request before the drain counts its session as written only. Just over
/// the default 90 s hold time: a peer must send some message within the hold time, and
/// FRR 8.4, when it has nothing to re-advertise, sends its EoRR only along with its next
/// message (a keepalive, a third of the hold time: measured 29.7 s with the defaults).
pub const CONFIRM_WAIT: Duration = Duration::from_secs(95);

/// Where the node is in a drain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DrainState {
    /// Announcing normally.
    #[default]
    Active,
    /// Withdrawn; waiting until every session's peer has confirmed (or, where it
    /// cannot, been sent) the withdrawals.
    Draining {
        since: Instant,
        peers: BTreeMap<String, PeerDrain>,
    },
    /// Every session is done ([`PeerDrain::is_done`]): the routers were told.
    Drained {
        since: Instant,
        took: Duration,
        peers: BTreeMap<String, PeerDrain>,
    },
}

/// One BGP session's part in a drain; durations count from the drain request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerDrain {
    /// Withdrawals not all written yet.
    Withdrawing,
    /// Written; a confirmation request went out when the session had sent
    /// `asked_above` of them, so an answer numbered above it is ours.
    Confirming {
        written_after: Duration,
        asked_above: u64,
        asked_at: Instant,
    },
    /// The peer answered our ROUTE-REFRESH request with EoRR (RFC 7313): it processed
    /// the withdrawals before, so it has no path from this node any more.
    Confirmed {
        written_after: Duration,
        confirmed_after: Duration,
    },
    /// Written, but the peer did not negotiate Enhanced Route Refresh: BGP has no other
    /// acknowledgement of an UPDATE, so "written" is all we know.
    WrittenUnconfirmable { written_after: Duration },
    /// Written and asked, but no EoRR within [`CONFIRM_WAIT`].
    WrittenUnanswered { written_after: Duration },
    /// The session is down: the peer dropped our routes with it (RFC 4271 §8.2.2).
    Down,
}

impl PeerDrain {
    /// Nothing more to wait for on this session.
    pub fn is_done(&self) -> bool {
        !matches!(self, PeerDrain::Withdrawing | PeerDrain::Confirming { .. })
    }
}

/// What a drain or undrain request did (a log field; requests are idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainChange {
    Started,
    AlreadyDraining,
    Undrained,
    NotDrained,
}

/// One BGP session as the convergence check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRoutes {
    /// The session's name (the BGPPeer).
    pub peer: String,
    pub established: bool,
    /// Prefixes in the session's Adj-RIB-Out (sent and not withdrawn).
    pub announced: usize,
    /// Prefixes desired but not yet sent.
    pub pending: usize,
    /// Enhanced Route Refresh negotiated (RFC 7313): the peer can confirm.
    pub can_confirm: bool,
    /// Confirmation requests sent on the session so far.
    pub confirm_requested: u64,
    /// The highest request the peer confirmed.
    pub confirmed: u64,
}

/// What [`DrainState::observe`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainStep {
    /// Became Drained just now.
    pub converged: bool,
    /// Sessions whose withdrawals are written: ask their peers to confirm.
    pub confirm: Vec<String>,
}

impl DrainState {
    pub fn is_drained(&self) -> bool {
        !matches!(self, DrainState::Active)
    }

    /// Each session's part (empty when not drained).
    pub fn peers(&self) -> Option<&BTreeMap<String, PeerDrain>> {
        match self {
            DrainState::Active => None,
            DrainState::Draining { peers, .. } | DrainState::Drained { peers, .. } => Some(peers),
        }
    }

    /// `drain = true` from `oxlb drain`, `false` from `oxlb undrain`. A second drain
    /// keeps the first one's start time.
    pub fn request(&mut self, drain: bool, now: Instant) -> DrainChange {
        match (drain, &*self) {
            (true, DrainState::Active) => {
                *self = DrainState::Draining {
                    since: now,
                    peers: BTreeMap::new(),
                };
                DrainChange::Started
            }
            (true, _) => DrainChange::AlreadyDraining,
            (false, DrainState::Active) => DrainChange::NotDrained,
            (false, _) => {
                *self = DrainState::Active;
                DrainChange::Undrained
            }
        }
    }

    /// Moves each session on (withdrawing, then asked to confirm, then confirmed or
    /// written only), and Draining to Drained once every session is done. An empty
    /// Adj-RIB-Out on a live session means the withdrawals were written; BGP has no
    /// acknowledgement of an UPDATE, but a peer with Enhanced Route Refresh answers a
    /// ROUTE-REFRESH request sent after them with EoRR only after processing them
    /// (messages on a session are processed in order; RFC 7313 §4). A session that is
    /// down has no routes at the peer (RFC 4271 §8.2.2).
    pub fn observe(&mut self, sessions: &[SessionRoutes], now: Instant) -> DrainStep {
        let DrainState::Draining { since, peers } = self else {
            return DrainStep::default();
        };
        let since = *since;
        let elapsed = now.saturating_duration_since(since);
        let mut step = DrainStep::default();
        peers.retain(|name, _| sessions.iter().any(|s| s.peer == *name));
        for s in sessions {
            let state = peers
                .entry(s.peer.clone())
                .or_insert(PeerDrain::Withdrawing);
            if state.is_done() {
                continue;
            }
            *state = if !s.established {
                PeerDrain::Down
            } else if s.announced > 0 || s.pending > 0 {
                PeerDrain::Withdrawing
            } else {
                match *state {
                    PeerDrain::Confirming {
                        written_after,
                        asked_above,
                        asked_at,
                    } => {
                        if s.confirmed > asked_above {
                            PeerDrain::Confirmed {
                                written_after,
                                confirmed_after: elapsed,
                            }
                        } else if !s.can_confirm {
                            // Reconnected to a peer without it meanwhile.
                            PeerDrain::WrittenUnconfirmable { written_after }
                        } else if now.saturating_duration_since(asked_at) >= CONFIRM_WAIT {
                            PeerDrain::WrittenUnanswered { written_after }
                        } else {
                            continue;
                        }
                    }
                    _ if s.can_confirm => {
                        step.confirm.push(s.peer.clone());
                        PeerDrain::Confirming {
                            written_after: elapsed,
                            asked_above: s.confirm_requested,
                            asked_at: now,
                        }
                    }
                    _ => PeerDrain::WrittenUnconfirmable {
                        written_after: elapsed,
                    },
                }
            };
        }
        if peers.values().all(PeerDrain::is_done) {
            *self = DrainState::Drained {
                since,
                took: elapsed,
                peers: std::mem::take(peers),
            };
            step.converged = true;
        }
        step
    }

    /// Removes what a drained node must not announce: every BGP route (the sessions
    /// stay up, so the withdrawals go out and the peers keep seeing a live node).
    pub fn withhold(&self, announcements: &mut Announcements) {
        if self.is_drained() {
            for routes in announcements.bgp.values_mut() {
                routes.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{L2Announcement, RouteAttributes};
    use std::collections::BTreeMap;

    #[test]
    fn drain_is_idempotent_and_undrain_restores() {
        let t0 = Instant::now();
        let mut state = DrainState::default();
        assert_eq!(state.request(false, t0), DrainChange::NotDrained);
        assert_eq!(state.request(true, t0), DrainChange::Started);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(state.request(true, later), DrainChange::AlreadyDraining);
        assert_eq!(
            state,
            DrainState::Draining {
                since: t0,
                peers: BTreeMap::new()
            }
        );
        assert_eq!(state.request(false, later), DrainChange::Undrained);
        assert_eq!(state, DrainState::Active);
    }

    fn session(peer: &str, announced: usize, can_confirm: bool) -> SessionRoutes {
        SessionRoutes {
            peer: peer.into(),
            established: true,
            announced,
            pending: 0,
            can_confirm,
            confirm_requested: 0,
            confirmed: 0,
        }
    }

    #[test]
    fn drained_once_every_peer_confirmed_or_cannot() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut state = DrainState::default();
        state.request(true, t0);
        let down = SessionRoutes {
            established: false,
            announced: 5,
            pending: 5,
            ..session("down", 5, true)
        };
        // Withdrawals not written yet anywhere.
        let step = state.observe(
            &[
                session("frr", 2, true),
                session("gobgp", 1, false),
                down.clone(),
            ],
            t0,
        );
        assert_eq!(step, DrainStep::default());
        // Written on both: FRR is asked to confirm, GoBGP cannot.
        let step = state.observe(
            &[
                session("frr", 0, true),
                session("gobgp", 0, false),
                down.clone(),
            ],
            t0 + ms(3),
        );
        assert_eq!(step.confirm, vec!["frr".to_string()]);
        assert!(!step.converged);
        let peers = state.peers().unwrap();
        assert_eq!(
            peers["gobgp"],
            PeerDrain::WrittenUnconfirmable {
                written_after: ms(3)
            }
        );
        assert_eq!(peers["down"], PeerDrain::Down);
        // The request went out (counter 1), not yet answered: no second request.
        let asked = SessionRoutes {
            confirm_requested: 1,
            ..session("frr", 0, true)
        };
        let step = state.observe(&[asked.clone(), session("gobgp", 0, false)], t0 + ms(5));
        assert_eq!(step, DrainStep::default());
        // EoRR came: confirmed, and the drain has converged.
        let answered = SessionRoutes {
            confirmed: 1,
            ..asked
        };
        let step = state.observe(&[answered, session("gobgp", 0, false)], t0 + ms(9));
        assert!(step.converged);
        let DrainState::Drained { took, peers, .. } = &state else {
            panic!("{state:?}")
        };
        assert_eq!(*took, ms(9));
        assert_eq!(
            peers["frr"],
            PeerDrain::Confirmed {
                written_after: ms(3),
                confirmed_after: ms(9)
            }
        );
        // The session that went away is forgotten.
        assert!(!peers.contains_key("down"));
    }

    #[test]
    fn an_earlier_answer_does_not_confirm_and_silence_times_out() {
        let t0 = Instant::now();
        let mut state = DrainState::default();
        state.request(true, t0);
        // The session had been asked (and answered) twice before this drain.
        let before = SessionRoutes {
            confirm_requested: 2,
            confirmed: 2,
            ..session("bird", 0, true)
        };
        let step = state.observe(std::slice::from_ref(&before), t0);
        assert_eq!(step.confirm, vec!["bird".to_string()]);
        // Still 2 confirmed: not ours.
        let step = state.observe(std::slice::from_ref(&before), t0 + CONFIRM_WAIT / 2);
        assert!(!step.converged);
        let step = state.observe(&[before], t0 + CONFIRM_WAIT);
        assert!(step.converged);
        assert_eq!(
            state.peers().unwrap()["bird"],
            PeerDrain::WrittenUnanswered {
                written_after: Duration::ZERO
            }
        );
    }

    #[test]
    fn no_session_at_all_is_drained_at_once() {
        let t0 = Instant::now();
        let mut state = DrainState::default();
        state.request(true, t0);
        assert!(state.observe(&[], t0).converged);
        // Observing a converged drain changes nothing.
        assert_eq!(state.observe(&[], t0), DrainStep::default());
    }

    #[test]
    fn a_drained_node_withholds_bgp_routes_but_keeps_layer2_ips() {
        let mut a = Announcements::default();
        a.bgp.insert(
            "router".into(),
            BTreeMap::from([("10.0.0.1/32".parse().unwrap(), RouteAttributes::default())]),
        );
        a.l2.insert("10.0.0.2".parse().unwrap(), L2Announcement::default());
        let before = a.clone();
        DrainState::Active.withhold(&mut a);
        assert_eq!(a, before);
        DrainState::Draining {
            since: Instant::now(),
            peers: BTreeMap::new(),
        }
        .withhold(&mut a);
        assert!(a.bgp["router"].is_empty());
        assert_eq!(a.l2, before.l2);
    }
}
