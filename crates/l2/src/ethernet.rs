//! Ethernet II framing (IEEE 802.3 with an EtherType): the only link layer the
//! responder speaks. VLAN tags are not parsed: a tagged frame arrives on the VLAN
//! sub-interface already untagged, which is where the responder listens.

use std::fmt;

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const HEADER_LEN: usize = 14;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (as in /sys/class/net/*/address).
    pub fn parse(text: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut parts = text.trim().split(':');
        for byte in &mut out {
            *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The Ethernet header of a received frame and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub destination: Mac,
    pub source: Mac,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn parse(bytes: &'a [u8]) -> Option<Frame<'a>> {
        let header = bytes.get(..HEADER_LEN)?;
        Some(Frame {
            destination: Mac(header[0..6].try_into().ok()?),
            source: Mac(header[6..12].try_into().ok()?),
            ethertype: u16::from_be_bytes([header[12], header[13]]),
            payload: &bytes[HEADER_LEN..],
        })
    }
}

/// Writes an Ethernet header followed by `payload`.
pub fn build(destination: Mac, source: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&destination.0);
    out.extend_from_slice(&source.0);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_text() {
        let mac = Mac::parse("02:00:5e:10:00:0a").unwrap();
        assert_eq!(mac.0, [2, 0, 0x5e, 0x10, 0, 0x0a]);
        assert_eq!(mac.to_string(), "02:00:5e:10:00:0a");
        assert_eq!(Mac::parse("02:00:5e:10:00"), None);
        assert_eq!(Mac::parse("02:00:5e:10:00:0a:01"), None);
        assert!(Mac::BROADCAST.is_multicast());
    }

    #[test]
    fn short_frame_is_rejected() {
        assert_eq!(Frame::parse(&[0u8; 13]), None);
        let f = Frame::parse(&[0u8; 14]).unwrap();
        assert!(f.payload.is_empty());
    }
}
