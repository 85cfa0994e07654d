//! `oxlb controller` against a mock API server: every write it sends is asserted
//! (method, path, body), and so is what it must not send.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::time::Duration;

use oxlb_k8s::{ControllerOptions, rbac, run_controller_with_client};
use serde_json::{Value, json};
use support::*;

const NS: &str = "metallb-system";

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

fn start(api: &FakeApi, identity: &str, leader_election: bool) -> Running {
    start_with_class(api, identity, leader_election, None)
}

fn start_with_class(
    api: &FakeApi,
    identity: &str,
    leader_election: bool,
    lb_class: Option<&str>,
) -> Running {
    let client = api.client();
    let options = ControllerOptions {
        namespace: NS.into(),
        lb_class: lb_class.map(str::to_string),
        max_services: None,
        metrics_address: None,
        status_address: None,
        identity: identity.into(),
        leader_election,
        pod: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run_controller_with_client(client, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        stop: Some(tx),
        task,
    }
}

fn cluster(api: &FakeApi) {
    api.put(namespace("default"));
    api.put(namespace(NS));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(l2("l2"));
}

fn service_writes(api: &FakeApi) -> Vec<Recorded> {
    api.writes()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/namespaces/") && r.path.contains("/services/"))
        .collect()
}

fn events(api: &FakeApi) -> Vec<Value> {
    api.writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .collect()
}

fn assert_rbac_covers(api: &FakeApi) {
    for r in api.log() {
        assert!(
            rbac::allows(rbac::CONTROLLER, NS, &r.method, &r.path, &r.query),
            "request not covered by the RBAC rules: {} {}?{}",
            r.method,
            r.path,
            r.query
        );
    }
}

/// Gives the controller time to do something it must not do (no timing is asserted:
/// the test only fails if a forbidden write shows up).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// A `tracing` writer into memory: what the controller logs, for assertions.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn fresh_cluster_assigns_and_writes_status_annotation_event_pool_and_state() {
    // The test runtime runs every task on this thread: the subscriber sees them all.
    let log = LogBuffer::default();
    let writer = log.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    let rv = api.get("/api/v1/services", "default", "web").unwrap()["metadata"]["resourceVersion"]
        .clone();
    let controller = start(&api, "c1", false);
    wait_for("status", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    wait_for("configuration state", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    wait_for("pool status", || {
        api.get("/apis/metallb.io/v1beta1/ipaddresspools", NS, "pool1")
            .is_some_and(|p| p["status"]["assignedIPv4"] == 1)
    })
    .await;

    // One write, to the status subresource, carrying the annotation too (least
    // privilege: no write access to Services themselves; see writer::write_service).
    let writes = service_writes(&api);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(
        writes[0].path,
        "/api/v1/namespaces/default/services/web/status"
    );
    assert_eq!(writes[0].content_type, "application/merge-patch+json");
    assert_eq!(
        writes[0].body,
        json!({"metadata": {"resourceVersion": rv, "annotations": {
            "metallb.io/ip-allocated-from-pool": "pool1",
            "metallb.universe.tf/ip-allocated-from-pool": null}},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.10.0"}]}}})
    );
    let stored = api.get("/api/v1/services", "default", "web").unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"],
        "pool1"
    );

    let recorded = events(&api);
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["reason"], "IPAllocated");
    assert_eq!(recorded[0]["type"], "Normal");
    assert_eq!(recorded[0]["note"], "Assigned IP [\"192.168.10.0\"]");
    assert_eq!(recorded[0]["regarding"]["kind"], "Service");
    assert_eq!(recorded[0]["regarding"]["name"], "web");
    assert_eq!(recorded[0]["reportingController"], "metallb-controller");
    // At info, as MetalLB: which Service got which IP from which pool.
    let log = log.text();
    let line = log
        .lines()
        .find(|l| l.contains("IP address assigned"))
        .unwrap_or_else(|| panic!("no allocation line: {log}"));
    assert!(line.contains(" INFO "), "{line}");
    for part in ["service=default/web", "ips=192.168.10.0", "pool=pool1"] {
        assert!(line.contains(part), "{part} not in {line}");
    }

    let pool = api
        .writes()
        .into_iter()
        .find(|r| r.path.ends_with("/ipaddresspools/pool1/status"))
        .unwrap();
    assert_eq!(
        pool.body,
        json!({"status": {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 3, "availableIPv6": 0}})
    );
    let state: Vec<Recorded> = api
        .writes()
        .into_iter()
        .filter(|r| r.path.contains("configurationstates"))
        .collect();
    assert_eq!(state.len(), 2);
    assert_eq!(state[0].content_type, "application/apply-patch+yaml");
    assert!(state[0].query.contains("fieldManager=oxlb-controller"));
    assert_eq!(
        state[1].path,
        format!("/apis/metallb.io/v1beta1/namespaces/{NS}/configurationstates/controller/status")
    );
    assert_eq!(state[1].body["status"]["result"], "Valid");
    assert!(state[1].body["status"].get("errorSummary").is_none());
    assert_eq!(
        state[1].body["status"]["conditions"][0]["type"],
        "poolReconcilerValid"
    );
    assert_eq!(state[1].body["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        state[0].body["metadata"]["labels"],
        json!({"metallb.io/component-type": "controller"})
    );

    let memberlist = api.get("/api/v1/secrets", NS, "memberlist").unwrap();
    assert!(memberlist["data"]["secretkey"].as_str().unwrap().len() >= 128);

    // The write-backs come back through the watch: nothing more to write.
    settle().await;
    assert_eq!(service_writes(&api).len(), 1);
    assert_eq!(events(&api).len(), 1);
    assert_rbac_covers(&api);
    controller.stop().await;
}

#[tokio::test]
async fn restart_with_metallb_written_status_moves_nothing() {
    let api = FakeApi::new();
    cluster(&api);
    // What MetalLB left: .2 and .0 taken, in an order a fresh allocation would not use.
    api.put(with_status(
        service("default", "a"),
        "192.168.10.2",
        "pool1",
    ));
    api.put(with_status(
        service("default", "b"),
        "192.168.10.0",
        "pool1",
    ));
    let mut old = with_status(service("default", "c"), "192.168.10.1", "pool1");
    old["metadata"]["annotations"] = json!({"metallb.universe.tf/ip-allocated-from-pool": "pool1"});
    api.put(old);
    api.put(service("default", "pending"));
    let controller = start(&api, "c1", false);
    wait_for("pending gets the free address", || {
        ingress(&api, "default", "pending") == ["192.168.10.3"]
    })
    .await;
    wait_for("old annotation replaced", || {
        api.get("/api/v1/services", "default", "c").unwrap()["metadata"]["annotations"]
            == json!({"metallb.io/ip-allocated-from-pool": "pool1"})
    })
    .await;
    settle().await;
    assert_eq!(ingress(&api, "default", "a"), ["192.168.10.2"]);
    assert_eq!(ingress(&api, "default", "b"), ["192.168.10.0"]);
    assert_eq!(ingress(&api, "default", "c"), ["192.168.10.1"]);
    let writes = service_writes(&api);
    let paths: Vec<&str> = writes.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/default/services/c/status",
            "/api/v1/namespaces/default/services/pending/status",
        ],
        "only the deprecated annotation and the pending service are written"
    );
    controller.stop().await;
}

#[tokio::test]
async fn conflict_on_status_write_is_retried_with_a_fresh_read() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    api.fail("PATCH", "/services/web/status", 409, 1);
    let controller = start(&api, "c1", false);
    wait_for("status after the conflict", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    let log = api.log();
    let conflict = log
        .iter()
        .position(|r| r.method == "PATCH" && r.path.ends_with("/services/web/status"))
        .unwrap();
    let after: Vec<(&str, &str)> = log[conflict + 1..]
        .iter()
        .filter(|r| r.path.contains("/services/web"))
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        after[..2],
        [
            ("GET", "/api/v1/namespaces/default/services/web"),
            ("PATCH", "/api/v1/namespaces/default/services/web/status"),
        ]
    );
    settle().await;
    assert_eq!(
        events(&api).len(),
        1,
        "one IPAllocated, not repeated by the retry"
    );
    assert_rbac_covers(&api);
    controller.stop().await;
}

#[tokio::test]
async fn api_server_unavailable_then_back() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    // The first status writes fail as if the API server were restarting.
    api.fail("PATCH", "/services/web/status", 503, 2);
    let controller = start(&api, "c1", false);
    wait_for("status written after retries", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;

    // The API server goes away (watches end, every request 503); meanwhile a
    // Service is created that the controller cannot see yet.
    api.set_unavailable(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.put(service("default", "later"));
    api.set_unavailable(false);
    wait_for("new service after the outage", || {
        ingress(&api, "default", "later") == ["192.168.10.1"]
    })
    .await;
    settle().await;
    assert_eq!(
        ingress(&api, "default", "web"),
        ["192.168.10.0"],
        "nothing moved"
    );
    let web_status_writes = service_writes(&api)
        .iter()
        .filter(|w| w.path.ends_with("/services/web/status"))
        .count();
    assert_eq!(
        web_status_writes, 3,
        "two failures then one success, no more"
    );
    controller.stop().await;
}

#[tokio::test]
async fn watch_expiry_relists_without_losing_or_moving_assignments() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "a"));
    api.put(service("default", "b"));
    let controller = start(&api, "c1", false);
    wait_for("both assigned", || {
        ingress(&api, "default", "a") == ["192.168.10.0"]
            && ingress(&api, "default", "b") == ["192.168.10.1"]
    })
    .await;
    settle().await;
    let before = service_writes(&api).len();
    let lists_before = api
        .log()
        .iter()
        .filter(|r| r.method == "GET" && !r.query.contains("watch"))
        .count();
    api.expire_watches();
    wait_for("re-list after 410", || {
        api.log()
            .iter()
            .filter(|r| r.method == "GET" && !r.query.contains("watch"))
            .count()
            >= lists_before + 10
    })
    .await;
    // A change after the restart is still seen...
    api.delete("/api/v1/services", "default", "a");
    api.put(service("default", "c"));
    wait_for("c gets a's released address", || {
        ingress(&api, "default", "c") == ["192.168.10.0"]
    })
    .await;
    settle().await;
    // ...and the re-list itself wrote nothing.
    assert_eq!(ingress(&api, "default", "b"), ["192.168.10.1"]);
    let writes = service_writes(&api);
    assert_eq!(
        writes.len(),
        before + 1,
        "only c's annotation and status (one write): {:#?}",
        &writes[before..]
    );
    controller.stop().await;
}

#[tokio::test]
async fn config_change_orphaning_an_ip_reassigns_and_invalid_config_keeps_the_last_valid() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    let controller = start(&api, "c1", false);
    wait_for("assigned", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;

    // The pool moves: the held address is no longer allowed.
    api.put(pool("pool1", &["192.168.20.0/30"]));
    wait_for("moved to the new range", || {
        ingress(&api, "default", "web") == ["192.168.20.0"]
    })
    .await;
    wait_for("events", || events(&api).len() >= 3).await;
    let reasons: Vec<Value> = events(&api).iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(reasons, ["IPAllocated", "ClearAssignment", "IPAllocated"]);

    // An overlapping second pool: rejected, the last valid config stays, nothing moves.
    api.put(pool("pool2", &["192.168.20.0/24"]));
    wait_for("invalid state", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Invalid")
    })
    .await;
    let state = api
        .get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .unwrap();
    assert!(
        state["status"]["errorSummary"]
            .as_str()
            .unwrap()
            .contains("pool2"),
        "{state}"
    );
    // MetalLB's labels, its condition, no field of the old layout.
    assert_eq!(
        state["metadata"]["labels"]["metallb.io/component-type"],
        "controller"
    );
    assert_eq!(
        state["status"]["conditions"][0]["status"], "False",
        "{state}"
    );
    assert!(state["status"].get("lastError").is_none(), "{state}");
    api.put(service("default", "second"));
    wait_for("allocation under the last valid config", || {
        ingress(&api, "default", "second") == ["192.168.20.1"]
    })
    .await;
    assert_eq!(ingress(&api, "default", "web"), ["192.168.20.0"]);

    api.delete("/apis/metallb.io/v1beta1/ipaddresspools", NS, "pool2");
    wait_for("valid again", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_last_valid_pool_across_a_restart() {
    const POOLS: &str = "/apis/metallb.io/v1beta1/ipaddresspools";
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    let controller = start(&api, "c1", false);
    wait_for("assigned", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    // The controller records the version in force on the object itself.
    wait_for("last valid version recorded", || {
        api.get(POOLS, NS, "pool1").is_some_and(|p| {
            p["metadata"]["annotations"][oxlb_config::LAST_VALID_ANNOTATION]
                .as_str()
                .is_some_and(|a| a.contains("192.168.10.0/30"))
        })
    })
    .await;
    assert_rbac_covers(&api);
    controller.stop().await;

    // While no controller runs, a typo (an edit keeps the annotation), and a new
    // Service; then a new controller with no memory of its own.
    let mut edited = api.get(POOLS, NS, "pool1").unwrap();
    edited["spec"]["addresses"] = json!(["192.168.10.300/30"]);
    api.put(edited);
    api.put(service("default", "second"));
    let controller = start(&api, "c2", false);
    wait_for("the typo is reported", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Invalid")
    })
    .await;
    wait_for("allocation from the last valid version", || {
        ingress(&api, "default", "second") == ["192.168.10.1"]
    })
    .await;
    // The error is also a Warning event on the pool itself.
    wait_for("warning event on the pool", || {
        events(&api).iter().any(|e| {
            e["type"] == "Warning"
                && e["reason"] == "InvalidConfiguration"
                && e["regarding"]["kind"] == "IPAddressPool"
                && e["regarding"]["name"] == "pool1"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("spec.addresses[0]"))
        })
    })
    .await;
    assert_eq!(ingress(&api, "default", "web"), ["192.168.10.0"]);
    // The annotation still holds the valid version, not the typo.
    let annotation = api.get(POOLS, NS, "pool1").unwrap()["metadata"]["annotations"]
        [oxlb_config::LAST_VALID_ANNOTATION]
        .clone();
    assert!(
        !annotation.as_str().unwrap().contains("300"),
        "{annotation}"
    );
    controller.stop().await;
}

fn peer_with_secret() -> Value {
    json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
           "metadata": {"name": "router", "namespace": NS},
           "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1",
                    "passwordSecret": {"name": "bgp-pass", "namespace": NS}}})
}

fn secret(password: &str) -> Value {
    use std::fmt::Write;
    let encoded = {
        // base64 without a crate: the test only needs short ASCII.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = password.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.write_char(T[(n >> (18 - 6 * i) & 63) as usize] as char)
                        .unwrap();
                } else {
                    out.push('=');
                }
            }
        }
        out
    };
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
           "metadata": {"name": "bgp-pass", "namespace": NS},
           "data": {"password": encoded}})
}

#[tokio::test]
async fn secret_rotation_keeps_assignments_and_a_missing_secret_is_reported() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(secret("first"));
    api.put(peer_with_secret());
    api.put(service("default", "web"));
    let controller = start(&api, "c1", false);
    wait_for("assigned", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    wait_for("valid", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    api.put(secret("second"));
    settle().await;
    api.delete("/api/v1/secrets", NS, "bgp-pass");
    wait_for("invalid without the secret", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Invalid")
    })
    .await;
    api.put(secret("third"));
    wait_for("valid again", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    settle().await;
    assert_eq!(service_writes(&api).len(), 1, "rotation moved nothing");
    assert_eq!(ingress(&api, "default", "web"), ["192.168.10.0"]);
    controller.stop().await;
}

#[tokio::test]
async fn legacy_configmap_is_read() {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "config", "namespace": NS},
        "data": {"config": "address-pools:\n- name: legacy\n  protocol: layer2\n  addresses:\n  - 192.168.30.0/30\n"}}));
    api.put(service("default", "web"));
    let controller = start(&api, "c1", false);
    wait_for("assigned from the legacy pool", || {
        ingress(&api, "default", "web") == ["192.168.30.0"]
    })
    .await;
    controller.stop().await;
}

/// Two replicas race for a free Lease: the loser's write gets 409 and it simply tries
/// again on its next round, taking the Lease once it is free.
#[tokio::test]
async fn a_lost_race_for_the_lease_is_retried() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "oxlb-controller", "namespace": NS},
        "spec": {"leaseDurationSeconds": 1, "leaseTransitions": 3}}),
    );
    api.fail("PUT", "/leases/oxlb-controller", 409, 1);
    let b = start(&api, "b", true);
    wait_for("b leads after its first write lost", || {
        holder(&api).as_deref() == Some("b")
    })
    .await;
    let puts: Vec<u16> = api
        .log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/leases/oxlb-controller"))
        .map(|r| r.status)
        .collect();
    assert_eq!(puts.first(), Some(&409), "{puts:?}");
    let lease = api.get(LEASE, NS, "oxlb-controller").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 4);
    assert_rbac_covers(&api);
    b.stop().await;
}

/// What MetalLB's CRDs store for its documented L2Advertisement (no `spec` at all), next
/// to an object that cannot be decoded: neither may stop the kind's watch, so the pool
/// is advertised and the Service gets its IP.
#[tokio::test]
async fn objects_stored_without_spec_or_undecodable_do_not_stop_the_config() {
    let api = FakeApi::new();
    api.put(namespace("default"));
    api.put(namespace(NS));
    api.put(pool("pool1", &["192.168.10.0/30"]));
    api.put(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
        "metadata": {"name": "example", "namespace": NS}}),
    );
    api.put(
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
        "metadata": {"name": "garbled", "namespace": NS},
        "spec": {"interfaces": "eth0"}}),
    );
    api.put(service("default", "web"));
    let controller = start(&api, "c1", false);
    wait_for("assigned although one L2Advertisement has no spec", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    controller.stop().await;
}

const LEASE: &str = "/apis/coordination.k8s.io/v1/leases";

fn holder(api: &FakeApi) -> Option<String> {
    api.get(LEASE, NS, "oxlb-controller")
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

#[tokio::test]
async fn leader_change_hands_over_on_shutdown_and_moves_nothing() {
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    let a = start(&api, "a", true);
    wait_for("a leads", || holder(&api).as_deref() == Some("a")).await;
    wait_for("assigned by a", || {
        ingress(&api, "default", "web") == ["192.168.10.0"]
    })
    .await;
    let create = api
        .writes()
        .into_iter()
        .find(|r| r.path.contains("/leases"))
        .unwrap();
    assert_eq!(create.method, "POST");
    assert_eq!(
        create.path,
        "/apis/coordination.k8s.io/v1/namespaces/metallb-system/leases"
    );
    assert_eq!(create.body["spec"]["holderIdentity"], "a");
    assert_eq!(create.body["spec"]["leaseDurationSeconds"], 15);

    let b = start(&api, "b", true);
    // b follows: it reads the Lease but neither takes it nor writes Services.
    wait_for("b reads the lease", || {
        api.log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/leases/oxlb-controller"))
            .count()
            >= 2
    })
    .await;
    settle().await;
    assert_eq!(holder(&api).as_deref(), Some("a"));
    let writes_before = service_writes(&api).len();

    // SIGTERM on a: the Lease is released at once (no holder), not left to expire.
    a.stop().await;
    let release = api
        .writes()
        .into_iter()
        .find(|r| {
            r.path.ends_with("/leases/oxlb-controller")
                && r.body["spec"]["holderIdentity"].is_null()
        })
        .expect("a released the Lease");
    assert_eq!(release.method, "PUT");
    assert_eq!(release.body["spec"]["leaseDurationSeconds"], 1);

    // b watches the Lease, so it takes it as soon as it is released.
    wait_for("b leads", || holder(&api).as_deref() == Some("b")).await;
    assert!(
        api.log()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/leases") && r.query.contains("watch")),
        "the follower watches the Lease"
    );
    let lease = api.get(LEASE, NS, "oxlb-controller").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    settle().await;
    assert_eq!(
        service_writes(&api).len(),
        writes_before,
        "the new leader moved nothing"
    );
    assert_eq!(ingress(&api, "default", "web"), ["192.168.10.0"]);

    api.put(service("default", "next"));
    wait_for("b assigns", || {
        ingress(&api, "default", "next") == ["192.168.10.1"]
    })
    .await;
    let last_event = events(&api).pop().unwrap();
    assert_eq!(last_event["reportingInstance"], "b");
    assert_rbac_covers(&api);
    b.stop().await;
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
async fn metrics_health_and_readiness_use_metallb_names() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = FakeApi::new();
    cluster(&api);
    api.put(service("default", "web"));
    let client = api.client();
    let options = ControllerOptions {
        namespace: NS.into(),
        lb_class: None,
        max_services: None,
        metrics_address: Some(([127, 0, 0, 1], port).into()),
        status_address: None,
        identity: "c1".into(),
        leader_election: false,
        pod: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run_controller_with_client(client, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics = http_get(port, "/metrics").await;
        if metrics.contains("metallb_allocator_addresses_in_use_total{pool=\"pool1\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in [
        "metallb_allocator_addresses_in_use_total{pool=\"pool1\"} 1",
        "metallb_allocator_addresses_total{pool=\"pool1\"} 4",
        "metallb_allocator_ipv4_addresses_in_use_total{pool=\"pool1\"} 1",
        "metallb_k8s_client_config_loaded_bool 1",
        "metallb_k8s_client_config_stale_bool 0",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    // MetalLB's client counters: the Service, its Namespace and the configuration were
    // processed, nothing failed.
    let counter = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(counter(&metrics, "metallb_k8s_client_updates_total") >= 2);
    assert_eq!(
        counter(&metrics, "metallb_k8s_client_update_errors_total"),
        0
    );
    assert!(http_get(port, "/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(
        http_get(port, "/healthz")
            .await
            .contains(r#""status":"ok""#)
    );

    api.put(pool("overlapping", &["192.168.10.0/24"]));
    let mut stale = false;
    for _ in 0..500 {
        if http_get(port, "/metrics")
            .await
            .contains("metallb_k8s_client_config_stale_bool 1")
        {
            stale = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stale, "stale metric after an invalid change");
    let metrics = http_get(port, "/metrics").await;
    assert_eq!(
        counter(&metrics, "metallb_k8s_client_update_errors_total"),
        1
    );
    assert!(
        http_get(port, "/healthz")
            .await
            .contains(r#""status":"stale""#)
    );
    assert!(
        http_get(port, "/readyz").await.starts_with("HTTP/1.1 200"),
        "the last valid config is still in force"
    );
    let _ = tx.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn lb_class_selects_the_services_handled() {
    let api = FakeApi::new();
    cluster(&api);
    let mut ours = service("default", "ours");
    ours["spec"]["loadBalancerClass"] = json!("oxlb.io/lb");
    api.put(ours);
    // Another implementation's Service (no class) with a status it wrote itself.
    api.put(with_status(
        service("default", "theirs"),
        "203.0.113.7",
        "elsewhere",
    ));
    let controller = start_with_class(&api, "c1", false, Some("oxlb.io/lb"));
    wait_for("ours assigned", || {
        ingress(&api, "default", "ours") == ["192.168.10.0"]
    })
    .await;
    settle().await;
    assert!(
        service_writes(&api)
            .iter()
            .all(|w| !w.path.contains("/services/theirs"))
    );
    assert_eq!(ingress(&api, "default", "theirs"), ["203.0.113.7"]);
    controller.stop().await;
}

/// MetalLB recreates its ConfigurationState when someone deletes it; so does oxlb,
/// although the result it reports has not changed (the writer skips a result it
/// already wrote, so without the watch the object stayed gone).
#[tokio::test]
async fn deleted_configuration_state_is_written_again() {
    let api = FakeApi::new();
    cluster(&api);
    // An invalid object: the state carries an errorSummary, which must come back too.
    api.put(pool("overlapping", &["192.168.10.0/24"]));
    let controller = start(&api, "c1", false);
    let own_state = || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
    };
    wait_for("configuration state", || {
        own_state().is_some_and(|s| s["status"]["result"] == "Invalid")
    })
    .await;
    let before = own_state().unwrap();
    assert!(
        before["status"]["errorSummary"]
            .as_str()
            .is_some_and(|e| e.contains("overlapping")),
        "{before:#}"
    );
    // Twice: the second deletion is noticed as well as the first.
    for round in 0..2 {
        api.delete(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        );
        assert!(own_state().is_none(), "round {round}: deleted");
        wait_for("configuration state written again", || {
            own_state().is_some_and(|s| s["status"]["result"] == "Invalid")
        })
        .await;
        let again = own_state().unwrap();
        assert_eq!(
            again["metadata"]["labels"],
            json!({"metallb.io/component-type": "controller"}),
            "round {round}"
        );
        assert_eq!(
            again["status"]["errorSummary"], before["status"]["errorSummary"],
            "round {round}"
        );
    }
    assert_rbac_covers(&api);
    controller.stop().await;
}
