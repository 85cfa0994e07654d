//! Reconnecting: connections that never sent an OPEN stay out of collision resolution
//! (RFC 4271 §6.8), and a session that drops retries at once, then backs off.

use super::tests_support::*;
use super::*;

/// Established on conn 1 (outbound), plus a silent inbound conn 2 that never sends OPEN.
fn established_with_silent_inbound() -> (Session, Instant) {
    let (mut session, t, _) = established(settings(), false);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 2,
            outbound: false,
            local: local(),
        },
    );
    assert!(!closes(&a, 2));
    (session, t)
}

#[test]
fn a_silent_connection_does_not_block_the_outbound_retry() {
    let (mut session, t) = established_with_silent_inbound();
    // The peer resets the real session; the silent connection remains.
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Notification(Notification::new(6, 4, vec![])),
        },
    );
    let retry = session
        .next_deadline()
        .filter(|d| *d < t + Duration::from_secs(1))
        .expect("a retry well before the hold timer of the silent connection");
    assert!(
        session
            .handle(retry, Input::Tick)
            .contains(&Action::Connect)
    );
    session.handle(
        retry,
        Input::Connected {
            conn: 3,
            outbound: true,
            local: local(),
        },
    );
    // The peer's BGP identifier is lower than ours (10.0.0.2): §6.8 would close our
    // outbound connection if the silent one counted as the peer's.
    let a = session.handle(
        retry,
        Input::Message {
            conn: 3,
            message: peer_open(64501, [10, 0, 0, 1], 9, false),
        },
    );
    assert!(!closes(&a, 3), "{a:?}");
    let a = session.handle(
        retry,
        Input::Message {
            conn: 3,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    // Once established, the silent connection is closed (only one connection stays).
    assert!(closes(&a, 2));
}

#[test]
fn a_new_inbound_connection_replaces_a_silent_one() {
    let (mut session, t) = established_with_silent_inbound();
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Notification(Notification::new(6, 4, vec![])),
        },
    );
    // The peer connects to us; the old inbound connection that never sent OPEN goes.
    let a = session.handle(
        t,
        Input::Connected {
            conn: 3,
            outbound: false,
            local: local(),
        },
    );
    assert!(closes(&a, 2));
    assert!(matches!(sent(&a, 3)[..], [Message::Open(_)]));
    for (i, id) in [[10, 0, 0, 9], [10, 0, 0, 1]].into_iter().enumerate() {
        // Whatever the identifiers, nothing else competes with conn 3.
        let mut s = Session::new(settings());
        s.handle(t, Input::Start);
        s.handle(
            t,
            Input::Connected {
                conn: 2,
                outbound: false,
                local: local(),
            },
        );
        s.handle(
            t,
            Input::Connected {
                conn: 3,
                outbound: false,
                local: local(),
            },
        );
        let a = s.handle(
            t,
            Input::Message {
                conn: 3,
                message: peer_open(64501, id, 9, false),
            },
        );
        assert!(!closes(&a, 3), "row {i}");
        s.handle(
            t,
            Input::Message {
                conn: 3,
                message: Message::Keepalive,
            },
        );
        assert_eq!(s.state(), State::Established, "row {i}");
    }
    let a = session.handle(
        t,
        Input::Message {
            conn: 3,
            message: peer_open(64501, [10, 0, 0, 1], 9, false),
        },
    );
    assert!(!closes(&a, 3));
}

#[test]
fn a_dropped_session_retries_at_once_then_often_for_a_minute_then_backs_off() {
    let (mut session, t, _) = established(settings(), false);
    session.handle(
        t,
        Input::Closed {
            conn: 1,
            error: None,
        },
    );
    let mut now = t;
    let mut gaps = Vec::new();
    // Two minutes of refused connections (a router whose bgpd does not come back).
    while now < t + Duration::from_secs(120) {
        let next = session.next_deadline().unwrap();
        gaps.push((now - t, next - now));
        assert_eq!(session.handle(next, Input::Tick), vec![Action::Connect]);
        session.handle(
            next,
            Input::ConnectFailed {
                error: ConnectError::Refused,
            },
        );
        now = next;
    }
    assert!(gaps[0].1 < Duration::from_millis(200), "{gaps:?}");
    // Within the first minute no gap exceeds QUICK_RETRY ...
    assert!(
        gaps.iter()
            .filter(|(at, _)| *at < QUICK_WINDOW)
            .all(|(_, gap)| *gap <= QUICK_RETRY),
        "{gaps:?}"
    );
    // ... after it the backoff grows again, up to connectTime.
    let last = gaps.last().unwrap().1;
    assert!(last > QUICK_RETRY, "{gaps:?}");
}

#[test]
fn refused_retries_right_after_a_drop_keep_the_reason_it_went_down() {
    let (mut session, t, _) = established(settings(), false);
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Notification(Notification::cease_with_message(2, "maintenance")),
        },
    );
    let why = session.last_error.clone();
    assert!(why.as_deref().unwrap().contains("maintenance"));
    let at = session.next_deadline().unwrap();
    session.handle(at, Input::Tick);
    session.handle(
        at,
        Input::ConnectFailed {
            error: ConnectError::Refused,
        },
    );
    assert_eq!(session.last_error, why);
    // Other failures, or refusals once the minute has passed, are reported.
    let at = session.next_deadline().unwrap();
    session.handle(at, Input::Tick);
    session.handle(
        at,
        Input::ConnectFailed {
            error: ConnectError::Timeout { secs: 30 },
        },
    );
    assert_eq!(
        session.last_error.as_deref(),
        Some("could not connect to 10.0.0.1: no answer within 30 s")
    );
    let later = t + QUICK_WINDOW + Duration::from_secs(1);
    session.handle(later, Input::Tick);
    session.handle(
        later,
        Input::ConnectFailed {
            error: ConnectError::Refused,
        },
    );
    assert_eq!(
        session.last_error.as_deref(),
        Some("could not connect to 10.0.0.1: connection refused")
    );
}
