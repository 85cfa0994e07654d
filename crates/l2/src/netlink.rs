//! rtnetlink address messages (rtnetlink(7), netlink(7)), pure: requests to add,
//! remove and list host addresses, and the parsing of the kernel's answers.
//!
//! Why by hand and not a crate: the whole need is three message types with two
//! attributes each, and the point is batching (thousands of requests in one
//! `sendmsg`, see [`crate::host_addrs`]), which is plain byte packing here.
//! Every number below is from linux/netlink.h, linux/rtnetlink.h and
//! linux/if_addr.h; all fields are in host byte order (netlink is host-endian).

use std::net::IpAddr;

pub const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
/// rtmsg type of a local route (the host accepts the destination as its own).
const RTN_LOCAL: u8 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;
/// The kernel's `local` routing table (where addresses put their local routes).
pub const RT_TABLE_LOCAL: u32 = 255;
/// Route origin "static" (`ip route` shows `proto static`): the kernel's own local
/// routes (one per address) are `proto kernel`, so oxlb's are told apart by it.
pub const RTPROT_STATIC: u8 = 4;
/// Route scope "host": the destination is this host.
const RT_SCOPE_HOST: u8 = 254;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// No duplicate address detection: a service IP must work at once (IPv6).
const IFA_F_NODAD: u8 = 0x02;
/// No prefix route beside the local route (IPv6 adds one per /128 otherwise): half
/// the routes, and removing an address walks the routing table once per address.
const IFA_F_NOPREFIXROUTE: u32 = 0x200;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const AF_UNSPEC: u8 = 0;

/// What to do with one host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrOp {
    Add,
    Remove,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn family_of(ip: &IpAddr) -> (u8, u8) {
    match ip {
        IpAddr::V4(_) => (AF_INET, 32),
        IpAddr::V6(_) => (AF_INET6, 128),
    }
}

fn push_header(out: &mut Vec<u8>, len: usize, kind: u16, flags: u16, seq: u32) {
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel.
    out.extend_from_slice(&0u32.to_ne_bytes());
}

fn push_attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + align4(len) - len, 0);
}

/// Appends one RTM_NEWADDR / RTM_DELADDR request for `ip` as a host route (/32,
/// /128) on interface `index`, asking for an acknowledgement with sequence `seq`.
/// An add replaces an existing equal address rather than failing (idempotent).
pub fn push_addr_request(out: &mut Vec<u8>, op: AddrOp, ip: &IpAddr, index: u32, seq: u32) {
    let (family, prefix) = family_of(ip);
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let attr = align4(4 + bytes.len());
    let with_flags = ip.is_ipv6() && op == AddrOp::Add;
    let len = NLMSG_HDRLEN + 8 + 2 * attr + if with_flags { 8 } else { 0 };
    let (kind, flags) = match op {
        AddrOp::Add => (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        AddrOp::Remove => (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK),
    };
    push_header(out, len, kind, flags, seq);
    // struct ifaddrmsg: family, prefixlen, flags, scope (universe), index.
    let ifa_flags = if ip.is_ipv6() && op == AddrOp::Add {
        IFA_F_NODAD
    } else {
        0
    };
    out.extend_from_slice(&[family, prefix, ifa_flags, 0]);
    out.extend_from_slice(&index.to_ne_bytes());
    // As iproute2 does: the local address and the peer address are the same.
    push_attr(out, IFA_LOCAL, &bytes);
    push_attr(out, IFA_ADDRESS, &bytes);
    if with_flags {
        // The 32-bit flags (the ifaddrmsg byte cannot hold NOPREFIXROUTE).
        push_attr(
            out,
            IFA_FLAGS,
            &(u32::from(IFA_F_NODAD) | IFA_F_NOPREFIXROUTE).to_ne_bytes(),
        );
    }
}

/// Appends one RTM_NEWROUTE / RTM_DELROUTE request for a local route to `ip` (/32,
/// /128) in table `local` through interface `index`, `proto static`, with an
/// acknowledgement for `seq`: what `ip route add local IP dev IF table local proto
/// static` sends. The host then accepts traffic to `ip` as its own (rtnetlink(7):
/// RTN_LOCAL), at a fraction of an address's kernel cost: no per-address list walk
/// (IPv4 add) and no walk of the whole IPv6 routing table per removal.
/// An add replaces an equal route rather than failing (idempotent).
pub fn push_local_route_request(out: &mut Vec<u8>, op: AddrOp, ip: &IpAddr, index: u32, seq: u32) {
    let (family, prefix) = family_of(ip);
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let len = NLMSG_HDRLEN + 12 + align4(4 + bytes.len()) + 8;
    let (kind, flags) = match op {
        AddrOp::Add => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        AddrOp::Remove => (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK),
    };
    push_header(out, len, kind, flags, seq);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    out.extend_from_slice(&[
        family,
        prefix,
        0,
        0,
        RT_TABLE_LOCAL as u8,
        RTPROT_STATIC,
        RT_SCOPE_HOST,
        RTN_LOCAL,
    ]);
    out.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(out, RTA_DST, &bytes);
    push_attr(out, RTA_OIF, &index.to_ne_bytes());
}

/// A request to dump every address of the namespace (all families).
pub fn dump_request(seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(NLMSG_HDRLEN + 8);
    push_header(
        &mut out,
        NLMSG_HDRLEN + 8,
        RTM_GETADDR,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    out.extend_from_slice(&[AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0]);
    out
}

/// A request to dump every route of the namespace (all tables, all families).
pub fn route_dump_request(seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(NLMSG_HDRLEN + 12);
    push_header(
        &mut out,
        NLMSG_HDRLEN + 12,
        RTM_GETROUTE,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    // struct rtmsg (12 bytes), all zero: every family, table, type.
    out.extend_from_slice(&[0; 12]);
    out
}

/// One message of the kernel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An acknowledgement (`errno` 0) or an error (a negative errno) for request `seq`.
    Ack { seq: u32, errno: i32 },
    /// One address of a dump: interface index and address.
    Address { index: u32, ip: IpAddr },
    /// A local route of a dump (`ip route add local PREFIX ...`, and the one the
    /// kernel makes per local address): its destination and prefix length, table,
    /// origin (`proto`) and outgoing interface.
    LocalRoute {
        dst: IpAddr,
        prefix: u8,
        table: u32,
        protocol: u8,
        oif: Option<u32>,
    },
    /// The end of a dump.
    Done { seq: u32 },
    /// Anything else (skipped).
    Other,
}

/// Splits a received buffer into the messages it holds. A truncated or malformed
/// message ends the parse (what came before is returned).
pub fn parse(buf: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = u32_at(rest, 8);
        let body = &rest[NLMSG_HDRLEN..len];
        out.push(match kind {
            NLMSG_ERROR if body.len() >= 4 => Answer::Ack {
                seq,
                errno: i32::from_ne_bytes([body[0], body[1], body[2], body[3]]),
            },
            NLMSG_DONE => Answer::Done { seq },
            RTM_NEWADDR => parse_address(body).unwrap_or(Answer::Other),
            RTM_NEWROUTE => parse_local_route(body).unwrap_or(Answer::Other),
            _ => Answer::Other,
        });
        rest = &rest[align4(len).min(rest.len())..];
    }
    out
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(bytes) = buf.get(at..at + 4) {
        word.copy_from_slice(bytes);
    }
    u32::from_ne_bytes(word)
}

/// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
/// (u32); then attributes. Only local routes with a destination are of interest.
fn parse_local_route(body: &[u8]) -> Option<Answer> {
    let header = body.get(..12)?;
    let (family, prefix, kind) = (header[0], header[1], header[7]);
    if kind != RTN_LOCAL {
        return None;
    }
    let (mut table, protocol) = (u32::from(header[4]), header[5]);
    let (mut dst, mut oif) = (None, None);
    let mut attrs = body.get(12..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let attr = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        match attr {
            RTA_DST => {
                dst = match (family, data.len()) {
                    (AF_INET, 4) => <[u8; 4]>::try_from(data).ok().map(IpAddr::from),
                    (AF_INET6, 16) => <[u8; 16]>::try_from(data).ok().map(IpAddr::from),
                    _ => None,
                };
            }
            RTA_OIF if data.len() == 4 => oif = Some(u32_at(data, 0)),
            // The 32-bit table id (the rtmsg byte holds only ids below 256).
            RTA_TABLE if data.len() == 4 => table = u32_at(data, 0),
            _ => {}
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    Some(Answer::LocalRoute {
        dst: dst?,
        prefix,
        table,
        protocol,
        oif,
    })
}

fn parse_address(body: &[u8]) -> Option<Answer> {
    let header = body.get(..8)?;
    let family = header[0];
    let index = u32_at(header, 4);
    let mut attrs = body.get(8..)?;
    let mut local = None;
    let mut address = None;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        let ip = match (family, data.len()) {
            (AF_INET, 4) => <[u8; 4]>::try_from(data).ok().map(IpAddr::from),
            (AF_INET6, 16) => <[u8; 16]>::try_from(data).ok().map(IpAddr::from),
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = ip.or(local),
            IFA_ADDRESS => address = ip.or(address),
            _ => {}
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
    // point-to-point links); IPv6 sends only IFA_ADDRESS.
    Some(Answer::Address {
        index,
        ip: local.or(address)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(buf: &[u8]) -> Vec<u32> {
        buf.chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn an_ipv4_add_is_packed_as_iproute2_packs_it() {
        let mut out = Vec::new();
        push_addr_request(&mut out, AddrOp::Add, &"10.0.0.1".parse().unwrap(), 7, 42);
        assert_eq!(out.len(), 40);
        let w = words(&out);
        assert_eq!(w[0], 40); // length
        assert_eq!(&out[4..6], &RTM_NEWADDR.to_ne_bytes());
        assert_eq!(&out[6..8], &(0x1u16 | 0x4 | 0x400 | 0x100).to_ne_bytes());
        assert_eq!(w[2], 42); // seq
        assert_eq!(&out[16..20], &[2, 32, 0, 0]); // AF_INET, /32
        assert_eq!(w[5], 7); // ifindex
        assert_eq!(&out[24..26], &8u16.to_ne_bytes());
        assert_eq!(&out[26..28], &IFA_LOCAL.to_ne_bytes());
        assert_eq!(&out[28..32], &[10, 0, 0, 1]);
        assert_eq!(&out[32..34], &8u16.to_ne_bytes());
        assert_eq!(&out[34..36], &IFA_ADDRESS.to_ne_bytes());
        assert_eq!(&out[36..40], &[10, 0, 0, 1]);
    }

    #[test]
    fn an_ipv6_add_skips_dad_and_a_remove_does_not_ask_for_it() {
        let ip: IpAddr = "fd00::1".parse().unwrap();
        let mut add = Vec::new();
        push_addr_request(&mut add, AddrOp::Add, &ip, 3, 1);
        assert_eq!(add.len(), 16 + 8 + 20 + 20 + 8);
        assert_eq!(&add[16..20], &[10, 128, IFA_F_NODAD, 0]);
        assert_eq!(&add[64..66], &8u16.to_ne_bytes());
        assert_eq!(&add[66..68], &IFA_FLAGS.to_ne_bytes());
        assert_eq!(&add[68..72], &0x202u32.to_ne_bytes());
        let mut del = Vec::new();
        push_addr_request(&mut del, AddrOp::Remove, &ip, 3, 2);
        assert_eq!(&del[4..6], &RTM_DELADDR.to_ne_bytes());
        assert_eq!(&del[6..8], &(0x1u16 | 0x4).to_ne_bytes());
        assert_eq!(&del[16..20], &[10, 128, 0, 0]);
        assert_eq!(
            &del[28..44],
            &"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn a_local_route_is_packed_as_iproute2_packs_it_and_read_back() {
        let mut add = Vec::new();
        push_local_route_request(&mut add, AddrOp::Add, &"fd00::7".parse().unwrap(), 9, 3);
        assert_eq!(add.len(), 16 + 12 + 20 + 8);
        assert_eq!(words(&add)[0] as usize, add.len());
        assert_eq!(&add[4..6], &RTM_NEWROUTE.to_ne_bytes());
        assert_eq!(&add[6..8], &(0x1u16 | 0x4 | 0x400 | 0x100).to_ne_bytes());
        // AF_INET6, /128, table local, proto static, scope host, type local.
        assert_eq!(&add[16..24], &[10, 128, 0, 0, 255, 4, 254, 2]);
        assert_eq!(&add[30..32], &RTA_DST.to_ne_bytes());
        assert_eq!(&add[50..52], &RTA_OIF.to_ne_bytes());
        assert_eq!(words(&add)[13], 9);
        let mut del = Vec::new();
        push_local_route_request(&mut del, AddrOp::Remove, &"10.0.0.1".parse().unwrap(), 9, 4);
        assert_eq!(del.len(), 16 + 12 + 8 + 8);
        assert_eq!(&del[4..6], &RTM_DELROUTE.to_ne_bytes());
        assert_eq!(&del[6..8], &(0x1u16 | 0x4).to_ne_bytes());
        assert_eq!(&del[16..24], &[2, 32, 0, 0, 255, 4, 254, 2]);
        // What the kernel sends back in a dump has the same shape.
        let mut dump = add.clone();
        dump[4..6].copy_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        assert_eq!(
            parse(&dump),
            vec![Answer::LocalRoute {
                dst: "fd00::7".parse().unwrap(),
                prefix: 128,
                table: RT_TABLE_LOCAL,
                protocol: RTPROT_STATIC,
                oif: Some(9),
            }]
        );
    }

    #[test]
    fn acks_errors_addresses_and_done_are_read_back() {
        let mut buf = Vec::new();
        // An error for seq 5 (-17 EEXIST) with the offending header copied after it.
        push_header(&mut buf, 16 + 4 + 16, NLMSG_ERROR, 0, 5);
        buf.extend_from_slice(&(-17i32).to_ne_bytes());
        buf.extend_from_slice(&[0; 16]);
        // An IPv4 address as a dump sends it (IFA_ADDRESS then IFA_LOCAL).
        let start = buf.len();
        push_header(&mut buf, 0, RTM_NEWADDR, 2, 9);
        buf.extend_from_slice(&[2, 32, 0, 0]);
        buf.extend_from_slice(&4u32.to_ne_bytes());
        push_attr(&mut buf, IFA_ADDRESS, &[192, 0, 2, 9]);
        push_attr(&mut buf, IFA_LOCAL, &[192, 0, 2, 1]);
        push_attr(&mut buf, 3, b"oxlb0\0"); // IFA_LABEL, skipped
        let len = (buf.len() - start) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        // An IPv6 address: IFA_ADDRESS only.
        let start = buf.len();
        push_header(&mut buf, 0, RTM_NEWADDR, 2, 9);
        buf.extend_from_slice(&[10, 128, 0, 0]);
        buf.extend_from_slice(&4u32.to_ne_bytes());
        push_attr(
            &mut buf,
            IFA_ADDRESS,
            &"fd00::9".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        );
        let len = (buf.len() - start) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        // A local route 10.77.0.192/27 (type 2) and a unicast one (type 1, skipped).
        for kind in [RTN_LOCAL, 1] {
            let start = buf.len();
            push_header(&mut buf, 0, RTM_NEWROUTE, 2, 9);
            buf.extend_from_slice(&[2, 27, 0, 0, 255, 4, 254, kind, 0, 0, 0, 0]);
            push_attr(&mut buf, 15, &255u32.to_ne_bytes()); // RTA_TABLE, skipped
            push_attr(&mut buf, RTA_DST, &[10, 77, 0, 192]);
            let len = (buf.len() - start) as u32;
            buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        }
        push_header(&mut buf, 20, NLMSG_DONE, 2, 9);
        buf.extend_from_slice(&0i32.to_ne_bytes());
        // A truncated trailer is ignored.
        buf.extend_from_slice(&[99, 0, 0]);
        assert_eq!(
            parse(&buf),
            vec![
                Answer::Ack { seq: 5, errno: -17 },
                Answer::Address {
                    index: 4,
                    ip: "192.0.2.1".parse().unwrap()
                },
                Answer::Address {
                    index: 4,
                    ip: "fd00::9".parse().unwrap()
                },
                Answer::LocalRoute {
                    dst: "10.77.0.192".parse().unwrap(),
                    prefix: 27,
                    table: 255,
                    protocol: 4,
                    oif: None,
                },
                Answer::Other,
                Answer::Done { seq: 9 },
            ]
        );
    }

    #[test]
    fn garbage_is_never_a_panic() {
        for len in 0..64u32 {
            let mut buf = len.to_ne_bytes().to_vec();
            buf.extend_from_slice(&[0xff; 40]);
            let _ = parse(&buf);
        }
        let _ = parse(&dump_request(1));
        let _ = parse(&route_dump_request(1));
    }
}
