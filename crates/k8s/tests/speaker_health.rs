//! `oxlb speaker` with `oxlb.io/health-check` against the mock API server: the check
//! runs on the node (here a local HTTP server), the Service is announced only while it
//! passes, each state change is a Kubernetes event on the Service (HealthCheckFailed,
//! Warning; HealthCheckPassed, Normal), and the status API shows the check. A Service
//! whose check annotation is invalid is announced as if unchecked.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use oxlb_announce::Announcements;
use oxlb_k8s::{SpeakerOptions, run_speaker};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "metallb-system";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP server answering 200 to everything on `port`, until aborted.
fn backend(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
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
}

fn annotated(name: &str, ip: &str, check: &str) -> Value {
    let mut svc = with_status(service("default", name), ip, "pool1");
    svc["metadata"]["annotations"]["oxlb.io/health-check"] = json!(check);
    svc["metadata"]["annotations"]["oxlb.io/health-check-interval"] = json!("100ms");
    svc["metadata"]["annotations"]["oxlb.io/health-check-timeout"] = json!("80ms");
    svc
}

/// A ready endpoint on n1 (without one nothing is announced, checked or not).
fn slice(service: &str) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("{service}-abc"), "namespace": "default",
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": "n1",
                          "conditions": {"ready": true, "serving": true}}]})
}

fn events(api: &FakeApi) -> Vec<Value> {
    api.writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .collect()
}

async fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_gate_the_announcement_and_record_events() {
    let check_port = free_port();
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
    api.put(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    api.put(annotated(
        "web",
        "192.168.10.1",
        &format!("http://127.0.0.1:{check_port}/healthz"),
    ));
    api.put(annotated("typo", "192.168.10.2", "htp://127.0.0.1:1/"));
    api.put(slice("web"));
    api.put(slice("typo"));
    let status_port = free_port();
    let seen: Arc<Mutex<Vec<Announcements>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let client = api.client();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run_speaker(
            client,
            SpeakerOptions {
                namespace: NS.into(),
                node_name: "n1".into(),
                lb_class: None,
                metrics_address: None,
                status_address: Some(([127, 0, 0, 1], status_port).into()),
                pod: None,
                membership: Default::default(),
                cordon_withdraws: true,
                status_writes_per_second: oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
                bgp_node_status: true,
            },
            move |_config, announcements: &Announcements| {
                sink.lock().unwrap().push(announcements.clone())
            },
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    let web: IpAddr = "192.168.10.1".parse().unwrap();
    let typo: IpAddr = "192.168.10.2".parse().unwrap();
    let announced = |ip: IpAddr| {
        let seen = Arc::clone(&seen);
        move || {
            seen.lock()
                .unwrap()
                .last()
                .is_some_and(|a| a.l2.contains_key(&ip))
        }
    };
    let withdrawn = |ip: IpAddr| {
        let seen = Arc::clone(&seen);
        move || {
            seen.lock()
                .unwrap()
                .last()
                .is_some_and(|a| !a.l2.contains_key(&ip))
        }
    };

    // No server: the check fails, the typo'd Service is announced anyway.
    wait_for("typo announced as if unchecked", announced(typo)).await;
    wait_for("failed event", || {
        events(&api)
            .iter()
            .any(|e| e["reason"] == "HealthCheckFailed")
    })
    .await;
    assert!(withdrawn(web)());
    let failed = events(&api)
        .into_iter()
        .find(|e| e["reason"] == "HealthCheckFailed")
        .unwrap();
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["regarding"]["name"], "web");
    wait_for("invalid event", || {
        events(&api)
            .iter()
            .any(|e| e["reason"] == "HealthCheckInvalid")
    })
    .await;
    let invalid = events(&api)
        .into_iter()
        .find(|e| e["reason"] == "HealthCheckInvalid")
        .unwrap();
    assert_eq!(invalid["type"], "Warning");
    assert_eq!(invalid["regarding"]["name"], "typo");
    let note = invalid["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("default/typo")
            && note.contains("oxlb.io/health-check")
            && note.contains("as if it had no health check"),
        "{note}"
    );

    // The server comes up: announced, and an event says so.
    let server = backend(check_port);
    wait_for("announced once the check passes", announced(web)).await;
    wait_for("passed event", || {
        events(&api)
            .iter()
            .any(|e| e["reason"] == "HealthCheckPassed")
    })
    .await;
    let report = http_get(status_port, "/api/v1/status").await;
    let body = report.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let rows = json["health_checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let state = |name: &str| {
        rows.iter()
            .find(|r| r["service"] == format!("default/{name}"))
            .map(|r| r["state"].clone())
    };
    assert_eq!(state("web"), Some(json!("up")), "{report}");
    assert_eq!(state("typo"), Some(json!("invalid")), "{report}");

    // The server dies: withdrawn, a second failed event.
    server.abort();
    let _ = server.await;
    wait_for("withdrawn once the check fails", withdrawn(web)).await;
    wait_for("second failed event", || {
        events(&api)
            .iter()
            .filter(|e| e["reason"] == "HealthCheckFailed")
            .count()
            == 2
    })
    .await;
    assert!(announced(typo)());
    let _ = tx.send(());
    task.await.unwrap();
}
