//! Pools are address ranges; router policies speak prefixes. A range becomes the fewest
//! CIDR blocks that cover exactly it, widened to an advertisement's aggregation length
//! when that is shorter (then the announced prefix is the shorter one).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use oxlb_config::{AddressRange, Pool};

/// The prefixes that cover `pool`, each at most `max_len_v4` / `max_len_v6` long (the
/// shortest aggregation length of the advertisements that announce it).
pub fn pool_prefixes(pool: &Pool, max_len_v4: u8, max_len_v6: u8) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    for range in &pool.ranges {
        for net in range_to_cidrs(range) {
            let max = match net {
                IpNet::V4(_) => max_len_v4,
                IpNet::V6(_) => max_len_v6,
            };
            let widened = if net.prefix_len() > max {
                IpNet::new(net.addr(), max)
                    .map(|n| n.trunc())
                    .unwrap_or(net)
            } else {
                net
            };
            out.insert(widened);
        }
    }
    // A prefix inside another one already listed adds nothing (`le 32` covers it).
    let all: Vec<IpNet> = out.iter().copied().collect();
    out.retain(|n| !all.iter().any(|o| o != n && o.contains(n)));
    out
}

/// The minimal list of CIDR blocks whose union is exactly `range`.
fn range_to_cidrs(range: &AddressRange) -> Vec<IpNet> {
    match (range.start(), range.end()) {
        (IpAddr::V4(s), IpAddr::V4(e)) => {
            blocks(u128::from(u32::from(s)), u128::from(u32::from(e)), 32)
                .into_iter()
                .filter_map(|(start, len)| {
                    let addr = Ipv4Addr::from(u32::try_from(start).ok()?);
                    Ipv4Net::new(addr, len).ok().map(IpNet::V4)
                })
                .collect()
        }
        (IpAddr::V6(s), IpAddr::V6(e)) => blocks(u128::from(s), u128::from(e), 128)
            .into_iter()
            .filter_map(|(start, len)| Ipv6Net::new(Ipv6Addr::from(start), len).ok().map(IpNet::V6))
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits [start, end] of a `bits`-wide address space into aligned power-of-two blocks,
/// each as (first address, prefix length). At most 2 × bits blocks.
fn blocks(mut start: u128, end: u128, bits: u8) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    while start <= end {
        // The largest block aligned at `start`...
        let mut size_log = if start == 0 {
            u32::from(bits)
        } else {
            start.trailing_zeros().min(u32::from(bits))
        };
        // ...that does not run past `end`.
        while size_log > 0 && block_last(start, size_log) > end {
            size_log -= 1;
        }
        let len = bits.saturating_sub(u8::try_from(size_log).unwrap_or(bits));
        out.push((start, len));
        let last = block_last(start, size_log);
        if last >= end {
            break;
        }
        start = last + 1;
    }
    out
}

/// The last address of the block of 2^size_log addresses starting at `start`.
fn block_last(start: u128, size_log: u32) -> u128 {
    if size_log >= 128 {
        u128::MAX
    } else {
        start.saturating_add((1u128 << size_log) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: &str, b: &str) -> AddressRange {
        AddressRange::new(a.parse().unwrap(), b.parse().unwrap()).unwrap()
    }

    fn cidrs(a: &str, b: &str) -> Vec<String> {
        range_to_cidrs(&range(a, b))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ranges_become_minimal_cidrs() {
        assert_eq!(cidrs("10.0.0.0", "10.0.0.255"), ["10.0.0.0/24"]);
        assert_eq!(cidrs("10.0.0.5", "10.0.0.5"), ["10.0.0.5/32"]);
        assert_eq!(
            cidrs("10.0.0.10", "10.0.0.20"),
            [
                "10.0.0.10/31",
                "10.0.0.12/30",
                "10.0.0.16/30",
                "10.0.0.20/32"
            ]
        );
        assert_eq!(cidrs("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            cidrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("fd00::", "fd00::ff"), ["fd00::/120"]);
    }

    #[test]
    fn aggregation_widens_and_contained_prefixes_collapse() {
        let pool = Pool {
            name: "p".into(),
            ranges: vec![
                range("10.0.0.10", "10.0.0.20"),
                range("10.0.1.0", "10.0.1.255"),
            ],
            addresses_as_written: vec![],
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
            labels: Default::default(),
        };
        let all: Vec<String> = pool_prefixes(&pool, 32, 128)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all.len(), 5);
        let wide: Vec<String> = pool_prefixes(&pool, 24, 128)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(wide, ["10.0.0.0/24", "10.0.1.0/24"]);
        let wider: Vec<String> = pool_prefixes(&pool, 16, 128)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(wider, ["10.0.0.0/16"]);
    }
}
