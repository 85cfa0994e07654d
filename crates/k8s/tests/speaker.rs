//! `oxlb speaker`'s Kubernetes side against the mock API server: announcements from
//! the pure core, ServiceL2Status objects, `nodeAssigned` events only on change.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxlb_announce::Announcements;
use oxlb_k8s::{PodIdentity, SpeakerOptions, rbac, run_speaker};
use serde_json::{Value, json};
use support::*;

const NS: &str = "metallb-system";

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
}

fn slice(ready: bool) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-abc", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": "n1",
                          "conditions": {"ready": ready, "serving": ready}}]})
}

fn statuses(api: &FakeApi) -> Vec<Value> {
    api.writes()
        .into_iter()
        .filter(|r| r.path.contains("servicel2statuses"))
        .map(|r| r.body)
        .collect()
}

/// Node n1 and the Service default/web at 192.168.10.0, announced by Layer 2 from n1.
fn layer2_web() -> FakeApi {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
    api.put(node("n1"));
    api.put(with_status(
        service("default", "web"),
        "192.168.10.0",
        "pool1",
    ));
    api.put(slice(true));
    api
}

#[tokio::test]
async fn announces_writes_l2_status_and_node_assigned_once() {
    let api = layer2_web();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
                metrics_address: Some(([127, 0, 0, 1], port).into()),
                status_address: Some(([127, 0, 0, 1], status_port).into()),
                pod: Some(PodIdentity {
                    name: "speaker-x7k2p".into(),
                    uid: "0b6e-speaker-uid".into(),
                }),
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
    wait_for_web_answered(&seen, "announced").await;
    wait_for("status object", || {
        api.log()
            .iter()
            .any(|r| r.path.ends_with("/status") && r.path.contains("servicel2statuses"))
    })
    .await;
    let written = statuses(&api);
    let status = written.iter().find(|b| !b["status"].is_null()).unwrap();
    assert_eq!(
        status["status"],
        json!({"node": "n1", "serviceName": "web", "serviceNamespace": "default", "interfaces": []})
    );
    assert_eq!(status["metadata"]["labels"]["metallb.io/node"], "n1");
    // The speaker reports its own result, as MetalLB's speakers do.
    let own_state = || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "speaker-n1",
        )
    };
    wait_for("speaker-n1 ConfigurationState", || {
        own_state().is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    let state = own_state().unwrap();
    assert_eq!(
        state["metadata"]["labels"],
        json!({"metallb.io/component-type": "speaker", "metallb.io/node-name": "n1"})
    );
    // Deleted by someone: written again although its result did not change.
    api.delete(
        "/apis/metallb.io/v1beta1/configurationstates",
        NS,
        "speaker-n1",
    );
    assert!(own_state().is_none());
    wait_for("speaker-n1 ConfigurationState written again", || {
        own_state().is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    assert_eq!(
        own_state().unwrap()["metadata"]["labels"],
        state["metadata"]["labels"]
    );
    // Owned by the Node (garbage-collected with it, kept over a restart of the speaker,
    // issue 22), not by the speaker Pod as MetalLB's.
    let node_uid = api.get("/api/v1/nodes", "", "n1").unwrap()["metadata"]["uid"].clone();
    assert!(node_uid.is_string());
    for written in written.iter().filter(|w| w["status"].is_null()) {
        assert_eq!(
            written["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": node_uid}]),
            "{written:#}"
        );
    }
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics = http_get(port, "/metrics").await;
        if metrics.contains("metallb_speaker_announced{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.contains(
            "metallb_speaker_announced{ip=\"192.168.10.0\",node=\"n1\",protocol=\"layer2\",service=\"default/web\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("metallb_k8s_client_config_loaded_bool 1"));
    assert!(http_get(port, "/healthz").await.starts_with("HTTP/1.1 200"));
    // The node-facing listener serves no status API; loopback does.
    assert!(
        http_get(port, "/api/v1/status")
            .await
            .starts_with("HTTP/1.1 404")
    );
    let report = http_get(status_port, "/api/v1/status").await;
    assert!(report.starts_with("HTTP/1.1 200"), "{report}");
    assert!(report.contains("192.168.10.0"), "{report}");
    assert!(
        http_get(status_port, "/metrics")
            .await
            .starts_with("HTTP/1.1 404")
    );
    let events: Vec<Value> = api
        .writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "nodeAssigned");
    // The speaker reports as itself, not as the controller.
    assert_eq!(events[0]["reportingController"], "metallb-speaker");
    assert_eq!(events[0]["reportingInstance"], "n1");
    assert_eq!(
        events[0]["note"],
        "announcing from node \"n1\" with protocol \"layer2\""
    );

    // Unrelated changes: no new event, no rewrite. (n2 is not Ready: a live n2 could
    // win the Layer 2 election and take the address over.)
    api.put(namespace("other"));
    let mut n2 = node("n2");
    n2["status"]["conditions"][0]["status"] = json!("False");
    api.put(n2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        api.writes()
            .iter()
            .filter(|r| r.path.contains("/events"))
            .count(),
        1
    );
    assert_eq!(
        statuses(&api).len(),
        written.len(),
        "{:#?}",
        api.writes()
            .iter()
            .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
            .collect::<Vec<_>>()
    );

    // The endpoint stops serving: nothing to announce, the status object goes.
    api.put(slice(false));
    wait_for("withdrawn", || {
        seen.lock().unwrap().last().is_some_and(|a| a.l2.is_empty())
    })
    .await;
    wait_for("status deleted", || {
        api.log()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.contains("servicel2statuses"))
    })
    .await;
    for r in api.log() {
        assert!(
            rbac::allows(rbac::SPEAKER, NS, &r.method, &r.path, &r.query),
            "speaker request not covered by RBAC: {} {}?{}",
            r.method,
            r.path,
            r.query
        );
    }
    let _ = tx.send(());
    task.await.unwrap();
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
}

#[tokio::test]
async fn bgp_announcement_writes_service_bgp_status() {
    bgp_announcement(true).await;
}

/// `--bgp-node-status=false` (issue 22): no ServiceBGPStatus, no BGP nodeAssigned, and
/// this node's existing objects go.
#[tokio::test]
async fn without_bgp_node_status_nothing_is_written_and_old_objects_go() {
    bgp_announcement(false).await;
}

async fn bgp_announcement(bgp_node_status: bool) {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "router", "namespace": NS},
        "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}}),
    );
    api.put(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
        "metadata": {"name": "bgp", "namespace": NS}, "spec": {}}),
    );
    api.put(node("n1"));
    api.put(with_status(
        service("default", "web"),
        "192.168.10.1",
        "pool1",
    ));
    api.put(slice(true));
    // An object of this node from before (another Service, no longer announced).
    api.put(json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceBGPStatus",
        "metadata": {"name": oxlb_k8s::speaker::status_name("bgp", "n1", &oxlb_announce::ServiceKey {
            namespace: "default".into(), name: "gone".into() }),
            "namespace": NS, "labels": {"metallb.io/node": "n1"}},
        "spec": {},
        "status": {"node": "n1", "serviceName": "gone", "serviceNamespace": "default", "peers": ["router"]}}));
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
                status_address: None,
                pod: None,
                membership: Default::default(),
                cordon_withdraws: true,
                status_writes_per_second: oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
                bgp_node_status,
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
    wait_for("bgp route", || {
        seen.lock().unwrap().last().is_some_and(|a| {
            a.bgp
                .get("router")
                .is_some_and(|r| r.contains_key(&"192.168.10.1/32".parse().unwrap()))
        })
    })
    .await;
    let left_over = oxlb_k8s::speaker::status_name(
        "bgp",
        "n1",
        &oxlb_announce::ServiceKey {
            namespace: "default".into(),
            name: "gone".into(),
        },
    );
    if !bgp_node_status {
        wait_for("old object deleted", || {
            api.log()
                .iter()
                .any(|r| r.method == "DELETE" && r.path.ends_with(&left_over))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written: Vec<_> = api
            .writes()
            .into_iter()
            .filter(|r| {
                r.method != "DELETE"
                    && (r.path.contains("servicebgpstatuses") || r.path.contains("/events"))
            })
            .map(|r| r.path)
            .collect();
        assert!(written.is_empty(), "{written:?}");
        let _ = tx.send(());
        task.await.unwrap();
        return;
    }
    wait_for("bgp status", || {
        api.log()
            .iter()
            .any(|r| r.path.ends_with("/status") && r.path.contains("servicebgpstatuses"))
    })
    .await;
    let status = api
        .writes()
        .into_iter()
        .find(|r| r.path.ends_with("/status") && r.path.contains("servicebgpstatuses"))
        .unwrap();
    assert_eq!(
        status.body["status"],
        json!({"node": "n1", "serviceName": "web", "serviceNamespace": "default", "peers": ["router"]})
    );
    let events: Vec<Value> = api
        .writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["note"],
        "announcing from node \"n1\" with protocol \"bgp\""
    );
    let _ = tx.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_config_change_alone_reaches_the_protocols() {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
    api.put(node("n1"));
    let configs: Arc<Mutex<Vec<oxlb_config::Config>>> = Arc::default();
    let sink = Arc::clone(&configs);
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
                status_address: None,
                pod: None,
                membership: Default::default(),
                cordon_withdraws: true,
                status_writes_per_second: oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
                bgp_node_status: true,
            },
            move |config: &oxlb_config::Config, _: &Announcements| {
                sink.lock().unwrap().push(config.clone())
            },
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    wait_for("first config", || configs.lock().unwrap().len() == 1).await;
    // A new peer announces nothing yet (no BGPAdvertisement) but its session must start.
    api.put(
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "router", "namespace": NS},
        "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}}),
    );
    wait_for("config with the peer", || {
        configs
            .lock()
            .unwrap()
            .last()
            .is_some_and(|c| !c.peers.is_empty())
    })
    .await;
    let _ = tx.send(());
    task.await.unwrap();
}

/// Waits until the speaker's last announcement answers for web's IP by Layer 2.
async fn wait_for_web_answered(seen: &Mutex<Vec<Announcements>>, what: &str) {
    wait_for(what, || {
        seen.lock()
            .unwrap()
            .last()
            .is_some_and(|a| a.l2.contains_key(&"192.168.10.0".parse().unwrap()))
    })
    .await;
}

/// Runs a speaker for n1 until `stop` resolves; returns what it announced.
fn start_speaker(
    api: &FakeApi,
    pod: &str,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (Arc<Mutex<Vec<Announcements>>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Vec<Announcements>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let client = api.client();
    let mut options = SpeakerOptions::new(NS, "n1");
    options.pod = Some(PodIdentity {
        name: pod.into(),
        uid: format!("{pod}-uid"),
    });
    let task = tokio::spawn(async move {
        run_speaker(
            client,
            options,
            move |_config, announcements: &Announcements| {
                sink.lock().unwrap().push(announcements.clone())
            },
            async {
                let _ = stop.await;
            },
        )
        .await;
    });
    (seen, task)
}

/// Issue 22: the status objects are the Node's, so a restarted speaker (a rolling
/// update) finds them, writes nothing and records no `nodeAssigned` again.
#[tokio::test]
async fn a_restarted_speaker_writes_nothing_the_cluster_already_has() {
    let api = layer2_web();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (_, first) = start_speaker(&api, "speaker-old", stopped);
    let collection = "/apis/metallb.io/v1beta1/servicel2statuses";
    let name = oxlb_k8s::speaker::status_name(
        "l2",
        "n1",
        &oxlb_announce::ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        },
    );
    wait_for("status object", || {
        api.get(collection, NS, &name)
            .is_some_and(|o| !o["status"].is_null())
    })
    .await;
    let _ = stop.send(());
    first.await.unwrap();
    let writes = |api: &FakeApi| {
        api.writes()
            .into_iter()
            .filter(|r| r.path.contains("servicel2statuses") || r.path.contains("/events"))
            .count()
    };
    let before = writes(&api);
    assert_eq!(before, 3, "object, status, nodeAssigned");

    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (seen, second) = start_speaker(&api, "speaker-new", stopped);
    wait_for_web_answered(&seen, "announced again").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        writes(&api),
        before,
        "{:#?}",
        api.writes()
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect::<Vec<_>>()
    );
    let object = api.get(collection, NS, &name).unwrap();
    assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "Node");
    let _ = stop.send(());
    second.await.unwrap();
}

/// ServiceL2Status / ServiceBGPStatus objects made by hand (`kubectl apply`) without
/// `spec` or `status`: the CRD requires neither, so the API server stores them as they
/// are (MetalLB's CRD has no default for `spec`). They must not stop the speaker's
/// watch of its status objects from decoding: it starts, writes its own status, and
/// deletes this node's objects it does not want, these among them.
#[tokio::test]
async fn hand_made_status_objects_without_spec_do_not_hold_the_speaker() {
    let api = layer2_web();
    let hand_made = |kind: &str, name: &str, status: Option<Value>| {
        let mut object = json!({"apiVersion": "metallb.io/v1beta1", "kind": kind,
            "metadata": {"name": name, "namespace": NS, "labels": {"metallb.io/node": "n1"}}});
        if let Some(status) = status {
            object["status"] = status;
        }
        object
    };
    api.put(hand_made(
        "ServiceL2Status",
        "by-hand-l2",
        Some(json!({"node": "n1", "serviceName": "old", "serviceNamespace": "default"})),
    ));
    api.put(hand_made("ServiceBGPStatus", "by-hand-bgp", None));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (seen, task) = start_speaker(&api, "speaker-x", stopped);
    wait_for_web_answered(&seen, "announced").await;
    let own = oxlb_k8s::speaker::status_name(
        "l2",
        "n1",
        &oxlb_announce::ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        },
    );
    wait_for("own status object", || {
        api.get("/apis/metallb.io/v1beta1/servicel2statuses", NS, &own)
            .is_some_and(|o| o["status"]["serviceName"] == "web")
    })
    .await;
    for (collection, name) in [
        ("/apis/metallb.io/v1beta1/servicel2statuses", "by-hand-l2"),
        ("/apis/metallb.io/v1beta1/servicebgpstatuses", "by-hand-bgp"),
    ] {
        wait_for(&format!("{name} deleted"), || {
            api.get(collection, NS, name).is_none()
        })
        .await;
    }
    let _ = stop.send(());
    task.await.unwrap();
}
