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
use tokio::net::TcpListener;

const OURS: [u8; 4] = [127, 0, 0, 20];
const RAW: [u8; 4] = [127, 0, 0, 21];
const OTHER: [u8; 4] = [127, 0, 0, 22];
/// Generous bound for one step; only a hung test ever waits it out.
mod raw_peer;
use raw_peer::*;

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
    for (name, when, bytes, expect) in cases(RAW) {
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
