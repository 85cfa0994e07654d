//! The responder's one decision, pure: given a received frame, the IPs this node owns
//! and the interface the frame came in on, either the reply to send back out of that
//! same interface or the reason to stay silent. The reasons double as metric labels.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::arp::{Arp, ArpError, Operation};
use crate::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV6, Frame, Mac};
use crate::ndp::{NdpError, Solicitation};

/// How one owned IP is announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedIp {
    /// The interfaces it is announced on (L2Advertisement `interfaces`); empty means
    /// every eligible interface.
    pub interfaces: Vec<String>,
}

/// The IPs this node currently owns (won the election for).
pub type OwnedSet = BTreeMap<IpAddr, OwnedIp>;

/// The interface a frame arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Mac,
    /// Whether interface selection allows announcing on it at all (up, not enslaved,
    /// not loopback/NOARP, not excluded by name).
    pub eligible: bool,
}

/// A frame to send out of the interface the request came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The owned IP that was asked for (the metric label).
    pub ip: IpAddr,
    pub frame: Vec<u8>,
}

/// Why a frame gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Neither ARP nor IPv6.
    NotArp,
    /// ARP, but a reply or an announcement (nothing to answer).
    NotRequest,
    /// IPv6, but not a Neighbor Solicitation.
    NotSolicitation,
    /// Truncated or failing the RFC 826 / RFC 4861 §7.1.1 checks.
    Malformed,
    /// Sent by this interface itself.
    OwnFrame,
    /// The asked-for IP is not owned by this node.
    NotOwner,
    /// Owned, but not to be announced on this interface.
    InterfaceNotAllowed,
}

impl DropReason {
    /// The metric label / log field.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotArp => "not_arp",
            DropReason::NotRequest => "not_request",
            DropReason::NotSolicitation => "not_solicitation",
            DropReason::Malformed => "malformed",
            DropReason::OwnFrame => "own_frame",
            DropReason::NotOwner => "not_owner",
            DropReason::InterfaceNotAllowed => "interface_not_allowed",
        }
    }
}

/// Decides whether and how to answer `bytes` (a whole Ethernet frame) received on
/// `interface`.
pub fn decide(bytes: &[u8], owned: &OwnedSet, interface: &Interface) -> Result<Reply, DropReason> {
    let frame = Frame::parse(bytes).ok_or(DropReason::Malformed)?;
    if frame.source == interface.mac {
        return Err(DropReason::OwnFrame);
    }
    match frame.ethertype {
        ETHERTYPE_ARP => decide_arp(frame.payload, owned, interface),
        ETHERTYPE_IPV6 => decide_ndp(&frame, owned, interface),
        _ => Err(DropReason::NotArp),
    }
}

fn decide_arp(
    payload: &[u8],
    owned: &OwnedSet,
    interface: &Interface,
) -> Result<Reply, DropReason> {
    let arp = Arp::parse(payload).map_err(|e| match e {
        ArpError::UnknownOperation => DropReason::NotRequest,
        ArpError::Truncated | ArpError::NotEthernet | ArpError::NotIpv4 => DropReason::Malformed,
    })?;
    // A request whose sender IP equals its target IP is someone's announcement
    // (RFC 5227 §3), not a question. A probe (sender IP 0.0.0.0, RFC 5227 §2.1.1)
    // for an owned address is answered: that is how the owner defends it.
    if arp.operation != Operation::Request || arp.sender_ip == arp.target_ip {
        return Err(DropReason::NotRequest);
    }
    if arp.sender_mac.is_multicast() {
        return Err(DropReason::Malformed);
    }
    let ip = IpAddr::V4(arp.target_ip);
    allowed(ip, owned, interface)?;
    Ok(Reply {
        ip,
        frame: arp.reply_frame(interface.mac),
    })
}

fn decide_ndp(
    frame: &Frame<'_>,
    owned: &OwnedSet,
    interface: &Interface,
) -> Result<Reply, DropReason> {
    let ns = Solicitation::parse(frame.payload).map_err(|e| match e {
        NdpError::NotIcmpv6 | NdpError::NotSolicitation => DropReason::NotSolicitation,
        NdpError::Truncated | NdpError::NotIpv6 | NdpError::Invalid => DropReason::Malformed,
    })?;
    let ip = IpAddr::V6(ns.target);
    allowed(ip, owned, interface)?;
    Ok(Reply {
        ip,
        frame: ns.advertisement_frame(interface.mac, frame.source),
    })
}

fn allowed(ip: IpAddr, owned: &OwnedSet, interface: &Interface) -> Result<(), DropReason> {
    let entry = owned.get(&ip).ok_or(DropReason::NotOwner)?;
    if !interface.eligible
        || !(entry.interfaces.is_empty() || entry.interfaces.contains(&interface.name))
    {
        return Err(DropReason::InterfaceNotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::{arp, ndp};

    const OURS: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
    const ASKER: Mac = Mac([0x02, 0, 0, 0, 0, 0x99]);

    fn eth1() -> Interface {
        Interface {
            name: "eth1".into(),
            mac: OURS,
            eligible: true,
        }
    }

    fn owned(ip: &str, interfaces: &[&str]) -> OwnedSet {
        let mut set = OwnedSet::new();
        set.insert(
            ip.parse().unwrap(),
            OwnedIp {
                interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            },
        );
        set
    }

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        let arp = arp::Arp {
            operation: arp::Operation::Request,
            sender_mac: ASKER,
            sender_ip: Ipv4Addr::new(10, 0, 0, 9),
            target_mac: Mac::ZERO,
            target_ip: target,
        };
        crate::ethernet::build(Mac::BROADCAST, ASKER, ETHERTYPE_ARP, &arp.to_bytes())
    }

    fn neighbor_solicitation(target: Ipv6Addr) -> Vec<u8> {
        let src: Ipv6Addr = "fd00::9".parse().unwrap();
        let dst = ndp::solicited_node(target);
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&ASKER.0);
        let sum = ndp::checksum(src, dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 255];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        ip.extend_from_slice(&icmp);
        crate::ethernet::build(ndp::multicast_mac(dst), ASKER, ETHERTYPE_IPV6, &ip)
    }

    #[test]
    fn answers_arp_for_an_owned_ip() {
        let ip = Ipv4Addr::new(10, 0, 0, 100);
        let reply = decide(&arp_request(ip), &owned("10.0.0.100", &[]), &eth1()).unwrap();
        assert_eq!(reply.ip, IpAddr::V4(ip));
        let parsed = Arp::parse(&reply.frame[14..]).unwrap();
        assert_eq!(parsed.sender_mac, OURS);
        assert_eq!(&reply.frame[0..6], &ASKER.0);
    }

    #[test]
    fn answers_ns_for_an_owned_ip() {
        let ip: Ipv6Addr = "fd00::64".parse().unwrap();
        let reply = decide(
            &neighbor_solicitation(ip),
            &owned("fd00::64", &["eth1"]),
            &eth1(),
        )
        .unwrap();
        assert_eq!(reply.ip, IpAddr::V6(ip));
        assert_eq!(&reply.frame[0..6], &ASKER.0);
    }

    #[test]
    fn stays_silent_with_the_right_reason() {
        let ip = Ipv4Addr::new(10, 0, 0, 100);
        let req = arp_request(ip);
        assert_eq!(
            decide(&req, &owned("10.0.0.101", &[]), &eth1()),
            Err(DropReason::NotOwner)
        );
        assert_eq!(
            decide(&req, &owned("10.0.0.100", &["eth2"]), &eth1()),
            Err(DropReason::InterfaceNotAllowed)
        );
        let ineligible = Interface {
            eligible: false,
            ..eth1()
        };
        assert_eq!(
            decide(&req, &owned("10.0.0.100", &[]), &ineligible),
            Err(DropReason::InterfaceNotAllowed)
        );
        let own = Interface {
            mac: ASKER,
            ..eth1()
        };
        assert_eq!(
            decide(&req, &owned("10.0.0.100", &[]), &own),
            Err(DropReason::OwnFrame)
        );
        let garp = arp::gratuitous_request(ASKER, ip);
        assert_eq!(
            decide(&garp, &owned("10.0.0.100", &[]), &eth1()),
            Err(DropReason::NotRequest)
        );
        assert_eq!(
            decide(&req[..20], &owned("10.0.0.100", &[]), &eth1()),
            Err(DropReason::Malformed)
        );
        let mut ipv4 = req.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(
            decide(&ipv4, &owned("10.0.0.100", &[]), &eth1()),
            Err(DropReason::NotArp)
        );
        let v6: Ipv6Addr = "fd00::64".parse().unwrap();
        assert_eq!(
            decide(&neighbor_solicitation(v6), &owned("fd00::65", &[]), &eth1()),
            Err(DropReason::NotOwner)
        );
    }

    #[test]
    fn answers_an_rfc5227_probe() {
        let ip = Ipv4Addr::new(10, 0, 0, 100);
        let mut probe = arp_request(ip);
        probe[28..32].copy_from_slice(&[0, 0, 0, 0]);
        let reply = decide(&probe, &owned("10.0.0.100", &[]), &eth1()).unwrap();
        let parsed = Arp::parse(&reply.frame[14..]).unwrap();
        assert_eq!(parsed.target_ip, Ipv4Addr::UNSPECIFIED);
    }
}
