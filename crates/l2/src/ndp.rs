//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitation parsing, Neighbor
//! Advertisement building, solicited-node multicast addresses (RFC 4291 §2.7.1) and
//! their Ethernet MACs (RFC 2464 §7).

use std::net::Ipv6Addr;

use crate::ethernet::{self, ETHERTYPE_IPV6, Mac};

const IPV6_HEADER_LEN: usize = 40;
const NEXT_HEADER_ICMPV6: u8 = 58;
const TYPE_NEIGHBOR_SOLICITATION: u8 = 135;
const TYPE_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LINK_LAYER: u8 = 1;
const OPTION_TARGET_LINK_LAYER: u8 = 2;
/// RFC 4861 §7.1.1/§7.1.2: ND messages are only valid with hop limit 255, which
/// proves they were not forwarded by a router.
const ND_HOP_LIMIT: u8 = 255;
/// ICMPv6 header (4) + reserved/flags (4) + target (16).
const ND_FIXED_LEN: usize = 24;

/// A validated Neighbor Solicitation (RFC 4861 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    pub source: Ipv6Addr,
    pub destination: Ipv6Addr,
    pub target: Ipv6Addr,
    /// The Source Link-Layer Address option, if present.
    pub source_mac: Option<Mac>,
}

/// Why an IPv6 payload is not a Neighbor Solicitation we may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpError {
    Truncated,
    NotIpv6,
    /// Next header is not ICMPv6 (extension headers are not followed: NDP never uses them).
    NotIcmpv6,
    /// ICMPv6, but not a Neighbor Solicitation.
    NotSolicitation,
    /// RFC 4861 §7.1.1 validity checks: hop limit, code, checksum, length, target,
    /// option lengths, no SLLA with an unspecified source.
    Invalid,
}

impl Solicitation {
    /// Parses and validates the IPv6 payload of an Ethernet frame (RFC 4861 §7.1.1).
    pub fn parse(packet: &[u8]) -> Result<Solicitation, NdpError> {
        let header = packet.get(..IPV6_HEADER_LEN).ok_or(NdpError::Truncated)?;
        if header[0] >> 4 != 6 {
            return Err(NdpError::NotIpv6);
        }
        if header[6] != NEXT_HEADER_ICMPV6 {
            return Err(NdpError::NotIcmpv6);
        }
        let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        // Ethernet padding may follow; the IPv6 payload length says where ICMPv6 ends.
        let icmp = packet
            .get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)
            .ok_or(NdpError::Truncated)?;
        if icmp.first() != Some(&TYPE_NEIGHBOR_SOLICITATION) {
            return Err(NdpError::NotSolicitation);
        }
        let source = ipv6_at(header, 8);
        let destination = ipv6_at(header, 24);
        if header[7] != ND_HOP_LIMIT || icmp.len() < ND_FIXED_LEN || icmp[1] != 0 {
            return Err(NdpError::Invalid);
        }
        if checksum(source, destination, icmp) != 0 {
            return Err(NdpError::Invalid);
        }
        let target = ipv6_at(icmp, 8);
        if target.is_multicast() {
            return Err(NdpError::Invalid);
        }
        let source_mac = source_link_layer_option(&icmp[ND_FIXED_LEN..])?;
        // §7.1.1: with an unspecified source (DAD) the destination must be a
        // solicited-node address and there must be no source link-layer option.
        if source.is_unspecified()
            && (source_mac.is_some() || destination != solicited_node(target))
        {
            return Err(NdpError::Invalid);
        }
        Ok(Solicitation {
            source,
            destination,
            target,
            source_mac,
        })
    }

    /// RFC 4861 §7.2.4: the solicited advertisement, Solicited and Override set,
    /// unicast to the solicitor; to a DAD probe (unspecified source) Solicited is
    /// clear and it goes to all-nodes. `ethernet_source` is the frame's source MAC,
    /// used when the solicitation carried no link-layer option.
    pub fn advertisement_frame(&self, our_mac: Mac, ethernet_source: Mac) -> Vec<u8> {
        if self.source.is_unspecified() {
            return unsolicited_advertisement(our_mac, self.target);
        }
        let dst_mac = self.source_mac.unwrap_or(ethernet_source);
        advertisement(
            our_mac,
            dst_mac,
            self.target,
            self.source,
            AdvertFlags {
                solicited: true,
                override_: true,
            },
        )
    }
}

fn source_link_layer_option(mut options: &[u8]) -> Result<Option<Mac>, NdpError> {
    let mut found = None;
    while !options.is_empty() {
        let (kind, units) = match options {
            [kind, units, ..] => (*kind, usize::from(*units)),
            _ => return Err(NdpError::Invalid),
        };
        // RFC 4861 §4.6: a zero-length option is invalid and the packet is dropped.
        let len = units * 8;
        if len == 0 || len > options.len() {
            return Err(NdpError::Invalid);
        }
        if kind == OPTION_SOURCE_LINK_LAYER && len >= 8 {
            found = Some(Mac(options[2..8]
                .try_into()
                .map_err(|_| NdpError::Invalid)?));
        }
        options = &options[len..];
    }
    Ok(found)
}

#[derive(Debug, Clone, Copy)]
struct AdvertFlags {
    solicited: bool,
    override_: bool,
}

/// RFC 4861 §7.2.6: an unsolicited advertisement to all-nodes (ff02::1), Override
/// set and Solicited clear, so neighbours replace the cached link-layer address.
pub fn unsolicited_advertisement(our_mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    advertisement(
        our_mac,
        multicast_mac(all_nodes),
        target,
        all_nodes,
        AdvertFlags {
            solicited: false,
            override_: true,
        },
    )
}

/// An NA (RFC 4861 §4.4) with the Target Link-Layer Address option, from `target`
/// itself: the address is ours while we own it (§4.4: an address assigned to the
/// sending interface), so no link-local address has to be looked up.
fn advertisement(
    our_mac: Mac,
    dst_mac: Mac,
    target: Ipv6Addr,
    destination: Ipv6Addr,
    flags: AdvertFlags,
) -> Vec<u8> {
    let mut icmp = [0u8; ND_FIXED_LEN + 8];
    icmp[0] = TYPE_NEIGHBOR_ADVERTISEMENT;
    // Router flag (0x80) stays clear: we are not a router for this address.
    icmp[4] = (u8::from(flags.solicited) << 6) | (u8::from(flags.override_) << 5);
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = OPTION_TARGET_LINK_LAYER;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&our_mac.0);
    let sum = checksum(target, destination, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut ip = Vec::with_capacity(IPV6_HEADER_LEN + icmp.len());
    ip.extend_from_slice(&[0x60, 0, 0, 0]);
    ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip.push(NEXT_HEADER_ICMPV6);
    ip.push(ND_HOP_LIMIT);
    ip.extend_from_slice(&target.octets());
    ip.extend_from_slice(&destination.octets());
    ip.extend_from_slice(&icmp);
    ethernet::build(dst_mac, our_mac, ETHERTYPE_IPV6, &ip)
}

/// RFC 4291 §2.7.1: ff02::1:ffXX:XXXX from the low 24 bits of the address.
pub fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let o = address.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// RFC 2464 §7: 33:33 followed by the low 32 bits of the multicast address.
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header of RFC 8200 §8.1.
/// Over a packet whose checksum field is filled in, a correct one gives 0.
pub fn checksum(source: Ipv6Addr, destination: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = match pair {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                [hi] => u16::from_be_bytes([*hi, 0]),
                _ => 0,
            };
            sum = sum.wrapping_add(u32::from(word));
        }
    };
    add(&source.octets());
    add(&destination.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv6_at(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    if let Some(slice) = bytes.get(at..at + 16) {
        octets.copy_from_slice(slice);
    }
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const ASKER: Mac = Mac([0x02, 0, 0, 0, 0, 0x99]);

    fn addr(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    /// An NS from fd00::9 for fd00::64 to its solicited-node group, with an SLLA
    /// option; the checksum was computed by hand from the pseudo-header.
    fn solicitation_packet() -> Vec<u8> {
        let src = addr("fd00::9");
        let dst = solicited_node(addr("fd00::64"));
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&addr("fd00::64").octets());
        icmp.extend_from_slice(&[1, 1, 0x02, 0, 0, 0, 0, 0x99]);
        let sum = checksum(src, dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        ip.extend_from_slice(&icmp);
        ip
    }

    #[test]
    fn solicited_node_address_and_mac() {
        let group = solicited_node(addr("2001:db8::aabb:ccdd"));
        assert_eq!(group, addr("ff02::1:ffbb:ccdd"));
        assert_eq!(
            multicast_mac(group),
            Mac([0x33, 0x33, 0xff, 0xbb, 0xcc, 0xdd])
        );
        assert_eq!(
            multicast_mac(addr("ff02::1")),
            Mac([0x33, 0x33, 0, 0, 0, 1])
        );
    }

    #[test]
    fn checksum_matches_a_known_value() {
        // NS from :: to ff02::1:ff00:64 for fd00::64, no options. Sum worked out by
        // hand: pseudo-header words + 0x8700 + target words, folded, complemented.
        let icmp_with = |sum: u16| {
            let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            icmp.extend_from_slice(&addr("fd00::64").octets());
            icmp
        };
        let src = Ipv6Addr::UNSPECIFIED;
        let dst = addr("ff02::1:ff00:64");
        // ff02+0001+ff00+0064 + 0018 + 003a + 8700 + fd00+0064 = 0x3_831d -> 0x8320.
        let sum = checksum(src, dst, &icmp_with(0));
        assert_eq!(sum, !0x8320u16);
        assert_eq!(checksum(src, dst, &icmp_with(sum)), 0);
    }

    #[test]
    fn parses_a_solicitation() {
        let ns = Solicitation::parse(&solicitation_packet()).unwrap();
        assert_eq!(
            ns,
            Solicitation {
                source: addr("fd00::9"),
                destination: addr("ff02::1:ff00:64"),
                target: addr("fd00::64"),
                source_mac: Some(ASKER),
            }
        );
    }

    #[test]
    fn builds_the_solicited_advertisement_byte_exact() {
        let ns = Solicitation::parse(&solicitation_packet()).unwrap();
        let frame = ns.advertisement_frame(OURS, Mac::ZERO);
        let mut expected = vec![
            0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd, // eth
            0x60, 0, 0, 0, 0, 32, 58, 255, // ipv6: len 32, icmpv6, hop limit 255
        ];
        expected.extend_from_slice(&addr("fd00::64").octets());
        expected.extend_from_slice(&addr("fd00::9").octets());
        let icmp_at = expected.len();
        expected.extend_from_slice(&[136, 0, 0, 0, 0x60, 0, 0, 0]); // S|O
        expected.extend_from_slice(&addr("fd00::64").octets());
        expected.extend_from_slice(&[2, 1, 0x02, 0, 0, 0, 0, 0x01]);
        let sum = checksum(addr("fd00::64"), addr("fd00::9"), &expected[icmp_at..]);
        expected[icmp_at + 2..icmp_at + 4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(frame, expected);
        // and the checksum verifies
        assert_eq!(
            checksum(addr("fd00::64"), addr("fd00::9"), &frame[14 + 40..]),
            0
        );
    }

    #[test]
    fn unsolicited_advertisement_goes_to_all_nodes_with_override() {
        let frame = unsolicited_advertisement(OURS, addr("fd00::64"));
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&frame[14 + 24..14 + 40], &addr("ff02::1").octets());
        let icmp = &frame[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20, "Override only");
        assert_eq!(checksum(addr("fd00::64"), addr("ff02::1"), icmp), 0);
    }

    #[test]
    fn rejects_invalid_solicitations() {
        let good = solicitation_packet();
        let mut p = good.clone();
        p[7] = 64; // forwarded: hop limit not 255
        assert_eq!(Solicitation::parse(&p), Err(NdpError::Invalid));
        let mut p = good.clone();
        p[40 + 10] ^= 1; // corrupt the target: checksum fails
        assert_eq!(Solicitation::parse(&p), Err(NdpError::Invalid));
        let mut p = good.clone();
        p[40 + 25] = 0; // zero-length option
        let sum_src = addr("fd00::9");
        let sum_dst = addr("ff02::1:ff00:64");
        p[42] = 0;
        p[43] = 0;
        let sum = checksum(sum_src, sum_dst, &p[40..]);
        p[42..44].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Solicitation::parse(&p), Err(NdpError::Invalid));
        let mut p = good.clone();
        p[6] = 17;
        assert_eq!(Solicitation::parse(&p), Err(NdpError::NotIcmpv6));
        assert_eq!(Solicitation::parse(&good[..50]), Err(NdpError::Truncated));
        let mut p = good;
        p[40] = 128; // echo request
        assert_eq!(Solicitation::parse(&p), Err(NdpError::NotSolicitation));
    }
}
