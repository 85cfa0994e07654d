//! NLRI prefixes: length in bits, then the fewest octets that hold them (RFC 4271 §4.3,
//! RFC 4760 §5). Shared by plain NLRI, withdrawn routes and MP_(UN)REACH_NLRI.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Address family identifiers (RFC 4760) we speak.
pub const AFI_IPV4: u16 = super::iana::Afi::Ipv4.code();
pub const AFI_IPV6: u16 = super::iana::Afi::Ipv6.code();
pub const SAFI_UNICAST: u8 = super::iana::Safi::Unicast.code();

/// Octets one prefix takes on the wire.
pub fn encoded_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

pub fn encode(prefix: &IpNet, out: &mut Vec<u8>) {
    let len = prefix.prefix_len();
    out.push(len);
    let octets = usize::from(len).div_ceil(8);
    match prefix.trunc() {
        IpNet::V4(p) => out.extend_from_slice(&p.network().octets()[..octets]),
        IpNet::V6(p) => out.extend_from_slice(&p.network().octets()[..octets]),
    }
}

/// Why a prefix list could not be read. The caller picks the NOTIFICATION or RFC 7606
/// action, because that depends on where the list sits in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// The length octet says more bits than the family has.
    LengthTooLong,
    /// The prefix runs past the end of its field.
    Truncated,
}

/// Decodes a whole field of prefixes of one family (`afi`). Host bits past the length
/// are ignored, as every implementation does.
pub fn decode_all(afi: u16, mut field: &[u8]) -> Result<Vec<IpNet>, PrefixError> {
    let max_bits = if afi == AFI_IPV6 { 128 } else { 32 };
    let mut prefixes = Vec::new();
    while let Some((&len, rest)) = field.split_first() {
        if len > max_bits {
            return Err(PrefixError::LengthTooLong);
        }
        let octets = usize::from(len).div_ceil(8);
        if rest.len() < octets {
            return Err(PrefixError::Truncated);
        }
        let prefix = if afi == AFI_IPV6 {
            let mut address = [0u8; 16];
            address[..octets].copy_from_slice(&rest[..octets]);
            Ipv6Net::new(Ipv6Addr::from(address), len)
                .map(|p| IpNet::V6(p.trunc()))
                .map_err(|_| PrefixError::LengthTooLong)?
        } else {
            let mut address = [0u8; 4];
            address[..octets].copy_from_slice(&rest[..octets]);
            Ipv4Net::new(Ipv4Addr::from(address), len)
                .map(|p| IpNet::V4(p.trunc()))
                .map_err(|_| PrefixError::LengthTooLong)?
        };
        prefixes.push(prefix);
        field = &rest[octets..];
    }
    Ok(prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_use_the_fewest_octets() {
        let mut out = Vec::new();
        for p in ["10.0.0.0/8", "192.168.1.7/32", "0.0.0.0/0", "2001:db8::/33"] {
            encode(&p.parse().unwrap(), &mut out);
        }
        assert_eq!(
            out,
            [
                8, 10, 32, 192, 168, 1, 7, 0, 33, 0x20, 0x01, 0x0d, 0xb8, 0x00
            ]
        );
        assert_eq!(encoded_len(&"2001:db8::/33".parse().unwrap()), 6);
    }

    #[test]
    fn decode_rejects_overlong_and_truncated() {
        assert_eq!(
            decode_all(AFI_IPV4, &[33, 1, 2, 3, 4, 5]),
            Err(PrefixError::LengthTooLong)
        );
        assert_eq!(
            decode_all(AFI_IPV4, &[24, 1, 2]),
            Err(PrefixError::Truncated)
        );
        assert_eq!(
            decode_all(AFI_IPV4, &[24, 10, 1, 2, 32, 10, 1, 2, 3]).unwrap(),
            vec![
                "10.1.2.0/24".parse::<IpNet>().unwrap(),
                "10.1.2.3/32".parse().unwrap()
            ]
        );
    }
}
