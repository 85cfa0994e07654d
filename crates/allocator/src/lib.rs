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

pub use allocator::{Allocator, Held, PoolCounters};
pub use error::{AllocError, FamilyLabel, QuotedList};
pub use oxlb_config::Family;
pub use scope::{Scope, pool_allows};
pub use space::is_buggy_v4;

/// One (protocol, port) a service exposes, e.g. `TCP/80`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// `TCP`, `UDP` or `SCTP` as Kubernetes spells it.
    pub protocol: String,
    pub port: i32,
}

impl Port {
    pub fn tcp(port: i32) -> Port {
        Port {
            protocol: "TCP".to_string(),
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
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareKey {
    pub sharing: String,
    pub backend: String,
}

impl ShareKey {
    pub fn allows_sharing(&self) -> bool {
        !self.sharing.is_empty()
    }

    /// MetalLB's `sharingOK`.
    pub fn compatible(&self, other: &ShareKey) -> bool {
        self.allows_sharing() && other.allows_sharing() && self == other
    }
}

/// How a service uses its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub ports: Vec<Port>,
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
