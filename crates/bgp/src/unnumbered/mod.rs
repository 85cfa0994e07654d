//! Unnumbered BGP (a BGPPeer with `interface` and no address): the session runs over
//! IPv6 link-local addresses, each side learning the other's from its Router
//! Advertisements, as FRR's `neighbor IFNAME interface` does (RFC 8950 practice:
//! IPv4 routes then carry the IPv6 link-local next hop).
//!
//! - [`ra`]: the Router Advertisement codec (pure).
//! - [`discovery`]: which advertisements name the router, the link's state (pure).
//! - `link`: the shell, one task per unnumbered peer: advertises us and listens.

pub mod discovery;
pub(crate) mod link;
pub mod ra;

pub use discovery::LinkState;
