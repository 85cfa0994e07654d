//! The runner against local servers: HTTP status rules, TCP, HTTPS without
//! certificate check (a self-signed server is stood in for by a TLS-less port: the
//! handshake failure must count as a failure), and the state following a server that
//! stops and starts again.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use oxlb_announce::ServiceKey;
use oxlb_health::probe::{self, Failure};
use oxlb_health::{CheckSpec, CheckState, Checks, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `status` to every request until the listener is dropped.
async fn server(status: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, task)
}

fn http(port: u16) -> Target {
    Target::Http {
        host: "127.0.0.1".into(),
        port,
        path: "/livez".into(),
    }
}

#[tokio::test]
async fn http_passes_on_2xx_and_3xx_and_fails_otherwise() {
    for (status, passes) in [
        (200, true),
        (204, true),
        (302, true),
        (404, false),
        (503, false),
    ] {
        let (port, task) = server(status).await;
        let result = probe::check(&http(port), Duration::from_secs(2)).await;
        assert_eq!(result.is_ok(), passes, "{status}: {result:?}");
        if !passes {
            assert_eq!(result, Err(Failure::Status(status)));
        }
        task.abort();
    }
}

#[tokio::test]
async fn tcp_and_refused_connections() {
    let (port, task) = server(200).await;
    let tcp = Target::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    assert!(probe::check(&tcp, Duration::from_secs(2)).await.is_ok());
    task.abort();
    let _ = task.await;
    let result = probe::check(&tcp, Duration::from_secs(2)).await;
    assert!(matches!(result, Err(Failure::Connect(_))), "{result:?}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts (the kernel does) but never answers.
    let result = probe::check(&http(port), Duration::from_millis(200)).await;
    assert_eq!(result, Err(Failure::Timeout));
    drop(listener);
}

#[tokio::test]
async fn https_to_a_plain_http_port_fails_in_tls() {
    let (port, task) = server(200).await;
    let target = Target::Https {
        host: "127.0.0.1".into(),
        port,
        path: "/livez".into(),
        verify: false,
    };
    let result = probe::check(&target, Duration::from_secs(2)).await;
    assert!(matches!(result, Err(Failure::Tls(_))), "{result:?}");
    task.abort();
}

#[tokio::test]
async fn the_state_follows_the_server_down_and_up_again() {
    let (port, task) = server(200).await;
    let key = ServiceKey {
        namespace: "default".into(),
        name: "web".into(),
    };
    let spec = CheckSpec {
        target: http(port),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(80),
        rise: 2,
        fall: 2,
    };
    let mut checks = Checks::new();
    let mut changes = checks.subscribe();
    checks.sync(&BTreeMap::from([(key.clone(), spec.clone())]));
    assert_eq!(checks.state(&key), Some(CheckState::Pending));
    assert!(!checks.health("n1").passes(&key, "n1"));
    wait_for(&checks, &key, &mut changes, CheckState::Up).await;
    assert!(checks.health("n1").passes(&key, "n1"));
    assert!(checks.reports()[&key].latency.is_some());
    task.abort();
    let _ = task.await;
    wait_for(&checks, &key, &mut changes, CheckState::Down).await;
    assert!(!checks.health("n1").passes(&key, "n1"));
    // Same port again, now serving.
    let task = {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        })
    };
    wait_for(&checks, &key, &mut changes, CheckState::Up).await;
    // Removing the check removes it from the health view (the Service is unchecked).
    checks.sync(&BTreeMap::new());
    assert_eq!(checks.state(&key), None);
    assert!(checks.health("n1").passes(&key, "n1"));
    task.abort();
}

async fn wait_for(
    checks: &Checks,
    key: &ServiceKey,
    changes: &mut tokio::sync::watch::Receiver<u64>,
    want: CheckState,
) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while checks.state(key) != Some(want) {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {want:?}"));
}
