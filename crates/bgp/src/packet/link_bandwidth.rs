//! The link bandwidth extended community (draft-ietf-idr-link-bandwidth-07 §2, now
//! published as RFC 10005), which
//! routers use for unequal-cost multipath: each path's share of the traffic is its
//! bandwidth over the sum of the bandwidths of all multipaths.
//!
//! Layout (eight octets, an extended community of RFC 4360 §2):
//! type 0x40 (two-octet-AS-specific, RFC 4360 §3.1, with the non-transitive bit 0x40
//! the draft asks for), sub-type 0x04, the advertising AS in two octets, then the
//! bandwidth in bytes per second as an IEEE-754 single-precision float.
//!
//! oxlb sends a weight, not a link speed: weight `w` is written as `w` Mbit/s
//! (`w * 125_000` bytes/s). FRR converts the value to whole Mbit/s before computing the
//! shares, so one unit must be at least 1 Mbit/s or small weights would all become 0.

/// Extended community type: two-octet-AS-specific, non-transitive (RFC 4360 §3.1).
pub const TYPE_NON_TRANSITIVE_AS2: u8 = 0x40;
/// The same type with the transitive bit clear; FRR sends this form by default, so it is
/// accepted on decode.
pub const TYPE_TRANSITIVE_AS2: u8 = 0x00;
/// Sub-type "Link Bandwidth" (draft-ietf-idr-link-bandwidth-07 §2).
pub const SUBTYPE_LINK_BANDWIDTH: u8 = 0x04;
/// RFC 6793 §9: AS_TRANS stands in a two-octet field for an AS that does not fit it.
pub const AS_TRANS: u16 = 23456;
/// Bytes per second of one weight unit (1 Mbit/s).
pub const BYTES_PER_UNIT: u32 = 125_000;
/// The largest weight whose bandwidth `w * 125_000 = w * 2^3 * 15625` is an exact f32:
/// `w * 15625` must fit the 24-bit significand, so `w <= 1073`; rounded down to a
/// power of two to stay clear of the edge. Larger counts are clamped by the caller.
pub const MAX_EXACT_WEIGHT: u32 = 1024;

/// One decoded link bandwidth community.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkBandwidth {
    pub asn: u16,
    pub transitive: bool,
    pub bytes_per_second: f32,
}

impl LinkBandwidth {
    /// The community for `weight` units sent by `local_asn`; `weight` above
    /// [`MAX_EXACT_WEIGHT`] is clamped to it.
    pub fn from_weight(local_asn: u32, weight: u32) -> LinkBandwidth {
        let asn = u16::try_from(local_asn).unwrap_or(AS_TRANS);
        let units = weight.min(MAX_EXACT_WEIGHT);
        LinkBandwidth {
            asn,
            transitive: false,
            // Exact: units * 125_000 <= 128_000_000 has at most 24 significant bits.
            bytes_per_second: (units * BYTES_PER_UNIT) as f32,
        }
    }

    /// The weight units this community stands for (whole Mbit/s, as FRR computes it);
    /// `None` for a negative, infinite or NaN bandwidth.
    pub fn weight(&self) -> Option<u32> {
        let b = self.bytes_per_second;
        if !b.is_finite() || b < 0.0 {
            return None;
        }
        Some((f64::from(b) / f64::from(BYTES_PER_UNIT)) as u32)
    }

    pub fn encode(&self) -> [u8; 8] {
        let [a, b] = self.asn.to_be_bytes();
        let [c, d, e, f] = self.bytes_per_second.to_bits().to_be_bytes();
        let kind = if self.transitive {
            TYPE_TRANSITIVE_AS2
        } else {
            TYPE_NON_TRANSITIVE_AS2
        };
        [kind, SUBTYPE_LINK_BANDWIDTH, a, b, c, d, e, f]
    }

    /// `None` when the community is of another type or sub-type.
    pub fn decode(community: &[u8; 8]) -> Option<LinkBandwidth> {
        let [kind, sub, a, b, c, d, e, f] = *community;
        let transitive = match kind {
            TYPE_TRANSITIVE_AS2 => true,
            TYPE_NON_TRANSITIVE_AS2 => false,
            _ => return None,
        };
        (sub == SUBTYPE_LINK_BANDWIDTH).then(|| LinkBandwidth {
            asn: u16::from_be_bytes([a, b]),
            transitive,
            bytes_per_second: f32::from_bits(u32::from_be_bytes([c, d, e, f])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_three_from_as_64500_is_these_eight_octets() {
        // 3 * 125000 = 375000.0 = 0x48B71B00 in IEEE-754 single precision.
        let c = LinkBandwidth::from_weight(64500, 3);
        assert_eq!(c.encode(), [0x40, 0x04, 0xfb, 0xf4, 0x48, 0xb7, 0x1b, 0x00]);
        assert_eq!(LinkBandwidth::decode(&c.encode()), Some(c));
        assert_eq!(c.weight(), Some(3));
    }

    #[test]
    fn four_octet_as_is_written_as_as_trans() {
        let c = LinkBandwidth::from_weight(4_200_000_000, 1);
        assert_eq!(c.asn, AS_TRANS);
    }

    #[test]
    fn every_weight_up_to_the_clamp_round_trips_exactly() {
        for w in 0..=MAX_EXACT_WEIGHT {
            let c = LinkBandwidth::from_weight(65000, w);
            assert_eq!(c.weight(), Some(w), "weight {w}");
            assert_eq!(f64::from(c.bytes_per_second), f64::from(w) * 125_000.0);
        }
        let clamped = LinkBandwidth::from_weight(65000, u32::MAX);
        assert_eq!(clamped.weight(), Some(MAX_EXACT_WEIGHT));
    }

    #[test]
    fn frr_transitive_form_decodes_and_other_types_do_not() {
        let frr = [0x00, 0x04, 0xfd, 0xe8, 0x4b, 0x3e, 0xbc, 0x20];
        let c = LinkBandwidth::decode(&frr).unwrap();
        assert!(c.transitive);
        assert_eq!(c.asn, 65000);
        // Route target (type 0x00, sub-type 0x02) is not a bandwidth.
        assert_eq!(
            LinkBandwidth::decode(&[0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 1]),
            None
        );
        let nan = [0x40, 0x04, 0, 1, 0x7f, 0xc0, 0, 0];
        assert_eq!(LinkBandwidth::decode(&nan).unwrap().weight(), None);
    }
}
