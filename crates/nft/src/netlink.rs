//! nfnetlink framing for nf_tables, pure: messages with their (nested) attributes, the
//! batch that makes them one transaction, and the parsing of the kernel's answers.
//!
//! Every number is from linux/netlink.h, linux/netfilter/nfnetlink.h and
//! linux/netfilter/nf_tables.h. Netlink headers are host-endian; nf_tables attribute
//! payloads (numbers) are big-endian, as the kernel reads them with `nla_get_be32`.

/// `struct nlmsghdr` is 16 bytes, `struct nfgenmsg` 4.
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// "Create if it does not exist" (without NLM_F_EXCL: an existing object is no error).
pub const NLM_F_CREATE: u16 = 0x400;
/// Rules: append at the end of the chain.
pub const NLM_F_APPEND: u16 = 0x800;
/// Nested attribute flag (`NLA_F_NESTED`), set as libnftnl does.
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNETLINK_V0: u8 = 0;

/// The nf_tables message types used here (`enum nf_tables_msg_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    NewTable = 0,
    GetTable = 1,
    DelTable = 2,
    NewChain = 3,
    NewRule = 6,
    NewSet = 9,
}

/// Address families of tables (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4 = 2,
    Ipv6 = 10,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Attributes of one message, appended in order; nests close where they opened.
#[derive(Debug, Default, Clone)]
pub struct Attrs {
    buf: Vec<u8>,
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    pub fn bytes(mut self, kind: u16, data: &[u8]) -> Attrs {
        self.put(kind, data);
        self
    }

    fn put(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + align4(len) - len, 0);
    }

    /// A NUL-terminated string (table, chain, set and expression names).
    pub fn string(self, kind: u16, text: &str) -> Attrs {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.bytes(kind, &data)
    }

    pub fn be32(self, kind: u16, value: u32) -> Attrs {
        self.bytes(kind, &value.to_be_bytes())
    }

    pub fn be64(self, kind: u16, value: u64) -> Attrs {
        self.bytes(kind, &value.to_be_bytes())
    }

    pub fn nested(self, kind: u16, inner: Attrs) -> Attrs {
        self.bytes(kind | NLA_F_NESTED, &inner.buf)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One transaction: every message between BATCH_BEGIN and BATCH_END takes effect
/// together or not at all (the kernel aborts the whole batch on the first error).
#[derive(Debug, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    first_seq: u32,
    next_seq: u32,
}

impl Batch {
    pub fn new(first_seq: u32) -> Batch {
        let mut batch = Batch {
            buf: Vec::new(),
            first_seq,
            next_seq: first_seq,
        };
        batch.frame(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, &[]);
        batch
    }

    fn frame(&mut self, kind: u16, flags: u16, family: u8, attrs: &[u8]) {
        let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
        self.buf.extend_from_slice(&(len as u32).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.next_seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version, res_id (big-endian; the subsystem for the
        // batch markers, 0 otherwise).
        let res_id: u16 = if kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END {
            NFNL_SUBSYS_NFTABLES
        } else {
            0
        };
        self.buf.push(family);
        self.buf.push(NFNETLINK_V0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(attrs);
        self.next_seq = self.next_seq.wrapping_add(1);
    }

    /// Appends one nf_tables request; the kernel acknowledges each one.
    pub fn push(&mut self, kind: MsgType, family: Family, flags: u16, attrs: Attrs) {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind as u16;
        self.frame(
            kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            family as u8,
            &attrs.into_bytes(),
        );
    }

    /// The sequence numbers of the requests that expect an acknowledgement.
    pub fn acked(&self) -> std::ops::Range<u32> {
        self.first_seq.wrapping_add(1)..self.next_seq
    }

    /// The bytes to send, BATCH_END appended.
    pub fn finish(mut self) -> (Vec<u8>, std::ops::Range<u32>) {
        let acked = self.acked();
        self.frame(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, &[]);
        (self.buf, acked)
    }
}

/// A lone request (outside a batch: a GET), asking for an acknowledgement.
pub fn request(kind: MsgType, family: Family, seq: u32, attrs: Attrs) -> Vec<u8> {
    let mut batch = Batch {
        buf: Vec::new(),
        first_seq: seq,
        next_seq: seq,
    };
    batch.push(kind, family, 0, attrs);
    batch.buf
}

/// One answer of the kernel to a request: `errno` 0 is an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub seq: u32,
    pub errno: i32,
}

/// What could not be read in the kernel's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A header whose length is shorter than a header or runs past the datagram.
    BadLength { at: usize },
    /// An NLMSG_ERROR too short to hold the error code.
    ShortError { at: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::BadLength { at } => {
                write!(f, "netlink message at byte {at} has a bad length")
            }
            DecodeError::ShortError { at } => {
                write!(f, "netlink error message at byte {at} is truncated")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(bytes))
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let bytes: [u8; 2] = buf.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_ne_bytes(bytes))
}

/// The acknowledgements and errors in one datagram from the kernel; other messages
/// (there are none for a batch of new objects) are skipped.
pub fn answers(buf: &[u8]) -> Result<Vec<Answer>, DecodeError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).ok_or(DecodeError::BadLength { at })? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() - at {
            return Err(DecodeError::BadLength { at });
        }
        let kind = u16_at(buf, at + 4).ok_or(DecodeError::BadLength { at })?;
        let seq = u32_at(buf, at + 8).ok_or(DecodeError::BadLength { at })?;
        match kind {
            NLMSG_ERROR => {
                // struct nlmsgerr: int error, then the request's header.
                if len < NLMSG_HDRLEN + 4 {
                    return Err(DecodeError::ShortError { at });
                }
                let code = u32_at(buf, at + NLMSG_HDRLEN).ok_or(DecodeError::ShortError { at })?;
                out.push(Answer {
                    seq,
                    errno: (code as i32).saturating_neg(),
                });
            }
            NLMSG_DONE => {}
            _ => {}
        }
        at += align4(len);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_frames_its_requests_and_counts_the_acknowledged_ones() {
        let mut batch = Batch::new(100);
        batch.push(
            MsgType::NewTable,
            Family::Ipv4,
            NLM_F_CREATE,
            Attrs::new().string(1, "oxlb"),
        );
        let (bytes, acked) = batch.finish();
        assert_eq!(acked, 101..102);
        // BEGIN (20) + NEWTABLE (20 + attr 4+5 padded to 12) + END (20).
        assert_eq!(bytes.len(), 20 + 32 + 20);
        // BATCH_BEGIN: type 0x10, res_id NFNL_SUBSYS_NFTABLES big-endian.
        assert_eq!(u16_at(&bytes, 4), Some(0x10));
        assert_eq!(&bytes[18..20], &[0, 10]);
        // NEWTABLE: (10 << 8) | 0, flags REQUEST|ACK|CREATE, seq 101, family ipv4.
        assert_eq!(u16_at(&bytes, 24), Some(0x0a00));
        assert_eq!(u16_at(&bytes, 26), Some(0x405));
        assert_eq!(u32_at(&bytes, 28), Some(101));
        assert_eq!(bytes[36], 2);
        assert_eq!(&bytes[40..49], &[9, 0, 1, 0, b'o', b'x', b'l', b'b', 0]);
        assert_eq!(u16_at(&bytes, 56), Some(0x11));
    }

    #[test]
    fn answers_are_read_and_garbage_is_an_error_not_a_panic() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&36u32.to_ne_bytes());
        msg.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&7u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&(-17i32).to_ne_bytes());
        msg.extend_from_slice(&[0; 16]);
        assert_eq!(answers(&msg), Ok(vec![Answer { seq: 7, errno: 17 }]));
        assert_eq!(answers(&msg[..20]), Err(DecodeError::BadLength { at: 0 }));
        let mut short = msg[..16].to_vec();
        short[0] = 16;
        assert_eq!(answers(&short), Err(DecodeError::ShortError { at: 0 }));
        assert_eq!(answers(&[]), Ok(vec![]));
    }
}
