//! The `Speaker` API end to end without root: two speakers on loopback peer with each
//! other (both connect actively, so collision detection runs for real), routes are
//! diffed without restarting the session, a reset reconnects, and a shutdown reaches the
//! other side as Cease with its RFC 8203 message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_bgp::{
    Desired, PeerAsn, PeerSettings, PeerStatus, RouteAttributes, ShutdownMode, Speaker,
    SpeakerOptions, State,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn settings(
    name: &str,
    local: u32,
    remote: u32,
    me: [u8; 4],
    them: [u8; 4],
    port: u16,
) -> PeerSettings {
    let mut s = PeerSettings::new(
        name,
        local,
        PeerAsn::Fixed(remote),
        IpAddr::from(them),
        Ipv4Addr::from(me),
    );
    s.peer_port = port;
    s.source_address = Some(IpAddr::from(me));
    s.connect_retry_time = Duration::from_secs(1);
    s
}

fn desired(s: PeerSettings, prefixes: &[&str]) -> Desired {
    let routes: BTreeMap<_, _> = prefixes
        .iter()
        .map(|p| (p.parse().unwrap(), RouteAttributes::default()))
        .collect();
    [(s.name.clone(), (s, routes))].into_iter().collect()
}

async fn until(speaker: &Speaker, what: &str, check: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
    for _ in 0..300 {
        if let Some(s) = speaker.status().into_iter().next().filter(|s| check(s)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:?}", speaker.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_peer_diff_reset_and_shut_down() {
    let a_ip = [127, 0, 0, 1];
    let b_ip = [127, 0, 0, 2];
    let mut a = Speaker::start(SpeakerOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        on_event: None,
    })
    .await
    .unwrap();
    // B's events: the session now comes back within ~50 ms of a reset, before a status
    // poll may see the reset as B's last error, so the event log is where to look.
    let b_events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&b_events);
    let mut b = Speaker::start(SpeakerOptions {
        listen: Some("127.0.0.2:0".parse().unwrap()),
        on_event: Some(Arc::new(move |_: &str, message: &str| {
            sink.lock().unwrap().push(message.to_string());
        })),
    })
    .await
    .unwrap();
    let (a_port, b_port) = (a.local_port().unwrap(), b.local_port().unwrap());
    let a_peer = settings("b", 64500, 64501, a_ip, b_ip, b_port);
    let b_peer = settings("a", 64501, 64500, b_ip, a_ip, a_port);
    a.set_desired(desired(
        a_peer.clone(),
        &["192.0.2.1/32", "2001:db8::1/128"],
    ));
    b.set_desired(desired(b_peer.clone(), &[]));

    let up = until(&a, "A established with both prefixes", |s| {
        s.state == State::Established && s.prefixes_announced == 2
    })
    .await;
    assert_eq!(up.prefixes_pending, 0);
    let b_up = until(&b, "B established", |s| s.state == State::Established).await;

    // Same settings, fewer routes: a withdrawal on the same session.
    a.set_desired(desired(a_peer.clone(), &["192.0.2.1/32"]));
    let after = until(&a, "one prefix", |s| s.prefixes_announced == 1).await;
    assert_eq!(
        after.established_since, up.established_since,
        "session kept"
    );
    assert!(after.updates_sent > up.updates_sent);
    assert_eq!(b.status()[0].established_since, b_up.established_since);

    // A reset (what BFD does) brings the session down and up again.
    a.reset_peer("b", "BFD session down");
    until(&b, "B to see the reset", |_| {
        b_events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("Administrative Reset"))
    })
    .await;
    until(&a, "A re-established", |s| {
        s.state == State::Established && s.established_since != up.established_since
    })
    .await;
    // B too, or its status may still show the reset when A shuts down.
    until(&b, "B re-established", |s| {
        s.state == State::Established && s.established_since != b_up.established_since
    })
    .await;

    a.shutdown(ShutdownMode::Withdraw {
        message: "maintenance".into(),
    })
    .await;
    let down = until(&b, "B to see the shutdown", |s| {
        s.state != State::Established
    })
    .await;
    assert_eq!(
        down.last_error.as_deref(),
        Some(
            "peer 127.0.0.1 closed the session: Cease / Administrative Shutdown (\"maintenance\")"
        )
    );
    b.shutdown(ShutdownMode::GracefulRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_on_both_connect_and_listen_sockets() {
    let (a_ip, b_ip, c_ip) = ([127, 0, 0, 3], [127, 0, 0, 4], [127, 0, 0, 5]);
    let listen = |ip: [u8; 4]| SpeakerOptions {
        listen: Some((IpAddr::from(ip), 0).into()),
        on_event: None,
    };
    let mut a = Speaker::start(listen(a_ip)).await.unwrap();
    let mut b = Speaker::start(listen(b_ip)).await.unwrap();
    let mut c = Speaker::start(listen(c_ip)).await.unwrap();
    let (a_port, b_port) = (a.local_port().unwrap(), b.local_port().unwrap());
    // A and B share a password: the session comes up whichever side's SYN wins.
    let mut ab = settings("b", 64500, 64501, a_ip, b_ip, b_port);
    ab.password = Some("s3cret".into());
    let mut ba = settings("a", 64501, 64500, b_ip, a_ip, a_port);
    ba.password = Some("s3cret".into());
    a.set_desired(desired(ab, &["192.0.2.1/32"]));
    b.set_desired(desired(ba, &[]));
    until(&a, "MD5 session", |s| {
        s.state == State::Established && s.prefixes_announced == 1
    })
    .await;
    // C signs with a key B's listener does not hold for it: the kernel drops the SYNs.
    let mut cb = settings("b", 64502, 64501, c_ip, b_ip, b_port);
    cb.password = Some("wrong".into());
    c.set_desired(desired(cb, &[]));
    let failed = until(&c, "a reported connect failure", |s| s.last_error.is_some()).await;
    assert_ne!(failed.state, State::Established);
    assert!(failed.last_error.unwrap().contains("MD5"));
    a.shutdown(ShutdownMode::GracefulRestart).await;
    b.shutdown(ShutdownMode::GracefulRestart).await;
    c.shutdown(ShutdownMode::GracefulRestart).await;
}
