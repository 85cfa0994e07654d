//! How a node leaves its peers when told to stop (SIGTERM), the one decision for
//! `oxlb run` and `oxlb speaker` (issue 19). Pure: the shells say whether the node is
//! going down and what the sessions hold, and carry the plan out.
//!
//! Going down or restarting, told apart by what the operator did before the signal:
//!
//! - `oxlb run`: the host was drained (`oxlb drain`), or its Node object in the files is
//!   cordoned (`spec.unschedulable`).
//! - Kubernetes: the Node is cordoned. `kubectl drain` cordons first and a node being
//!   shut down or removed is drained first; a DaemonSet rolling update (an upgrade of
//!   oxlb) or a speaker Pod deleted by hand leaves the Node schedulable. So a SIGTERM on
//!   a cordoned Node is the node going down; on a schedulable one, a restart.
//!
//! Anything else is taken as a restart.

use std::time::Duration;

use crate::driver::StopMode;
use crate::status::{BgpSessionStatus, BgpState};

/// Why the node stops, as the shell knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Going {
    /// Nothing says the node goes away: an upgrade, a restart of the process.
    Restart,
    /// Drained or cordoned: nobody comes back soon. `routes_withdrawn`: no established
    /// session holds a route any more (the drain or the cordon already withdrew them).
    Down { routes_withdrawn: bool },
}

/// How a node that was told to stop leaves its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPlan {
    /// Withdraw every route with UPDATEs while the sessions and the service IPs stay,
    /// wait `delay` (routers converge, open connections finish), then Cease (RFC 4486
    /// §4, Administrative Shutdown; RFC 8203 message) and drop the service IPs.
    WithdrawThenCease { delay: Duration },
    /// A restart: close without NOTIFICATION where graceful restart was negotiated so
    /// the routers keep the routes as stale until we are back (RFC 4724 §4.1); the
    /// service IPs stay.
    GracefulRestart,
}

impl StopPlan {
    /// How the driver closes the sessions at the end of the plan.
    pub fn mode(self) -> StopMode {
        match self {
            StopPlan::GracefulRestart => StopMode::GracefulRestart,
            StopPlan::WithdrawThenCease { .. } => StopMode::Withdraw,
        }
    }

    /// The time to keep the sessions up after withdrawing (zero: close at once).
    pub fn delay(self) -> Duration {
        match self {
            StopPlan::GracefulRestart => Duration::ZERO,
            StopPlan::WithdrawThenCease { delay } => delay,
        }
    }
}

/// The stop plan. Going down: the routes go first and graceful restart is not used
/// (nobody comes back soon); with the routes already withdrawn there is nothing to wait
/// for, so the sessions close at once with a Cease. A restart: graceful restart where a
/// session in force has it configured (`mode` = the driver's [`StopMode::choose`]),
/// else withdraw and close after `delay` (0 by default: MetalLB's immediate Cease).
pub fn stop_plan(going: Going, mode: StopMode, delay: Duration) -> StopPlan {
    match (going, mode) {
        (
            Going::Down {
                routes_withdrawn: true,
            },
            _,
        ) => StopPlan::WithdrawThenCease {
            delay: Duration::ZERO,
        },
        (
            Going::Down {
                routes_withdrawn: false,
            },
            _,
        ) => StopPlan::WithdrawThenCease { delay },
        (Going::Restart, StopMode::GracefulRestart) => StopPlan::GracefulRestart,
        (Going::Restart, StopMode::Withdraw) => StopPlan::WithdrawThenCease { delay },
    }
}

/// Whether no established session holds a route (sent or pending): what a peer has of
/// this node is already withdrawn (a session that is down has no routes at the peer,
/// RFC 4271 §8.2.2).
pub fn routes_withdrawn(sessions: &[BgpSessionStatus]) -> bool {
    sessions.iter().all(|s| {
        s.state != BgpState::Established || (s.prefixes_announced == 0 && s.prefixes_pending == 0)
    })
}

/// [`Going`] from what the shell knows: `going_down` (drained or cordoned) and the
/// sessions' state now.
pub fn going(going_down: bool, sessions: &[BgpSessionStatus]) -> Going {
    if going_down {
        Going::Down {
            routes_withdrawn: routes_withdrawn(sessions),
        }
    } else {
        Going::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(state: BgpState, announced: u64, pending: u64) -> BgpSessionStatus {
        BgpSessionStatus {
            state,
            prefixes_announced: announced,
            prefixes_pending: pending,
            ..BgpSessionStatus::default()
        }
    }

    #[test]
    fn a_node_going_down_withdraws_first_and_a_restart_keeps_routes_by_graceful_restart() {
        let delay = Duration::from_secs(5);
        use StopMode::{GracefulRestart as Gr, Withdraw};
        // An upgrade of a schedulable node with graceful restart configured.
        assert_eq!(
            stop_plan(Going::Restart, Gr, delay),
            StopPlan::GracefulRestart
        );
        // The same without graceful restart: withdraw, close after the delay.
        assert_eq!(
            stop_plan(Going::Restart, Withdraw, delay),
            StopPlan::WithdrawThenCease { delay }
        );
        // Going down with routes still out (drain in progress, or a cordon that keeps
        // routes): never graceful restart; withdraw, then wait.
        let out = Going::Down {
            routes_withdrawn: false,
        };
        assert_eq!(
            stop_plan(out, Gr, delay),
            StopPlan::WithdrawThenCease { delay }
        );
        // Drained or cordoned and withdrawn already: a Cease at once.
        let gone = Going::Down {
            routes_withdrawn: true,
        };
        for mode in [Gr, Withdraw] {
            let plan = stop_plan(gone, mode, delay);
            assert_eq!(plan.delay(), Duration::ZERO);
            assert_eq!(plan.mode(), StopMode::Withdraw);
        }
    }

    #[test]
    fn withdrawn_means_no_established_session_holds_a_route() {
        let up_clean = session(BgpState::Established, 0, 0);
        let up_busy = session(BgpState::Established, 2, 0);
        let up_pending = session(BgpState::Established, 0, 1);
        let down = session(BgpState::Active, 5, 5);
        assert!(routes_withdrawn(&[]));
        assert!(routes_withdrawn(&[up_clean.clone(), down.clone()]));
        assert!(!routes_withdrawn(&[up_clean.clone(), up_busy.clone()]));
        assert!(!routes_withdrawn(std::slice::from_ref(&up_pending)));
        assert_eq!(going(false, std::slice::from_ref(&up_busy)), Going::Restart);
        assert_eq!(
            going(true, &[up_busy]),
            Going::Down {
                routes_withdrawn: false
            }
        );
        assert_eq!(
            going(true, &[up_clean, down]),
            Going::Down {
                routes_withdrawn: true
            }
        );
    }
}
