//! MetalLB-compatible IP address allocation, pure (no I/O, no Kubernetes types).
//!
//! * Pools of ranges of any size: free space is a set of intervals per pool and family
//!   ([`free::FreeSet`]), so a /8 or a /64 costs nothing per address and the lowest free
//!   address is found in O(log n). `avoidBuggyIPs` maps addresses to a dense index space
//!   that leaves out .0/.255 arithmetically ([`space::FamilySpace`]).
//! * Sharing (`allow-shared-ip`): same non-empty key, same backend key, no (protocol,
//!   port) twice; a service alone on an address may change its key.
//! * Dual stack: both addresses from one pool.
//! * Order: pools pinned to the service by priority (0 last), then `autoAssign` pools by
//!   name; lowest free address first. Deterministic.
//!
//! The Kubernetes-facing rules (annotations, events, restart) live in `oxlb-controller`.

pub mod allocator;
pub mod error;
pub mod free;
pub mod scope;
pub mod space;

use std::fmt;
use std::sync::Arc;

pub use allocator::{Allocator, Held, HeldIps, PoolCounters};
pub use error::{AllocError, FamilyLabel, QuotedList};
pub use oxlb_config::Family;
pub use scope::{Scope, pool_allows};
pub use space::is_buggy_v4;

/// A Service port's protocol. The three Kubernetes knows are a tag, not a copy of
/// their name per port (issue 22: three `String`s per Service, 9.6 MB at 100,000);
/// any other text is kept as it was written. Compared and ordered as the text.
#[derive(Debug, Clone)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    /// Never `TCP`, `UDP` or `SCTP` (those are the tags): build it with `Protocol::from`.
    Other(Box<str>),
}

impl Protocol {
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Other(text) => text,
        }
    }
}

impl From<&str> for Protocol {
    fn from(text: &str) -> Protocol {
        match text {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            other => Protocol::Other(Box::from(other)),
        }
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Protocol) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Protocol {}

impl PartialOrd for Protocol {
    fn partial_cmp(&self, other: &Protocol) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Protocol {
    fn cmp(&self, other: &Protocol) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Protocol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (protocol, port) a service exposes, e.g. `TCP/80`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// `TCP`, `UDP` or `SCTP` as Kubernetes spells it.
    pub protocol: Protocol,
    pub port: i32,
}

impl Port {
    pub fn tcp(port: i32) -> Port {
        Port {
            protocol: Protocol::Tcp,
            port,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// Who may share an address: the `allow-shared-ip` value (empty = no sharing) and the
/// backend key (empty for `externalTrafficPolicy: Cluster`, the selector for `Local`, so
/// Local services share only with an identical selector and never with Cluster ones).
///
/// Stored as one optional pointer (8 bytes): most services do not share, and every
/// held address and service carries a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareKey(Option<Arc<(String, String)>>);

impl ShareKey {
    /// `sharing` empty: the service does not share (the backend key is then moot).
    pub fn new(sharing: &str, backend: &str) -> ShareKey {
        if sharing.is_empty() {
            ShareKey(None)
        } else {
            ShareKey(Some(Arc::new((sharing.to_string(), backend.to_string()))))
        }
    }

    pub fn sharing(&self) -> &str {
        self.0.as_ref().map_or("", |k| k.0.as_str())
    }

    pub fn backend(&self) -> &str {
        self.0.as_ref().map_or("", |k| k.1.as_str())
    }

    pub fn allows_sharing(&self) -> bool {
        self.0.is_some()
    }

    /// MetalLB's `sharingOK`.
    pub fn compatible(&self, other: &ShareKey) -> bool {
        self.allows_sharing() && other.allows_sharing() && self == other
    }
}

/// How a service uses its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Shared: the Service's view and what it holds in the allocator keep one copy.
    pub ports: Arc<[Port]>,
    pub key: ShareKey,
}

/// Which families a service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// One address of this family.
    Single(Family),
    /// One of each, from one pool (`RequireDualStack`).
    RequireDual,
    /// One of each from one pool if any pool can; else one of `primary`, else one of the
    /// other family (`PreferDualStack` on a dual-stack service).
    PreferDual { primary: Family },
}
