//! Why an outbound TCP connection failed, as the shell reports it to the session.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// Preparing our socket failed: a local problem, not the peer's.
    Setup { step: SetupStep, error: String },
    /// An RST: the peer's host is up but nothing listens (a restarting BGP daemon).
    Refused,
    /// No answer at all within the limit (also what a TCP MD5 mismatch looks like:
    /// the peer's kernel drops our SYNs silently).
    Timeout { secs: u64 },
    /// Anything else the kernel reported (unreachable, reset...).
    Io(String),
    /// The connection was gone before we could use it.
    ClosedAtOnce,
    /// Unnumbered peer: no router known on the link yet; why, with the fix
    /// ([`crate::unnumbered::LinkState::problem`]).
    NoLinkPeer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    Socket,
    SourceAddress(IpAddr),
    Md5,
    Ttl,
    /// The peer's `vrf` cannot be used (missing, not a VRF) or the socket cannot be
    /// bound to it; the message says which and the fix.
    Vrf,
}

impl ConnectError {
    pub fn from_io(error: &std::io::Error) -> ConnectError {
        match error.kind() {
            std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
            _ => ConnectError::Io(error.to_string()),
        }
    }

    /// Whether a missing or wrong TCP MD5 password on the peer could explain it.
    pub fn could_be_md5(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. } | ConnectError::Io(_))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Setup { step, error } => match step {
                SetupStep::Socket => write!(f, "cannot create a socket: {error}"),
                SetupStep::SourceAddress(a) => write!(f, "cannot use source address {a}: {error}"),
                SetupStep::Md5 => write!(f, "cannot set TCP MD5 password: {error}"),
                SetupStep::Ttl => write!(f, "cannot set TTL: {error}"),
                SetupStep::Vrf => f.write_str(error),
            },
            ConnectError::Refused => f.write_str("connection refused"),
            ConnectError::Timeout { secs } => write!(f, "no answer within {secs} s"),
            ConnectError::Io(error) => f.write_str(error),
            ConnectError::ClosedAtOnce => f.write_str("socket closed at once"),
            ConnectError::NoLinkPeer(why) => f.write_str(why),
        }
    }
}
