//! Malformed path attributes and what RFC 7606 says to do about each (§2: session
//! reset, treat-as-withdraw, attribute discard). The decoder records every error it
//! handled this way on the [`Update`](super::Update) so the session can log it with the
//! peer; only [`ErrorAction::SessionReset`] errors end decoding (as an
//! [`UpdateError`](super::UpdateError), mapped to its NOTIFICATION in `error.rs`).

use super::iana::AttributeType;
use std::fmt;

/// RFC 7606 §2 / §3: the approaches, from the heaviest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// NOTIFICATION and close (RFC 4271 §6.3; RFC 7606 keeps it where the NLRI cannot be
    /// located or for an unrecognised well-known attribute).
    SessionReset,
    /// The UPDATE's routes are handled as withdrawn (RFC 7606 §2).
    TreatAsWithdraw,
    /// The attribute is dropped, the rest of the UPDATE is used (RFC 7606 §2).
    AttributeDiscard,
}

impl ErrorAction {
    pub fn name(self) -> &'static str {
        match self {
            ErrorAction::SessionReset => "session reset",
            ErrorAction::TreatAsWithdraw => "treat-as-withdraw",
            ErrorAction::AttributeDiscard => "attribute discard",
        }
    }
}

/// What was wrong with the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeFault {
    /// Optional/Transitive bits conflict with the type code (RFC 7606 §3 (c)).
    FlagsConflict { flags: u8 },
    /// Length not what the attribute's specification allows.
    BadLength { len: usize },
    /// Length fine, content not (ORIGIN 3, an AS_PATH segment overrunning...).
    BadValue,
    /// A second copy of the attribute (RFC 7606 §3 (g)).
    Repeated,
    /// The attribute's header or value runs past the attribute field (RFC 7606 §4).
    Overrun,
    /// A well-known mandatory attribute is absent while NLRI is present (§3 (d)).
    Missing,
    /// A type code we do not know with the Optional bit clear (RFC 4271 §6.3).
    UnrecognizedWellKnown { attribute: Vec<u8> },
    /// The NLRI inside MP_(UN)REACH_NLRI cannot be parsed (RFC 7606 §5.3).
    BadNlri,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeError {
    pub attribute: AttributeType,
    pub fault: AttributeFault,
    pub action: ErrorAction,
}

impl AttributeError {
    pub fn new(type_code: u8, fault: AttributeFault, action: ErrorAction) -> AttributeError {
        AttributeError {
            attribute: AttributeType::from_code(type_code),
            fault,
            action,
        }
    }
}

impl fmt::Display for AttributeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (type {}) ",
            self.attribute.label().unwrap_or("attribute"),
            self.attribute.code()
        )?;
        match &self.fault {
            AttributeFault::FlagsConflict { flags } => {
                write!(f, "with flags {flags:#04x} that conflict with its type")?
            }
            AttributeFault::BadLength { len } => write!(f, "with a wrong length ({len})")?,
            AttributeFault::BadValue => f.write_str("malformed")?,
            AttributeFault::Repeated => f.write_str("repeated")?,
            AttributeFault::Overrun => f.write_str("overruns the attribute field")?,
            AttributeFault::Missing => f.write_str("missing")?,
            AttributeFault::UnrecognizedWellKnown { .. } => {
                f.write_str("unrecognised, but marked well-known")?
            }
            AttributeFault::BadNlri => f.write_str("with unreadable NLRI")?,
        }
        write!(f, ": {}", self.action.name())
    }
}
