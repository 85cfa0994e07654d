//! The IPv6 next hop for IPv6 routes carried over an IPv4 session (dual-stack address
//! family, RFC 4760 §3 with RFC 2545 §3).
//!
//! An IPv4-mapped next hop (`::ffff:10.0.0.2`) is accepted by routers but cannot be
//! installed in a kernel table: the next hop must be the node's own global IPv6 address
//! on the interface toward the peer, plus that interface's link-local address (32-byte
//! Next Hop) when the peer is directly connected. Without an IPv6 address on that link
//! there is no valid next hop and the IPv6 routes are withheld on that session.
//!
//! Found from `/proc/net/route` (which interface leads to the peer, and whether the
//! peer is on-link) and `/proc/net/if_inet6` (that interface's IPv6 addresses), both
//! for the calling thread's network namespace: plain files, no netlink, no unsafe code.
//! `/proc/net/route` is the main table only; policy routing is not consulted.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What the shell found on the link toward the peer of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkAddresses {
    /// Our global IPv6 address on the interface toward an IPv4 peer (`None` for IPv6
    /// sessions, whose own local address is the next hop).
    pub global: Option<Ipv6Addr>,
    /// Our link-local address on that interface when the peer is on-link (RFC 2545 §3).
    pub link_local: Option<Ipv6Addr>,
}

/// `RTF_UP` and `RTF_GATEWAY` in the Flags column of `/proc/net/route`.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
/// `IFA_F_TENTATIVE`, `IFA_F_DEPRECATED` and `IFA_F_DADFAILED`: not to be used as a
/// next hop.
const NOT_USABLE: u32 = 0x40 | 0x20 | 0x08;
/// Scope column of `/proc/net/if_inet6`: 0 is global, 0x20 link-local.
const SCOPE_GLOBAL: u32 = 0x00;
const SCOPE_LINK: u32 = 0x20;

/// The addresses for IPv6 routes over a session to the IPv4 address `peer`.
pub fn lookup_for_ipv4_peer(peer: Ipv4Addr) -> LinkAddresses {
    let routes = std::fs::read_to_string("/proc/self/net/route").unwrap_or_default();
    let inet6 = std::fs::read_to_string("/proc/self/net/if_inet6").unwrap_or_default();
    from_tables(&routes, &inet6, peer)
}

struct Route<'a> {
    iface: &'a str,
    destination: u32,
    mask: u32,
    flags: u32,
    metric: u32,
}

/// Addresses in `/proc/net/route` are the raw network-order bytes printed as a native
/// integer, so the native byte order gives the octets back.
fn parse_v4(hex: &str) -> Option<u32> {
    let raw = u32::from_str_radix(hex, 16).ok()?;
    Some(u32::from(Ipv4Addr::from(raw.to_ne_bytes())))
}

fn parse_route(line: &str) -> Option<Route<'_>> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return None;
    }
    Some(Route {
        iface: f[0],
        destination: parse_v4(f[1])?,
        flags: u32::from_str_radix(f[3], 16).ok()?,
        metric: f[6].parse().ok()?,
        mask: parse_v4(f[7])?,
    })
}

struct Inet6<'a> {
    address: Ipv6Addr,
    prefix_len: u32,
    scope: u32,
    flags: u32,
    iface: &'a str,
}

fn parse_inet6(line: &str) -> Option<Inet6<'_>> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 6 {
        return None;
    }
    Some(Inet6 {
        address: Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?),
        prefix_len: u32::from_str_radix(f[2], 16).ok()?,
        scope: u32::from_str_radix(f[3], 16).ok()?,
        flags: u32::from_str_radix(f[4], 16).ok()?,
        iface: f[5],
    })
}

/// Pure part of [`lookup_for_ipv4_peer`]: `routes` is `/proc/net/route`, `inet6` is
/// `/proc/net/if_inet6`. The interface toward the peer is the one of the longest
/// matching route (lowest metric on a tie); the peer is on-link when that route has
/// no gateway.
pub fn from_tables(routes: &str, inet6: &str, peer: Ipv4Addr) -> LinkAddresses {
    let peer = u32::from(peer);
    let best = routes
        .lines()
        .skip(1)
        .filter_map(parse_route)
        .filter(|r| r.flags & RTF_UP != 0 && peer & r.mask == r.destination & r.mask)
        .max_by_key(|r| (r.mask.count_ones(), std::cmp::Reverse(r.metric)));
    let Some(route) = best else {
        return LinkAddresses::default();
    };
    let rows: Vec<Inet6> = inet6
        .lines()
        .filter_map(parse_inet6)
        .filter(|a| a.iface == route.iface && a.flags & NOT_USABLE == 0)
        .collect();
    // A /128 on the uplink is more likely a Service IP than the node's own address.
    let global = rows
        .iter()
        .filter(|a| a.scope == SCOPE_GLOBAL && !a.address.is_unicast_link_local())
        .min_by_key(|a| a.prefix_len == 128)
        .map(|a| a.address);
    let on_link = route.flags & RTF_GATEWAY == 0;
    let link_local = rows
        .iter()
        .find(|a| a.scope == SCOPE_LINK && a.address.is_unicast_link_local())
        .map(|a| a.address)
        .filter(|_| on_link && global.is_some());
    LinkAddresses { global, link_local }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on x86 (little-endian) from a node namespace: n0 with 10.80.0.2/24 and a
    /// default route via 10.80.0.1, n1 with 10.81.0.2/24 only.
    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
n0\t00000000\t0100500A\t0003\t0\t0\t0\t00000000\t0\t0\t0
n0\t0000500A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
n1\t0000510A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
    const INET6: &str = "\
fd000080000000000000000000000002 02 40 00 80       n0
fe80000000000000a8bbccfffedd0002 02 40 20 80       n0
fd000080000000000000000000000099 02 80 00 80       n0
fd000099000000000000000000000002 04 40 00 a0       n1
fe80000000000000a8bbccfffedd0004 04 40 20 80       n1
00000000000000000000000000000001 01 80 10 80       lo
";

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }
    fn v6(text: &str) -> Option<Ipv6Addr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_on_link_peer_gets_the_global_and_link_local_address_of_that_interface() {
        assert_eq!(
            from_tables(ROUTES, INET6, v4("10.80.0.1")),
            LinkAddresses {
                global: v6("fd00:80::2"),
                link_local: v6("fe80::a8bb:ccff:fedd:2"),
            }
        );
    }

    #[test]
    fn a_peer_behind_a_gateway_gets_the_global_address_only() {
        assert_eq!(
            from_tables(ROUTES, INET6, v4("192.0.2.7")),
            LinkAddresses {
                global: v6("fd00:80::2"),
                link_local: None,
            }
        );
    }

    #[test]
    fn a_link_without_usable_global_ipv6_gives_nothing() {
        // n1's only global address is deprecated (flag 0x20).
        assert_eq!(
            from_tables(ROUTES, INET6, v4("10.81.0.1")),
            LinkAddresses::default()
        );
        assert_eq!(
            from_tables("", INET6, v4("10.80.0.1")),
            LinkAddresses::default()
        );
        assert_eq!(
            from_tables("garbage\nmore garbage\n", "junk", v4("10.80.0.1")),
            LinkAddresses::default()
        );
    }
}
