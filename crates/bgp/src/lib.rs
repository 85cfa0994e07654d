//! oxlb's BGP-4 speaker.
//!
//! - [`packet`]: the wire format (own codec, RFC 4271 §4/§6, RFC 7606 on decode).
//! - [`rib`]: Adj-RIB-Out per peer: diff desired vs. sent, pack UPDATEs.
//! - [`session`]: the sans-I/O session state machine (RFC 4271 §8), time as an input.
//! - [`speaker`]: the thin tokio shell (TCP, MD5, TTL, timers) behind [`Speaker`].

pub mod packet;
mod peer_task;
pub mod rib;
pub mod session;
pub mod settings;
mod sockopt;
pub mod speaker;

pub use session::State;
pub use settings::{PeerAsn, PeerName, PeerSettings, RouteAttributes};
pub use speaker::{Desired, PeerStatus, ShutdownMode, Speaker, SpeakerOptions};
