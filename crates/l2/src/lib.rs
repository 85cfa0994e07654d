//! Layer 2 mode: one elected node answers ARP (IPv4) and Neighbor Discovery (IPv6)
//! for a service IP; another takes over with gratuitous ARP / unsolicited NA when it
//! dies.
//!
//! Pure:
//! - [`ethernet`], [`arp`], [`ndp`]: frame parsing and building (RFC 826, RFC 5227,
//!   RFC 4861).
//! - [`decide()`]: the responder's decision, `(frame, owned set, interface) ->
//!   Reply | DropReason`.
//! - [`owned_from`]: `oxlb_announce::Announcements` -> the [`OwnedSet`] to answer for.
//! - [`interfaces::Selection`]: which interfaces may be used (down, enslaved, NOARP,
//!   loopback and an exclusion regex list are skipped).
//!
//! Shells (tokio):
//! - [`Responder`]: `Responder::start(Settings)`, `set_owned(OwnedSet)` (newly owned
//!   IPs get a gratuitous burst), `stats()` (the `metallb_layer2_*{ip}` counters and
//!   drops by [`DropReason`]).
//! - [`membership::Membership`]: SWIM membership and failure detection between
//!   speakers over UDP (port 7946), authenticated with the `memberlist` secret;
//!   `start(name, bind, seeds, secret, tuning)`, `live_members()`, `watch()`,
//!   `leave()` for a clean stop.

pub mod arp;
pub mod auth;
pub mod decide;
pub mod ethernet;
pub mod interfaces;
pub mod membership;
pub mod ndp;
pub mod owned;
pub mod responder;
mod sys;

pub use decide::{DropReason, Interface, OwnedIp, OwnedSet, Reply, decide};
pub use ethernet::Mac;
pub use owned::owned_from;
pub use responder::{IpCounters, Responder, Settings, Stats};

/// Member lists compared between speakers (see [`membership`]).
pub mod views;
