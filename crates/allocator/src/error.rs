//! Why an address could not be given, worded exactly as MetalLB words it (users grep
//! events and alerts match on them).

use std::fmt;
use std::net::IpAddr;

use oxlb_config::Family;

use crate::Port;

/// A reason an assignment or allocation was refused. `Display` is the MetalLB text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// No pool contains the address (or, for two addresses, no single pool holds both).
    NotAllowed(Vec<IpAddr>),
    /// The pool holding the address is reserved to other namespaces / services.
    PoolNotCompatible(String),
    MoreThanTwo(Vec<IpAddr>),
    SameFamily(IpAddr, IpAddr),
    /// The address is in use by services with another sharing key (or none).
    SharingKeyInUse {
        service: String,
        others: Vec<String>,
    },
    PortInUse {
        port: Port,
        ip: IpAddr,
    },
    UnknownPool(String),
    NoAvailableInPool {
        pool: String,
        family: FamilyLabel,
    },
    NoAvailable,
}

/// How MetalLB names a service's family in messages (`ipv4`, `ipv6`, `dual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyLabel {
    V4,
    V6,
    Dual,
}

impl From<Family> for FamilyLabel {
    fn from(family: Family) -> FamilyLabel {
        match family {
            Family::V4 => FamilyLabel::V4,
            Family::V6 => FamilyLabel::V6,
        }
    }
}

impl fmt::Display for FamilyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FamilyLabel::V4 => "ipv4",
            FamilyLabel::V6 => "ipv6",
            FamilyLabel::Dual => "dual",
        })
    }
}

/// Go's `%q` of a list: `["a" "b"]`.
pub struct QuotedList<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for QuotedList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "\"{item}\"")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // MetalLB formats the requested list with Go's %q, brackets included even
            // for one address: `["192.168.3.2"] is not allowed in config`.
            AllocError::NotAllowed(ips) => {
                write!(f, "{} is not allowed in config", QuotedList(ips))
            }
            AllocError::PoolNotCompatible(pool) => {
                write!(f, "pool {pool} not compatible for ip assignment")
            }
            AllocError::MoreThanTwo(ips) => {
                write!(f, "more than two addresses {}", QuotedList(ips))
            }
            AllocError::SameFamily(a, b) => write!(f, "\"{a}\" \"{b}\" has the same family"),
            AllocError::SharingKeyInUse { service, others } => write!(
                f,
                "can't change sharing key for \"{service}\", address also in use by {}",
                others.join(",")
            ),
            AllocError::PortInUse { port, ip } => {
                write!(f, "port {port} is already in use on \"{ip}\"")
            }
            AllocError::UnknownPool(pool) => write!(f, "unknown pool \"{pool}\""),
            AllocError::NoAvailableInPool { pool, family } => {
                write!(f, "no available IPs in pool {pool} for {family} IPFamily")
            }
            AllocError::NoAvailable => f.write_str("no available IPs"),
        }
    }
}

impl std::error::Error for AllocError {}
