//! NOTIFICATION messages (RFC 4271 §4.5, §6) and their human-readable explanations.
//!
//! Every decode error in this module tree is a [`Notification`]: the exact answer RFC 4271
//! §6 prescribes, so the session can send it and close without further thought.

use std::fmt;

/// Error codes (RFC 4271 §4.5, RFC 4486, RFC 8203, RFC 9234).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Message header error subcodes (RFC 4271 §6.1).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN message error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
pub mod open {
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// UPDATE message error subcodes (RFC 4271 §6.3).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Cease subcodes (RFC 4486, RFC 8203).
pub mod cease {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
}

/// Finite State Machine error subcodes (RFC 6608 §3).
pub mod fsm_sub {
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
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
    match c {
        code::MESSAGE_HEADER => (
            "message header error",
            match s {
                1 => Some("Connection Not Synchronized"),
                2 => Some("Bad Message Length"),
                3 => Some("Bad Message Type"),
                _ => None,
            },
        ),
        code::OPEN_MESSAGE => (
            "OPEN error",
            match s {
                0 => Some("Unspecific"),
                1 => Some("Unsupported Version Number"),
                2 => Some("Bad Peer AS"),
                3 => Some("Bad BGP Identifier"),
                4 => Some("Unsupported Optional Parameter"),
                6 => Some("Unacceptable Hold Time"),
                7 => Some("Unsupported Capability"),
                11 => Some("Role Mismatch"),
                _ => None,
            },
        ),
        code::UPDATE_MESSAGE => (
            "UPDATE error",
            match s {
                1 => Some("Malformed Attribute List"),
                2 => Some("Unrecognized Well-known Attribute"),
                3 => Some("Missing Well-known Attribute"),
                4 => Some("Attribute Flags Error"),
                5 => Some("Attribute Length Error"),
                6 => Some("Invalid ORIGIN Attribute"),
                8 => Some("Invalid NEXT_HOP Attribute"),
                9 => Some("Optional Attribute Error"),
                10 => Some("Invalid Network Field"),
                11 => Some("Malformed AS_PATH"),
                _ => None,
            },
        ),
        code::HOLD_TIMER_EXPIRED => ("hold timer expired", Some("-")),
        code::FSM => ("finite state machine error", Some("-")),
        code::CEASE => (
            "Cease",
            match s {
                1 => Some("Maximum Number of Prefixes Reached"),
                2 => Some("Administrative Shutdown"),
                3 => Some("Peer De-configured"),
                4 => Some("Administrative Reset"),
                5 => Some("Connection Rejected"),
                6 => Some("Other Configuration Change"),
                7 => Some("Connection Collision Resolution"),
                8 => Some("Out of Resources"),
                9 => Some("Hard Reset"),
                _ => None,
            },
        ),
        code::ROUTE_REFRESH => ("ROUTE-REFRESH error", None),
        _ => ("unknown error code", None),
    }
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
