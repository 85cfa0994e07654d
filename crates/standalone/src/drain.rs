//! `oxlb drain` in the node shell: feeds requests and session counters to the pure
//! [`oxlb_announce::drain::DrainState`], asks the peers it names to confirm (RFC 7313
//! route refresh, through the driver) and publishes the result in the status report.

use std::time::{Duration, Instant};

use oxlb_announce::drain::{DrainChange, DrainState, PeerDrain, SessionRoutes};
use tokio::sync::watch;
use tracing::info;

use oxlb_node::status::{
    BgpSessionStatus, BgpState, DrainOutcome, DrainPeerStatus, DrainStatus, StatusReport,
};

/// How often a drain in progress checks the sessions (reading their status is a lock
/// per session; this is also the resolution of the reported times).
const POLL: Duration = Duration::from_millis(10);

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

/// Moves the drain on; returns the sessions whose peers are to be asked to confirm.
pub fn observe(
    state: &mut DrainState,
    bgp_sessions: &[BgpSessionStatus],
    report: &watch::Sender<StatusReport>,
) -> Vec<String> {
    let sessions: Vec<SessionRoutes> = bgp_sessions
        .iter()
        .map(|s| SessionRoutes {
            peer: s.peer.clone(),
            established: s.state == BgpState::Established,
            announced: usize::try_from(s.prefixes_announced).unwrap_or(usize::MAX),
            pending: usize::try_from(s.prefixes_pending).unwrap_or(usize::MAX),
            can_confirm: s.enhanced_route_refresh,
            confirm_requested: s.confirm_requested,
            confirmed: s.confirmed,
        })
        .collect();
    let step = state.observe(&sessions, Instant::now());
    if step.converged
        && let DrainState::Drained { took, peers, .. } = &*state
    {
        for (peer, part) in peers {
            info!(peer, outcome = %row(peer, part), "drain: session done");
        }
        info!(
            took_ms = millis(*took),
            "drain: every peer confirmed the withdrawals (or cannot confirm and was sent them)"
        );
    }
    let status = status(state);
    report.send_if_modified(|r| {
        let changed = r.drain != status;
        r.drain = status;
        changed
    });
    step.confirm
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn row(peer: &str, part: &PeerDrain) -> DrainPeerStatus {
    let (outcome, written, confirmed) = match *part {
        PeerDrain::Withdrawing => (DrainOutcome::Withdrawing, None, None),
        PeerDrain::Confirming { written_after, .. } => {
            (DrainOutcome::Confirming, Some(written_after), None)
        }
        PeerDrain::Confirmed {
            written_after,
            confirmed_after,
        } => (
            DrainOutcome::Confirmed,
            Some(written_after),
            Some(confirmed_after),
        ),
        PeerDrain::WrittenUnconfirmable { written_after } => (
            DrainOutcome::WrittenUnconfirmable,
            Some(written_after),
            None,
        ),
        PeerDrain::WrittenUnanswered { written_after } => {
            (DrainOutcome::WrittenUnanswered, Some(written_after), None)
        }
        PeerDrain::Down => (DrainOutcome::SessionDown, None, None),
    };
    DrainPeerStatus {
        peer: peer.to_string(),
        outcome,
        written_after_ms: written.map(millis),
        confirmed_after_ms: confirmed.map(millis),
    }
}

fn status(state: &DrainState) -> DrainStatus {
    let peers = state
        .peers()
        .map(|peers| peers.iter().map(|(p, part)| row(p, part)).collect())
        .unwrap_or_default();
    match state {
        DrainState::Active => DrainStatus::default(),
        DrainState::Draining { .. } => DrainStatus {
            drained: true,
            converged: false,
            converged_after_ms: None,
            peers,
        },
        DrainState::Drained { took, .. } => DrainStatus {
            drained: true,
            converged: true,
            converged_after_ms: Some(millis(*took)),
            peers,
        },
    }
}
