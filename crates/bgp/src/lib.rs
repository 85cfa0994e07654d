//! oxlb's BGP-4 speaker.
//!
//! - [`packet`]: the wire format (own codec, RFC 4271 §4/§6, RFC 7606 on decode).
//! - [`rib`]: Adj-RIB-Out per peer: diff desired vs. sent, pack UPDATEs.
//! - [`session`]: the sans-I/O session state machine (RFC 4271 §8), time as an input.
//! - [`speaker`]: the thin tokio shell (TCP, MD5, TTL, timers) behind [`Speaker`].
//!
//! Use from a tokio runtime:
//!
//! ```no_run
//! # async fn demo(desired: oxlb_bgp::Desired) -> std::io::Result<()> {
//! use oxlb_bgp::{ShutdownMode, Speaker, SpeakerOptions};
//! let mut speaker = Speaker::start(SpeakerOptions {
//!     listen: Some("[::]:179".parse().expect("address")),
//!     on_event: None,
//! })
//! .await?;
//! speaker.set_desired(desired); // every peer with its full route set, as often as it changes
//! for peer in speaker.status() {
//!     println!("{} {} {:?}", peer.name, peer.state.name(), peer.last_error);
//! }
//! speaker.shutdown(ShutdownMode::Withdraw { message: "oxlb stopping".into() }).await;
//! # Ok(())
//! # }
//! ```

pub mod link_addresses;
pub mod link_local;
pub mod packet;
mod peer_task;
pub mod rib;
pub mod session;
pub mod settings;
mod sockopt;
pub mod speaker;
pub mod unnumbered;
pub mod vrf;

pub use session::{State, Withheld};
pub use settings::{PeerAsn, PeerName, PeerSettings, RouteAttributes};
pub use speaker::{Desired, PeerStatus, ShutdownMode, Speaker, SpeakerOptions};
