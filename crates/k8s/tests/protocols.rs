//! The speaker's protocol glue without a cluster: a Config with a BGPPeer on loopback
//! and this node's Announcements go through `Protocols::apply` (what `oxlb speaker`'s
//! callback calls); a minimal BGP router on 127.0.0.1, built on oxlb_bgp's codec,
//! records what it receives. The route arrives, a changed announcement withdraws it,
//! the session state reaches the metrics feed, and shutdown sends Cease. Then the same
//! through `run_speaker_with_protocols` against the mock API server: a Service's IP in
//! the cluster becomes a route at the router and `metallb_bgp_session_up` in /metrics.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use oxlb_announce::{Announcements, RouteAttributes};
use oxlb_bgp::packet::{
    self, Capability, Context, GracefulRestartFamily, Message, Notification, Open,
};
use oxlb_k8s::{NodeInfo, ProtocolOptions, Protocols, SpeakerOptions, run_speaker_with_protocols};
use serde_json::json;
use support::{FakeApi, namespace, pool, service, with_status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ROUTER_ASN: u32 = 64513;

#[derive(Default)]
struct Received {
    prefixes: BTreeSet<IpNet>,
    notification: Option<Notification>,
    open: Option<Open>,
}

/// Accepts one session, answers OPEN with OPEN + KEEPALIVE and each KEEPALIVE with one,
/// and applies every UPDATE to the set of prefixes it holds.
async fn router(listener: TcpListener, received: Arc<Mutex<Received>>) {
    router_with(listener, received, false).await;
}

/// `graceful`: also offer graceful restart (RFC 4724) for IPv4 unicast.
async fn router_with(listener: TcpListener, received: Arc<Mutex<Received>>, graceful: bool) {
    let ctx = Context {
        four_octet_as: true,
    };
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some((message, used)) = packet::decode(&buf, ctx).unwrap() {
            buf.drain(..used);
            let mut reply = Vec::new();
            match message {
                Message::Open(open) => {
                    received.lock().unwrap().open = Some(open);
                    Message::Open(Open {
                        version: 4,
                        my_as: u16::try_from(ROUTER_ASN).unwrap(),
                        hold_time: 90,
                        bgp_id: Ipv4Addr::new(127, 0, 0, 9),
                        capabilities: [
                            Capability::Multiprotocol { afi: 1, safi: 1 },
                            Capability::FourOctetAs(ROUTER_ASN),
                        ]
                        .into_iter()
                        .chain(graceful.then(|| Capability::GracefulRestart {
                            restarting: false,
                            restart_time: 120,
                            families: vec![GracefulRestartFamily {
                                afi: 1,
                                safi: 1,
                                forwarding_preserved: false,
                            }],
                        }))
                        .collect(),
                    })
                    .encode(ctx, &mut reply);
                    Message::Keepalive.encode(ctx, &mut reply);
                }
                Message::Keepalive => Message::Keepalive.encode(ctx, &mut reply),
                Message::Update(update) => {
                    let mut r = received.lock().unwrap();
                    for p in &update.withdrawn {
                        r.prefixes.remove(p);
                    }
                    r.prefixes.extend(update.nlri.iter().copied());
                }
                Message::Notification(n) => {
                    received.lock().unwrap().notification = Some(n);
                    return;
                }
                Message::RouteRefresh { .. } => {}
            }
            if !reply.is_empty() {
                stream.write_all(&reply).await.unwrap();
            }
        }
    }
}

/// A listener for the router: BGPPeer's peerPort must be below 16384 (the CRD's limit),
/// where the kernel's ephemeral ports are not; try free ports from a per-process start.
async fn bind_router() -> TcpListener {
    let start = 10_000 + (std::process::id() % 6_000) as u16;
    for offset in 0..6_000u16 {
        let port = 10_000 + (start - 10_000 + offset) % 6_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
    }
    panic!("no free port in 10000..16000 on 127.0.0.1");
}

fn config(port: u16) -> oxlb_config::Config {
    config_with(port, "")
}

/// `extra`: more BGPPeer spec lines (indented two spaces).
fn config_with(port: u16, extra: &str) -> oxlb_config::Config {
    let yaml = format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec:
  addresses: [192.0.2.0/24]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec:
  myASN: 64512
  peerASN: {ROUTER_ASN}
  peerAddress: 127.0.0.1
  peerPort: {port}
  nodeSelectors:
  - matchLabels: {{rack: a}}
{extra}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec:
  ipAddressPools: [pool]
"
    );
    let snapshot = oxlb_config::load_str(&yaml, None, "metallb-system").unwrap();
    oxlb_config::build_config(&snapshot).config.unwrap()
}

fn announcing(prefix: &str) -> Announcements {
    let mut a = Announcements::default();
    a.bgp.insert(
        "router".to_string(),
        BTreeMap::from([(prefix.parse().unwrap(), RouteAttributes::default())]),
    );
    a
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    // Generous: a condition, not a timing assertion.
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_announces_then_withdraws_and_shutdown_sends_cease() {
    let listener = bind_router().await;
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Received::default()));
    let router_task = tokio::spawn(router(listener, received.clone()));

    let protocols = Protocols::start(in_this_namespace(ProtocolOptions::new("node-a")))
        .await
        .unwrap();
    let config = config(port);
    // The node's labels select the BGPPeer; its InternalIP is the router ID.
    let node = NodeInfo {
        labels: BTreeMap::from([("rack".to_string(), "a".to_string())]),
        internal_ipv4: Some(Ipv4Addr::new(127, 0, 0, 77)),
    };
    protocols.apply(&config, &announcing("192.0.2.10/32"), &node);

    let first: IpNet = "192.0.2.10/32".parse().unwrap();
    let second: IpNet = "192.0.2.20/32".parse().unwrap();
    wait_for("the router to receive 192.0.2.10/32", || {
        received.lock().unwrap().prefixes.contains(&first)
    })
    .await;
    let open = received.lock().unwrap().open.clone().unwrap();
    assert_eq!(
        open.bgp_id,
        Ipv4Addr::new(127, 0, 0, 77),
        "router ID fallback"
    );
    assert_eq!(open.asn(), 64512);

    // The session state reaches the metrics feed.
    let status = protocols.status();
    wait_for("Established with one prefix in the status", || {
        status.borrow().bgp_sessions.iter().any(|s| {
            s.peer == "router"
                && s.state == oxlb_bgp::State::Established
                && s.prefixes_announced == 1
                && s.address == format!("127.0.0.1:{port}")
        })
    })
    .await;

    // A changed announcement: the old route is withdrawn, the new one sent, on the
    // same session.
    protocols.apply(&config, &announcing("192.0.2.20/32"), &node);
    wait_for(
        "192.0.2.10/32 withdrawn and 192.0.2.20/32 announced",
        || received.lock().unwrap().prefixes == BTreeSet::from([second]),
    )
    .await;

    // Nothing to announce: everything withdrawn, the session stays up.
    protocols.apply(&config, &Announcements::default(), &node);
    wait_for("every route withdrawn", || {
        received.lock().unwrap().prefixes.is_empty()
    })
    .await;
    assert!(received.lock().unwrap().notification.is_none());

    // Clean stop without graceful restart: Cease (RFC 4486 / RFC 8203).
    protocols.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), router_task)
        .await
        .unwrap()
        .unwrap();
    let notification = received.lock().unwrap().notification.clone().unwrap();
    assert_eq!(notification.code, 6, "Cease: {notification}");
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
async fn speaker_in_a_cluster_announces_service_ip_by_bgp() {
    const NS: &str = "metallb-system";
    let listener = bind_router().await;
    let bgp_port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Received::default()));
    let router_task = tokio::spawn(router(listener, received.clone()));

    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "router", "namespace": NS},
        "spec": {"myASN": 64512, "peerASN": ROUTER_ASN, "peerAddress": "127.0.0.1",
                 "peerPort": bgp_port, "nodeSelectors": [{"matchLabels": {"rack": "a"}}]}}),
    );
    api.put(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
        "metadata": {"name": "adv", "namespace": NS}, "spec": {"ipAddressPools": ["pool1"]}}),
    );
    api.put(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"rack": "a"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.55"}]}}));
    api.put(with_status(
        service("default", "web"),
        "192.168.10.1",
        "pool1",
    ));
    api.put(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": "n1",
                       "conditions": {"ready": true, "serving": true}}]}),
    );
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = api.client();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let speaker = tokio::spawn(async move {
        run_speaker_with_protocols(
            client,
            SpeakerOptions {
                namespace: NS.into(),
                node_name: "n1".into(),
                lb_class: None,
                metrics_address: Some(([127, 0, 0, 1], metrics_port).into()),
                status_address: None,
                pod: None,
                membership: Default::default(),
                cordon_withdraws: true,
                status_writes_per_second: oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
                bgp_node_status: true,
            },
            in_this_namespace(ProtocolOptions::new("n1")),
            async {
                let _ = rx.await;
            },
        )
        .await
    });

    let first: IpNet = "192.168.10.1/32".parse().unwrap();
    wait_for("the router to receive the Service's IP", || {
        received.lock().unwrap().prefixes.contains(&first)
    })
    .await;
    // MetalLB's default router ID: the Node's InternalIP.
    let open = received.lock().unwrap().open.clone().unwrap();
    assert_eq!(open.bgp_id, Ipv4Addr::new(127, 0, 0, 55));

    let up = format!("metallb_bgp_session_up{{peer=\"127.0.0.1:{bgp_port}\",vrf=\"default\"}} 1");
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = http_get(metrics_port, "/metrics").await;
        if metrics.contains(&up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(&up), "{metrics}");

    // The Service moves to another IP: the old route is withdrawn, the new one sent.
    let second: IpNet = "192.168.10.2/32".parse().unwrap();
    api.put(with_status(
        service("default", "web"),
        "192.168.10.2",
        "pool1",
    ));
    wait_for("192.168.10.1 withdrawn and 192.168.10.2 announced", || {
        received.lock().unwrap().prefixes == BTreeSet::from([second])
    })
    .await;

    // The node loses the label the BGPPeer selects: the session is closed.
    api.put(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"rack": "b"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.55"}]}}));
    tokio::time::timeout(Duration::from_secs(30), router_task)
        .await
        .unwrap()
        .unwrap();
    let notification = received.lock().unwrap().notification.clone().unwrap();
    assert_eq!(notification.code, 6, "Cease: {notification}");

    let _ = tx.send(());
    speaker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_peer_keeps_routes_on_shutdown() {
    let listener = bind_router().await;
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Received::default()));
    let router_task = tokio::spawn(router_with(listener, received.clone(), true));
    let protocols = Protocols::start(in_this_namespace(ProtocolOptions::new("node-a")))
        .await
        .unwrap();
    let node = NodeInfo {
        labels: BTreeMap::from([("rack".to_string(), "a".to_string())]),
        internal_ipv4: Some(Ipv4Addr::new(127, 0, 0, 77)),
    };
    protocols.apply(
        &config_with(port, "  enableGracefulRestart: true"),
        &announcing("192.0.2.10/32"),
        &node,
    );
    let first: IpNet = "192.0.2.10/32".parse().unwrap();
    wait_for("the router to receive 192.0.2.10/32", || {
        received.lock().unwrap().prefixes.contains(&first)
    })
    .await;
    let status = protocols.status();
    wait_for("Established", || {
        status
            .borrow()
            .bgp_sessions
            .iter()
            .any(|s| s.state == oxlb_bgp::State::Established)
    })
    .await;
    // Graceful restart negotiated: the session closes without a NOTIFICATION, so the
    // router keeps the route as stale until the speaker is back (RFC 4724 §4.2).
    protocols.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), router_task)
        .await
        .unwrap()
        .unwrap();
    let received = received.lock().unwrap();
    assert!(
        received.notification.is_none(),
        "{:?}",
        received.notification
    );
    assert!(received.prefixes.contains(&first));
}

/// These tests run in the machine's own namespace: the driver must not program the
/// second chance's nf_tables there.
fn in_this_namespace(mut options: ProtocolOptions) -> ProtocolOptions {
    options.second_chance = oxlb_node::second_chance::Options::unmanaged();
    options
}
