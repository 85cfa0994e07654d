//! End to end (issue #21): a raw test peer speaking BGP bytes to a running speaker on
//! loopback sends each malformed OPEN, header, UPDATE and attribute that RFC 4271 §6
//! and RFC 7606 name, and checks the answer: the NOTIFICATION (code/subcode), or for
//! treat-as-withdraw / attribute discard no NOTIFICATION, the session kept, and the
//! error logged with the peer. Meanwhile a second peer's session and the routes it was
//! sent must stay untouched. A new case is a new row in `cases()`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_bgp::{
    Desired, PeerAsn, PeerSettings, RouteAttributes, ShutdownMode, Speaker, SpeakerOptions, State,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OURS: [u8; 4] = [127, 0, 0, 20];
const RAW: [u8; 4] = [127, 0, 0, 21];
const OTHER: [u8; 4] = [127, 0, 0, 22];
/// Generous bound for one step; only a hung test ever waits it out.
const STEP: Duration = Duration::from_secs(20);

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// OPEN body: version, AS, hold, id, then the optional parameters as given.
fn open_body(version: u8, asn: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&asn.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

/// Capabilities: IPv4 unicast, 4-octet AS 64501.
const CAPS: [u8; 14] = [2, 12, 1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0xfb, 0xf5];

fn good_open(id: [u8; 4]) -> Vec<u8> {
    frame(1, &open_body(4, 64501, 90, id, &CAPS))
}

/// UPDATE with valid ORIGIN, AS_PATH, NEXT_HOP (minus `skip`), then `extra`, one NLRI.
fn update(extra: &[u8], skip: Option<u8>) -> Vec<u8> {
    let mut attrs: Vec<u8> = Vec::new();
    for (t, a) in [
        (1u8, &[0x40, 1, 1, 0][..]),
        (2, &[0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf5][..]),
        (3, &[0x40, 3, 4, 127, 0, 0, 21][..]),
    ] {
        if skip != Some(t) {
            attrs.extend_from_slice(a);
        }
    }
    attrs.extend_from_slice(extra);
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(&[24, 198, 51, 100]);
    frame(2, &b)
}

#[derive(Debug)]
enum When {
    /// Sent instead of the peer's OPEN.
    InsteadOfOpen,
    /// Sent once the session is Established.
    Established,
}

#[derive(Debug)]
enum Expect {
    Notification(u8, u8),
    /// The connection is closed with no NOTIFICATION (RFC 4271 §6.4).
    ClosedSilently,
    /// No NOTIFICATION, session kept, and this logged (e.g. "treat-as-withdraw").
    Logged(&'static str),
}

fn cases() -> Vec<(&'static str, When, Vec<u8>, Expect)> {
    use Expect::*;
    use When::*;
    let mut bad_marker = good_open(RAW);
    bad_marker[3] = 0;
    let mut long_keepalive = frame(4, &[0]);
    long_keepalive.truncate(20);
    vec![
        // RFC 4271 §6.1 message header errors.
        (
            "header: marker not all ones",
            InsteadOfOpen,
            bad_marker,
            Notification(1, 1),
        ),
        (
            "header: KEEPALIVE of 20 octets",
            Established,
            long_keepalive,
            Notification(1, 2),
        ),
        (
            "header: message type 9",
            Established,
            frame(9, &[]),
            Notification(1, 3),
        ),
        // RFC 4271 §6.2 OPEN errors.
        (
            "OPEN: version 3",
            InsteadOfOpen,
            frame(1, &open_body(3, 64501, 90, RAW, &CAPS)),
            Notification(2, 1),
        ),
        (
            "OPEN: wrong peer AS",
            InsteadOfOpen,
            frame(1, &open_body(4, 64999, 90, RAW, &[])),
            Notification(2, 2),
        ),
        (
            "OPEN: BGP identifier 0.0.0.0",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 90, [0; 4], &CAPS)),
            Notification(2, 3),
        ),
        (
            "OPEN: unsupported optional parameter",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 90, RAW, &[7, 0])),
            Notification(2, 4),
        ),
        (
            "OPEN: hold time 2",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 2, RAW, &CAPS)),
            Notification(2, 6),
        ),
        // RFC 4271 §6.4: an error in a NOTIFICATION is not answered with one.
        (
            "NOTIFICATION of 20 octets",
            Established,
            frame(3, &[6]),
            ClosedSilently,
        ),
        // RFC 6608: an OPEN once Established is an FSM error.
        (
            "FSM: OPEN while Established",
            Established,
            good_open(RAW),
            Notification(5, 3),
        ),
        // RFC 4271 §6.3 / RFC 7606 UPDATE errors that reset the session.
        (
            "UPDATE: withdrawn length past the end",
            Established,
            frame(2, &[0, 9, 0, 0]),
            Notification(3, 1),
        ),
        (
            "UPDATE: NLRI /33",
            Established,
            frame(2, &[0, 0, 0, 0, 33, 1, 2, 3, 4, 5]),
            Notification(3, 10),
        ),
        (
            "UPDATE: unrecognised well-known attribute",
            Established,
            update(&[0x40, 99, 1, 0], None),
            Notification(3, 2),
        ),
        (
            "UPDATE: MP_REACH_NLRI truncated",
            Established,
            update(&[0x80, 14, 1, 0], None),
            Notification(3, 1),
        ),
        (
            "UPDATE: MP_UNREACH_NLRI twice",
            Established,
            update(&[0x80, 15, 3, 0, 1, 1, 0x80, 15, 3, 0, 1, 1], None),
            Notification(3, 1),
        ),
        // RFC 7606 treat-as-withdraw.
        (
            "ORIGIN with the Optional bit",
            Established,
            update(&[0xc0, 1, 1, 0], Some(1)),
            Logged(
                "ORIGIN (type 1) with flags 0xc0 that conflict with its type: treat-as-withdraw",
            ),
        ),
        (
            "ORIGIN value 3",
            Established,
            update(&[0x40, 1, 1, 3], Some(1)),
            Logged("ORIGIN (type 1) malformed: treat-as-withdraw"),
        ),
        (
            "AS_PATH segment overrun",
            Established,
            update(&[0x40, 2, 4, 2, 5, 0, 1], Some(2)),
            Logged("AS_PATH (type 2) malformed: treat-as-withdraw"),
        ),
        (
            "NEXT_HOP of 3 octets",
            Established,
            update(&[0x40, 3, 3, 1, 2, 3], Some(3)),
            Logged("NEXT_HOP (type 3) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "NEXT_HOP missing",
            Established,
            update(&[], Some(3)),
            Logged("NEXT_HOP (type 3) missing: treat-as-withdraw"),
        ),
        (
            "MED of 3 octets",
            Established,
            update(&[0x80, 4, 3, 0, 0, 1], None),
            Logged("MULTI_EXIT_DISC (type 4) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "COMMUNITIES of 3 octets",
            Established,
            update(&[0xc0, 8, 3, 1, 2, 3], None),
            Logged("COMMUNITIES (type 8) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "attribute overrunning the field",
            Established,
            update(&[0xc0, 8, 9, 0, 0], None),
            Logged("COMMUNITIES (type 8) overruns the attribute field: treat-as-withdraw"),
        ),
        // RFC 7606 attribute discard.
        (
            "ATOMIC_AGGREGATE with a value",
            Established,
            update(&[0x40, 6, 1, 0], None),
            Logged("ATOMIC_AGGREGATE (type 6) with a wrong length (1): attribute discard"),
        ),
        (
            "AGGREGATOR of 5 octets",
            Established,
            update(&[0xc0, 7, 5, 0, 0, 0, 0, 1], None),
            Logged("AGGREGATOR (type 7) with a wrong length (5): attribute discard"),
        ),
        (
            "ORIGIN twice",
            Established,
            update(&[0x40, 1, 1, 1], None),
            Logged("ORIGIN (type 1) repeated: attribute discard"),
        ),
    ]
}

/// Reads one framed message; None when the connection ends or `STEP` passes.
async fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 19];
    tokio::time::timeout(STEP, stream.read_exact(&mut header))
        .await
        .ok()?
        .ok()?;
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let mut body = vec![0u8; len.saturating_sub(19)];
    tokio::time::timeout(STEP, stream.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    Some((header[18], body))
}

/// Accepts the speaker's connection and answers its OPEN with `open` (and a KEEPALIVE
/// when the OPEN is the good one). Returns the stream.
async fn accept(listener: &TcpListener, open: &[u8], keepalive: bool) -> TcpStream {
    let (mut stream, _) = tokio::time::timeout(STEP, listener.accept())
        .await
        .expect("the speaker connects")
        .unwrap();
    let (kind, _) = read_message(&mut stream).await.expect("its OPEN");
    assert_eq!(kind, 1);
    stream.write_all(open).await.unwrap();
    if keepalive {
        stream.write_all(&frame(4, &[])).await.unwrap();
    }
    stream
}

/// The first NOTIFICATION on the stream (UPDATEs and KEEPALIVEs before it skipped).
async fn notification(stream: &mut TcpStream) -> Option<(u8, u8)> {
    while let Some((kind, body)) = read_message(stream).await {
        if kind == 3 {
            return Some((body[0], body[1]));
        }
    }
    None
}

fn settings(name: &str, them: [u8; 4], port: u16) -> PeerSettings {
    let mut s = PeerSettings::new(
        name,
        64500,
        PeerAsn::Fixed(64501),
        IpAddr::from(them),
        Ipv4Addr::from(OURS),
    );
    s.peer_port = port;
    s.source_address = Some(IpAddr::from(OURS));
    s.connect_retry_time = Duration::from_secs(1);
    s.ipv6 = false;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_the_rfc_answer_and_leave_other_sessions_alone() {
    let raw = TcpListener::bind((IpAddr::from(RAW), 0)).await.unwrap();
    let other = TcpListener::bind((IpAddr::from(OTHER), 0)).await.unwrap();
    let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = Arc::clone(&log);
    let mut speaker = Speaker::start(SpeakerOptions {
        listen: None,
        on_event: Some(Arc::new(move |peer: &str, message: &str| {
            sink.lock().unwrap().push((peer.into(), message.into()));
        })),
    })
    .await
    .unwrap();
    let routes = |prefixes: &[&str]| -> BTreeMap<_, _> {
        prefixes
            .iter()
            .map(|p| (p.parse().unwrap(), RouteAttributes::default()))
            .collect()
    };
    let raw_settings = settings("raw", RAW, raw.local_addr().unwrap().port());
    let other_settings = settings("other", OTHER, other.local_addr().unwrap().port());
    let desired: Desired = [
        ("raw".to_string(), (raw_settings, routes(&["192.0.2.1/32"]))),
        (
            "other".to_string(),
            (other_settings, routes(&["192.0.2.2/32", "192.0.2.3/32"])),
        ),
    ]
    .into_iter()
    .collect();
    speaker.set_desired(desired);

    // The bystander: established once, its routes received; it must hear nothing more.
    let mut bystander = accept(&other, &good_open(OTHER), true).await;
    let mut announced = 0;
    while announced == 0 {
        let (kind, body) = read_message(&mut bystander).await.expect("routes");
        if kind == 2 && body.len() > 4 {
            announced += 1;
        }
    }
    let status = |name: &str| {
        speaker
            .status()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    };
    let other_before = status("other");
    assert_eq!(other_before.state, State::Established);
    assert_eq!(other_before.prefixes_announced, 2);

    let mut failures = Vec::new();
    for (name, when, bytes, expect) in cases() {
        let mut stream = match when {
            When::InsteadOfOpen => accept(&raw, &bytes, false).await,
            When::Established => {
                let mut s = accept(&raw, &good_open(RAW), true).await;
                // Up once our routes arrive (the first UPDATE follows Established).
                loop {
                    let (kind, _) = read_message(&mut s).await.expect("routes to raw");
                    if kind == 2 {
                        break;
                    }
                }
                s.write_all(&bytes).await.unwrap();
                s
            }
        };
        let outcome = match expect {
            Expect::Notification(code, subcode) => {
                let got = notification(&mut stream).await;
                (got != Some((code, subcode)))
                    .then(|| format!("{name}: expected NOTIFICATION {code}/{subcode}, got {got:?}"))
            }
            Expect::ClosedSilently => {
                // Everything up to the close; a NOTIFICATION among it is wrong.
                match notification(&mut stream).await {
                    Some(n) => Some(format!(
                        "{name}: expected a silent close, got NOTIFICATION {n:?}"
                    )),
                    None => {
                        // None also on a timeout: check that the socket is really at EOF.
                        let mut byte = [0u8; 1];
                        let eof =
                            tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte))
                                .await;
                        (!matches!(eof, Ok(Ok(0)) | Ok(Err(_))))
                            .then(|| format!("{name}: the connection was not closed"))
                    }
                }
            }
            Expect::Logged(text) => {
                // A KEEPALIVE after the UPDATE: still answered by a live session.
                stream.write_all(&frame(4, &[])).await.unwrap();
                let mut seen = false;
                for _ in 0..(STEP.as_millis() / 20) {
                    seen = log
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|(peer, m)| peer == "raw" && m.contains(text));
                    if seen {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let mut problems = Vec::new();
                if !seen {
                    problems.push(format!("not logged: {text:?}"));
                }
                // No NOTIFICATION within a moment, and the session still Established.
                let quiet =
                    tokio::time::timeout(Duration::from_millis(200), notification(&mut stream))
                        .await;
                if let Ok(Some(n)) = quiet {
                    problems.push(format!("got NOTIFICATION {n:?}"));
                }
                if status("raw").state != State::Established {
                    problems.push("session went down".into());
                }
                (!problems.is_empty()).then(|| format!("{name}: {}", problems.join(", ")))
            }
        };
        println!("{name}: {}", if outcome.is_none() { "ok" } else { "WRONG" });
        failures.extend(outcome);
        drop(stream);
        // Closing our side ends the raw session; the speaker reconnects for the next row.
    }

    // The bystander's session never blinked and it heard nothing but KEEPALIVEs.
    let other_after = status("other");
    assert_eq!(other_after.state, State::Established);
    assert_eq!(
        other_after.established_since,
        other_before.established_since
    );
    assert_eq!(other_after.prefixes_announced, 2);
    while let Ok(Some((kind, _))) =
        tokio::time::timeout(Duration::from_millis(100), read_message(&mut bystander)).await
    {
        assert_eq!(
            kind, 4,
            "the bystander got something other than a KEEPALIVE"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
    speaker.shutdown(ShutdownMode::GracefulRestart).await;
}
