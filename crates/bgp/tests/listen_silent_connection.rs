//! Issue #21: with a listening speaker, a TCP connection from the peer's address that
//! never sends an OPEN must not take part in collision resolution (RFC 4271 §6.8: the
//! other side's BGP Identifier is unknown). Before the fix the real connection lost to
//! it with Cease / Connection Collision Resolution and the session stayed down until
//! the silent connection's 240 s hold timer fired. Loopback only, no root.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_bgp::{
    Desired, PeerAsn, PeerSettings, PeerStatus, RouteAttributes, ShutdownMode, Speaker,
    SpeakerOptions, State,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

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

/// Polls until `check` holds; the bound (60 s) only ends a hung test, well below the
/// 240 s the bug cost.
async fn until(speaker: &Speaker, what: &str, check: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
    for _ in 0..3000 {
        if let Some(s) = speaker.status().into_iter().next().filter(|s| check(s)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}: {:?}", speaker.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_from_the_peer_address_does_not_keep_the_session_down() {
    // A has the higher BGP Identifier: under the old rule the silent (inbound) connection
    // beat the peer's real inbound connection at A.
    let (a_ip, b_ip) = ([127, 0, 0, 17], [127, 0, 0, 16]);
    let listen = |ip: [u8; 4]| SpeakerOptions {
        listen: Some((IpAddr::from(ip), 0).into()),
        on_event: None,
    };
    let mut a = Speaker::start(listen(a_ip)).await.unwrap();
    let mut b = Speaker::start(listen(b_ip)).await.unwrap();
    let (a_port, b_port) = (a.local_port().unwrap(), b.local_port().unwrap());
    a.set_desired(desired(
        settings("b", 64500, 64501, a_ip, b_ip, b_port),
        &["192.0.2.1/32"],
    ));
    b.set_desired(desired(
        settings("a", 64501, 64500, b_ip, a_ip, a_port),
        &[],
    ));
    let up = until(&a, "first session", |s| s.state == State::Established).await;

    // A connection from B's address to A's listener that never says anything.
    let silent = TcpSocket::new_v4().unwrap();
    silent.bind(SocketAddr::new(IpAddr::from(b_ip), 0)).unwrap();
    let silent = silent
        .connect(SocketAddr::new(IpAddr::from(a_ip), a_port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let reset_at = Instant::now();
    b.reset_peer("a", "test reset");
    let back = until(&a, "session re-established", |s| {
        s.state == State::Established && s.established_since != up.established_since
    })
    .await;
    println!(
        "re-established {:.3} s after the reset, with a silent connection open",
        reset_at.elapsed().as_secs_f64()
    );
    assert_eq!(back.prefixes_announced, 1);
    until(&b, "B established", |s| s.state == State::Established).await;
    drop(silent);
    a.shutdown(ShutdownMode::GracefulRestart).await;
    b.shutdown(ShutdownMode::GracefulRestart).await;
}
