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
//! - [`kernel_arp`]: which ARP sysctls keep the kernel from answering for service
//!   IPs this node does not own (no ghost answers after a crash), and whether a host
//!   as read would; [`netlink`]: rtnetlink address messages.
//! - [`interfaces::Selection`]: which interfaces may be used (down, enslaved, NOARP,
//!   loopback and an exclusion regex list are skipped).
//!
//! Shells (tokio):
//! - [`Responder`]: `Responder::start(Settings)`, `set_owned(OwnedSet)` (newly owned
//!   IPs get a gratuitous burst), `stats()` (the `metallb_layer2_*{ip}` counters and
//!   drops by [`DropReason`]).
//! - [`sysctl`]: sets and verifies those sysctls on the served interfaces (the
//!   responder does it before it listens on an interface); [`host_addrs`]: host
//!   addresses added and removed by netlink in batch.
//! - [`membership::Membership`]: SWIM membership and failure detection between
//!   speakers over UDP (port 7946), authenticated with the `memberlist` secret;
//!   `start(name, bind, seeds, secret, tuning)`, `live_members()`, `watch()`,
//!   `leave()` for a clean stop.

pub mod arp;
pub mod auth;
pub mod decide;
pub mod ethernet;
pub mod health_news;
pub mod host_addrs;
pub mod interfaces;
pub mod kernel_arp;
pub mod lease;
pub mod membership;
pub mod ndp;
pub mod netlink;
pub mod owned;
pub mod responder;
mod sys;
pub mod sysctl;

pub use decide::{DropReason, Interface, OwnedIp, OwnedSet, Reply, decide};
pub use ethernet::Mac;
pub use owned::owned_from;
pub use responder::{IpCounters, Responder, Settings, Stats};

/// Member lists compared between speakers (see [`membership`]).
pub mod views;
