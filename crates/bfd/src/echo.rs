//! The Echo function (RFC 5880 §6.4, §6.8.5, §6.8.9; RFC 5881 §4), the pure parts: the
//! Echo packet oxlb sends, the Ethernet/IPv4/UDP frame that carries it, reading a
//! looped frame back, the neighbour table, and the status the rest of oxlb shows.
//!
//! How Echo works here (single hop, IPv4 and IPv6): the session sends frames to the peer's
//! link-layer address whose IP destination is our own address, UDP destination port
//! 3785 (RFC 5881 §4); the peer's forwarding plane routes them straight back. The
//! frame is written on a packet socket (the IP stack would deliver a packet to our own
//! address locally, never onto the wire) and the looped frame is read back on a packet
//! socket too: Linux drops an arriving packet whose source is a local address as a
//! martian (`accept_local` is off by default), so a UDP socket would never see it.
//!
//! IPv6 is the same with an IPv6 header (hop limit 255, a UDP checksum, which IPv6
//! makes mandatory: RFC 8200 §8.1) and the neighbour's MAC from the kernel's IPv6
//! neighbour table, read over rtnetlink (there is no /proc file for it): the request
//! and the parsing of the answer are here, the socket in the shell. A link-local
//! address cannot be echoed: routers do not forward packets with a link-local source
//! (RFC 4291 §2.5.6), so sessions between link-local addresses run without echo.
//!
//! The Echo packet's contents are a local matter (RFC 5880 §4.1 / §6.4): version,
//! length, our discriminator, a sequence number.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
/// IPv6 ethertype.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
/// UDP's protocol number / IPv6 next header.
const IPPROTO_UDP: u8 = 17;
/// A whole frame as [`build_frame`] writes it.
pub const FRAME_LEN: usize = ETH_LEN + IPV4_LEN + UDP_LEN + ECHO_LEN;
/// A whole frame as [`build_frame6`] writes it.
pub const FRAME6_LEN: usize = ETH_LEN + IPV6_LEN + UDP_LEN + ECHO_LEN;

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

/// The Ethernet frame of one IPv6 Echo packet (RFC 5881 §4 applies to both families):
/// to the peer's MAC, IPv6 source and destination both `local`, hop limit 255 (as the
/// TTL of [`build_frame`]), traffic class CS6, no extension headers, UDP from and to
/// port 3785 with its checksum (mandatory in IPv6: RFC 8200 §8.1).
pub fn build_frame6(
    peer_mac: Mac,
    our_mac: Mac,
    local: Ipv6Addr,
    echo: &EchoPacket,
) -> [u8; FRAME6_LEN] {
    let mut f = [0u8; FRAME6_LEN];
    f[0..6].copy_from_slice(&peer_mac.0);
    f[6..12].copy_from_slice(&our_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let ip = ETH_LEN;
    // Version 6, traffic class 0xc0 (CS6, network control), flow label 0.
    f[ip] = 0x6c;
    let payload = (UDP_LEN + ECHO_LEN) as u16;
    f[ip + 4..ip + 6].copy_from_slice(&payload.to_be_bytes());
    f[ip + 6] = IPPROTO_UDP;
    f[ip + 7] = 255;
    f[ip + 8..ip + 24].copy_from_slice(&local.octets());
    f[ip + 24..ip + 40].copy_from_slice(&local.octets());
    let udp = ip + IPV6_LEN;
    f[udp..udp + 2].copy_from_slice(&ECHO_PORT.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&ECHO_PORT.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&payload.to_be_bytes());
    f[udp + 8..].copy_from_slice(&echo.encode());
    let checksum = udp6_checksum(local, local, &f[udp..]);
    f[udp + 6..udp + 8].copy_from_slice(&checksum.to_be_bytes());
    f
}

/// The UDP checksum over IPv6 (RFC 8200 §8.1, RFC 768): the one's complement sum of
/// the pseudo-header (source, destination, upper-layer length, next header 17) and the
/// UDP datagram with its checksum field taken as zero. A result of zero is sent as
/// 0xffff (zero means "no checksum", which IPv6 receivers discard).
pub fn udp6_checksum(source: Ipv6Addr, destination: Ipv6Addr, datagram: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for w in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    };
    add(&source.octets());
    add(&destination.octets());
    add(&(datagram.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_UDP]);
    add(datagram.get(..6).unwrap_or(datagram));
    add(datagram.get(8..).unwrap_or(&[]));
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// A frame read on the packet socket that is one of our Echo packets coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopedEcho {
    pub echo: EchoPacket,
    /// The IP address it was sent from and to (ours).
    pub address: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) on arrival: 254 after one router.
    pub ttl: u8,
}

/// Parses an Ethernet frame and returns the Echo packet if it is one of ours coming
/// back: IPv4 not a fragment, or IPv6 with UDP as next header (our frames carry no
/// extension headers) and a valid UDP checksum; UDP to port 3785, source = destination
/// IP, sent to `our_mac` by someone else (the copy of our own transmission that a
/// packet socket also sees has our MAC as source). Any input is safe.
pub fn parse_looped(frame: &[u8], our_mac: Mac) -> Option<LoopedEcho> {
    if frame.get(0..6)? != our_mac.0 || frame.get(6..12)? == our_mac.0 {
        return None;
    }
    match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        ETHERTYPE_IPV4 => parse_looped4(frame.get(ETH_LEN..)?),
        ETHERTYPE_IPV6 => parse_looped6(frame.get(ETH_LEN..)?),
        _ => None,
    }
}

fn parse_looped6(ip: &[u8]) -> Option<LoopedEcho> {
    if *ip.first()? >> 4 != 6 || *ip.get(6)? != IPPROTO_UDP {
        return None;
    }
    let payload = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
    let octets = |at: usize| -> Option<Ipv6Addr> {
        let bytes: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(bytes))
    };
    let (source, destination) = (octets(8)?, octets(24)?);
    if source != destination {
        return None;
    }
    let udp = ip.get(IPV6_LEN..IPV6_LEN.checked_add(payload)?)?;
    let length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if length != udp.len() || u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != ECHO_PORT {
        return None;
    }
    // RFC 8200 §8.1: a zero checksum is discarded; a wrong one too.
    let checksum = u16::from_be_bytes([*udp.get(6)?, *udp.get(7)?]);
    if checksum == 0 || udp6_checksum(source, destination, udp) != checksum {
        return None;
    }
    let echo = EchoPacket::decode(udp.get(UDP_LEN..)?)?;
    Some(LoopedEcho {
        echo,
        address: IpAddr::V6(source),
        ttl: *ip.get(7)?,
    })
}

fn parse_looped4(ip: &[u8]) -> Option<LoopedEcho> {
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
        address: IpAddr::V4(source),
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

/// rtnetlink (rtnetlink(7), linux/neighbour.h): the messages the IPv6 neighbour lookup
/// uses. Netlink headers are in host byte order.
const NLMSG_HDR_LEN: usize = 16;
const NDMSG_LEN: usize = 12;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const AF_INET6: u8 = 10;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// NUD_VALID: PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY, the states in
/// which the entry's link-layer address is usable (as ATF_COM for /proc/net/arp).
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;

/// An RTM_GETNEIGH dump request for the IPv6 neighbour table (`ip -6 neigh` without
/// the process): nlmsghdr + ndmsg with family AF_INET6.
pub fn neighbour_dump_request(sequence: u32) -> [u8; NLMSG_HDR_LEN + NDMSG_LEN] {
    let mut m = [0u8; NLMSG_HDR_LEN + NDMSG_LEN];
    m[0..4].copy_from_slice(&((NLMSG_HDR_LEN + NDMSG_LEN) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&sequence.to_ne_bytes());
    m[NLMSG_HDR_LEN] = AF_INET6;
    m
}

/// One usable IPv6 neighbour entry as an RTM_NEWNEIGH message carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour6 {
    pub address: Ipv6Addr,
    pub mac: Mac,
    pub ifindex: u32,
}

/// What one datagram of a neighbour dump answer holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NeighbourDump {
    /// Usable (NUD_VALID, Ethernet address, not all zero) IPv6 entries.
    pub entries: Vec<Neighbour6>,
    /// NLMSG_DONE or NLMSG_ERROR was seen: the dump is over.
    pub done: bool,
}

/// Parses one datagram of the answer to [`neighbour_dump_request`]: a sequence of
/// netlink messages (nlmsghdr, 4-byte aligned), each RTM_NEWNEIGH an ndmsg and
/// attributes (rtattr, 4-byte aligned). Any input is safe: a truncated message ends
/// the parse with what was read so far.
pub fn parse_neighbour_dump(datagram: &[u8]) -> NeighbourDump {
    let mut dump = NeighbourDump::default();
    let mut rest = datagram;
    while let Some(header) = rest.get(..NLMSG_HDR_LEN) {
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let Some(message) = rest.get(NLMSG_HDR_LEN..len.max(NLMSG_HDR_LEN)) else {
            break;
        };
        if len < NLMSG_HDR_LEN {
            break;
        }
        match kind {
            NLMSG_DONE | NLMSG_ERROR => {
                dump.done = true;
                break;
            }
            RTM_NEWNEIGH => dump.entries.extend(parse_ndmsg(message)),
            _ => {}
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    dump
}

fn parse_ndmsg(message: &[u8]) -> Option<Neighbour6> {
    let nd = message.get(..NDMSG_LEN)?;
    if nd[0] != AF_INET6 {
        return None;
    }
    let ifindex = u32::try_from(i32::from_ne_bytes([nd[4], nd[5], nd[6], nd[7]])).ok()?;
    let state = u16::from_ne_bytes([nd[8], nd[9]]);
    if state & NUD_VALID == 0 {
        return None;
    }
    let (mut address, mut mac) = (None, None);
    let mut attrs = message.get(NDMSG_LEN..)?;
    while let Some(head) = attrs.get(..4) {
        let len = usize::from(u16::from_ne_bytes([head[0], head[1]]));
        let kind = u16::from_ne_bytes([head[2], head[3]]);
        let value = attrs.get(4..len.max(4))?;
        if len < 4 {
            return None;
        }
        match kind {
            NDA_DST => address = <[u8; 16]>::try_from(value).ok().map(Ipv6Addr::from),
            NDA_LLADDR => mac = <[u8; 6]>::try_from(value).ok().map(Mac),
            _ => {}
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    let mac = mac.filter(|m| *m != Mac([0; 6]))?;
    Some(Neighbour6 {
        address: address?,
        mac,
        ifindex,
    })
}

/// What the shell found out about the Echo path of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoPath {
    /// Whether this host forwards IPv4 (IPv6) on that link
    /// (net.ipv4.conf.IFACE.forwarding, net.ipv6.conf.IFACE.forwarding):
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
    /// An IPv6 session between link-local addresses: routers do not forward packets
    /// with a link-local source (RFC 4291 §2.5.6), so none would come back.
    LinkLocal,
}

impl EchoInactive {
    pub fn as_str(self) -> &'static str {
        match self {
            EchoInactive::SessionNotUp => "session not Up",
            EchoInactive::PeerDoesNotLoop => {
                "peer advertises Required Min Echo RX 0 (it does not loop echo packets; FRR: echo-mode in its bfd profile)"
            }
            EchoInactive::NoLinkLayerPath => {
                "no complete neighbour (ARP/NDP) entry or packet socket for the peer yet (a peer not on a directly connected subnet never has one)"
            }
            EchoInactive::Multihop => "multihop session (RFC 5883 §3: no echo)",
            EchoInactive::LinkLocal => {
                "IPv6 link-local session (routers do not forward link-local sources, RFC 4291 §2.5.6)"
            }
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
                address: IpAddr::V4(local),
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

    fn looped6(frame: &[u8; FRAME6_LEN]) -> Vec<u8> {
        let mut back = frame.to_vec();
        back[0..6].copy_from_slice(&OURS.0);
        back[6..12].copy_from_slice(&PEER.0);
        back[ETH_LEN + 7] -= 1; // hop limit
        back
    }

    #[test]
    fn the_ipv6_udp_checksum_matches_a_known_vector() {
        // Computed independently (Python, RFC 8200 §8.1 pseudo-header): 2001:db8::2 to
        // itself, 3785 -> 3785, length 24, our payload for discriminator 0x01020304,
        // sequence 5.
        let local: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let frame = build_frame6(
            PEER,
            OURS,
            local,
            &EchoPacket {
                discriminator: 0x0102_0304,
                sequence: 5,
            },
        );
        let udp = ETH_LEN + IPV6_LEN;
        assert_eq!(&frame[udp + 6..udp + 8], &[0x81, 0x9b]);
        assert_eq!(udp6_checksum(local, local, &frame[udp..]), 0x819b);
    }

    #[test]
    fn an_ipv6_frame_goes_to_the_peer_mac_and_comes_back_parsed() {
        let local: Ipv6Addr = "fd00:97::2".parse().unwrap();
        let echo = EchoPacket {
            discriminator: 99,
            sequence: 3,
        };
        let frame = build_frame6(PEER, OURS, local, &echo);
        assert_eq!(&frame[0..6], &PEER.0);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        let ip = &frame[ETH_LEN..];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(ip[6], 17, "next header UDP");
        assert_eq!(ip[7], 255, "hop limit");
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 24, "payload length");
        assert_eq!(&ip[8..24], &local.octets());
        assert_eq!(&ip[24..40], &local.octets());
        assert_eq!(parse_looped(&frame, OURS), None);
        let back = looped6(&frame);
        assert_eq!(
            parse_looped(&back, OURS),
            Some(LoopedEcho {
                echo,
                address: IpAddr::V6(local),
                ttl: 254
            })
        );
        for cut in 0..back.len() {
            assert_eq!(parse_looped(&back[..cut], OURS), None, "cut at {cut}");
        }
        // A zero or wrong checksum is discarded (RFC 8200 §8.1).
        let udp = ETH_LEN + IPV6_LEN;
        let mut zero = back.clone();
        zero[udp + 6..udp + 8].fill(0);
        assert_eq!(parse_looped(&zero, OURS), None);
        let mut flipped = back.clone();
        flipped[udp + 12] ^= 1;
        assert_eq!(parse_looped(&flipped, OURS), None);
        // Source and destination differ: not an echo of ours.
        let mut other = back;
        other[ETH_LEN + 39] ^= 1;
        assert_eq!(parse_looped(&other, OURS), None);
    }

    /// One RTM_NEWNEIGH message as the kernel sends it (host byte order).
    fn newneigh(ifindex: i32, state: u16, dst: Option<Ipv6Addr>, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut body = vec![AF_INET6, 0, 0, 0];
        body.extend(ifindex.to_ne_bytes());
        body.extend(state.to_ne_bytes());
        body.extend([0, 1]); // flags, type
        if let Some(dst) = dst {
            body.extend(20u16.to_ne_bytes());
            body.extend(NDA_DST.to_ne_bytes());
            body.extend(dst.octets());
        }
        // An attribute we skip (NDA_CACHEINFO, 16 bytes).
        body.extend(20u16.to_ne_bytes());
        body.extend(3u16.to_ne_bytes());
        body.extend([0u8; 16]);
        if let Some(mac) = mac {
            body.extend(10u16.to_ne_bytes());
            body.extend(NDA_LLADDR.to_ne_bytes());
            body.extend(mac);
            body.extend([0, 0]); // padding to 4
        }
        let mut m = ((NLMSG_HDR_LEN + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend(RTM_NEWNEIGH.to_ne_bytes());
        m.extend(0x2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend([0u8; 8]);
        m.extend(body);
        m
    }

    #[test]
    fn the_ipv6_neighbour_dump_is_read() {
        let request = neighbour_dump_request(7);
        assert_eq!(request.len(), 28);
        assert_eq!(u16::from_ne_bytes([request[4], request[5]]), RTM_GETNEIGH);
        assert_eq!(request[16], AF_INET6);
        let peer: Ipv6Addr = "fd00:97::1".parse().unwrap();
        let other: Ipv6Addr = "fd00:97::3".parse().unwrap();
        let mut datagram = newneigh(4, 0x02, Some(peer), Some(PEER.0)); // REACHABLE
        datagram.extend(newneigh(4, 0x20, Some(other), Some(PEER.0))); // FAILED
        datagram.extend(newneigh(4, 0x04, Some(other), None)); // STALE without lladdr
        datagram.extend(newneigh(5, 0x04, Some(other), Some([0; 6])));
        let dump = parse_neighbour_dump(&datagram);
        assert_eq!(
            dump,
            NeighbourDump {
                entries: vec![Neighbour6 {
                    address: peer,
                    mac: PEER,
                    ifindex: 4
                }],
                done: false
            }
        );
        let mut done = 20u32.to_ne_bytes().to_vec();
        done.extend(NLMSG_DONE.to_ne_bytes());
        done.extend([0u8; 14]);
        assert!(parse_neighbour_dump(&done).done);
        // Truncation anywhere is safe and never invents an entry.
        for cut in 0..datagram.len() {
            assert!(parse_neighbour_dump(&datagram[..cut]).entries.len() <= 1);
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_bytes_is_safe(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = parse_looped(&bytes, OURS);
            let _ = EchoPacket::decode(&bytes);
            let _ = parse_neighbour_dump(&bytes);
        }

        #[test]
        fn ipv6_frames_round_trip(
            local in proptest::array::uniform16(proptest::num::u8::ANY),
            discriminator in 1u32..,
            sequence in proptest::num::u64::ANY,
            flip in 0usize..FRAME6_LEN,
        ) {
            let local = Ipv6Addr::from(local);
            let echo = EchoPacket { discriminator, sequence };
            let back = looped6(&build_frame6(PEER, OURS, local, &echo));
            proptest::prop_assert_eq!(
                parse_looped(&back, OURS),
                Some(LoopedEcho { echo, address: IpAddr::V6(local), ttl: 254 })
            );
            // Any single corrupted bit in the IPv6 addresses, UDP header or payload is
            // caught (by the checksum or a field check).
            if flip >= ETH_LEN + 8 {
                let mut bad = back.clone();
                bad[flip] ^= 0x01;
                proptest::prop_assert_eq!(parse_looped(&bad, OURS), None);
            }
        }
    }
}
