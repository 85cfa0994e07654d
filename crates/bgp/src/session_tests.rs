//! Table-style transition tests: a scripted peer, time advanced by hand.

use super::*;
use crate::packet::{Update, decode};
use crate::settings::RouteAttributes;
use std::net::Ipv4Addr;
use std::sync::Arc;

pub(super) const CTX: Context = Context {
    four_octet_as: true,
};

pub(super) fn settings() -> PeerSettings {
    PeerSettings::new(
        "r1",
        64500,
        PeerAsn::Fixed(64501),
        "10.0.0.1".parse().unwrap(),
        Ipv4Addr::new(10, 0, 0, 2),
    )
}

pub(super) fn peer_open(asn: u32, id: [u8; 4], hold: u16, gr: bool) -> Message {
    let mut capabilities = vec![
        Capability::Multiprotocol { afi: 1, safi: 1 },
        Capability::Multiprotocol { afi: 2, safi: 1 },
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ];
    if gr {
        capabilities.push(Capability::GracefulRestart {
            restarting: false,
            restart_time: 120,
            families: vec![],
        });
    }
    Message::Open(Open {
        version: 4,
        my_as: asn as u16,
        hold_time: hold,
        bgp_id: Ipv4Addr::from(id),
        capabilities,
    })
}

pub(super) fn local() -> SocketAddr {
    "10.0.0.2:40000".parse().unwrap()
}

/// Every message in the Send actions for `conn`, decoded.
pub(super) fn sent(actions: &[Action], conn: ConnId) -> Vec<Message> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Send { conn: c, bytes } = a
            && *c == conn
        {
            let mut rest = bytes.as_slice();
            while let Some((m, used)) = decode(rest, CTX).unwrap() {
                out.push(m);
                rest = &rest[used..];
            }
        }
    }
    out
}

pub(super) fn closes(actions: &[Action], conn: ConnId) -> bool {
    actions.contains(&Action::Close { conn })
}

pub(super) fn routes(n: u32) -> Routes {
    let a = Arc::new(RouteAttributes::default());
    (0..n)
        .map(|i| (format!("192.0.2.{i}/32").parse().unwrap(), Arc::clone(&a)))
        .collect()
}

/// Drives a session to Established on connection 1; returns it and the time.
pub(super) fn established(s: PeerSettings, gr: bool) -> (Session, Instant, Vec<Action>) {
    let t = Instant::now();
    let mut session = Session::new(s);
    session.handle(t, Input::Routes(routes(3)));
    assert_eq!(session.handle(t, Input::Start), vec![Action::Connect]);
    assert_eq!(session.state(), State::Connect);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    assert!(matches!(sent(&a, 1)[..], [Message::Open(_)]));
    assert_eq!(session.state(), State::OpenSent);
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: peer_open(64501, [10, 0, 0, 1], 9, gr),
        },
    );
    assert_eq!(sent(&a, 1), vec![Message::Keepalive]);
    assert_eq!(session.state(), State::OpenConfirm);
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    (session, t, a)
}

#[test]
fn reaches_established_and_sends_the_routes_once() {
    let (mut session, t, a) = established(settings(), false);
    let msgs = sent(&a, 1);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let Message::Update(u) = &msgs[0] else {
        panic!()
    };
    assert_eq!(u.nlri.len(), 3);
    assert!(
        u.attributes
            .contains(&crate::packet::Attribute::NextHop(Ipv4Addr::new(
                10, 0, 0, 2
            )))
    );
    assert_eq!(session.prefixes_announced(), 3);
    assert_eq!(session.counters.updates_sent, 1);
    // Same routes again: nothing on the wire.
    assert!(session.handle(t, Input::Routes(routes(3))).is_empty());
    // One fewer: a withdrawal.
    let a = session.handle(t, Input::Routes(routes(2)));
    let Message::Update(u) = &sent(&a, 1)[0] else {
        panic!()
    };
    assert_eq!(u.withdrawn, vec!["192.0.2.2/32".parse().unwrap()]);
}

#[test]
fn message_counters_follow_the_wire_by_type_and_direction() {
    let (mut session, t, _) = established(settings(), false);
    let m = &session.counters.messages;
    // Sent: OPEN, KEEPALIVE (OpenConfirm), one UPDATE; received: OPEN, KEEPALIVE.
    assert_eq!((m.opens_sent, m.keepalives_sent, m.total_sent), (1, 1, 3));
    assert_eq!(
        (m.opens_received, m.keepalives_received, m.total_received),
        (1, 1, 2)
    );
    assert_eq!(
        m.total_sent - m.opens_sent - m.keepalives_sent,
        session.counters.updates_sent
    );
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    session.handle(
        t,
        Input::Stop(Stop::Shutdown {
            message: String::new(),
        }),
    );
    let m = &session.counters.messages;
    assert_eq!((m.keepalives_received, m.total_received), (2, 3));
    assert_eq!(m.notifications_sent, 1);
    assert_eq!(m.updates_received, 0);
}

#[test]
fn graceful_restart_sends_end_of_rib_and_restart_closes_silently() {
    let mut s = settings();
    s.graceful_restart = true;
    let (mut session, t, a) = established(s, true);
    let msgs = sent(&a, 1);
    let eors: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => u.end_of_rib(),
            _ => None,
        })
        .collect();
    assert_eq!(eors, vec![(1, 1), (2, 1)]);
    let a = session.handle(t, Input::Stop(Stop::Restart));
    assert_eq!(
        a,
        vec![Action::Close { conn: 1 }],
        "no NOTIFICATION: the peer keeps our routes"
    );
}

#[test]
fn shutdown_sends_cease_with_message() {
    let (mut session, t, _) = established(settings(), false);
    let a = session.handle(
        t,
        Input::Stop(Stop::Shutdown {
            message: "node drained".into(),
        }),
    );
    let Message::Notification(n) = &sent(&a, 1)[0] else {
        panic!()
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.shutdown_message().as_deref(), Some("node drained"));
    assert!(closes(&a, 1));
    assert_eq!(session.state(), State::Idle);
    assert_eq!(session.next_deadline(), None);
}

#[test]
fn hold_timer_is_enforced_and_keepalives_sent() {
    let (mut session, t, _) = established(settings(), false);
    // Negotiated hold 9 s (peer's, smaller than our 90): keepalive every 3 s.
    assert_eq!(session.next_deadline(), Some(t + Duration::from_secs(3)));
    let a = session.handle(t + Duration::from_secs(3), Input::Tick);
    assert_eq!(sent(&a, 1), vec![Message::Keepalive]);
    // A keepalive from the peer at 8 s pushes the hold deadline to 17 s.
    session.handle(
        t + Duration::from_secs(8),
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    let a = session.handle(t + Duration::from_secs(10), Input::Tick);
    assert!(!closes(&a, 1));
    let a = session.handle(t + Duration::from_secs(17), Input::Tick);
    assert!(sent(&a, 1).contains(&Message::Notification(Notification::new(4, 0, vec![]))));
    assert!(closes(&a, 1));
    assert_eq!(session.state(), State::Active);
    assert!(
        session
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("hold timer expired: no message from 10.0.0.1 in 9 s")
    );
    assert_eq!(session.prefixes_announced(), 0);
    assert_eq!(session.prefixes_pending(), 3);
}

#[test]
fn bad_peer_as_is_refused_with_a_human_reason() {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: peer_open(64999, [10, 0, 0, 1], 90, false),
        },
    );
    assert_eq!(
        sent(&a, 1),
        vec![Message::Notification(Notification::new(2, 2, vec![]))]
    );
    assert_eq!(
        session.last_error.as_deref(),
        Some(
            "we closed the session with 10.0.0.1: OPEN error / Bad Peer AS (we expected 64501, it sent 64999)"
        )
    );
}

#[test]
fn peer_notification_is_explained() {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Notification(Notification::new(2, 2, vec![])),
        },
    );
    assert_eq!(
        session.last_error.as_deref(),
        Some(
            "peer 10.0.0.1 closed the session: OPEN error / Bad Peer AS (it expected a different AS, we sent 64500)"
        )
    );
}

#[test]
fn connect_retry_backs_off_up_to_connect_time() {
    let t = Instant::now();
    let mut s = settings();
    s.connect_retry_time = Duration::from_secs(4);
    let mut session = Session::new(s);
    session.handle(t, Input::Start);
    let mut now = t;
    let mut gaps = Vec::new();
    for _ in 0..9 {
        session.handle(
            now,
            Input::ConnectFailed {
                error: ConnectError::Refused,
            },
        );
        assert_eq!(session.state(), State::Active);
        let next = session.next_deadline().unwrap();
        gaps.push((next - now).as_millis());
        assert!(
            session
                .handle(next - Duration::from_millis(1), Input::Tick)
                .is_empty()
        );
        assert_eq!(session.handle(next, Input::Tick), vec![Action::Connect]);
        now = next;
    }
    // Issue #21: the first retry comes at once (a restarted router listens again
    // within a second), then doubles up to connectTime.
    assert_eq!(gaps, vec![50, 100, 200, 400, 800, 1600, 3200, 4000, 4000]);
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    // rows: (our router id, peer id, surviving connection)
    let table = [
        ([10, 0, 0, 2], [10, 0, 0, 1], 1u64),
        ([10, 0, 0, 2], [10, 0, 0, 9], 2),
    ];
    for (ours, theirs, survivor) in table {
        let t = Instant::now();
        let mut s = settings();
        s.router_id = Ipv4Addr::from(ours);
        let mut session = Session::new(s);
        session.handle(t, Input::Start);
        session.handle(
            t,
            Input::Connected {
                conn: 1,
                outbound: true,
                local: local(),
            },
        );
        session.handle(
            t,
            Input::Connected {
                conn: 2,
                outbound: false,
                local: local(),
            },
        );
        let a1 = session.handle(
            t,
            Input::Message {
                conn: 1,
                message: peer_open(64501, theirs, 90, false),
            },
        );
        let a2 = session.handle(
            t,
            Input::Message {
                conn: 2,
                message: peer_open(64501, theirs, 90, false),
            },
        );
        let loser = 3 - survivor;
        let all: Vec<Action> = a1.into_iter().chain(a2).collect();
        assert!(closes(&all, loser), "{ours:?} vs {theirs:?}");
        assert!(!closes(&all, survivor));
        assert!(
            sent(&all, loser).contains(&Message::Notification(Notification::new(6, 7, vec![])))
        );
        session.handle(
            t,
            Input::Message {
                conn: survivor,
                message: Message::Keepalive,
            },
        );
        assert_eq!(session.state(), State::Established);
    }
}

#[test]
fn route_refresh_resends_the_family() {
    let (mut session, t, _) = established(settings(), false);
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::RouteRefresh {
                afi: 1,
                safi: 1,
                subtype: RefreshSubtype::Request,
            },
        },
    );
    let Message::Update(u) = &sent(&a, 1)[0] else {
        panic!()
    };
    assert_eq!(u.nlri.len(), 3);
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::RouteRefresh {
                afi: 2,
                safi: 1,
                subtype: RefreshSubtype::Request,
            },
        },
    );
    assert!(a.is_empty());
}

#[test]
fn unexpected_message_is_an_fsm_error() {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Update(Update::default()),
        },
    );
    assert_eq!(
        sent(&a, 1),
        vec![Message::Notification(Notification::new(5, 1, vec![]))]
    );
}

#[test]
fn ibgp_gets_local_pref_and_dynamic_asn_accepts_any_internal() {
    let mut s = settings();
    s.peer_asn = PeerAsn::DynamicInternal;
    let t = Instant::now();
    let mut session = Session::new(s);
    let a = Arc::new(RouteAttributes {
        local_pref: Some(300),
        ..RouteAttributes::default()
    });
    session.handle(
        t,
        Input::Routes([("192.0.2.1/32".parse().unwrap(), a)].into_iter().collect()),
    );
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: peer_open(64500, [10, 0, 0, 1], 90, false),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    let Message::Update(u) = &sent(&a, 1)[0] else {
        panic!()
    };
    assert!(
        u.attributes
            .contains(&crate::packet::Attribute::LocalPref(300))
    );
    assert!(
        u.attributes
            .contains(&crate::packet::Attribute::AsPath(vec![]))
    );
}

#[test]
fn a_new_connection_from_a_restarting_peer_replaces_the_established_one() {
    let mut s = settings();
    s.graceful_restart = true;
    let (mut session, t, _) = established(s, true);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 2,
            outbound: false,
            local: local(),
        },
    );
    assert!(matches!(sent(&a, 2)[..], [Message::Open(_)]));
    // RFC 4724 §4.2: the peer restarted; the old connection goes, the new one proceeds.
    let a = session.handle(
        t,
        Input::Message {
            conn: 2,
            message: peer_open(64501, [10, 0, 0, 1], 9, true),
        },
    );
    assert!(closes(&a, 1));
    assert_eq!(sent(&a, 2), vec![Message::Keepalive]);
    let a = session.handle(
        t,
        Input::Message {
            conn: 2,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    assert!(
        !sent(&a, 2).is_empty(),
        "routes sent again on the new connection"
    );
}

#[test]
fn without_graceful_restart_a_second_connection_loses_to_the_established_one() {
    let (mut session, t, _) = established(settings(), false);
    session.handle(
        t,
        Input::Connected {
            conn: 2,
            outbound: false,
            local: local(),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 2,
            message: peer_open(64501, [10, 0, 0, 1], 9, false),
        },
    );
    assert!(closes(&a, 2));
    assert!(!closes(&a, 1));
    assert_eq!(session.state(), State::Established);
}

#[test]
fn a_peer_asking_for_a_role_gets_the_matching_one_on_the_next_connection() {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    let Message::Open(mut open) = peer_open(64501, [10, 0, 0, 1], 90, false) else {
        panic!()
    };
    open.capabilities.push(Capability::Role(0)); // the router is our Provider
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Open(open),
        },
    );
    // A strict router refuses the first session (RFC 9234 §4.2 Role Mismatch)...
    let mismatch = Notification::new(2, 11, vec![]);
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Notification(mismatch),
        },
    );
    assert_eq!(
        session.last_error.as_deref(),
        Some("peer 10.0.0.1 closed the session: OPEN error / Role Mismatch")
    );
    // ...and the next OPEN says Customer.
    let next = session.next_deadline().unwrap();
    assert_eq!(session.handle(next, Input::Tick), vec![Action::Connect]);
    let a = session.handle(
        next,
        Input::Connected {
            conn: 2,
            outbound: true,
            local: local(),
        },
    );
    let Message::Open(ours) = &sent(&a, 2)[0] else {
        panic!()
    };
    assert!(ours.has(|c| *c == Capability::Role(3)));
}

/// A peer that sent Enhanced Route Refresh (RFC 7313 §3.1), like FRR and BIRD.
fn err_open() -> Message {
    let Message::Open(mut open) = peer_open(64501, [10, 0, 0, 1], 9, false) else {
        unreachable!()
    };
    open.capabilities.push(Capability::EnhancedRouteRefresh);
    Message::Open(open)
}

/// Established on connection 1 with a peer that negotiated Enhanced Route Refresh.
fn established_err() -> (Session, Instant) {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Routes(routes(3)));
    session.handle(t, Input::Start);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    let [Message::Open(ours)] = &sent(&a, 1)[..] else {
        panic!()
    };
    // RFC 7313 §3.1: we advertise it beside Route Refresh.
    assert!(ours.has(|c| *c == Capability::EnhancedRouteRefresh));
    assert!(ours.has(|c| *c == Capability::RouteRefresh));
    for message in [err_open(), Message::Keepalive] {
        session.handle(t, Input::Message { conn: 1, message });
    }
    assert_eq!(session.state(), State::Established);
    assert!(session.enhanced_route_refresh());
    (session, t)
}

fn refresh(afi: u16, subtype: RefreshSubtype) -> Input {
    Input::Message {
        conn: 1,
        message: Message::RouteRefresh {
            afi,
            safi: 1,
            subtype,
        },
    }
}

#[test]
fn enhanced_route_refresh_frames_the_answer_with_borr_and_eorr() {
    let (mut session, t) = established_err();
    // RFC 7313 §4.2: BoRR, the Adj-RIB-Out of the family, EoRR.
    let msgs = sent(&session.handle(t, refresh(1, RefreshSubtype::Request)), 1);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(matches!(
        msgs[0],
        Message::RouteRefresh {
            afi: 1,
            safi: 1,
            subtype: RefreshSubtype::Begin
        }
    ));
    assert!(matches!(&msgs[1], Message::Update(u) if u.nlri.len() == 3));
    assert!(matches!(
        msgs[2],
        Message::RouteRefresh {
            afi: 1,
            safi: 1,
            subtype: RefreshSubtype::End
        }
    ));
    // IPv6: nothing announced, still framed (the family's Adj-RIB-Out is empty).
    let msgs = sent(&session.handle(t, refresh(2, RefreshSubtype::Request)), 1);
    assert!(matches!(
        msgs[..],
        [
            Message::RouteRefresh {
                subtype: RefreshSubtype::Begin,
                ..
            },
            Message::RouteRefresh {
                subtype: RefreshSubtype::End,
                ..
            }
        ]
    ));
    // RFC 2918 §4: a family that was not negotiated is ignored.
    assert!(
        session
            .handle(t, refresh(25, RefreshSubtype::Request))
            .is_empty()
    );
}

#[test]
fn confirm_sends_a_request_per_family_and_is_confirmed_by_every_eorr() {
    let (mut session, t) = established_err();
    assert_eq!(session.confirmation(), Confirmation::NotAsked);
    // The drain: withdraw, then ask for the confirmation; the requests follow the
    // withdrawal on the wire.
    let mut a = session.handle(t, Input::Routes(Routes::new()));
    a.extend(session.handle(t, Input::Confirm));
    let msgs = sent(&a, 1);
    assert!(matches!(&msgs[0], Message::Update(u) if u.withdrawn.len() == 3));
    assert_eq!(
        msgs[1..],
        [
            Message::RouteRefresh {
                afi: 1,
                safi: 1,
                subtype: RefreshSubtype::Request
            },
            Message::RouteRefresh {
                afi: 2,
                safi: 1,
                subtype: RefreshSubtype::Request
            }
        ]
    );
    assert_eq!(
        session.confirmation(),
        Confirmation::Pending { id: 1, asked_at: t }
    );
    let t1 = t + Duration::from_millis(7);
    // The peer's refresh: BoRR, (its routes, ignored), EoRR per family.
    assert!(
        session
            .handle(t1, refresh(1, RefreshSubtype::Begin))
            .is_empty()
    );
    assert!(
        session
            .handle(t1, refresh(1, RefreshSubtype::End))
            .is_empty()
    );
    assert!(matches!(
        session.confirmation(),
        Confirmation::Pending { id: 1, .. }
    ));
    session.handle(t1, refresh(2, RefreshSubtype::Begin));
    let a = session.handle(t1, refresh(2, RefreshSubtype::End));
    let after = Duration::from_millis(7);
    assert_eq!(
        session.confirmation(),
        Confirmation::Confirmed { id: 1, after }
    );
    assert_eq!(
        a,
        vec![Action::Report(Report::Confirmed {
            peer: "10.0.0.1".parse().unwrap(),
            id: 1,
            after
        })]
    );
    // A late or unsolicited EoRR changes nothing (RFC 7313 §4.2: a peer may frame a
    // refresh of its own).
    assert!(
        session
            .handle(t1, refresh(1, RefreshSubtype::End))
            .is_empty()
    );
    // A second request gets the next number.
    session.handle(t1, Input::Confirm);
    assert!(matches!(
        session.confirmation(),
        Confirmation::Pending { id: 2, .. }
    ));
    // The session drops: nothing pending any more.
    session.handle(
        t1,
        Input::Closed {
            conn: 1,
            error: None,
        },
    );
    assert_eq!(session.confirmation(), Confirmation::NotAsked);
}

#[test]
fn a_peer_without_enhanced_route_refresh_cannot_confirm() {
    let (mut session, t, _) = established(settings(), false);
    assert!(!session.enhanced_route_refresh());
    assert!(session.handle(t, Input::Confirm).is_empty());
    assert_eq!(session.confirmation(), Confirmation::Unsupported);
    // RFC 2918 answers stay unframed.
    let msgs = sent(&session.handle(t, refresh(1, RefreshSubtype::Request)), 1);
    assert!(matches!(msgs[..], [Message::Update(_)]));
}

#[test]
fn confirm_before_established_does_nothing() {
    let mut session = Session::new(settings());
    let t = Instant::now();
    session.handle(t, Input::Start);
    assert!(session.handle(t, Input::Confirm).is_empty());
    assert_eq!(session.confirmation(), Confirmation::NotAsked);
}

#[test]
fn unknown_refresh_subtype_is_ignored_and_reported() {
    let (mut session, t) = established_err();
    session.handle(t, Input::Confirm);
    let a = session.handle(t, refresh(1, RefreshSubtype::Other(255)));
    // RFC 7313 §5: ignored (no NOTIFICATION, no close), logged.
    assert_eq!(
        a,
        vec![Action::Report(Report::UnknownRefreshSubtype {
            peer: "10.0.0.1".parse().unwrap(),
            subtype: 255
        })]
    );
    assert_eq!(session.state(), State::Established);
    assert!(matches!(
        session.confirmation(),
        Confirmation::Pending { .. }
    ));
}
