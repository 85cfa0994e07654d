//! Why a received message is refused, by message kind, and the one place that maps each
//! reason to the NOTIFICATION (code, subcode, data) RFC 4271 §6 and RFC 7606 prescribe
//! ([`DecodeError::notification`]), as rustls maps its errors to alerts in one function.
//! The decoder decides *what* is wrong; only this file knows the wire codes for it.

use super::attribute_error::{AttributeError, AttributeFault, ErrorAction};
use super::iana::{
    CapabilityCode, ErrorCode, HeaderSubcode, MessageType, OpenSubcode, RouteRefreshSubcode,
    UpdateSubcode,
};
use super::notification::Notification;
use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Header(HeaderError),
    Open(OpenError),
    Update(UpdateError),
    /// A NOTIFICATION whose length is wrong (RFC 4271 §6.4: never answered with one).
    Notification {
        length: u16,
    },
    /// A BoRR or EoRR whose body is not 4 octets (RFC 7313 §5); `message` is the whole
    /// message, the NOTIFICATION's data.
    RouteRefreshLength {
        message: Vec<u8>,
    },
}

/// RFC 4271 §6.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The marker is not all ones.
    NotSynchronized,
    /// Length below the kind's minimum, above 4096, or not the fixed size of a KEEPALIVE
    /// or ROUTE-REFRESH.
    BadLength {
        length: u16,
        kind: MessageType,
    },
    BadType {
        kind: u8,
    },
}

/// RFC 4271 §6.2 (the checks that need no configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    UnsupportedVersion {
        version: u8,
    },
    /// 1 or 2 seconds (RFC 4271 §4.2: zero or at least three).
    UnacceptableHoldTime {
        hold_time: u16,
    },
    BadBgpIdentifier {
        id: Ipv4Addr,
    },
    UnsupportedOptionalParameter {
        parameter: u8,
    },
    Malformed(OpenMalformed),
}

/// What makes an OPEN unreadable; RFC 4271 has no finer subcode than "Unspecific".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMalformed {
    TooShort,
    ParametersLength,
    ParameterOverrun,
    CapabilityOverrun,
    BadCapability { code: CapabilityCode },
}

/// RFC 4271 §6.3 and RFC 7606: only what resets the session; lighter attribute errors
/// are recorded on the decoded [`Update`](super::Update) instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// Withdrawn Routes Length or Total Path Attribute Length overrun the message: the
    /// NLRI cannot be located (RFC 7606 §5.3 keeps session reset).
    FieldLengths,
    /// A prefix with an impossible length in the withdrawn routes or the NLRI.
    InvalidNetwork {
        field: NlriField,
    },
    Attribute(AttributeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlriField {
    Withdrawn,
    Nlri,
}

impl DecodeError {
    /// The NOTIFICATION to send before closing; None where RFC 4271 §6.4 forbids an
    /// answer (an error in a NOTIFICATION).
    pub fn notification(&self) -> Option<Notification> {
        let header = |s: HeaderSubcode, data| {
            Notification::new(ErrorCode::MessageHeader.code(), s.code(), data)
        };
        let open =
            |s: OpenSubcode, data| Notification::new(ErrorCode::OpenMessage.code(), s.code(), data);
        let update = |s: UpdateSubcode, data| {
            Notification::new(ErrorCode::UpdateMessage.code(), s.code(), data)
        };
        Some(match self {
            DecodeError::Notification { .. } => return None,
            // RFC 7313 §5: ROUTE-REFRESH Message Error / Invalid Message Length, with the
            // complete message as data.
            DecodeError::RouteRefreshLength { message } => Notification::new(
                ErrorCode::RouteRefresh.code(),
                RouteRefreshSubcode::InvalidMessageLength.code(),
                message.clone(),
            ),
            DecodeError::Header(e) => match e {
                HeaderError::NotSynchronized => {
                    header(HeaderSubcode::ConnectionNotSynchronized, vec![])
                }
                // §6.1: the data is the erroneous Length field / Type field.
                HeaderError::BadLength { length, .. } => header(
                    HeaderSubcode::BadMessageLength,
                    length.to_be_bytes().to_vec(),
                ),
                HeaderError::BadType { kind } => header(HeaderSubcode::BadMessageType, vec![*kind]),
            },
            DecodeError::Open(e) => match e {
                // §6.2: the data is the largest version we support.
                OpenError::UnsupportedVersion { .. } => {
                    open(OpenSubcode::UnsupportedVersion, vec![0, 4])
                }
                OpenError::UnacceptableHoldTime { .. } => {
                    open(OpenSubcode::UnacceptableHoldTime, vec![])
                }
                OpenError::BadBgpIdentifier { id } => {
                    open(OpenSubcode::BadBgpIdentifier, id.octets().to_vec())
                }
                OpenError::UnsupportedOptionalParameter { .. } => {
                    open(OpenSubcode::UnsupportedOptionalParameter, vec![])
                }
                OpenError::Malformed(_) => open(OpenSubcode::Unspecific, vec![]),
            },
            DecodeError::Update(e) => match e {
                UpdateError::FieldLengths => update(UpdateSubcode::MalformedAttributeList, vec![]),
                UpdateError::InvalidNetwork { .. } => {
                    update(UpdateSubcode::InvalidNetworkField, vec![])
                }
                UpdateError::Attribute(a) => match &a.fault {
                    // §6.3: the data is the unrecognised attribute itself.
                    AttributeFault::UnrecognizedWellKnown { attribute } => update(
                        UpdateSubcode::UnrecognizedWellKnownAttribute,
                        attribute.clone(),
                    ),
                    // RFC 7606 §3 (g), §5.3: MP_(UN)REACH problems and repeats.
                    _ => update(UpdateSubcode::MalformedAttributeList, vec![]),
                },
            },
        })
    }
}

impl From<HeaderError> for DecodeError {
    fn from(e: HeaderError) -> DecodeError {
        DecodeError::Header(e)
    }
}

impl From<OpenError> for DecodeError {
    fn from(e: OpenError) -> DecodeError {
        DecodeError::Open(e)
    }
}

impl From<UpdateError> for DecodeError {
    fn from(e: UpdateError) -> DecodeError {
        DecodeError::Update(e)
    }
}

impl From<AttributeError> for UpdateError {
    fn from(e: AttributeError) -> UpdateError {
        debug_assert_eq!(e.action, ErrorAction::SessionReset);
        UpdateError::Attribute(e)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.notification() {
            Some(n) => write!(f, "{n}")?,
            None => f.write_str("malformed NOTIFICATION, not answered (RFC 4271 §6.4)")?,
        }
        match self {
            DecodeError::Notification { length } => write!(f, ": {length} octets"),
            DecodeError::RouteRefreshLength { message } => {
                write!(f, ": BoRR/EoRR of {} octets", message.len())
            }
            DecodeError::Header(HeaderError::BadLength { length, kind }) => {
                write!(f, ": {} of {length} octets", kind_name(*kind))
            }
            DecodeError::Header(HeaderError::BadType { kind }) => write!(f, ": type {kind}"),
            DecodeError::Header(HeaderError::NotSynchronized) => Ok(()),
            DecodeError::Open(OpenError::UnsupportedVersion { version }) => {
                write!(f, ": version {version}")
            }
            DecodeError::Open(OpenError::UnacceptableHoldTime { hold_time }) => {
                write!(f, ": {hold_time} s")
            }
            DecodeError::Open(OpenError::BadBgpIdentifier { id }) => write!(f, ": {id}"),
            DecodeError::Open(OpenError::UnsupportedOptionalParameter { parameter }) => {
                write!(f, ": parameter type {parameter}")
            }
            DecodeError::Open(OpenError::Malformed(m)) => write!(f, ": {m:?}"),
            DecodeError::Update(UpdateError::FieldLengths) => {
                f.write_str(": field lengths overrun the message")
            }
            DecodeError::Update(UpdateError::InvalidNetwork { field }) => {
                write!(f, ": bad prefix in {field:?}")
            }
            DecodeError::Update(UpdateError::Attribute(a)) => write!(f, ": {a}"),
        }
    }
}

fn kind_name(kind: MessageType) -> String {
    kind.label()
        .map_or_else(|| format!("type {}", kind.code()), str::to_string)
}

/// Every reason a session sends a NOTIFICATION and closes, so that this file stays the
/// only one that knows the codes: a malformed message, or a decision of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    Malformed(DecodeError),
    /// RFC 4271 §6.2: the OPEN's AS is not the configured one.
    BadPeerAs,
    /// RFC 6286 §2.2: inside one AS the peer uses our identifier.
    BadBgpIdentifier {
        id: Ipv4Addr,
    },
    /// RFC 6608: a message the state does not allow.
    UnexpectedMessage {
        state: UnexpectedIn,
    },
    /// RFC 4271 §6.5.
    HoldTimerExpired,
    /// RFC 4486 / RFC 8203 Cease subcodes.
    AdministrativeShutdown {
        message: String,
    },
    AdministrativeReset {
        message: String,
    },
    PeerDeconfigured,
    /// RFC 4271 §6.8.
    ConnectionCollision,
}

/// RFC 6608 §3: the FSM error subcode names the state the surprise came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnexpectedIn {
    OpenSent,
    OpenConfirm,
    Established,
}

impl CloseReason {
    /// The NOTIFICATION to send before closing, if any may be sent.
    pub fn notification(&self) -> Option<Notification> {
        use super::iana::{CeaseSubcode as C, FsmSubcode};
        let cease = |s: C| Notification::new(ErrorCode::Cease.code(), s.code(), vec![]);
        Some(match self {
            CloseReason::Malformed(e) => return e.notification(),
            CloseReason::BadPeerAs => Notification::new(
                ErrorCode::OpenMessage.code(),
                OpenSubcode::BadPeerAs.code(),
                vec![],
            ),
            CloseReason::BadBgpIdentifier { id } => Notification::new(
                ErrorCode::OpenMessage.code(),
                OpenSubcode::BadBgpIdentifier.code(),
                id.octets().to_vec(),
            ),
            CloseReason::UnexpectedMessage { state } => Notification::new(
                ErrorCode::Fsm.code(),
                match state {
                    UnexpectedIn::OpenSent => FsmSubcode::UnexpectedInOpenSent,
                    UnexpectedIn::OpenConfirm => FsmSubcode::UnexpectedInOpenConfirm,
                    UnexpectedIn::Established => FsmSubcode::UnexpectedInEstablished,
                }
                .code(),
                vec![],
            ),
            CloseReason::HoldTimerExpired => {
                Notification::new(ErrorCode::HoldTimerExpired.code(), 0, vec![])
            }
            CloseReason::AdministrativeShutdown { message } => {
                Notification::cease_with_message(C::AdministrativeShutdown.code(), message)
            }
            CloseReason::AdministrativeReset { message } => {
                Notification::cease_with_message(C::AdministrativeReset.code(), message)
            }
            CloseReason::PeerDeconfigured => cease(C::PeerDeconfigured),
            CloseReason::ConnectionCollision => cease(C::ConnectionCollisionResolution),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::attribute_error::{AttributeFault, ErrorAction};

    /// One row per reason: the (code, subcode, data) RFC 4271 §6 / RFC 7606 / RFC 6608 /
    /// RFC 4486 / RFC 8203 give it.
    #[test]
    fn every_reason_maps_to_its_rfc_notification() {
        let id = Ipv4Addr::new(10, 0, 0, 1);
        let malformed = |e: DecodeError| CloseReason::Malformed(e);
        type Row = (CloseReason, (u8, u8, Vec<u8>));
        let rows: Vec<Row> = vec![
            (
                malformed(HeaderError::NotSynchronized.into()),
                (1, 1, vec![]),
            ),
            (
                malformed(
                    HeaderError::BadLength {
                        length: 20,
                        kind: MessageType::Keepalive,
                    }
                    .into(),
                ),
                (1, 2, vec![0, 20]),
            ),
            (
                malformed(HeaderError::BadType { kind: 9 }.into()),
                (1, 3, vec![9]),
            ),
            (
                malformed(OpenError::UnsupportedVersion { version: 3 }.into()),
                (2, 1, vec![0, 4]),
            ),
            (CloseReason::BadPeerAs, (2, 2, vec![])),
            (
                malformed(OpenError::BadBgpIdentifier { id }.into()),
                (2, 3, vec![10, 0, 0, 1]),
            ),
            (
                CloseReason::BadBgpIdentifier { id },
                (2, 3, vec![10, 0, 0, 1]),
            ),
            (
                malformed(OpenError::UnsupportedOptionalParameter { parameter: 7 }.into()),
                (2, 4, vec![]),
            ),
            (
                malformed(OpenError::UnacceptableHoldTime { hold_time: 2 }.into()),
                (2, 6, vec![]),
            ),
            (
                malformed(OpenError::Malformed(OpenMalformed::TooShort).into()),
                (2, 0, vec![]),
            ),
            (malformed(UpdateError::FieldLengths.into()), (3, 1, vec![])),
            (
                malformed(
                    UpdateError::InvalidNetwork {
                        field: NlriField::Nlri,
                    }
                    .into(),
                ),
                (3, 10, vec![]),
            ),
            (
                malformed(
                    UpdateError::Attribute(AttributeError::new(
                        99,
                        AttributeFault::UnrecognizedWellKnown {
                            attribute: vec![0x40, 99, 0],
                        },
                        ErrorAction::SessionReset,
                    ))
                    .into(),
                ),
                (3, 2, vec![0x40, 99, 0]),
            ),
            (
                malformed(
                    UpdateError::Attribute(AttributeError::new(
                        15,
                        AttributeFault::Repeated,
                        ErrorAction::SessionReset,
                    ))
                    .into(),
                ),
                (3, 1, vec![]),
            ),
            (CloseReason::HoldTimerExpired, (4, 0, vec![])),
            (
                CloseReason::UnexpectedMessage {
                    state: UnexpectedIn::OpenSent,
                },
                (5, 1, vec![]),
            ),
            (
                CloseReason::UnexpectedMessage {
                    state: UnexpectedIn::Established,
                },
                (5, 3, vec![]),
            ),
            (
                CloseReason::AdministrativeShutdown {
                    message: "bye".into(),
                },
                (6, 2, b"\x03bye".to_vec()),
            ),
            (
                CloseReason::AdministrativeReset {
                    message: String::new(),
                },
                (6, 4, vec![]),
            ),
            (CloseReason::PeerDeconfigured, (6, 3, vec![])),
            (CloseReason::ConnectionCollision, (6, 7, vec![])),
        ];
        for (reason, want) in rows {
            let n = reason.notification().unwrap();
            assert_eq!((n.code, n.subcode, n.data), want, "{reason:?}");
        }
    }

    #[test]
    fn a_malformed_notification_is_not_answered() {
        let e = DecodeError::Notification { length: 20 };
        assert_eq!(e.notification(), None);
        assert_eq!(CloseReason::Malformed(e).notification(), None);
    }

    #[test]
    fn decode_errors_say_what_was_wrong_after_the_notification_name() {
        let e = DecodeError::from(HeaderError::BadLength {
            length: 20,
            kind: MessageType::Keepalive,
        });
        assert_eq!(
            e.to_string(),
            "message header error / Bad Message Length: KEEPALIVE of 20 octets"
        );
    }
}
