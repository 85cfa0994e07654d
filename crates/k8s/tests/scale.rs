//! Start-up with 10,000 Services (`OXLB_SCALE_SERVICES` for another count, e.g. the
//! 100,000 of issue 22), in-process against filled caches (no API server):
//! the time to build the config and reconcile every Service (fresh cluster, then a
//! restart that re-claims every address), and the memory it takes. Printed as figures
//! and as a ratio against decoding the same Services from JSON (what one LIST costs
//! the client anyway), measured in the same run.
//!
//! `cargo test -p oxlb-k8s --release --test scale -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use oxlb_config::build_config;
use oxlb_controller::{Controller, Desired};
use oxlb_k8s::cached_service::CachedService;
use oxlb_k8s::projected::{self, Projected};
use serde_json::json;

const SERVICES: usize = 10_000;

/// [`SERVICES`] unless `OXLB_SCALE_SERVICES` says otherwise (the in-process test only).
fn services_count() -> usize {
    std::env::var("OXLB_SCALE_SERVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SERVICES)
}

fn filled<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    // Keep the writer alive so the store stays ready.
    std::mem::forget(writer);
    reader
}

fn rss_kib() -> u64 {
    if std::env::var_os("OXLB_SCALE_HEAP").is_some() {
        let heap = oxlb_node::memory::heap_use().map_or(0, |h| h.in_use_bytes);
        eprintln!(
            "  (live heap {:.1} MiB, RSS {:.1} MiB)",
            heap as f64 / 1048576.0,
            status_kib("VmRSS:") as f64 / 1024.0
        );
    }
    status_kib("VmRSS:")
}

/// A line of /proc/self/status in KiB (`VmRSS:`, `VmHWM:` the peak).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn service_json(i: usize, status: Option<&str>) -> serde_json::Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 100),
                     "resourceVersion": i.to_string(), "uid": format!("uid-{i}"),
                     "labels": {"app": format!("app-{i}")}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP", "targetPort": 8443}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "selector": {"app": format!("app-{i}")}},
    });
    if let Some(ip) = status {
        s["metadata"]["annotations"] = json!({"metallb.io/ip-allocated-from-pool": "big"});
        s["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    }
    s
}

/// kube's watcher lists in pages of this many objects: at most one page of whole
/// Services is alive at a time on the way into the cache.
const PAGE: usize = 500;

/// The LIST as the API server sends it, page by page (each page's JSON made when it
/// is read, so the test holds no copy of the whole list).
fn pages(count: usize, status: impl Fn(usize) -> Option<String>) -> impl Iterator<Item = String> {
    (0..count).step_by(PAGE).map(move |first| {
        let items: Vec<serde_json::Value> = (first..(first + PAGE).min(count))
            .map(|i| service_json(i, status(i).as_deref()))
            .collect();
        serde_json::to_string(&items).unwrap()
    })
}

/// Fills the controller's Service cache as its watcher does: each page decoded,
/// every Service projected into the cache's compact entry, the page dropped.
fn fill_cache(pages: impl Iterator<Item = String>) -> Projected<CachedService> {
    let (cache, filler) = projected::projected(CachedService::from_service);
    filler.apply(watcher::Event::Init);
    for page in pages {
        let services: Vec<Service> = serde_json::from_str(&page).unwrap();
        for service in services {
            filler.apply(watcher::Event::InitApply(service));
        }
    }
    filler.apply(watcher::Event::InitDone);
    cache
}

#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn startup_with_10k_services() {
    let count = services_count();
    // As `oxlb controller` sets up its allocator (oxlb_node::memory).
    oxlb_node::memory::tune_allocator();
    let rss_start = rss_kib();
    let namespaces: Vec<Namespace> = (0..100)
        .map(|i| {
            serde_json::from_value(
                json!({"metadata": {"name": format!("ns-{i}"), "resourceVersion": "1"}}),
            )
            .unwrap()
        })
        .collect();
    let pool: oxlb_api::IPAddressPool = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "big", "namespace": "metallb-system"},
        "spec": {"addresses": ["10.128.0.0/14"]}}))
    .unwrap();
    let namespace_store = filled(namespaces);
    let pools = filled(vec![pool]);

    // The list into the controller's cache, as the controller's watcher does it.
    let t = Instant::now();
    let cache = fill_cache(pages(count, |_| None));
    let fill = t.elapsed();
    assert_eq!(cache.len(), count);
    let rss_filled = rss_kib();

    // Fresh cluster: every Service pending.
    let t = Instant::now();
    let snapshot = oxlb_k8s::stores::config_snapshot(
        "metallb-system",
        &pools.state(),
        &[],
        &[],
        &[],
        &[],
        &[],
        &[],
        &[],
    )
    .unwrap();
    let config = build_config(&snapshot).config.unwrap();
    // As the controller does: the cache's views, shared with the core.
    let ns: Vec<Namespace> = namespace_store
        .state()
        .iter()
        .map(|n| (**n).clone())
        .collect();
    let views: Vec<_> = cache.state().iter().map(|s| s.view.clone()).collect();
    let mut core = Controller::new(config.clone(), None);
    let outcome = core.sync_shared(&views, &ns);
    drop(views);
    let fresh = t.elapsed();
    assert_eq!(
        outcome.services.values().filter(|o| o.needs_update).count(),
        count
    );
    drop(outcome);
    // The controller trims after a bulk reconcile (reconciler::BULK_OUTCOME).
    oxlb_node::memory::release_freed();
    let rss_core = rss_kib();

    // Restart: the Services carrying what the first run wrote, listed into a new
    // cache by a new controller; nothing to write.
    let ingress: Vec<String> = (0..count)
        .map(|i| {
            let key = format!("ns-{}/svc-{i}", i % 100);
            let Some(Desired::Status { ingress, .. }) = core.desired(&key) else {
                panic!()
            };
            ingress[0].to_string()
        })
        .collect();
    drop(core);
    drop(cache);
    oxlb_node::memory::release_freed();
    let rss_dropped = rss_kib();
    let cache = fill_cache(pages(count, |i| Some(ingress[i].clone())));
    drop(ingress);
    let t = Instant::now();
    let views: Vec<_> = cache.state().iter().map(|s| s.view.clone()).collect();
    let mut core = Controller::new(config, None);
    let outcome = core.sync_shared(&views, &ns);
    drop(views);
    let restart = t.elapsed();
    assert_eq!(
        outcome.services.values().filter(|o| o.needs_update).count(),
        0,
        "a restart writes nothing"
    );
    drop(outcome);
    oxlb_node::memory::release_freed();
    let rss_restarted = rss_kib();
    let peak = status_kib("VmHWM:");

    // The reference, after the rest so it does not set the peak: decoding the same
    // LIST into Services, page by page, nothing kept.
    let text: Vec<String> = pages(count, |_| None).collect();
    let t = Instant::now();
    for page in &text {
        let services: Vec<Service> = serde_json::from_str(page).unwrap();
        std::hint::black_box(services);
    }
    let decode = t.elapsed();
    drop(text);

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{count} Services, in-process, the controller's cache filled as its watcher fills it:"
    );
    println!("  decode {count} Services from JSON (one LIST, reference): {decode:?}");
    println!(
        "  list into the cache (decode + keep the compact view): {fill:?} = {:.1}x the decode",
        fill.as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "  fresh cluster (build config + allocate all): {fresh:?} = {:.1}x the decode",
        fresh.as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "  restart (re-claim all, nothing to write):   {restart:?} = {:.1}x the decode; with its list {:?} = {:.1}x",
        restart.as_secs_f64() / decode.as_secs_f64(),
        fill + restart,
        (fill + restart).as_secs_f64() / decode.as_secs_f64()
    );
    println!(
        "  RSS (MiB): test start {:.1}, cache filled {:.1}, with core {:.1}, both dropped {:.1}, after the restart {:.1}; peak {:.1} = {:.2}x the 200 MB target",
        mib(rss_start),
        mib(rss_filled),
        mib(rss_core),
        mib(rss_dropped),
        mib(rss_restarted),
        mib(peak),
        peak as f64 * 1024.0 / 200e6
    );
}

/// The whole controller against the mock API server: from start to every one of the
/// 10,000 Services carrying its address (list + watch, 10,000 events, 20,000 patches,
/// all through the in-memory server). The fake server's own cost is included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --release --ignored --nocapture"]
async fn startup_with_10k_services_against_the_mock_api_server() {
    use support::FakeApi;
    let api = FakeApi::new();
    api.put(support::namespace("metallb-system"));
    for i in 0..100 {
        api.put(support::namespace(&format!("ns-{i}")));
    }
    api.put(support::pool("big", &["10.100.0.0/16"]));
    api.put(support::l2("l2"));
    for i in 0..SERVICES {
        let mut s = service_json(i, None);
        s["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        api.put(s);
    }
    let client = api.client();
    let options = oxlb_k8s::ControllerOptions {
        namespace: "metallb-system".into(),
        lb_class: None,
        max_services: None,
        metrics_address: None,
        status_address: None,
        identity: "c1".into(),
        leader_election: false,
        pod: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let t = Instant::now();
    let task = tokio::spawn(async move {
        oxlb_k8s::run_controller_with_client(client, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    loop {
        let done = api
            .writes()
            .iter()
            .filter(|w| w.path.ends_with("/status") && w.path.contains("/services/"))
            .count();
        if done >= SERVICES {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let elapsed = t.elapsed();
    println!(
        "10,000 Services against the mock API server: every status written after {elapsed:?} (RSS of the test process {} KiB)",
        rss_kib()
    );
    let _ = tx.send(());
    task.await.unwrap();
}
