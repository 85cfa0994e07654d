//! RFC 4271 §6.3 / RFC 7606 §3-§7, one row per malformed attribute: the approach taken.
//! Each UPDATE carries valid ORIGIN, AS_PATH, NEXT_HOP and one NLRI besides the row's
//! attribute, so only that attribute decides.

use super::attribute_error::{AttributeFault as F, ErrorAction as A};
use super::*;

const FOUR: Context = Context {
    four_octet_as: true,
};

/// An UPDATE body with the valid mandatory attributes (minus `skip`), then `extra`.
fn body(extra: &[u8], skip: Option<u8>) -> Vec<u8> {
    let mut attrs: Vec<u8> = Vec::new();
    for (t, a) in [
        (1u8, &[0x40, 1, 1, 0][..]),
        (2, &[0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf5][..]),
        (3, &[0x40, 3, 4, 10, 0, 0, 1][..]),
    ] {
        if skip != Some(t) {
            attrs.extend_from_slice(a);
        }
    }
    attrs.extend_from_slice(extra);
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(&[24, 192, 0, 2]);
    b
}

enum Expect {
    Reset(u8, u8, Vec<u8>),
    Handled(Vec<(u8, F, A)>),
}

#[test]
fn each_malformed_attribute_gets_the_rfc7606_approach() {
    let unknown_well_known = vec![0x40, 99, 2, 7, 7];
    let rows: Vec<(&str, Vec<u8>, Option<u8>, Expect)> = vec![
        ("valid", vec![], None, Expect::Handled(vec![])),
        (
            "ORIGIN with the Optional bit (§3 c)",
            vec![0xc0, 1, 1, 0],
            Some(1),
            Expect::Handled(vec![(
                1,
                F::FlagsConflict { flags: 0xc0 },
                A::TreatAsWithdraw,
            )]),
        ),
        (
            "unknown well-known attribute (RFC 4271 §6.3)",
            unknown_well_known.clone(),
            None,
            Expect::Reset(3, 2, unknown_well_known),
        ),
        (
            "unknown optional attribute is kept",
            vec![0xc0, 99, 2, 7, 7],
            None,
            Expect::Handled(vec![]),
        ),
        (
            "COMMUNITIES marked well-known (§3 c)",
            vec![0x40, 8, 4, 0, 0, 0, 1],
            None,
            Expect::Handled(vec![(
                8,
                F::FlagsConflict { flags: 0x40 },
                A::TreatAsWithdraw,
            )]),
        ),
        (
            "MED marked transitive (§3 c)",
            vec![0xc0, 4, 4, 0, 0, 0, 1],
            None,
            Expect::Handled(vec![(
                4,
                F::FlagsConflict { flags: 0xc0 },
                A::TreatAsWithdraw,
            )]),
        ),
        (
            "MED of 3 octets (§7.4)",
            vec![0x80, 4, 3, 0, 0, 1],
            None,
            Expect::Handled(vec![(4, F::BadLength { len: 3 }, A::TreatAsWithdraw)]),
        ),
        (
            "LOCAL_PREF of 2 octets (§7.5)",
            vec![0x40, 5, 2, 0, 1],
            None,
            Expect::Handled(vec![(5, F::BadLength { len: 2 }, A::TreatAsWithdraw)]),
        ),
        (
            "ATOMIC_AGGREGATE with a value (§7.6)",
            vec![0x40, 6, 1, 0],
            None,
            Expect::Handled(vec![(6, F::BadLength { len: 1 }, A::AttributeDiscard)]),
        ),
        (
            "AGGREGATOR of 5 octets (§7.7)",
            vec![0xc0, 7, 5, 0, 0, 0, 0, 1],
            None,
            Expect::Handled(vec![(7, F::BadLength { len: 5 }, A::AttributeDiscard)]),
        ),
        (
            "ORIGINATOR_ID of 3 octets (§7.9)",
            vec![0x80, 9, 3, 1, 2, 3],
            None,
            Expect::Handled(vec![(9, F::BadLength { len: 3 }, A::TreatAsWithdraw)]),
        ),
        (
            "CLUSTER_LIST of 5 octets (§7.10)",
            vec![0x80, 10, 5, 1, 2, 3, 4, 5],
            None,
            Expect::Handled(vec![(10, F::BadLength { len: 5 }, A::TreatAsWithdraw)]),
        ),
        (
            "EXTENDED_COMMUNITIES of 4 octets (§7.14)",
            vec![0xc0, 16, 4, 1, 2, 3, 4],
            None,
            Expect::Handled(vec![(16, F::BadLength { len: 4 }, A::TreatAsWithdraw)]),
        ),
        (
            "AS4_PATH malformed (RFC 6793 §6)",
            vec![0xc0, 17, 3, 2, 1, 0],
            None,
            Expect::Handled(vec![(17, F::BadValue, A::AttributeDiscard)]),
        ),
        (
            "NEXT_HOP missing (§3 d)",
            vec![],
            Some(3),
            Expect::Handled(vec![(3, F::Missing, A::TreatAsWithdraw)]),
        ),
        (
            "repeated MP_UNREACH_NLRI (§3 g)",
            vec![0x80, 15, 3, 0, 1, 1, 0x80, 15, 3, 0, 1, 1],
            None,
            Expect::Reset(3, 1, vec![]),
        ),
        (
            "attribute overrunning the field (§4)",
            vec![0xc0, 8, 9, 0, 0],
            None,
            Expect::Handled(vec![(8, F::Overrun, A::TreatAsWithdraw)]),
        ),
    ];
    for (name, extra, skip, expect) in rows {
        let mut wire = vec![0xff; 16];
        let b = body(&extra, skip);
        wire.extend_from_slice(&((b.len() + 19) as u16).to_be_bytes());
        wire.push(2);
        wire.extend_from_slice(&b);
        let got = decode(&wire, FOUR);
        match expect {
            Expect::Reset(c, s, data) => {
                let n = got.expect_err(name).notification().unwrap();
                assert_eq!((n.code, n.subcode, n.data), (c, s, data), "{name}");
            }
            Expect::Handled(errors) => {
                let Ok(Some((Message::Update(u), _))) = got else {
                    panic!("{name}: {got:?}")
                };
                let want: Vec<AttributeError> = errors
                    .into_iter()
                    .map(|(t, f, a)| AttributeError::new(t, f, a))
                    .collect();
                assert_eq!(u.errors, want, "{name}");
            }
        }
    }
}
