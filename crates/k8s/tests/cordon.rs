//! Graceful drain in `oxlb speaker` (issue 19) against the mock API server: cordoning
//! the node (`spec.unschedulable`, what `kubectl drain` does before evicting) withdraws
//! its announcements at once; uncordoning brings them back; with
//! `cordon_withdraws: false` (`--keep-routes-when-cordoned`) a cordon changes nothing,
//! as in MetalLB.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxlb_announce::Announcements;
use oxlb_k8s::{SpeakerOptions, run_speaker};
use serde_json::{Value, json};
use support::*;

const NS: &str = "metallb-system";
const IP: &str = "192.168.10.0";

fn node(cordoned: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
           "spec": {"unschedulable": cordoned},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
}

fn slice() -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-abc", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": "n1",
                          "conditions": {"ready": true, "serving": true}}]})
}

async fn cordon_and_watch(cordon_withdraws: bool) -> Vec<Announcements> {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
    api.put(node(false));
    api.put(with_status(service("default", "web"), IP, "pool1"));
    api.put(slice());
    let seen: Arc<Mutex<Vec<Announcements>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let client = api.client();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run_speaker(
            client,
            SpeakerOptions {
                cordon_withdraws,
                status_writes_per_second: oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND,
                bgp_node_status: true,
                ..SpeakerOptions::new(NS, "n1")
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
    let owns = |a: &Announcements| a.l2.contains_key(&IP.parse().unwrap());
    wait_for("announced", || {
        seen.lock().unwrap().last().is_some_and(owns)
    })
    .await;
    api.put(node(true));
    if cordon_withdraws {
        wait_for("withdrawn on cordon", || {
            seen.lock().unwrap().last().is_some_and(|a| a.l2.is_empty())
        })
        .await;
        api.put(node(false));
        wait_for("announced again on uncordon", || {
            seen.lock().unwrap().last().is_some_and(owns)
        })
        .await;
    } else {
        // Nothing to wait for: give the speaker time to see the cordon.
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let _ = tx.send(());
    task.await.unwrap();
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn a_cordon_withdraws_and_an_uncordon_announces_again() {
    let seen = cordon_and_watch(true).await;
    let cordoned = seen.iter().find(|a| a.l2.is_empty()).unwrap();
    assert!(
        cordoned
            .skipped
            .iter()
            .any(|s| s.reason == oxlb_announce::Skip::NodeCordoned),
        "{cordoned:?}"
    );
}

#[tokio::test]
async fn keep_routes_when_cordoned_restores_metallb_behaviour() {
    let seen = cordon_and_watch(false).await;
    let first = seen
        .iter()
        .position(|a| a.l2.contains_key(&IP.parse().unwrap()))
        .unwrap();
    assert!(
        seen[first..]
            .iter()
            .all(|a| a.l2.contains_key(&IP.parse().unwrap())),
        "{seen:?}"
    );
}
