//! Byte-exact tests in both directions: hand-assembled wire bytes (as FRR sends them)
//! decode to the expected structures and our structures encode to exactly those bytes.

use super::notification::{cease, code, header, open as open_err, update as upd_err};
use super::*;
use std::net::{IpAddr, Ipv4Addr};

const FOUR: Context = Context {
    four_octet_as: true,
};
const TWO: Context = Context {
    four_octet_as: false,
};

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

fn round_trip(message: Message, ctx: Context, wire: &[u8]) {
    assert_eq!(message.to_bytes(ctx), wire, "encode {message:?}");
    let (decoded, used) = decode(wire, ctx).unwrap().unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(decoded, message);
}

#[test]
fn keepalive_is_a_bare_header() {
    round_trip(Message::Keepalive, FOUR, &frame(4, &[]));
}

#[test]
fn open_with_our_capabilities() {
    let open = Open {
        version: 4,
        my_as: open::AS_TRANS,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_000),
            Capability::GracefulRestart {
                restarting: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    afi: 1,
                    safi: 1,
                    forwarding_preserved: true,
                }],
            },
        ],
    };
    #[rustfmt::skip]
    let body = [
        4, 0x5b, 0xa0, 0, 90, 10, 0, 0, 1,
        30, // optional parameters length
        2, 28, // one Capabilities parameter
        1, 4, 0, 1, 0, 1,
        1, 4, 0, 2, 0, 1,
        2, 0,
        65, 4, 0xfa, 0x56, 0xea, 0x00,
        64, 6, 0x80, 120, 0, 1, 1, 0x80,
    ];
    let wire = frame(1, &body);
    round_trip(Message::Open(open.clone()), FOUR, &wire);
    assert_eq!(open.asn(), 4_200_000_000);
}

#[test]
fn open_with_capabilities_in_separate_parameters_and_unknown_ones() {
    // FRR style: each capability in its own parameter, plus ones we do not act on.
    #[rustfmt::skip]
    let body = [
        4, 0xfd, 0xe9, 0, 3, 10, 0, 0, 2,
        24,
        2, 6, 1, 4, 0, 1, 0, 1,
        2, 2, 70, 0, // enhanced route refresh
        2, 2, 73, 0, // not acted on
        2, 6, 65, 4, 0, 0, 0xfd, 0xe9,
    ];
    let (message, _) = decode(&frame(1, &body), FOUR).unwrap().unwrap();
    let Message::Open(open) = message else {
        panic!()
    };
    assert_eq!(open.hold_time, 3);
    assert_eq!(open.asn(), 65001);
    assert!(open.has(|c| *c == Capability::EnhancedRouteRefresh));
    assert!(open.has(|c| matches!(c, Capability::Unknown { code: 73, .. })));
}

#[test]
fn open_errors_map_to_rfc4271_section_6_2() {
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 2, 0];
    body[0] = 3;
    assert_eq!(
        decode(&frame(1, &body), FOUR)
            .unwrap_err()
            .notification()
            .unwrap(),
        Notification::new(
            code::OPEN_MESSAGE,
            open_err::UNSUPPORTED_VERSION,
            vec![0, 4]
        )
    );
    body[0] = 4;
    body[4] = 2;
    assert_eq!(
        decode(&frame(1, &body), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        open_err::UNACCEPTABLE_HOLD_TIME
    );
    body[4] = 90;
    body[5..9].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        decode(&frame(1, &body), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        open_err::BAD_BGP_IDENTIFIER
    );
    let with_auth = [4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 2, 3, 1, 1, 0];
    assert_eq!(
        decode(&frame(1, &with_auth), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        open_err::UNSUPPORTED_OPTIONAL_PARAMETER
    );
}

#[test]
fn header_errors_map_to_rfc4271_section_6_1() {
    let mut wire = frame(4, &[]);
    wire[3] = 0;
    assert_eq!(
        decode(&wire, FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        header::CONNECTION_NOT_SYNCHRONIZED
    );
    let wire = frame(4, &[0]);
    assert_eq!(
        decode(&wire, FOUR).unwrap_err().notification().unwrap(),
        Notification::new(
            code::MESSAGE_HEADER,
            header::BAD_MESSAGE_LENGTH,
            vec![0, 20]
        )
    );
    assert_eq!(
        decode(&frame(9, &[]), FOUR)
            .unwrap_err()
            .notification()
            .unwrap(),
        Notification::new(code::MESSAGE_HEADER, header::BAD_MESSAGE_TYPE, vec![9])
    );
    let mut huge = frame(2, &[0, 0, 0, 0]);
    huge[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(
        decode(&huge, FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        header::BAD_MESSAGE_LENGTH
    );
    // A partial frame is not an error: wait for more.
    assert_eq!(decode(&frame(2, &[0, 0, 0, 0])[..20], FOUR), Ok(None));
}

#[test]
fn notification_with_shutdown_message() {
    let n = Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
    let mut body = vec![6, 2, 11];
    body.extend_from_slice(b"maintenance");
    round_trip(Message::Notification(n), FOUR, &frame(3, &body));
}

#[test]
fn route_refresh() {
    round_trip(
        Message::RouteRefresh {
            afi: 2,
            safi: 1,
            subtype: RefreshSubtype::Request,
        },
        FOUR,
        &frame(5, &[0, 2, 0, 1]),
    );
}

/// RFC 7313 §3.2: the third octet is the message subtype: 1 BoRR, 2 EoRR; other values
/// are decoded (and ignored by the session, §5).
#[test]
fn route_refresh_subtypes() {
    for (code, subtype) in [
        (1, RefreshSubtype::Begin),
        (2, RefreshSubtype::End),
        (255, RefreshSubtype::Other(255)),
    ] {
        round_trip(
            Message::RouteRefresh {
                afi: 1,
                safi: 1,
                subtype,
            },
            FOUR,
            &frame(5, &[0, 1, code, 1]),
        );
    }
}

/// RFC 7313 §5: a BoRR/EoRR whose body is not 4 octets gets ROUTE-REFRESH Message
/// Error / Invalid Message Length with the whole message as data; a request of the wrong
/// length stays a header error (RFC 4271 §6.1).
#[test]
fn borr_of_the_wrong_length_is_a_route_refresh_error() {
    let wire = frame(5, &[0, 1, 1, 1, 0]);
    // Not all there yet: wait.
    assert_eq!(decode(&wire[..21], FOUR).unwrap(), None);
    let err = decode(&wire, FOUR).unwrap_err();
    let n = err.notification().unwrap();
    assert_eq!((n.code, n.subcode), (7, 1));
    assert_eq!(n.data, wire);
    assert_eq!(
        n.to_string(),
        "ROUTE-REFRESH error / Invalid Message Length"
    );
    let request = frame(5, &[0, 1, 0, 1, 0]);
    let n = decode(&request, FOUR).unwrap_err().notification().unwrap();
    assert_eq!((n.code, n.subcode), (1, 2));
}

#[test]
fn enhanced_route_refresh_capability() {
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1];
    // One Capabilities parameter: code 70, length 0 (RFC 7313 §3.1).
    body.extend_from_slice(&[4, 2, 2, 70, 0]);
    let Some((Message::Open(open), _)) = decode(&frame(1, &body), FOUR).unwrap() else {
        panic!()
    };
    assert_eq!(open.capabilities, vec![Capability::EnhancedRouteRefresh]);
}

fn ebgp_ipv4_update() -> Update {
    Update {
        withdrawn: vec![],
        attributes: vec![
            Attribute::Origin(0),
            Attribute::AsPath(vec![64500]),
            Attribute::NextHop(Ipv4Addr::new(192, 168, 4, 2)),
            Attribute::Communities(vec![0xffff_ff02, 0xfc00_0064]),
            Attribute::LargeCommunities(vec![(64500, 1, 2)]),
        ],
        nlri: vec![
            "10.1.0.1/32".parse().unwrap(),
            "10.2.0.0/16".parse().unwrap(),
        ],
        errors: vec![],
    }
}

#[test]
fn update_with_every_attribute_we_send() {
    #[rustfmt::skip]
    let body = [
        0, 0, // no withdrawn
        0, 46, // path attributes length
        0x40, 1, 1, 0,
        0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf4,
        0x40, 3, 4, 192, 168, 4, 2,
        0xc0, 8, 8, 0xff, 0xff, 0xff, 0x02, 0xfc, 0x00, 0x00, 0x64,
        0xc0, 32, 12, 0, 0, 0xfb, 0xf4, 0, 0, 0, 1, 0, 0, 0, 2,
        32, 10, 1, 0, 1,
        16, 10, 2,
    ];
    round_trip(Message::Update(ebgp_ipv4_update()), FOUR, &frame(2, &body));
}

#[test]
fn two_octet_session_uses_as_trans_and_as4_path() {
    let update = Update {
        attributes: vec![
            Attribute::Origin(0),
            Attribute::AsPath(vec![4_200_000_000]),
            Attribute::As4Path(vec![4_200_000_000]),
        ],
        ..Update::default()
    };
    #[rustfmt::skip]
    let body = [
        0, 0, 0, 20,
        0x40, 1, 1, 0,
        0x40, 2, 4, 2, 1, 0x5b, 0xa0,
        0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00,
    ];
    let wire = frame(2, &body);
    assert_eq!(Message::Update(update).to_bytes(TWO), wire);
    let (Message::Update(back), _) = decode(&wire, TWO).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(back.attributes[1], Attribute::AsPath(vec![23456]));
}

#[test]
fn ipv6_in_mp_reach_and_mp_unreach() {
    let reach = Update {
        attributes: vec![
            Attribute::Origin(0),
            Attribute::AsPath(vec![]),
            Attribute::LocalPref(100),
            Attribute::MpReach {
                afi: 2,
                safi: 1,
                next_hops: vec![IpAddr::V6("fd00::2".parse().unwrap())],
                nlri: vec!["2001:db8::1/128".parse().unwrap()],
            },
        ],
        ..Update::default()
    };
    let mut body = vec![
        0, 0, 0, 56, 0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 5, 4, 0, 0, 0, 100,
    ];
    body.extend_from_slice(&[0x90, 14, 0, 38, 0, 2, 1, 16]);
    body.extend_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
    body.push(0);
    body.push(128);
    body.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    round_trip(Message::Update(reach), FOUR, &frame(2, &body));

    let eor = Update {
        attributes: vec![Attribute::MpUnreach {
            afi: 2,
            safi: 1,
            withdrawn: vec![],
        }],
        ..Update::default()
    };
    let wire = frame(2, &[0, 0, 0, 7, 0x90, 15, 0, 3, 0, 2, 1]);
    round_trip(Message::Update(eor.clone()), FOUR, &wire);
    assert_eq!(eor.end_of_rib(), Some((2, 1)));
    assert_eq!(Update::default().end_of_rib(), Some((1, 1)));
}

#[test]
fn rfc7606_malformed_optional_attribute_is_treat_as_withdraw_not_reset() {
    // COMMUNITIES of 3 octets.
    #[rustfmt::skip]
    let body = [
        0, 0, 0, 24,
        0x40, 1, 1, 0,
        0x40, 2, 0,
        0x40, 3, 4, 10, 0, 0, 1,
        0xc0, 8, 3, 1, 2, 3,
        0x40, 1, 1, 2, // repeated ORIGIN: discarded
        24, 10, 9, 9,
    ];
    let (Message::Update(u), _) = decode(&frame(2, &body), FOUR).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(
        u.errors,
        vec![
            AttributeError::new(
                8,
                AttributeFault::BadLength { len: 3 },
                ErrorAction::TreatAsWithdraw
            ),
            AttributeError::new(1, AttributeFault::Repeated, ErrorAction::AttributeDiscard),
        ]
    );
    assert!(u.treat_as_withdraw());
    assert_eq!(u.attributes[0], Attribute::Origin(0));
}

#[test]
fn rfc7606_unlocatable_nlri_resets_the_session() {
    // Withdrawn length beyond the message.
    assert_eq!(
        decode(&frame(2, &[0, 9, 0, 0]), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        upd_err::MALFORMED_ATTRIBUTE_LIST
    );
    // NLRI with a /33.
    assert_eq!(
        decode(&frame(2, &[0, 0, 0, 0, 33, 1, 2, 3, 4, 5]), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        upd_err::INVALID_NETWORK_FIELD
    );
    // Truncated MP_REACH_NLRI.
    assert_eq!(
        decode(&frame(2, &[0, 0, 0, 5, 0x90, 14, 0, 1, 0]), FOUR)
            .unwrap_err()
            .notification()
            .unwrap()
            .subcode,
        upd_err::MALFORMED_ATTRIBUTE_LIST
    );
}

/// RFC 8950 §3: capability code 5, one 6-octet tuple per family (NLRI AFI, NLRI SAFI,
/// Next Hop AFI); an empty or ragged value is malformed.
#[test]
fn open_with_extended_next_hop_capability() {
    let open = Open {
        version: 4,
        my_as: 64500,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::ExtendedNextHop(vec![open::ExtendedNextHopFamily {
                nlri_afi: 1,
                nlri_safi: 1,
                next_hop_afi: 2,
            }]),
        ],
    };
    #[rustfmt::skip]
    let body = [
        4, 0xfb, 0xf4, 0, 90, 10, 0, 0, 1,
        16, // optional parameters length
        2, 14, // one Capabilities parameter
        1, 4, 0, 1, 0, 1,
        5, 6, 0, 1, 0, 1, 0, 2,
    ];
    round_trip(Message::Open(open), FOUR, &frame(1, &body));
    for bad in [&[5u8, 0][..], &[5, 5, 0, 1, 0, 1, 0]] {
        let mut body = vec![4, 0xfb, 0xf4, 0, 90, 10, 0, 0, 1, bad.len() as u8 + 2, 2];
        body.push(bad.len() as u8);
        body.extend_from_slice(bad);
        assert!(
            decode(&frame(1, &body), FOUR).is_err(),
            "capability value {bad:?} must be refused"
        );
    }
}
