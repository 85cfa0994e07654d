//! The Echo function (RFC 5880 §6.4, §6.8.5, §6.8.9; RFC 5881 §4), the pure parts: the
//! Echo packet oxlb sends, the Ethernet/IPv4/UDP frame that carries it, reading a
//! looped frame back, the neighbour table, and the status the rest of oxlb shows.
//!
//! How Echo works here (single hop, IPv4): the session sends frames to the peer's
//! link-layer address whose IP destination is our own address, UDP destination port
//! 3785 (RFC 5881 §4); the peer's forwarding plane routes them straight back. The
//! frame is written on a packet socket (the IP stack would deliver a packet to our own
//! address locally, never onto the wire) and the looped frame is read back on a packet
//! socket too: Linux drops an arriving packet whose source is a local address as a
//! martian (`accept_local` is off by default), so a UDP socket would never see it.
//!
//! The Echo packet's contents are a local matter (RFC 5880 §4.1 / §6.4): version,
//! length, our discriminator, a sequence number.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// RFC 5881 §4: "BFD Echo packets MUST be transmitted in UDP packets with destination
/// UDP port 3785".
pub const ECHO_PORT: u16 = 3785;
/// IPv4 ethertype.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Our Echo packet: version (1), length (1), reserved (2), discriminator (4),
/// sequence (8).
pub const ECHO_LEN: usize = 16;
pub const ECHO_VERSION: u8 = 1;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// A whole frame as [`build_frame`] writes it.
pub const FRAME_LEN: usize = ETH_LEN + IPV4_LEN + UDP_LEN + ECHO_LEN;

/// The payload oxlb puts in its Echo packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoPacket {
    /// The sending session's bfd.LocalDiscr: picks the session a looped packet is for.
    pub discriminator: u32,
    /// Counts up per session; the shell only checks the discriminator.
    pub sequence: u64,
}

impl EchoPacket {
    pub fn encode(&self) -> [u8; ECHO_LEN] {
        let mut out = [0u8; ECHO_LEN];
        out[0] = ECHO_VERSION;
        out[1] = ECHO_LEN as u8;
        out[4..8].copy_from_slice(&self.discriminator.to_be_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        out
    }

    /// Any input is safe: short, foreign or malformed payloads are `None`.
    pub fn decode(bytes: &[u8]) -> Option<EchoPacket> {
        let head = bytes.get(..ECHO_LEN)?;
        if head[0] != ECHO_VERSION || usize::from(head[1]) != ECHO_LEN {
            return None;
        }
        let discriminator = u32::from_be_bytes(head[4..8].try_into().ok()?);
        let sequence = u64::from_be_bytes(head[8..16].try_into().ok()?);
        if discriminator == 0 {
            return None;
        }
        Some(EchoPacket {
            discriminator,
            sequence,
        })
    }
}

/// A link-layer (Ethernet) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `aa:bb:cc:dd:ee:ff` as in /proc/net/arp and /sys/class/net/*/address.
    pub fn parse(text: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut parts = text.trim().split(':');
        for byte in &mut out {
            *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Mac(out))
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

/// The Ethernet frame of one Echo packet: to the peer's MAC, IP source and destination
/// both `local`, TTL 255 (RFC 5881 §5 applies GTSM to Control packets; 255 is also what
/// FRR sends), UDP from and to port 3785, IPv4 UDP checksum 0 (RFC 768: none).
pub fn build_frame(
    peer_mac: Mac,
    our_mac: Mac,
    local: Ipv4Addr,
    identification: u16,
    echo: &EchoPacket,
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&peer_mac.0);
    f[6..12].copy_from_slice(&our_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = ETH_LEN;
    f[ip] = 0x45; // version 4, IHL 5
    f[ip + 1] = 0xc0; // DSCP CS6 (network control), as BFD control traffic
    let total = (IPV4_LEN + UDP_LEN + ECHO_LEN) as u16;
    f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    f[ip + 4..ip + 6].copy_from_slice(&identification.to_be_bytes());
    f[ip + 6] = 0x40; // don't fragment
    f[ip + 8] = 255;
    f[ip + 9] = 17; // UDP
    f[ip + 12..ip + 16].copy_from_slice(&local.octets());
    f[ip + 16..ip + 20].copy_from_slice(&local.octets());
    let checksum = ipv4_checksum(&f[ip..ip + IPV4_LEN]);
    f[ip + 10..ip + 12].copy_from_slice(&checksum.to_be_bytes());
    let udp = ip + IPV4_LEN;
    f[udp..udp + 2].copy_from_slice(&ECHO_PORT.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&ECHO_PORT.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&((UDP_LEN + ECHO_LEN) as u16).to_be_bytes());
    f[udp + 8..].copy_from_slice(&echo.encode());
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame read on the packet socket that is one of our Echo packets coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopedEcho {
    pub echo: EchoPacket,
    /// The IP address it was sent from and to (ours).
    pub address: Ipv4Addr,
    /// TTL on arrival: 254 after one router.
    pub ttl: u8,
}

/// Parses an Ethernet frame and returns the Echo packet if it is one of ours coming
/// back: IPv4, not a fragment, UDP to port 3785, source = destination IP, sent to
/// `our_mac` by someone else (the copy of our own transmission that a packet socket
/// also sees has our MAC as source). Any input is safe.
pub fn parse_looped(frame: &[u8], our_mac: Mac) -> Option<LoopedEcho> {
    if frame.get(0..6)? != our_mac.0 || frame.get(6..12)? == our_mac.0 {
        return None;
    }
    if u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_LEN..)?;
    let version_ihl = *ip.first()?;
    if version_ihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if ihl < IPV4_LEN {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if fragment & 0x3fff != 0 || *ip.get(9)? != 17 || total < ihl + UDP_LEN {
        return None;
    }
    let source = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
    let destination = Ipv4Addr::new(*ip.get(16)?, *ip.get(17)?, *ip.get(18)?, *ip.get(19)?);
    if source != destination {
        return None;
    }
    let ttl = *ip.get(8)?;
    let udp = ip.get(ihl..total.min(ip.len()))?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != ECHO_PORT {
        return None;
    }
    let echo = EchoPacket::decode(udp.get(UDP_LEN..)?)?;
    Some(LoopedEcho {
        echo,
        address: source,
        ttl,
    })
}

/// One complete entry of the kernel's IPv4 neighbour table as /proc/net/arp lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: Mac,
    pub device: String,
}

/// Finds `peer` in the text of /proc/net/arp ("IP address  HW type  Flags  HW address
/// Mask  Device"); only complete entries (flag ATF_COM 0x2) with an Ethernet address.
pub fn find_neighbour(proc_net_arp: &str, peer: Ipv4Addr) -> Option<Neighbour> {
    proc_net_arp.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw_type, flags, mac, _mask, device] = fields.as_slice() else {
            return None;
        };
        if ip.parse::<Ipv4Addr>().ok()? != peer {
            return None;
        }
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            return None;
        }
        let mac = Mac::parse(mac)?;
        (mac != Mac([0; 6])).then(|| Neighbour {
            mac,
            device: (*device).to_string(),
        })
    })
}

/// What the shell found out about the Echo path of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoPath {
    /// Whether this host forwards IPv4 on that link (net.ipv4.conf.IFACE.forwarding):
    /// only then does it loop the peer's Echo packets back, and only then does it
    /// advertise a non-zero Required Min Echo RX Interval (RFC 5880 §4.1: 0 means
    /// "does not support the reception of BFD Echo packets").
    pub loops_peer_echoes: bool,
}

/// Echo function status of one session, for `status`/`explain` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoStatus {
    /// The BFDProfile has no echoMode.
    Disabled,
    /// Asked for, but not running now.
    Inactive(EchoInactive),
    /// Echo packets are being sent every `interval`; the session goes Down with
    /// diagnostic 2 when none came back for `detection_time`.
    Active {
        interval: Duration,
        detection_time: Duration,
    },
}

/// Why an echo-enabled session does not run the Echo function now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EchoInactive {
    /// RFC 5880 §6.8.9: only while the session is Up.
    SessionNotUp,
    /// The peer advertises Required Min Echo RX Interval 0: it does not loop Echo
    /// packets (§6.8.9: MUST NOT send them then). FRR: `echo-mode` in its profile.
    PeerDoesNotLoop,
    /// No complete neighbour (ARP) entry for the peer yet, or no packet socket.
    NoLinkLayerPath,
    /// RFC 5883 §3: no Echo on multihop sessions.
    Multihop,
    /// oxlb's Echo function is IPv4 only.
    Ipv6,
}

impl EchoInactive {
    pub fn as_str(self) -> &'static str {
        match self {
            EchoInactive::SessionNotUp => "session not Up",
            EchoInactive::PeerDoesNotLoop => {
                "peer advertises Required Min Echo RX 0 (it does not loop echo packets; FRR: echo-mode in its bfd profile)"
            }
            EchoInactive::NoLinkLayerPath => {
                "no complete neighbour (ARP) entry or packet socket for the peer yet (a peer not on a directly connected subnet never has one)"
            }
            EchoInactive::Multihop => "multihop session (RFC 5883 §3: no echo)",
            EchoInactive::Ipv6 => "IPv6 session (oxlb's echo function is IPv4 only)",
        }
    }
}

impl fmt::Display for EchoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EchoStatus::Disabled => f.write_str("off"),
            EchoStatus::Inactive(why) => write!(f, "inactive: {}", why.as_str()),
            EchoStatus::Active {
                interval,
                detection_time,
            } => write!(
                f,
                "active: every {} ms, detection {} ms",
                interval.as_millis(),
                detection_time.as_millis()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn looped(frame: &[u8; FRAME_LEN]) -> Vec<u8> {
        // What the router sends back: MACs swapped, TTL decremented.
        let mut back = frame.to_vec();
        back[0..6].copy_from_slice(&OURS.0);
        back[6..12].copy_from_slice(&PEER.0);
        back[ETH_LEN + 8] -= 1;
        back
    }

    #[test]
    fn echo_packet_round_trips() {
        let p = EchoPacket {
            discriminator: 7,
            sequence: u64::MAX - 1,
        };
        assert_eq!(EchoPacket::decode(&p.encode()), Some(p));
        assert_eq!(EchoPacket::decode(&p.encode()[..15]), None);
        let mut zero = p.encode();
        zero[4..8].fill(0);
        assert_eq!(EchoPacket::decode(&zero), None);
    }

    #[test]
    fn a_frame_goes_to_the_peer_mac_and_comes_back_parsed() {
        let local = Ipv4Addr::new(10, 0, 0, 2);
        let echo = EchoPacket {
            discriminator: 99,
            sequence: 3,
        };
        let frame = build_frame(PEER, OURS, local, 1, &echo);
        assert_eq!(&frame[0..6], &PEER.0);
        assert_eq!(ipv4_checksum(&frame[ETH_LEN..ETH_LEN + IPV4_LEN]), 0);
        // Our own transmission as a packet socket sees it is not a looped packet.
        assert_eq!(parse_looped(&frame, OURS), None);
        let back = looped(&frame);
        assert_eq!(
            parse_looped(&back, OURS),
            Some(LoopedEcho {
                echo,
                address: local,
                ttl: 254
            })
        );
        for cut in 0..back.len() {
            assert_eq!(parse_looped(&back[..cut], OURS), None, "cut at {cut}");
        }
    }

    #[test]
    fn the_neighbour_table_is_read() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.0.0.1         0x1         0x2         02:00:00:00:00:02     *        eth0\n\
                     10.0.0.3         0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            find_neighbour(table, Ipv4Addr::new(10, 0, 0, 1)),
            Some(Neighbour {
                mac: PEER,
                device: "eth0".into()
            })
        );
        assert_eq!(find_neighbour(table, Ipv4Addr::new(10, 0, 0, 3)), None);
        assert_eq!(find_neighbour(table, Ipv4Addr::new(10, 0, 0, 4)), None);
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_bytes_is_safe(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = parse_looped(&bytes, OURS);
            let _ = EchoPacket::decode(&bytes);
        }
    }
}
