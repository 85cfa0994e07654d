//! One pool's addresses of one family as a dense index space `0..len`.
//!
//! The pool's ranges (sorted, disjoint) are laid end to end; with `avoidBuggyIPs` the
//! IPv4 addresses ending in .0 or .255 simply have no index (each /24 block contributes
//! its 254 usable addresses), computed arithmetically, never enumerated. Index order is
//! address order, so the lowest free index is the lowest free address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oxlb_config::{AddressRange, Family};

use crate::free::FreeSet;

#[derive(Debug, Clone)]
pub struct FamilySpace {
    family: Family,
    avoid_buggy: bool,
    /// (first address, last address, index of the first usable address), by address.
    segments: Vec<Segment>,
    free: FreeSet,
    /// Number of usable addresses; `u128::MAX` stands for 2^128 (a whole IPv6 /0).
    total: u128,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u128,
    end: u128,
    first_index: u128,
    /// Index of the last usable address in this segment.
    last_index: u128,
}

/// True for an IPv4 address ending in .0 or .255: MetalLB's `avoidBuggyIPs` skips them
/// because some CPE firmwares drop traffic to them (smurf protection).
pub fn is_buggy_v4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// Usable (non-buggy) IPv4 addresses strictly below `a`: 254 per complete /24, plus
/// those of the partial block (its .0 excluded).
fn usable_below(a: u64) -> u64 {
    let block = a >> 8;
    let low = a & 0xff;
    block * 254 + low.clamp(1, 255) - 1
}

/// Inverse of `usable_below`: the address of the `i`-th usable IPv4 address.
fn usable_at(i: u64) -> u64 {
    (i / 254) * 256 + (i % 254) + 1
}

pub fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

fn from_u128(family: Family, value: u128) -> Option<IpAddr> {
    match family {
        Family::V4 => u32::try_from(value)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        Family::V6 => Some(IpAddr::V6(Ipv6Addr::from(value))),
    }
}

impl FamilySpace {
    /// The space of `ranges` (all of `family`, sorted, disjoint). `None` when no address
    /// is usable (no range of this family, or only .0/.255 addresses with avoid_buggy).
    pub fn new(family: Family, ranges: &[AddressRange], avoid_buggy: bool) -> Option<FamilySpace> {
        let avoid_buggy = avoid_buggy && family == Family::V4;
        let mut segments = Vec::new();
        let mut next_index: u128 = 0;
        let mut exhausted = false;
        for range in ranges.iter().filter(|r| r.family() == family) {
            let start = to_u128(&range.start());
            let end = to_u128(&range.end());
            // Number of usable addresses minus one, so a /0 still fits in a u128.
            let span_minus_one = if avoid_buggy {
                let usable = usable_below(end as u64 + 1) - usable_below(start as u64);
                match usable.checked_sub(1) {
                    Some(n) => u128::from(n),
                    None => continue,
                }
            } else {
                end - start
            };
            if exhausted {
                // Only reachable after a segment that ended at index u128::MAX, which
                // needs the whole IPv6 space: there can be no further range.
                break;
            }
            let last_index = next_index.saturating_add(span_minus_one);
            segments.push(Segment {
                start,
                end,
                first_index: next_index,
                last_index,
            });
            match last_index.checked_add(1) {
                Some(n) => next_index = n,
                None => exhausted = true,
            }
        }
        let last = segments.last()?.last_index;
        Some(FamilySpace {
            family,
            avoid_buggy,
            segments,
            free: FreeSet::full(last),
            total: last.saturating_add(1),
        })
    }

    pub fn total(&self) -> u128 {
        self.total
    }

    pub fn free_count(&self) -> u128 {
        self.free.count()
    }

    pub fn used_count(&self) -> u128 {
        self.total.saturating_sub(self.free.count())
    }

    pub fn intervals(&self) -> usize {
        self.free.intervals()
    }

    /// The index of `ip`, `None` when the address is not usable in this space.
    pub fn index_of(&self, ip: &IpAddr) -> Option<u128> {
        if Family::of(ip) != self.family || (self.avoid_buggy && is_buggy_v4(ip)) {
            return None;
        }
        let value = to_u128(ip);
        let pos = self.segments.partition_point(|s| s.start <= value);
        let segment = self.segments.get(pos.checked_sub(1)?)?;
        if value > segment.end {
            return None;
        }
        let offset = if self.avoid_buggy {
            u128::from(usable_below(value as u64) - usable_below(segment.start as u64))
        } else {
            value - segment.start
        };
        Some(segment.first_index + offset)
    }

    /// The address at `index`.
    pub fn ip_at(&self, index: u128) -> Option<IpAddr> {
        let pos = self.segments.partition_point(|s| s.first_index <= index);
        let segment = self.segments.get(pos.checked_sub(1)?)?;
        if index > segment.last_index {
            return None;
        }
        let offset = index - segment.first_index;
        let value = if self.avoid_buggy {
            let base = usable_below(segment.start as u64);
            u128::from(usable_at(base + u64::try_from(offset).ok()?))
        } else {
            segment.start + offset
        };
        from_u128(self.family, value)
    }

    pub fn lowest_free(&self) -> Option<u128> {
        self.free.first()
    }

    pub fn is_free(&self, index: u128) -> bool {
        self.free.contains(index)
    }

    pub fn take(&mut self, index: u128) -> bool {
        self.free.take(index)
    }

    pub fn release(&mut self, index: u128) -> bool {
        self.free.release(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str, e: &str) -> AddressRange {
        AddressRange::new(s.parse().unwrap(), e.parse().unwrap()).unwrap()
    }

    fn cidr(s: &str) -> AddressRange {
        AddressRange::from_cidr(s.parse().unwrap())
    }

    #[test]
    fn buggy_arithmetic_matches_enumeration() {
        let mut count = 0u64;
        for a in 0u64..2000 {
            assert_eq!(usable_below(a), count, "below {a}");
            let low = a & 0xff;
            if low != 0 && low != 255 {
                assert_eq!(usable_at(count), a);
                count += 1;
            }
        }
    }

    #[test]
    fn avoid_buggy_skips_dot_zero_and_255_without_enumerating() {
        let space = FamilySpace::new(Family::V4, &[cidr("10.0.0.0/8")], true).unwrap();
        assert_eq!(space.total(), 65536 * 254);
        assert_eq!(space.ip_at(0), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(space.ip_at(253), Some("10.0.0.254".parse().unwrap()));
        assert_eq!(space.ip_at(254), Some("10.0.1.1".parse().unwrap()));
        assert_eq!(space.index_of(&"10.0.1.0".parse().unwrap()), None);
        assert_eq!(space.index_of(&"10.0.0.255".parse().unwrap()), None);
        assert_eq!(space.index_of(&"10.0.1.1".parse().unwrap()), Some(254));
        assert_eq!(space.intervals(), 1);
    }

    #[test]
    fn ranges_are_laid_end_to_end_in_address_order() {
        let ranges = [
            range("192.168.1.250", "192.168.2.1"),
            cidr("192.168.9.0/31"),
        ];
        let space = FamilySpace::new(Family::V4, &ranges, true).unwrap();
        // .250 .251 .252 .253 .254 (.255 .0 skipped) 2.1 | 9.0 skipped, 9.1
        assert_eq!(space.total(), 7);
        assert_eq!(space.ip_at(5), Some("192.168.2.1".parse().unwrap()));
        assert_eq!(space.ip_at(6), Some("192.168.9.1".parse().unwrap()));
        assert_eq!(space.ip_at(7), None);
        let plain = FamilySpace::new(Family::V4, &ranges, false).unwrap();
        assert_eq!(plain.total(), 10);
        assert_eq!(plain.index_of(&"192.168.9.0".parse().unwrap()), Some(8));
    }

    #[test]
    fn a_range_of_only_buggy_addresses_is_empty() {
        let ranges = [range("10.0.0.255", "10.0.1.0")];
        assert!(FamilySpace::new(Family::V4, &ranges, true).is_none());
        assert!(FamilySpace::new(Family::V6, &ranges, false).is_none());
    }

    #[test]
    fn whole_ipv6_space_fits() {
        let space = FamilySpace::new(Family::V6, &[cidr("::/0")], false).unwrap();
        assert_eq!(space.total(), u128::MAX);
        assert_eq!(
            space.ip_at(u128::MAX),
            Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap())
        );
        let v6 = FamilySpace::new(Family::V6, &[cidr("fc00::/64")], true).unwrap();
        assert_eq!(v6.total(), 1 << 64);
        assert_eq!(v6.index_of(&"fc00::ff".parse().unwrap()), Some(255));
    }
}
