//! The fake over real HTTP on loopback, through an unmodified kube Client built from a
//! kubeconfig: lists, errors as `Status`, optimistic concurrency, and streamed watches
//! with label selectors.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use oxlb_fakeapi::{FakeApi, kubeconfig, service, with_status};
use serde_json::json;

async fn client_for(api: &FakeApi) -> kube::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = api.clone();
    tokio::spawn(async move { server.serve(listener).await });
    let text = kubeconfig(&format!("http://{address}"));
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&text).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn pod(name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "metallb-system", "labels": labels},
        "spec": {"containers": []}})
}

#[tokio::test]
async fn kube_client_over_http() {
    let api = FakeApi::new();
    api.put(with_status(service("default", "a"), "10.0.0.7", "p"));
    let client = client_for(&api).await;

    // /version answers as an API server does.
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let list = services.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    let ip = list.items[0]
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .as_ref()
        .unwrap()[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("10.0.0.7"));

    // A 404 is a Status the client decodes into an ErrorResponse.
    match services.get("missing").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "services \"missing\" not found");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    assert!(services.get_opt("missing").await.unwrap().is_none());

    // Optimistic concurrency on a Lease: a stale resourceVersion is a 409 Conflict.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "metallb-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "l", "namespace": "metallb-system"},
        "spec": {"holderIdentity": "a"}}))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut first = created.clone();
    first.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("l", &PostParams::default(), &first)
        .await
        .unwrap();
    match leases.replace("l", &PostParams::default(), &created).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    match leases.create(&PostParams::default(), &lease).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    // A streamed watch with a label selector: only matching pods, and a pod whose label
    // changes away from the selector is DELETED for this watch.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "metallb-system");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=speaker"), &rv)
        .await
        .unwrap()
        .boxed();
    api.put(pod("other", json!({"app": "other"})));
    api.put(pod("s1", json!({"app": "speaker"})));
    let patch = PatchParams::default();
    pods.patch(
        "s1",
        &patch,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a watch event")
            .expect("an open stream")
            .unwrap();
        match event {
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", p.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED s1", "DELETED s1"]);
    let log = api.log();
    assert!(
        log.iter().any(|r| r.query.contains("watch=true")),
        "{log:?}"
    );
}

/// `limit` / `continue` as the API server pages a list: kube's watcher lists in pages
/// of 500, so a cache of more objects is filled page by page, and a change made while
/// it pages arrives on the watch that starts from the list's resourceVersion.
#[tokio::test]
async fn lists_are_paged_and_a_watcher_sees_every_object_and_later_changes() {
    let api = FakeApi::new();
    for i in 0..1_201 {
        api.put(service("default", &format!("s{i:04}")));
    }
    let client = client_for(&api).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let first = services
        .list(&ListParams::default().limit(500))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 500);
    let token = first.metadata.continue_.clone().unwrap();
    let version = first.metadata.resource_version.clone().unwrap();
    let mut names: Vec<String> = first
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    let mut params = ListParams::default().limit(500).continue_token(&token);
    loop {
        let page = services.list(&params).await.unwrap();
        assert_eq!(
            page.metadata.resource_version.as_deref(),
            Some(version.as_str())
        );
        names.extend(page.items.iter().filter_map(|s| s.metadata.name.clone()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = ListParams::default().limit(500).continue_token(&token),
            None => break,
        }
    }
    let expected: Vec<String> = (0..1_201).map(|i| format!("s{i:04}")).collect();
    assert_eq!(names, expected, "every object once, in order");

    // kube's watcher over the pages, then a change after its list.
    let events = kube::runtime::watcher(services, kube::runtime::watcher::Config::default());
    let mut events = std::pin::pin!(events);
    let mut listed = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
        {
            Some(Ok(kube::runtime::watcher::Event::InitApply(_))) => listed += 1,
            Some(Ok(kube::runtime::watcher::Event::InitDone)) => break,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(listed, 1_201);
    api.put(service("default", "late"));
    match tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
    {
        Some(Ok(kube::runtime::watcher::Event::Apply(s))) => {
            assert_eq!(s.metadata.name.as_deref(), Some("late"));
        }
        other => panic!("{other:?}"),
    }
    let lists = api
        .log()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.query.contains("limit=500") && !r.query.contains("watch")
        })
        .count();
    assert_eq!(lists, 6, "three pages by hand, three by the watcher");
}
