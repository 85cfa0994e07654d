//! The malformed-message cases shared by two tests (issue #21): `raw_peer_malformed`
//! (crates/bgp, an in-process speaker) and `raw_peer_run` (crates/oxlb, a running
//! `oxlb run` process). Each case is what a raw test peer sends — a malformed OPEN,
//! header, UPDATE or attribute that RFC 4271 §6 and RFC 7606 prescribe an answer for —
//! and the answer expected. A new case is a new row in `cases()`; both tests run it.
#![allow(dead_code)]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const STEP: Duration = Duration::from_secs(20);

pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// OPEN body: version, AS, hold, id, then the optional parameters as given.
pub fn open_body(version: u8, asn: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&asn.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

/// Capabilities: IPv4 unicast, 4-octet AS 64501.
pub const CAPS: [u8; 14] = [2, 12, 1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0xfb, 0xf5];

pub fn good_open(id: [u8; 4]) -> Vec<u8> {
    frame(1, &open_body(4, 64501, 90, id, &CAPS))
}

/// UPDATE with valid ORIGIN, AS_PATH, NEXT_HOP (minus `skip`), then `extra`, one NLRI.
pub fn update(extra: &[u8], skip: Option<u8>) -> Vec<u8> {
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
pub enum When {
    /// Sent instead of the peer's OPEN.
    InsteadOfOpen,
    /// Sent once the session is Established.
    Established,
}

#[derive(Debug)]
pub enum Expect {
    Notification(u8, u8),
    /// The connection is closed with no NOTIFICATION (RFC 4271 §6.4).
    ClosedSilently,
    /// No NOTIFICATION, session kept, and this logged (e.g. "treat-as-withdraw").
    Logged(&'static str),
}

pub fn cases(raw: [u8; 4]) -> Vec<(&'static str, When, Vec<u8>, Expect)> {
    use Expect::*;
    use When::*;
    let mut bad_marker = good_open(raw);
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
            frame(1, &open_body(3, 64501, 90, raw, &CAPS)),
            Notification(2, 1),
        ),
        (
            "OPEN: wrong peer AS",
            InsteadOfOpen,
            frame(1, &open_body(4, 64999, 90, raw, &[])),
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
            frame(1, &open_body(4, 64501, 90, raw, &[7, 0])),
            Notification(2, 4),
        ),
        (
            "OPEN: hold time 2",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 2, raw, &CAPS)),
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
            good_open(raw),
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
pub async fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
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
pub async fn accept(listener: &TcpListener, open: &[u8], keepalive: bool) -> TcpStream {
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
pub async fn notification(stream: &mut TcpStream) -> Option<(u8, u8)> {
    while let Some((kind, body)) = read_message(stream).await {
        if kind == 3 {
            return Some((body[0], body[1]));
        }
    }
    None
}
