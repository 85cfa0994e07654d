//! NOTIFICATION messages (RFC 4271 §4.5, §6) and their human-readable explanations.
//!
//! Every decode error in this module tree is a [`Notification`]: the exact answer RFC 4271
//! §6 prescribes, so the session can send it and close without further thought.

use std::fmt;

// The numeric codes, usable in `match` patterns; the registries themselves (with
// names) are the enums in `super::iana`.

/// Error codes (RFC 4271 §4.5, RFC 4486, RFC 8203, RFC 9234).
pub mod code {
    use super::super::iana::ErrorCode as E;
    pub const MESSAGE_HEADER: u8 = E::MessageHeader.code();
    pub const OPEN_MESSAGE: u8 = E::OpenMessage.code();
    pub const UPDATE_MESSAGE: u8 = E::UpdateMessage.code();
    pub const HOLD_TIMER_EXPIRED: u8 = E::HoldTimerExpired.code();
    pub const FSM: u8 = E::Fsm.code();
    pub const CEASE: u8 = E::Cease.code();
    pub const ROUTE_REFRESH: u8 = E::RouteRefresh.code();
}

/// Message header error subcodes (RFC 4271 §6.1).
pub mod header {
    use super::super::iana::HeaderSubcode as H;
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = H::ConnectionNotSynchronized.code();
    pub const BAD_MESSAGE_LENGTH: u8 = H::BadMessageLength.code();
    pub const BAD_MESSAGE_TYPE: u8 = H::BadMessageType.code();
}

/// OPEN message error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
pub mod open {
    use super::super::iana::OpenSubcode as O;
    pub const UNSUPPORTED_VERSION: u8 = O::UnsupportedVersion.code();
    pub const BAD_PEER_AS: u8 = O::BadPeerAs.code();
    pub const BAD_BGP_IDENTIFIER: u8 = O::BadBgpIdentifier.code();
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = O::UnsupportedOptionalParameter.code();
    pub const UNACCEPTABLE_HOLD_TIME: u8 = O::UnacceptableHoldTime.code();
    pub const UNSUPPORTED_CAPABILITY: u8 = O::UnsupportedCapability.code();
    pub const ROLE_MISMATCH: u8 = O::RoleMismatch.code();
}

/// UPDATE message error subcodes (RFC 4271 §6.3).
pub mod update {
    use super::super::iana::UpdateSubcode as U;
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = U::MalformedAttributeList.code();
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = U::UnrecognizedWellKnownAttribute.code();
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = U::MissingWellKnownAttribute.code();
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = U::AttributeFlagsError.code();
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = U::AttributeLengthError.code();
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = U::InvalidOriginAttribute.code();
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = U::InvalidNextHopAttribute.code();
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = U::OptionalAttributeError.code();
    pub const INVALID_NETWORK_FIELD: u8 = U::InvalidNetworkField.code();
    pub const MALFORMED_AS_PATH: u8 = U::MalformedAsPath.code();
}

/// Cease subcodes (RFC 4486, RFC 8203).
pub mod cease {
    use super::super::iana::CeaseSubcode as C;
    pub const MAX_PREFIXES: u8 = C::MaxPrefixes.code();
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = C::AdministrativeShutdown.code();
    pub const PEER_DECONFIGURED: u8 = C::PeerDeconfigured.code();
    pub const ADMINISTRATIVE_RESET: u8 = C::AdministrativeReset.code();
    pub const CONNECTION_REJECTED: u8 = C::ConnectionRejected.code();
    pub const OTHER_CONFIGURATION_CHANGE: u8 = C::OtherConfigurationChange.code();
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = C::ConnectionCollisionResolution.code();
    pub const OUT_OF_RESOURCES: u8 = C::OutOfResources.code();
    pub const HARD_RESET: u8 = C::HardReset.code();
}

/// Finite State Machine error subcodes (RFC 6608 §3).
pub mod fsm_sub {
    use super::super::iana::FsmSubcode as F;
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = F::UnexpectedInOpenSent.code();
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = F::UnexpectedInOpenConfirm.code();
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = F::UnexpectedInEstablished.code();
}

/// RFC 8203 / RFC 9003: a shutdown communication is at most 255 octets of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// Cease with a shutdown communication (RFC 8203 §2): length octet + UTF-8, cut on a
    /// character boundary so the peer can always decode it.
    pub fn cease_with_message(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(text.len() + 1);
        if !text.is_empty() {
            data.push(text.len() as u8);
            data.extend_from_slice(text);
        }
        Notification::new(code::CEASE, subcode, data)
    }

    /// The RFC 8203 shutdown communication, when the data carries one.
    pub fn shutdown_message(&self) -> Option<String> {
        let shutdown = self.code == code::CEASE
            && matches!(
                self.subcode,
                cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET
            );
        let (&len, rest) = self.data.split_first()?;
        if !shutdown || rest.len() < usize::from(len) || len == 0 {
            return None;
        }
        std::str::from_utf8(&rest[..usize::from(len)])
            .ok()
            .map(str::to_owned)
    }

    /// "OPEN error / Bad Peer AS" style name of code and subcode.
    pub fn describe(&self) -> String {
        let (c, s) = names(self.code, self.subcode);
        match s {
            Some(s) => format!("{c} / {s}"),
            None => format!("{c} / subcode {}", self.subcode),
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())?;
        if let Some(message) = self.shutdown_message() {
            write!(f, " (\"{message}\")")?;
        }
        Ok(())
    }
}

fn names(c: u8, s: u8) -> (&'static str, Option<&'static str>) {
    use super::iana::{
        CeaseSubcode, ErrorCode, HeaderSubcode, OpenSubcode, RouteRefreshSubcode, UpdateSubcode,
    };
    let code = ErrorCode::from_code(c);
    let subcode = match code {
        ErrorCode::MessageHeader => HeaderSubcode::from_code(s).label(),
        ErrorCode::OpenMessage => OpenSubcode::from_code(s).label(),
        ErrorCode::UpdateMessage => UpdateSubcode::from_code(s).label(),
        // RFC 4271 leaves these without subcodes; RFC 6608's FSM subcodes are shown
        // as numbers, as before.
        ErrorCode::HoldTimerExpired | ErrorCode::Fsm => Some("-"),
        ErrorCode::Cease => CeaseSubcode::from_code(s).label(),
        ErrorCode::RouteRefresh => RouteRefreshSubcode::from_code(s).label(),
        ErrorCode::Other(_) => None,
    };
    (code.label().unwrap_or("unknown error code"), subcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_message_round_trips_and_is_cut_on_char_boundary() {
        let n = Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, "bye");
        assert_eq!(n.data, b"\x03bye");
        assert_eq!(n.shutdown_message().as_deref(), Some("bye"));
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown (\"bye\")");
        let long = "é".repeat(200); // 400 bytes
        let n = Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, &long);
        assert_eq!(n.data[0], 254);
        assert!(n.shutdown_message().is_some());
    }

    #[test]
    fn describes_open_errors_like_a_human_would() {
        let n = Notification::new(code::OPEN_MESSAGE, open::BAD_PEER_AS, vec![]);
        assert_eq!(n.describe(), "OPEN error / Bad Peer AS");
    }
}
