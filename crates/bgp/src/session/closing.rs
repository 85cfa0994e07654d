//! Ending connections: connection collision resolution (RFC 4271 §6.8) and the ways
//! the caller stops a session (Cease variants, graceful restart close).

use super::{Action, ConnId, ConnState, Lifecycle, Session, Stop};
use crate::packet::error::CloseReason;
use crate::packet::{Capability, Message, Open};
use std::time::Instant;

impl Session {
    /// RFC 4271 §6.8. Returns whether connection `id` survives.
    pub(super) fn resolve_collision(
        &mut self,
        now: Instant,
        id: ConnId,
        open: &Open,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(this_outbound) = self.conns.iter().find(|c| c.id == id).map(|c| c.outbound) else {
            return false;
        };
        // Only a connection on which the peer's OPEN arrived takes part: before that
        // its BGP Identifier is unknown and §6.8 cannot compare (a silent connection
        // from the peer's address must not close the real one).
        let Some(other) = self
            .conns
            .iter()
            .find(|c| c.id != id && c.state != ConnState::OpenSent)
        else {
            return true;
        };
        let (other_id, other_state) = (other.id, other.state);
        if other_state == ConnState::Established {
            // RFC 4724 §4.2: a new connection from a graceful-restart peer replaces the
            // old one (the peer restarted); otherwise the established one stays.
            let peer_restarting = open.has(|c| matches!(c, Capability::GracefulRestart { .. }));
            if peer_restarting {
                let reason = format!("peer {} restarted (graceful restart)", self.peer_text());
                self.conn_down(now, other_id, reason);
                out.push(Action::Close { conn: other_id });
                return true;
            }
            self.fail_quiet(id, CloseReason::ConnectionCollision, out);
            return false;
        }
        // The connection opened by the speaker with the higher BGP identifier survives.
        let ours_higher = u32::from(self.settings.router_id) > u32::from(open.bgp_id);
        let close_this = this_outbound != ours_higher;
        let (loser, survives) = if close_this {
            (id, false)
        } else {
            (other_id, true)
        };
        self.fail_quiet(loser, CloseReason::ConnectionCollision, out);
        survives
    }

    /// Closes one of two colliding connections without touching the session's state.
    pub(super) fn fail_quiet(&mut self, id: ConnId, why: CloseReason, out: &mut Vec<Action>) {
        let ctx = self.context();
        if let Some(n) = why.notification() {
            out.push(Action::Send {
                conn: id,
                bytes: Message::Notification(n).to_bytes(ctx),
            });
        }
        out.push(Action::Close { conn: id });
        self.conns.retain(|c| c.id != id);
    }

    pub(super) fn stop(&mut self, now: Instant, stop: Stop, out: &mut Vec<Action>) {
        let (notification, stays_down) = match &stop {
            Stop::Shutdown { message } => (
                Some(CloseReason::AdministrativeShutdown {
                    message: message.clone(),
                }),
                true,
            ),
            Stop::Restart => {
                let gr = self.settings.graceful_restart
                    && self.conns.iter().any(|c| {
                        c.state == ConnState::Established
                            && c.peer_open.as_ref().is_some_and(|o| {
                                o.has(|c| matches!(c, Capability::GracefulRestart { .. }))
                            })
                    });
                let n = (!gr).then(|| CloseReason::AdministrativeShutdown {
                    message: "oxlb restarting".into(),
                });
                (n, true)
            }
            Stop::Reset { reason } => (
                Some(CloseReason::AdministrativeReset {
                    message: reason.clone(),
                }),
                false,
            ),
            Stop::Deconfigured => (Some(CloseReason::PeerDeconfigured), true),
        };
        if stays_down {
            self.lifecycle = Lifecycle::Stopped;
            self.connecting = false;
            self.retry_at = None;
        }
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            let reason = match &stop {
                Stop::Reset { reason } => {
                    format!("session with {} reset: {reason}", self.peer_text())
                }
                _ => format!("session with {} stopped by us", self.peer_text()),
            };
            self.fail(now, id, notification.clone(), reason, out);
        }
    }
}
