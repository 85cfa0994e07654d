//! ARP for IPv4 over Ethernet (RFC 826) and gratuitous ARP (RFC 5227 §3).

use std::net::Ipv4Addr;

use crate::ethernet::{self, ETHERTYPE_ARP, Mac};

/// RFC 826 "ar$op".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
}

/// An ARP packet for the (Ethernet, IPv4) pair, the only one RFC 826 is used for here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub operation: Operation,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// Why an ARP payload is not one we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// Shorter than the 28 bytes of an Ethernet/IPv4 ARP packet.
    Truncated,
    /// Hardware type not Ethernet (1) or address lengths not 6/4 (RFC 826 ar$hrd, ar$hln).
    NotEthernet,
    /// Protocol type not IPv4 (0x0800).
    NotIpv4,
    /// Opcode other than request (1) or reply (2), e.g. RARP/InARP.
    UnknownOperation,
}

const LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

impl Arp {
    /// Parses the ARP payload of an Ethernet frame. Trailing bytes (Ethernet padding
    /// to 60 bytes) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Arp, ArpError> {
        let p = payload.get(..LEN).ok_or(ArpError::Truncated)?;
        let u16_at = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        if u16_at(0) != HTYPE_ETHERNET || p[4] != 6 {
            return Err(ArpError::NotEthernet);
        }
        if u16_at(2) != PTYPE_IPV4 || p[5] != 4 {
            return Err(ArpError::NotIpv4);
        }
        let operation = match u16_at(6) {
            1 => Operation::Request,
            2 => Operation::Reply,
            _ => return Err(ArpError::UnknownOperation),
        };
        let mac = |i: usize| Mac([p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], p[i + 5]]);
        let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
        Ok(Arp {
            operation,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// The 28-byte ARP payload.
    pub fn to_bytes(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        out[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        out[4] = 6;
        out[5] = 4;
        let op: u16 = match self.operation {
            Operation::Request => 1,
            Operation::Reply => 2,
        };
        out[6..8].copy_from_slice(&op.to_be_bytes());
        out[8..14].copy_from_slice(&self.sender_mac.0);
        out[14..18].copy_from_slice(&self.sender_ip.octets());
        out[18..24].copy_from_slice(&self.target_mac.0);
        out[24..28].copy_from_slice(&self.target_ip.octets());
        out
    }

    /// RFC 826 "Packet Reception": the answer to a request for `self.target_ip`,
    /// swapping sender and target and filling in our hardware address, sent unicast
    /// to the requester.
    pub fn reply_frame(&self, our_mac: Mac) -> Vec<u8> {
        let reply = Arp {
            operation: Operation::Reply,
            sender_mac: our_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        };
        ethernet::build(self.sender_mac, our_mac, ETHERTYPE_ARP, &reply.to_bytes())
    }
}

/// Gratuitous ARP as an RFC 5227 §3 "ARP Announcement": a broadcast request whose
/// sender and target IP are both the address, target hardware address zero.
pub fn gratuitous_request(our_mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    let arp = Arp {
        operation: Operation::Request,
        sender_mac: our_mac,
        sender_ip: ip,
        target_mac: Mac::ZERO,
        target_ip: ip,
    };
    ethernet::build(Mac::BROADCAST, our_mac, ETHERTYPE_ARP, &arp.to_bytes())
}

/// Gratuitous ARP as a broadcast reply (sender IP = target IP). Some hosts only
/// update their caches from replies, so both forms are sent on take-over.
pub fn gratuitous_reply(our_mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    let arp = Arp {
        operation: Operation::Reply,
        sender_mac: our_mac,
        sender_ip: ip,
        target_mac: Mac::BROADCAST,
        target_ip: ip,
    };
    ethernet::build(Mac::BROADCAST, our_mac, ETHERTYPE_ARP, &arp.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const ASKER: Mac = Mac([0x02, 0, 0, 0, 0, 0x99]);

    // A request "who has 10.0.0.100? tell 10.0.0.9" as arping sends it (Ethernet
    // broadcast, target MAC zero), padded to 60 bytes on the wire.
    fn request_frame() -> Vec<u8> {
        let mut f = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0x06, // eth
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
            0x02, 0, 0, 0, 0, 0x99, 10, 0, 0, 9, // sha spa
            0, 0, 0, 0, 0, 0, 10, 0, 0, 100, // tha tpa
        ];
        f.resize(60, 0);
        f
    }

    #[test]
    fn parses_a_request_byte_exact() {
        let frame = request_frame();
        let eth = ethernet::Frame::parse(&frame).unwrap();
        assert_eq!(eth.ethertype, ETHERTYPE_ARP);
        let arp = Arp::parse(eth.payload).unwrap();
        assert_eq!(
            arp,
            Arp {
                operation: Operation::Request,
                sender_mac: ASKER,
                sender_ip: Ipv4Addr::new(10, 0, 0, 9),
                target_mac: Mac::ZERO,
                target_ip: Ipv4Addr::new(10, 0, 0, 100),
            }
        );
        assert_eq!(&arp.to_bytes()[..], &frame[14..42]);
    }

    #[test]
    fn builds_the_reply_byte_exact() {
        let frame = request_frame();
        let arp = Arp::parse(&frame[14..]).unwrap();
        let expected: Vec<u8> = vec![
            0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // eth
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // op reply
            0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 100, // sha = ours, spa = asked ip
            0x02, 0, 0, 0, 0, 0x99, 10, 0, 0, 9, // tha/tpa = asker
        ];
        assert_eq!(arp.reply_frame(OURS), expected);
    }

    #[test]
    fn builds_gratuitous_request_and_reply() {
        let ip = Ipv4Addr::new(10, 0, 0, 100);
        let req = gratuitous_request(OURS, ip);
        assert_eq!(&req[0..6], &[0xff; 6]);
        assert_eq!(
            &req[14..],
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 10, 0,
                0, 100
            ]
        );
        let rep = Arp::parse(&gratuitous_reply(OURS, ip)[14..]).unwrap();
        assert_eq!(rep.operation, Operation::Reply);
        assert_eq!((rep.sender_ip, rep.target_ip), (ip, ip));
        assert_eq!(rep.target_mac, Mac::BROADCAST);
    }

    #[test]
    fn rejects_what_is_not_ethernet_ipv4() {
        let frame = request_frame();
        let mut p = frame[14..42].to_vec();
        assert_eq!(Arp::parse(&p[..27]), Err(ArpError::Truncated));
        p[1] = 6; // IEEE 802 hardware type
        assert_eq!(Arp::parse(&p), Err(ArpError::NotEthernet));
        p[1] = 1;
        p[2] = 0x86;
        assert_eq!(Arp::parse(&p), Err(ArpError::NotIpv4));
        p[2] = 0x08;
        p[7] = 3; // RARP request
        assert_eq!(Arp::parse(&p), Err(ArpError::UnknownOperation));
    }
}
