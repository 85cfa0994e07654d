//! ICMPv6 Router Advertisements (RFC 4861 §4.2): the codec, pure.
//!
//! An unnumbered BGP peer has no address in the config: each side learns the other's
//! link-local address from its Router Advertisements (what FRR's `neighbor IFNAME
//! interface` does, RFC 8950 unnumbered practice). The checksum is left zero on encode:
//! the kernel fills it in on raw ICMPv6 sockets (RFC 3542 §3.1) and checks it on receive.

use std::time::Duration;

/// ICMPv6 type of a Router Advertisement (RFC 4861 §4.2).
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Option type: Source Link-Layer Address (RFC 4861 §4.6.1).
const SOURCE_LINK_LAYER: u8 = 1;
/// Type, code, checksum, hop limit, flags, lifetime, reachable time, retrans timer.
const HEADER_LEN: usize = 16;

/// The fields of a Router Advertisement oxlb sends or reads. oxlb advertises only
/// itself: no prefixes, not a default router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvertisement {
    /// 0: unspecified (hosts keep their own).
    pub cur_hop_limit: u8,
    pub managed: bool,
    pub other: bool,
    /// Router Lifetime in seconds; 0: not a default router (RFC 4861 §4.2).
    pub router_lifetime: u16,
    /// Milliseconds; 0: unspecified.
    pub reachable_time: u32,
    /// Milliseconds; 0: unspecified.
    pub retrans_timer: u32,
    /// The sender's MAC address (Ethernet: 6 octets), when given.
    pub source_link_layer: Option<[u8; 6]>,
}

impl RouterAdvertisement {
    /// What an unnumbered BGP speaker sends: only its presence. Router Lifetime 0 so
    /// the router on the link does not make this node its default router; FRR learns
    /// the neighbour from any RA, whatever the lifetime.
    pub fn presence(mac: Option<[u8; 6]>) -> RouterAdvertisement {
        RouterAdvertisement {
            cur_hop_limit: 0,
            managed: false,
            other: false,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            source_link_layer: mac,
        }
    }

    /// The ICMPv6 message (checksum zero, see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 8);
        out.extend([ROUTER_ADVERTISEMENT, 0, 0, 0, self.cur_hop_limit]);
        out.push(u8::from(self.managed) << 7 | u8::from(self.other) << 6);
        out.extend(self.router_lifetime.to_be_bytes());
        out.extend(self.reachable_time.to_be_bytes());
        out.extend(self.retrans_timer.to_be_bytes());
        if let Some(mac) = self.source_link_layer {
            // Length in units of 8 octets (RFC 4861 §4.6).
            out.extend([SOURCE_LINK_LAYER, 1]);
            out.extend(mac);
        }
        out
    }

    /// Reads a Router Advertisement, with the validity checks of RFC 4861 §6.1.2 that
    /// concern the message itself (the source address and hop limit are the caller's:
    /// [`super::discovery::router_from`]). Unknown options are skipped (§4.6).
    pub fn decode(bytes: &[u8]) -> Result<RouterAdvertisement, RaError> {
        if bytes.len() < HEADER_LEN {
            return Err(RaError::Short(bytes.len()));
        }
        if bytes[0] != ROUTER_ADVERTISEMENT {
            return Err(RaError::NotRouterAdvertisement(bytes[0]));
        }
        if bytes[1] != 0 {
            return Err(RaError::Code(bytes[1]));
        }
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut ra = RouterAdvertisement {
            cur_hop_limit: bytes[4],
            managed: bytes[5] & 0x80 != 0,
            other: bytes[5] & 0x40 != 0,
            router_lifetime: u16::from_be_bytes([bytes[6], bytes[7]]),
            reachable_time: u32_at(8),
            retrans_timer: u32_at(12),
            source_link_layer: None,
        };
        let mut options = &bytes[HEADER_LEN..];
        while !options.is_empty() {
            let [kind, units, ..] = *options else {
                return Err(RaError::TruncatedOption);
            };
            // §6.1.2: every option must have a length greater than zero.
            let len = usize::from(units) * 8;
            if len == 0 {
                return Err(RaError::ZeroLengthOption);
            }
            let Some(option) = options.get(..len) else {
                return Err(RaError::TruncatedOption);
            };
            if kind == SOURCE_LINK_LAYER && len == 8 {
                let mut mac = [0; 6];
                mac.copy_from_slice(&option[2..8]);
                ra.source_link_layer = Some(mac);
            }
            options = &options[len..];
        }
        Ok(ra)
    }
}

/// ICMPv6 type of a Router Solicitation (RFC 4861 §4.1).
pub const ROUTER_SOLICITATION: u8 = 133;

/// A Router Solicitation (RFC 4861 §4.1): asks the routers on the link for an RA now
/// instead of at their next interval (FRR answers at once, §6.2.6), so a speaker that
/// starts after the router learns its address within a second, not ten.
pub fn solicitation(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut out = vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = mac {
        out.extend([SOURCE_LINK_LAYER, 1]);
        out.extend(mac);
    }
    out
}

/// Why a received ICMPv6 message is not a valid Router Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaError {
    /// Fewer than 16 octets.
    Short(usize),
    /// Another ICMPv6 type (the raw socket sees every ICMPv6 message).
    NotRouterAdvertisement(u8),
    /// ICMP Code is not 0.
    Code(u8),
    ZeroLengthOption,
    TruncatedOption,
}

impl std::fmt::Display for RaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RaError::Short(len) => write!(f, "{len} octets, fewer than 16"),
            RaError::NotRouterAdvertisement(kind) => write!(f, "ICMPv6 type {kind}"),
            RaError::Code(code) => write!(f, "ICMP code {code}, not 0"),
            RaError::ZeroLengthOption => f.write_str("an option of length 0"),
            RaError::TruncatedOption => f.write_str("an option longer than the message"),
        }
    }
}

/// How long to wait after the `sent`-th advertisement (0 after none). FRR advertises
/// every 10 s on links with unnumbered neighbours; the first few go out sooner, each
/// under RFC 4861 §6.2.4's bound of MAX_INITIAL_RTR_ADVERT_INTERVAL (16 s), so the
/// router learns us within seconds of start.
pub fn next_advertisement(sent: u32) -> Duration {
    /// MAX_INITIAL_RTR_ADVERTISEMENTS (RFC 4861 §10).
    const INITIAL: u32 = 3;
    if sent < INITIAL {
        Duration::from_secs(1)
    } else {
        UNNUMBERED_INTERVAL
    }
}

/// FRR's RA interval on interfaces with unnumbered BGP neighbours
/// (`ipv6 nd ra-interval 10`).
pub const UNNUMBERED_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Captured (tcpdump) from FRR 8.4 zebra on a link with `neighbor n1 interface`,
    /// answering our solicitation: hop limit 64, lifetime 30 s, source link-layer
    /// address (tests/run_unnumbered.rs with UNNUM_CAPTURE=1).
    const FRR: [u8; 24] = [
        0x86, 0x00, 0xa2, 0xa8, 0x40, 0x00, 0x00, 0x1e, 0, 0, 0, 0, 0, 0, 0, 0, //
        0x01, 0x01, 0xde, 0xed, 0x29, 0xdc, 0x44, 0xe6,
    ];

    #[test]
    fn reads_frrs_advertisement() {
        let ra = RouterAdvertisement::decode(&FRR).unwrap();
        assert_eq!(ra.cur_hop_limit, 64);
        assert_eq!(ra.router_lifetime, 30);
        assert_eq!(
            ra.source_link_layer,
            Some([0xde, 0xed, 0x29, 0xdc, 0x44, 0xe6])
        );
        assert!(!ra.managed && !ra.other);
    }

    #[test]
    fn encodes_presence_byte_exact() {
        let ra = RouterAdvertisement::presence(Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            ra.encode(),
            [
                134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1
            ]
        );
        assert_eq!(RouterAdvertisement::presence(None).encode().len(), 16);
    }

    #[test]
    fn encodes_a_solicitation_byte_exact() {
        assert_eq!(
            solicitation(Some([2, 0, 0, 0, 0, 1])),
            [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1]
        );
        assert_eq!(solicitation(None), [133, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn refuses_what_rfc_4861_refuses() {
        assert_eq!(
            RouterAdvertisement::decode(&FRR[..15]),
            Err(RaError::Short(15))
        );
        let mut ns = FRR;
        ns[0] = 135;
        assert_eq!(
            RouterAdvertisement::decode(&ns),
            Err(RaError::NotRouterAdvertisement(135))
        );
        let mut code = FRR;
        code[1] = 1;
        assert_eq!(RouterAdvertisement::decode(&code), Err(RaError::Code(1)));
        let mut zero = FRR;
        zero[17] = 0;
        assert_eq!(
            RouterAdvertisement::decode(&zero),
            Err(RaError::ZeroLengthOption)
        );
        assert_eq!(
            RouterAdvertisement::decode(&FRR[..22]),
            Err(RaError::TruncatedOption)
        );
        assert_eq!(
            RouterAdvertisement::decode(&FRR[..17]),
            Err(RaError::TruncatedOption)
        );
    }

    #[test]
    fn the_first_advertisements_come_sooner() {
        assert_eq!(next_advertisement(0), Duration::from_secs(1));
        assert_eq!(next_advertisement(2), Duration::from_secs(1));
        assert_eq!(next_advertisement(3), UNNUMBERED_INTERVAL);
        assert!(next_advertisement(u32::MAX) <= Duration::from_secs(16 * 100));
    }

    proptest! {
        #[test]
        fn round_trips(
            hop in any::<u8>(), managed in any::<bool>(), other in any::<bool>(),
            lifetime in any::<u16>(), reachable in any::<u32>(), retrans in any::<u32>(),
            mac in proptest::option::of(any::<[u8; 6]>()),
        ) {
            let ra = RouterAdvertisement {
                cur_hop_limit: hop, managed, other, router_lifetime: lifetime,
                reachable_time: reachable, retrans_timer: retrans, source_link_layer: mac,
            };
            prop_assert_eq!(RouterAdvertisement::decode(&ra.encode()), Ok(ra));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = RouterAdvertisement::decode(&bytes);
        }
    }
}
