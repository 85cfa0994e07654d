//! Graceful drain of one node (`oxlb drain`): the node withdraws every BGP route while
//! the service IPs stay on the host, so connections already on this node finish while
//! the routers send new ones elsewhere.
//!
//! Layer 2 IPs are kept: the other speakers elect an owner from what they know, and a
//! drain requested on one host is not known to them, so giving the IPs up here would
//! leave them unanswered. (In Kubernetes a cordon is seen by every speaker and hands
//! Layer 2 over through the election: `Skip::NodeCordoned`.)
//!
//! Pure: the shell feeds requests and session counters in and applies the result.

use std::time::{Duration, Instant};

use crate::Announcements;

/// Where the node is in a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrainState {
    /// Announcing normally.
    #[default]
    Active,
    /// Withdrawn; waiting until every session has sent the withdrawals.
    Draining { since: Instant },
    /// Every session has no route left: the routers were told.
    Drained { since: Instant, took: Duration },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRoutes {
    pub established: bool,
    /// Prefixes in the session's Adj-RIB-Out (sent and not withdrawn).
    pub announced: usize,
    /// Prefixes desired but not yet sent.
    pub pending: usize,
}

impl DrainState {
    pub fn is_drained(&self) -> bool {
        !matches!(self, DrainState::Active)
    }

    /// `drain = true` from `oxlb drain`, `false` from `oxlb undrain`. A second drain
    /// keeps the first one's start time.
    pub fn request(&mut self, drain: bool, now: Instant) -> DrainChange {
        match (drain, *self) {
            (true, DrainState::Active) => {
                *self = DrainState::Draining { since: now };
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

    /// Moves Draining to Drained once no established session holds a route any more
    /// (BGP has no acknowledgement of an UPDATE: an empty Adj-RIB-Out on a live session
    /// means the withdrawals were written to the peer; a session that is down has no
    /// routes at the peer either, RFC 4271 §8.2.2). Returns whether it changed.
    pub fn observe(&mut self, sessions: &[SessionRoutes], now: Instant) -> bool {
        let DrainState::Draining { since } = *self else {
            return false;
        };
        let clean = sessions
            .iter()
            .all(|s| !s.established || (s.announced == 0 && s.pending == 0));
        if clean {
            *self = DrainState::Drained {
                since,
                took: now.saturating_duration_since(since),
            };
        }
        clean
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
        assert_eq!(state, DrainState::Draining { since: t0 });
        assert_eq!(state.request(false, later), DrainChange::Undrained);
        assert_eq!(state, DrainState::Active);
    }

    #[test]
    fn drained_once_every_live_session_has_no_route() {
        let t0 = Instant::now();
        let mut state = DrainState::default();
        state.request(true, t0);
        let busy = SessionRoutes {
            established: true,
            announced: 2,
            pending: 0,
        };
        let down = SessionRoutes {
            established: false,
            announced: 5,
            pending: 5,
        };
        assert!(!state.observe(&[busy, down], t0));
        let clean = SessionRoutes {
            announced: 0,
            ..busy
        };
        let t1 = t0 + Duration::from_millis(40);
        assert!(state.observe(&[clean, down], t1));
        assert_eq!(
            state,
            DrainState::Drained {
                since: t0,
                took: Duration::from_millis(40)
            }
        );
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
        }
        .withhold(&mut a);
        assert!(a.bgp["router"].is_empty());
        assert_eq!(a.l2, before.l2);
    }
}
