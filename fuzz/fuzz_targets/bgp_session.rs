//! The session state machine under arbitrary peer input: bytes are framed and decoded as
//! the shell does, every message or decode error goes into the FSM with time moving on;
//! nothing may panic, and every action must refer to a connection the shell opened.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxlb_bgp::packet::{Context, decode};
use oxlb_bgp::session::{Action, Input, Session};
use oxlb_bgp::{PeerAsn, PeerSettings};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut wire)) = data.split_first() else {
        return;
    };
    let mut settings = PeerSettings::new(
        "fuzz",
        64500,
        if flags & 1 == 1 {
            PeerAsn::DynamicExternal
        } else {
            PeerAsn::Fixed(64501)
        },
        "10.0.0.1".parse().unwrap(),
        Ipv4Addr::new(10, 0, 0, 2),
    );
    settings.graceful_restart = flags & 2 == 2;
    let mut session = Session::new(settings);
    let mut now = Instant::now();
    let check = |actions: Vec<Action>| {
        for a in actions {
            if let Action::Send { conn, .. } | Action::Close { conn } = a {
                assert!(conn == 1 || conn == 2);
            }
        }
    };
    check(session.handle(now, Input::Start));
    let local = "10.0.0.2:179".parse().unwrap();
    check(session.handle(
        now,
        Input::Connected {
            conn: 1,
            outbound: true,
            local,
        },
    ));
    if flags & 4 == 4 {
        check(session.handle(
            now,
            Input::Connected {
                conn: 2,
                outbound: false,
                local,
            },
        ));
    }
    let ctx = Context {
        four_octet_as: flags & 8 == 8,
    };
    let mut conn = 1;
    loop {
        match decode(wire, ctx) {
            Ok(Some((message, used))) => {
                wire = &wire[used..];
                check(session.handle(now, Input::Message { conn, message }));
            }
            Ok(None) => break,
            Err(error) => {
                check(session.handle(now, Input::DecodeError { conn, error }));
                break;
            }
        }
        now += Duration::from_secs(u64::from(wire.first().copied().unwrap_or(0) % 8));
        check(session.handle(now, Input::Tick));
        if flags & 16 == 16 {
            // What a drain does: ask the peer to confirm (RFC 7313 refresh request).
            check(session.handle(now, Input::Confirm));
        }
        if flags & 4 == 4 {
            conn = 3 - conn;
        }
    }
    let _ = session.prefixes_pending();
    let _ = session.confirmation();
});
