//! Weighted ECMP with mixed paths in `oxlb speaker` (issue 19), against the mock API
//! server: speakers n1 and n2 (this version) and, on n3, an older speaker's membership
//! (the library every speaker uses, news without the link-bandwidth flag), all on
//! 127.0.0.N. A Local Service of a weighted BGPAdvertisement has a ready endpoint on
//! every node. Both speakers report n3 in `/api/v1/status`; once n3 leaves, nothing is
//! known of it and the report clears.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use oxlb_k8s::{MembershipOptions, SpeakerOptions, run_speaker};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "metallb-system";
const IP: &str = "192.168.10.1";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const KEY: &str = "secret-key-for-tests";

fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + i as u8)
}

/// A UDP port free on 127.0.0.2, .3 and .4 at once (bound and released: a small race
/// accepted in tests).
fn free_udp_port() -> u16 {
    loop {
        let first = std::net::UdpSocket::bind((address(0), 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let others: Vec<_> = (1..3)
            .map(|i| std::net::UdpSocket::bind((address(i), port)))
            .collect();
        if others.iter().all(Result::is_ok) {
            return port;
        }
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cluster() -> FakeApi {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "router", "namespace": NS},
        "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.1"}}),
    );
    api.put(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
        "metadata": {"name": "adv", "namespace": NS,
                     "annotations": {"oxlb.io/weighted-ecmp": "true"}},
        "spec": {"ipAddressPools": ["pool1"]}}),
    );
    api.put(json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "memberlist", "namespace": NS},
           "stringData": {"secretkey": KEY}}));
    for (i, name) in NODES.iter().enumerate() {
        api.put(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
               "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        api.put(json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("oxlb-speaker-{name}"), "namespace": NS,
                        "labels": {"app.kubernetes.io/name": "oxlb",
                                   "app.kubernetes.io/component": "speaker"}},
           "spec": {"nodeName": name, "containers": [{"name": "speaker"}]},
           "status": {"podIP": address(i).to_string(),
                      "conditions": [{"type": "Ready", "status": "True"}]}}));
    }
    let mut svc = with_status(service("default", "web"), IP, "pool1");
    svc["spec"]["externalTrafficPolicy"] = json!("Local");
    api.put(svc);
    let endpoints: Vec<Value> = NODES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"addresses": [format!("10.244.{i}.5")], "nodeName": n,
                             "conditions": {"ready": true, "serving": true}})
        })
        .collect();
    api.put(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-abc", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4", "endpoints": endpoints}),
    );
    api
}

async fn mixed(status_port: u16) -> Vec<Value> {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", status_port)).await else {
        return Vec::new();
    };
    let request = "GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|r| r["weighted_ecmp_mixed"].as_array().cloned())
        .unwrap_or_default()
}

async fn wait_for(status_port: u16, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = mixed(status_port).await;
        if want(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speakers_report_an_older_speaker_announcing_without_the_community() {
    let api = cluster();
    let port = free_udp_port();
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    let mut status_ports = Vec::new();
    for (i, name) in NODES.iter().enumerate().take(2) {
        let status_port = free_tcp_port();
        status_ports.push(status_port);
        let options = SpeakerOptions {
            membership: MembershipOptions {
                bind_addr: Some(IpAddr::V4(address(i))),
                bind_port: port,
                ..MembershipOptions::default()
            },
            status_address: Some(([127, 0, 0, 1], status_port).into()),
            ..SpeakerOptions::new(NS, name)
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        let client = api.client();
        tasks.push(tokio::spawn(async move {
            run_speaker(client, options, |_, _| {}, async {
                let _ = stopped.await;
            })
            .await;
        }));
    }
    // n3: an older speaker, whose news carries no link-bandwidth flag.
    let seeds: Vec<SocketAddr> = (0..2)
        .map(|i| SocketAddr::new(IpAddr::V4(address(i)), port))
        .collect();
    let older = oxlb_l2::membership::Membership::start(
        "n3",
        SocketAddr::new(IpAddr::V4(address(2)), port),
        seeds,
        Some(KEY.as_bytes()),
        oxlb_l2::membership::Tuning::default(),
    )
    .await
    .unwrap();

    // Once each has heard the other two (n2's news names it as attaching).
    let want = vec![json!({
        "service": "default/web",
        "prefixes": [format!("{IP}/32")],
        "without_community": ["n3"],
        "with_community": ["n1", "n2"],
    })];
    for status_port in &status_ports {
        let rows = wait_for(*status_port, |r| r == want.as_slice()).await;
        assert_eq!(rows, want);
    }
    // The older speaker leaves: unknown again, not guessed.
    older.leave().await;
    for status_port in &status_ports {
        let rows = wait_for(*status_port, <[Value]>::is_empty).await;
        assert!(rows.is_empty(), "{rows:?}");
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}
