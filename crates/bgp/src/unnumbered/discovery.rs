//! Which Router Advertisements name the peer of an unnumbered session, and what the
//! link looks like to the session meanwhile: pure decisions, the shell in
//! [`super::link`] feeds them.

use std::net::Ipv6Addr;

use super::ra::{RaError, RouterAdvertisement};

/// What the link of an unnumbered peer offers the session right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not looked at yet.
    Starting,
    /// No interface of that name on this node (yet).
    NoInterface { interface: String },
    /// The interface has no usable IPv6 link-local address (down, IPv6 off, or still in
    /// duplicate address detection): nothing to advertise or connect from.
    NoLinkLocal { interface: String },
    /// Advertising ourselves; no Router Advertisement from the other end yet.
    Waiting { interface: String, index: u32 },
    /// The raw ICMPv6 socket for Router Advertisements could not be set up.
    Failed { interface: String, error: String },
    /// The router on the link: its link-local address, scoped to `index`.
    Router {
        interface: String,
        index: u32,
        address: Ipv6Addr,
    },
}

impl LinkState {
    /// Where to connect to, once known.
    pub fn router(&self) -> Option<(Ipv6Addr, u32)> {
        match self {
            LinkState::Router { index, address, .. } => Some((*address, *index)),
            _ => None,
        }
    }

    /// Why no connection can be made yet, with the fix (None once the router is known).
    pub fn problem(&self) -> Option<String> {
        match self {
            LinkState::Starting | LinkState::Router { .. } => None,
            LinkState::NoInterface { interface } => Some(format!(
                "interface {interface} does not exist on this node: create it or set \
                 spec.interface to an interface this node has (retried when it appears)"
            )),
            LinkState::NoLinkLocal { interface } => Some(format!(
                "interface {interface} has no usable IPv6 link-local address (down, IPv6 \
                 disabled, or address still tentative): unnumbered BGP runs over IPv6 \
                 link-local; bring it up with IPv6 enabled"
            )),
            LinkState::Failed { interface, error } => Some(format!(
                "cannot send IPv6 Router Advertisements on {interface}: {error} (oxlb \
                 needs CAP_NET_RAW for unnumbered BGP)"
            )),
            LinkState::Waiting { interface, .. } => Some(format!(
                "no IPv6 Router Advertisement received on {interface} yet: the router \
                 must advertise on that link (FRR does for `neighbor {interface} \
                 interface`; otherwise `no ipv6 nd suppress-ra`)"
            )),
        }
    }
}

/// Why a received ICMPv6 message does not name a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// RFC 4861 §6.1.2: the source of an RA must be a link-local address.
    SourceNotLinkLocal,
    /// RFC 4861 §6.1.2: the hop limit must be 255 (sent by a node on this link).
    HopLimit(Option<u8>),
    Invalid(RaError),
}

/// The router's link-local address if `packet`, received from `source` with IPv6 hop
/// limit `hop_limit`, is a valid Router Advertisement (RFC 4861 §6.1.2).
pub fn router_from(
    source: Ipv6Addr,
    hop_limit: Option<u8>,
    packet: &[u8],
) -> Result<Ipv6Addr, Ignored> {
    RouterAdvertisement::decode(packet).map_err(Ignored::Invalid)?;
    if !source.is_unicast_link_local() {
        return Err(Ignored::SourceNotLinkLocal);
    }
    if hop_limit != Some(255) {
        return Err(Ignored::HopLimit(hop_limit));
    }
    Ok(source)
}

/// `IPPROTO_IPV6` and `IPV6_HOPLIMIT` (linux/in6.h): the ancillary data
/// `IPV6_RECVHOPLIMIT` asks for (RFC 3542 §6.3).
const IPPROTO_IPV6: i32 = 41;
const IPV6_HOPLIMIT: i32 = 52;

/// The hop limit in the ancillary data of a `recvmsg` (Linux `struct cmsghdr` layout:
/// a `size_t` length, then level and type as `int`, data aligned to `size_t`).
pub fn hop_limit_in(control: &[u8]) -> Option<u8> {
    let word = std::mem::size_of::<usize>();
    let align = |n: usize| n.div_ceil(word) * word;
    let header = align(word + 8);
    let mut rest = control;
    while rest.len() >= header {
        let len = usize::from_ne_bytes(rest[..word].try_into().ok()?);
        let level = i32::from_ne_bytes(rest[word..word + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(rest[word + 4..word + 8].try_into().ok()?);
        if len < header || len > rest.len() {
            return None;
        }
        if level == IPPROTO_IPV6 && kind == IPV6_HOPLIMIT && len >= header + 4 {
            let value = i32::from_ne_bytes(rest[header..header + 4].try_into().ok()?);
            return u8::try_from(value).ok();
        }
        rest = rest.get(align(len)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    fn ra() -> Vec<u8> {
        RouterAdvertisement::presence(None).encode()
    }

    #[test]
    fn an_advertisement_from_the_link_names_the_router() {
        assert_eq!(
            router_from(ip("fe80::1"), Some(255), &ra()),
            Ok(ip("fe80::1"))
        );
    }

    #[test]
    fn rfc_4861_validity_checks() {
        assert_eq!(
            router_from(ip("fd00::1"), Some(255), &ra()),
            Err(Ignored::SourceNotLinkLocal)
        );
        assert_eq!(
            router_from(ip("fe80::1"), Some(254), &ra()),
            Err(Ignored::HopLimit(Some(254)))
        );
        assert_eq!(
            router_from(ip("fe80::1"), None, &ra()),
            Err(Ignored::HopLimit(None))
        );
        assert_eq!(
            router_from(ip("fe80::1"), Some(255), &[135, 0, 0, 0]),
            Err(Ignored::Invalid(RaError::Short(4)))
        );
    }

    fn cmsg(level: i32, kind: i32, value: i32) -> Vec<u8> {
        let word = std::mem::size_of::<usize>();
        let header = (word + 8).div_ceil(word) * word;
        let mut out = (header + 4).to_ne_bytes().to_vec();
        out.extend(level.to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.resize(header, 0);
        out.extend(value.to_ne_bytes());
        out.resize((header + 4).div_ceil(word) * word, 0);
        out
    }

    #[test]
    fn finds_the_hop_limit_among_control_messages() {
        let mut control = cmsg(IPPROTO_IPV6, 50, 7); // IPV6_PKTINFO-like, skipped
        control.extend(cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, 255));
        assert_eq!(hop_limit_in(&control), Some(255));
        assert_eq!(hop_limit_in(&cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, 1)), Some(1));
        assert_eq!(hop_limit_in(&cmsg(0, IPV6_HOPLIMIT, 255)), None);
        assert_eq!(hop_limit_in(&[]), None);
    }

    #[test]
    fn problems_name_the_interface_and_the_fix() {
        let missing = LinkState::NoInterface {
            interface: "eth9".into(),
        };
        let text = missing.problem().unwrap();
        assert!(
            text.contains("eth9") && text.contains("spec.interface"),
            "{text}"
        );
        let found = LinkState::Router {
            interface: "eth9".into(),
            index: 4,
            address: ip("fe80::1"),
        };
        assert_eq!(found.problem(), None);
        assert_eq!(found.router(), Some((ip("fe80::1"), 4)));
    }

    proptest! {
        #[test]
        fn control_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = hop_limit_in(&bytes);
        }
    }
}
