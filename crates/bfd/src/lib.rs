//! BFD for oxlb's BGP speaker: Bidirectional Forwarding Detection in Asynchronous mode
//! (RFC 5880), over single-hop (RFC 5881) and multihop (RFC 5883) UDP, IPv4 and IPv6.
//!
//! - [`packet`]: the Control packet codec and the stateless reception checks.
//! - [`session`]: the sans-I/O state machine (time is an input).
//! - [`Bfd`] / [`BfdHandle`]: the tokio shell the speaker uses: `add_peer` returns a
//!   `watch::Receiver<SessionState>`; a change to Down means "tear the BGP session
//!   down now".
//!
//! Not implemented: the Echo function (a profile with `echo: true` is refused),
//! Demand mode, authentication (authenticated packets are dropped and counted).

mod demux;
pub mod net;
pub mod packet;
pub mod profile;
pub mod session;
mod shell;

pub use packet::{Diag, DropReason, State as SessionState};
pub use profile::{Profile, ProfileError};
pub use shell::{Bfd, BfdError, BfdHandle, PeerKey, SessionStatus, Status};
