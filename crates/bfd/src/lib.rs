//! BFD for oxlb's BGP speaker: Bidirectional Forwarding Detection in Asynchronous mode
//! (RFC 5880), over single-hop (RFC 5881) and multihop (RFC 5883) UDP, IPv4 and IPv6.
//!
//! - [`packet`]: the Control packet codec and the stateless reception checks.
//! - [`session`]: the sans-I/O state machine (time is an input).
//! - [`Bfd`] / [`BfdHandle`]: the tokio shell the speaker uses: `add_peer` returns a
//!   `watch::Receiver<Report>`; a change from Up to Down whose
//!   [`DownCause::is_path_failure`] means "tear the BGP session down now".
//!
//! - [`echo`]: the Echo function's packet, frame and neighbour-table parsing (the
//!   session drives it; single hop, IPv4 and IPv6; see [`echo`] for how packets are looped).
//!
//! Not implemented: Demand mode, authentication (authenticated packets are dropped and
//! counted), the Echo function on IPv6 and multihop sessions (RFC 5883 §3 forbids the
//! latter).
//! IPv6 link-local peers work when `PeerKey::interface` names the link.
//!
//! # Wiring it to the BGP speaker
//!
//! ```text
//! let bfd = Bfd::start()?;                                  // once, inside tokio
//! profile.validate()?;                                      // config layer: the
//!     // error text is what the user sees, e.g. "BFDProfile fast: receiveInterval
//!     // 5 ms is outside 10..60000 ms"
//! let key = PeerKey { peer, local, multihop: peer_cfg.ebgp_multihop,
//!                     interface: None /* Some(ifindex) for link-local peers */ };
//! let mut state = bfd.add_peer(key, profile).await?;        // once per BGPPeer with
//!                                                           // a bfdProfile
//! // in the BGP session task:
//! //   state.changed() -> if it was Up and is now Down for a path failure
//! //   (report.down_cause.is_path_failure(); a neighbour's AdminDown or a
//! //   neighbour that replaced its session is not one): send NOTIFICATION Cease,
//! //   subcode 10 "BFD Down" (RFC 9384), close, and reconnect as usual.
//! //   A BFD session that never came Up does not hold BGP back (RFC 5882 §4.3).
//! bfd.update_peer(key, new_profile).await?;                 // profile edited
//! bfd.remove_peer(key).await;                               // peer or bfdProfile gone
//! bfd.status().await?                                       // metrics:
//! //   sessions[i].state == Up      -> metallb_bfd_session_up{peer}
//! //   up_events / down_events      -> metallb_bfd_session_{up,down}_events{peer}
//! //   control_packets_in / _out    -> metallb_bfd_control_packet_{input,output}{peer}
//! //   dropped[reason]              -> drop counter by DropReason::as_str()
//! ```
//!
//! `local` is the BGP session's local address (or the peer's `sourceAddress`); the
//! transmit socket binds to it, so it must be configured on the host.

mod demux;
pub mod echo;
mod echo_sys;
pub mod net;
pub mod packet;
pub mod profile;
pub mod session;
mod shell;

pub use echo::{EchoInactive, EchoStatus};
pub use packet::{Diag, DropReason, State as SessionState};
pub use profile::{Profile, ProfileError};
pub use session::DownCause;
pub use shell::{Bfd, BfdError, BfdHandle, PeerKey, Report, SessionStatus, Status};
