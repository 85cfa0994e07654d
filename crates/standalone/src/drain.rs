//! `oxlb drain` in the node shell: feeds requests and session counters to the pure
//! [`oxlb_announce::drain::DrainState`] and publishes the result in the status report.

use std::time::{Duration, Instant};

use oxlb_announce::drain::{DrainChange, DrainState, SessionRoutes};
use tokio::sync::watch;
use tracing::info;

use oxlb_node::status::{BgpSessionStatus, BgpState, DrainStatus, StatusReport};

/// How often a drain in progress checks the sessions.
const POLL: Duration = Duration::from_millis(50);

pub fn request(state: &mut DrainState, drain: bool) {
    let change = state.request(drain, Instant::now());
    match change {
        DrainChange::Started => {
            info!(change = ?change, "drain: withdrawing every route from the peers")
        }
        DrainChange::Undrained => info!(change = ?change, "undrain: announcing again"),
        DrainChange::AlreadyDraining | DrainChange::NotDrained => {
            info!(change = ?change, "drain request changes nothing")
        }
    }
}

/// When to check a drain in progress again (`None`: not draining).
pub fn poll(state: &DrainState) -> Option<tokio::time::Instant> {
    matches!(state, DrainState::Draining { .. }).then(|| tokio::time::Instant::now() + POLL)
}

pub fn observe(
    state: &mut DrainState,
    bgp_sessions: &[BgpSessionStatus],
    report: &watch::Sender<StatusReport>,
) {
    let sessions: Vec<SessionRoutes> = bgp_sessions
        .iter()
        .map(|s| SessionRoutes {
            established: s.state == BgpState::Established,
            announced: usize::try_from(s.prefixes_announced).unwrap_or(usize::MAX),
            pending: usize::try_from(s.prefixes_pending).unwrap_or(usize::MAX),
        })
        .collect();
    if state.observe(&sessions, Instant::now())
        && let DrainState::Drained { took, .. } = state
    {
        info!(
            took_ms = took.as_millis() as u64,
            "drain: every peer has been sent the withdrawals"
        );
    }
    let status = match *state {
        DrainState::Active => DrainStatus::default(),
        DrainState::Draining { .. } => DrainStatus {
            drained: true,
            converged: false,
            converged_after_ms: None,
        },
        DrainState::Drained { took, .. } => DrainStatus {
            drained: true,
            converged: true,
            converged_after_ms: Some(took.as_millis() as u64),
        },
    };
    report.send_if_modified(|r| {
        let changed = r.drain != status;
        r.drain = status;
        changed
    });
}
