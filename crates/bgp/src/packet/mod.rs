//! BGP-4 wire format: framing (RFC 4271 §4.1) and the five messages we speak.
//!
//! Own codec rather than netgauze-bgp-pkt: we need five messages and a dozen attributes,
//! but precise RFC 4271 §6 / RFC 7606 error -> NOTIFICATION mapping on decode and
//! size-aware packing on encode, which are easier to own than to adapt; it also saves
//! netgauze's dependency tree (nom, serde, strum, netgauze-iana...) in every build.

pub mod attribute_error;
pub mod error;
pub mod iana;
pub mod link_bandwidth;
pub mod notification;
pub mod open;
pub mod prefix;
pub mod update;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rfc7606_tests;

pub use attribute_error::{AttributeError, AttributeFault, ErrorAction};
pub use error::{DecodeError, HeaderError, NlriField, OpenError, OpenMalformed, UpdateError};
pub use notification::Notification;
pub use open::{Capability, GracefulRestartFamily, Open};
pub use update::{Attribute, Context, Update};

pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4: the largest message without RFC 8654 extended messages.
pub const MAX_MESSAGE_LEN: usize = 4096;

pub mod message_type {
    use super::iana::MessageType as M;
    pub const OPEN: u8 = M::Open.code();
    pub const UPDATE: u8 = M::Update.code();
    pub const NOTIFICATION: u8 = M::Notification.code();
    pub const KEEPALIVE: u8 = M::Keepalive.code();
    pub const ROUTE_REFRESH: u8 = M::RouteRefresh.code();
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    /// RFC 2918 §3; the octet between AFI and SAFI is the RFC 7313 §3.2 message subtype.
    RouteRefresh {
        afi: u16,
        safi: u8,
        subtype: RefreshSubtype,
    },
}

/// The Message Subtype of a ROUTE-REFRESH (RFC 7313 §3.2; "Reserved" in RFC 2918).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshSubtype {
    /// 0: a route refresh request (RFC 2918).
    #[default]
    Request,
    /// 1: Beginning of Route Refresh (BoRR), before the re-advertisement.
    Begin,
    /// 2: End of Route Refresh (EoRR), after it.
    End,
    /// Any other value (255 is reserved): RFC 7313 §5 says ignore the message.
    Other(u8),
}

impl RefreshSubtype {
    pub fn from_code(code: u8) -> RefreshSubtype {
        match code {
            0 => RefreshSubtype::Request,
            1 => RefreshSubtype::Begin,
            2 => RefreshSubtype::End,
            other => RefreshSubtype::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            RefreshSubtype::Request => 0,
            RefreshSubtype::Begin => 1,
            RefreshSubtype::End => 2,
            RefreshSubtype::Other(code) => code,
        }
    }
}

impl Message {
    pub fn message_type(&self) -> iana::MessageType {
        use iana::MessageType as M;
        match self {
            Message::Open(_) => M::Open,
            Message::Update(_) => M::Update,
            Message::Notification(_) => M::Notification,
            Message::Keepalive => M::Keepalive,
            Message::RouteRefresh { .. } => M::RouteRefresh,
        }
    }

    /// The registry name ("OPEN", "UPDATE"...), for logs.
    pub fn kind(&self) -> &'static str {
        self.message_type().label().unwrap_or("message")
    }

    /// Appends the framed message to `out`.
    pub fn encode(&self, ctx: Context, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0xff; 16]);
        out.extend_from_slice(&[0, 0]);
        let kind = match self {
            Message::Open(open) => {
                out.push(message_type::OPEN);
                open.encode_body(out);
                message_type::OPEN
            }
            Message::Update(update) => {
                out.push(message_type::UPDATE);
                update.encode_body(ctx, out);
                message_type::UPDATE
            }
            Message::Notification(n) => {
                out.push(message_type::NOTIFICATION);
                out.push(n.code);
                out.push(n.subcode);
                let room = MAX_MESSAGE_LEN - HEADER_LEN - 2;
                out.extend_from_slice(&n.data[..n.data.len().min(room)]);
                message_type::NOTIFICATION
            }
            Message::Keepalive => {
                out.push(message_type::KEEPALIVE);
                message_type::KEEPALIVE
            }
            Message::RouteRefresh { afi, safi, subtype } => {
                out.push(message_type::ROUTE_REFRESH);
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(subtype.code());
                out.push(*safi);
                message_type::ROUTE_REFRESH
            }
        };
        debug_assert_eq!(out[start + 18], kind);
        let len = (out.len() - start) as u16;
        out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
    }

    pub fn to_bytes(&self, ctx: Context) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(ctx, &mut out);
        out
    }
}

/// Reads one message from the front of `buf`. `Ok(None)`: need more bytes. `Err`: why
/// the message is refused; [`DecodeError::notification`] is what to send before closing
/// (RFC 4271 §6.1-6.3, RFC 7606).
pub fn decode(buf: &[u8], ctx: Context) -> Result<Option<(Message, usize)>, DecodeError> {
    use iana::MessageType as M;
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(HeaderError::NotSynchronized.into());
    }
    let length = u16::from_be_bytes([buf[16], buf[17]]);
    let len = usize::from(length);
    let kind = M::from_code(buf[18]);
    let min_len = match kind {
        M::Open => 29,
        M::Update => 23,
        M::Notification => 21,
        M::Keepalive => 19,
        M::RouteRefresh => 23,
        M::Other(kind) => return Err(HeaderError::BadType { kind }.into()),
    };
    // RFC 7313 §5: a BoRR or EoRR (subtype 1 or 2) whose body is not 4 octets is a
    // ROUTE-REFRESH Message Error carrying the whole message (not a header error).
    if kind == M::RouteRefresh && len != min_len && len > HEADER_LEN + 2 && len <= MAX_MESSAGE_LEN {
        let Some(&subtype) = buf.get(HEADER_LEN + 2) else {
            return Ok(None);
        };
        if matches!(
            RefreshSubtype::from_code(subtype),
            RefreshSubtype::Begin | RefreshSubtype::End
        ) {
            let Some(frame) = buf.get(..len) else {
                return Ok(None);
            };
            return Err(DecodeError::RouteRefreshLength {
                message: frame.to_vec(),
            });
        }
    }
    let exact = matches!(kind, M::Keepalive | M::RouteRefresh);
    if len < min_len || len > MAX_MESSAGE_LEN || (exact && len != min_len) {
        if kind == M::Notification {
            return Err(DecodeError::Notification { length });
        }
        return Err(HeaderError::BadLength { length, kind }.into());
    }
    let Some(frame) = buf.get(..len) else {
        return Ok(None);
    };
    let body = &frame[HEADER_LEN..];
    let message = match kind {
        M::Open => Message::Open(Open::decode_body(body)?),
        M::Update => Message::Update(Update::decode_body(body, ctx)?),
        M::Notification => {
            Message::Notification(Notification::new(body[0], body[1], body[2..].to_vec()))
        }
        M::Keepalive => Message::Keepalive,
        M::RouteRefresh | M::Other(_) => Message::RouteRefresh {
            afi: u16::from_be_bytes([body[0], body[1]]),
            safi: body[3],
            subtype: RefreshSubtype::from_code(body[2]),
        },
    };
    Ok(Some((message, len)))
}
