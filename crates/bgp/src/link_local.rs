//! The link-local address that goes beside the global one in an IPv6 next hop.
//!
//! RFC 2545 §3: the Next Hop of MP_REACH_NLRI carries the speaker's link-local
//! address too (length 32 instead of 16) if and only if it shares a subnet with the peer.
//! Routers such as FRR then install the route via the link-local address, which stays
//! valid while global addresses are renumbered.
//!
//! Found from `/proc/net/if_inet6` (the calling thread's network namespace): a plain
//! file, no netlink socket and no unsafe code.

use std::net::Ipv6Addr;

/// `IFA_F_TENTATIVE` and `IFA_F_DADFAILED`: an address not (yet) usable.
const NOT_USABLE: u32 = 0x40 | 0x08;
/// `IPV6_ADDR_LINKLOCAL` in the scope column.
const SCOPE_LINK: u32 = 0x20;

/// The link-local next hop for a session from `local` to `peer`, if they share a subnet.
pub fn lookup(local: Ipv6Addr, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    let table = std::fs::read_to_string("/proc/self/net/if_inet6").ok()?;
    from_table(&table, local, peer)
}

/// A usable link-local address of interface `index` (unnumbered peers send their Router
/// Advertisements and connect from it).
pub fn usable_on(index: u32) -> Option<Ipv6Addr> {
    let table = std::fs::read_to_string("/proc/self/net/if_inet6").ok()?;
    usable_in_table(&table, index)
}

/// Pure part of [`usable_on`].
pub fn usable_in_table(table: &str, index: u32) -> Option<Ipv6Addr> {
    table
        .lines()
        .filter_map(parse_row)
        .find(|r| {
            r.index == index
                && r.scope == SCOPE_LINK
                && r.flags & NOT_USABLE == 0
                && r.address.is_unicast_link_local()
        })
        .map(|r| r.address)
}

/// One row of `/proc/net/if_inet6`.
struct Row {
    address: Ipv6Addr,
    index: u32,
    prefix_len: u32,
    scope: u32,
    flags: u32,
}

fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split_whitespace();
    let hex = fields.next()?;
    let address = Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
    let mut number = || u32::from_str_radix(fields.next()?, 16).ok();
    Some(Row {
        address,
        index: number()?,
        prefix_len: number()?,
        scope: number()?,
        flags: number()?,
    })
}

/// Pure part of [`lookup`]: `table` is the text of `/proc/net/if_inet6`. The peer shares
/// a subnet when it lies in the prefix of the interface address the session runs from;
/// the answer is a usable link-local address of that same interface.
pub fn from_table(table: &str, local: Ipv6Addr, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    if local.is_unicast_link_local() {
        return None;
    }
    let rows: Vec<Row> = table.lines().filter_map(parse_row).collect();
    let own = rows.iter().find(|r| r.address == local)?;
    let bits = own.prefix_len.min(128);
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    if u128::from(local) & mask != u128::from(peer) & mask {
        return None;
    }
    rows.iter()
        .find(|r| {
            r.index == own.index
                && r.scope == SCOPE_LINK
                && r.flags & NOT_USABLE == 0
                && r.address.is_unicast_link_local()
        })
        .map(|r| r.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a node namespace: lan0 (index 2) with fd00:77::11/64 and its
    /// link-local address, oxlb0 (index 3) with a service IP and a tentative
    /// link-local address, lo.
    const TABLE: &str = "\
fd000077000000000000000000000011 02 40 00 80     lan0
fe80000000000000a8bbccfffedd0011 02 40 20 80     lan0
fd000079000100000000000000000000 03 80 00 80    oxlb0
fe80000000000000a8bbccfffedd0099 03 40 20 c0    oxlb0
00000000000000000000000000000001 01 80 10 80       lo
";

    fn ip(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_on_the_same_subnet_gets_the_interfaces_link_local_address() {
        assert_eq!(
            from_table(TABLE, ip("fd00:77::11"), ip("fd00:77::1")),
            Some(ip("fe80::a8bb:ccff:fedd:11"))
        );
    }

    #[test]
    fn usable_link_local_addresses_by_interface() {
        assert_eq!(
            usable_in_table(TABLE, 2),
            Some(ip("fe80::a8bb:ccff:fedd:11"))
        );
        // oxlb0's is tentative; lo has none.
        assert_eq!(usable_in_table(TABLE, 3), None);
        assert_eq!(usable_in_table(TABLE, 1), None);
    }

    #[test]
    fn a_peer_beyond_the_subnet_gets_none() {
        assert_eq!(from_table(TABLE, ip("fd00:77::11"), ip("fd00:99::1")), None);
    }

    #[test]
    fn tentative_link_local_addresses_and_unknown_locals_give_none() {
        assert_eq!(
            from_table(TABLE, ip("fd00:79:1::"), ip("fd00:79:1::")),
            None
        );
        assert_eq!(from_table(TABLE, ip("fd00:5::1"), ip("fd00:5::2")), None);
        assert_eq!(
            from_table("garbage\n\n", ip("fd00:77::11"), ip("fd00:77::1")),
            None
        );
    }
}
