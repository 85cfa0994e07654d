//! Layer 2 mode: one elected node answers ARP (IPv4) and Neighbor Discovery (IPv6)
//! for a service IP; another takes over with gratuitous ARP / unsolicited NA when it
//! dies.
//!
//! - [`ethernet`], [`arp`], [`ndp`]: pure frame parsing and building.
//! - [`decide`]: the pure responder decision, `(frame, owned set, interface) ->
//!   Reply | DropReason`.

pub mod arp;
pub mod decide;
pub mod ethernet;
pub mod ndp;

pub use decide::{DropReason, Interface, OwnedIp, OwnedSet, Reply, decide};
pub use ethernet::Mac;
pub mod interfaces;
pub mod responder;
mod sys;

pub use responder::{IpCounters, Responder, Settings, Stats};
pub mod auth;
pub mod membership;
pub mod owned;

pub use owned::owned_from;
