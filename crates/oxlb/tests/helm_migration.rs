//! From a Helm-installed MetalLB to oxlb, following docs/kubernetes.md step by step
//! against the fake API server, with the real oxlb controller (in-process) at the end.
//! Helm's uninstall and the API server's deletion of a CRD's objects are modelled from
//! their documented behaviour (tests/cluster/helm.rs): neither runs here. The process
//! rehearsal (cluster_rehearsal.rs, as root) plays the same steps before its migration.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "cluster/helm.rs"]
mod helm;

use oxlb_fakeapi::{FakeApi, ingress, namespace, pool, service, wait_for, with_status};
use oxlb_k8s::controller::{ControllerOptions, run_controller_with_client};
use serde_json::{Value, json};

const NS: &str = "metallb-system";

/// A MetalLB release with its CRDs, its webhook Service, configuration objects (as the
/// chart's own templates would create them: Helm-owned too, the harder case), Services
/// holding the IPs MetalLB gave them, and the memberlist Secret MetalLB's controller
/// made (not a release object).
fn metallb_release(api: &FakeApi) {
    for crd in helm::metallb_helm_crds() {
        api.put(crd);
    }
    for object in helm::metallb_helm_workloads() {
        api.put(object);
    }
    api.put(namespace("default"));
    api.put(namespace(NS));
    let objects = [
        pool("production", &["10.79.0.0/24"]),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
               "metadata": {"name": "lan", "namespace": NS}, "spec": {"ipAddressPools": ["production"]}}),
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
               "metadata": {"name": "router", "namespace": NS},
               "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.77.0.1"}}),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
               "metadata": {"name": "external", "namespace": NS},
               "spec": {"ipAddressPools": ["production"], "communities": ["64500:100"]}}),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",
               "metadata": {"name": "fast", "namespace": NS}, "spec": {"receiveInterval": 100}}),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "Community",
               "metadata": {"name": "c", "namespace": NS},
               "spec": {"communities": [{"name": "NO_ADVERTISE", "value": "65535:65282"}]}}),
    ];
    for object in objects {
        api.put(helm::helm_owned(object));
    }
    api.put(with_status(
        service("default", "web"),
        "10.79.0.42",
        "production",
    ));
    api.put(with_status(
        service("default", "db"),
        "10.79.0.17",
        "production",
    ));
    api.put(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "memberlist", "namespace": NS},
        "data": {"secretkey": "c2VjcmV0"}}),
    );
}

fn services(api: &FakeApi) -> Vec<(String, Vec<String>)> {
    ["web", "db"]
        .iter()
        .map(|n| (n.to_string(), ingress(api, "default", n)))
        .collect()
}

#[tokio::test]
async fn helm_installed_metallb_migrates_without_losing_anything() {
    let api = FakeApi::new();
    metallb_release(&api);
    // 1. Back up (what `kubectl get ... -o yaml` saves).
    let backup = helm::config_objects(&api);
    let ips = services(&api);
    assert_eq!(backup.len(), 6);
    // 2. Keep the CRDs and the release's metallb.io objects.
    helm::annotate_keep(&api);
    // 3. helm uninstall metallb.
    helm::helm_uninstall(&api, &["/api/v1/services", "/api/v1/secrets"]);
    assert!(
        api.get("/api/v1/services", NS, "metallb-webhook-service")
            .is_none(),
        "the uninstall removed the release's other objects"
    );
    assert_eq!(helm::config_objects(&api), backup, "an object was lost");
    // The BGPPeer CRD still names the deleted webhook Service...
    assert_eq!(helm::peer_conversion(&api)["strategy"], "Webhook");
    // 4. ...until oxlb's CRDs replace MetalLB's.
    helm::replace_crds(&api);
    assert_eq!(helm::peer_conversion(&api), json!({"strategy": "None"}));
    assert_eq!(helm::config_objects(&api), backup);
    // 5. oxlb runs: every Service keeps its IP, a new one gets the lowest free address.
    api.put(service("default", "pending"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let client = api.client();
    let options = ControllerOptions {
        namespace: NS.into(),
        lb_class: None,
        max_services: None,
        metrics_address: None,
        status_address: None,
        identity: "oxlb-controller-0".into(),
        leader_election: false,
        pod: None,
    };
    let task = tokio::spawn(async move {
        run_controller_with_client(client, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    wait_for("the pending Service's IP", || {
        !ingress(&api, "default", "pending").is_empty()
    })
    .await;
    wait_for("ConfigurationState Valid", || {
        api.get(
            "/apis/metallb.io/v1beta1/configurationstates",
            NS,
            "controller",
        )
        .is_some_and(|s| s["status"]["result"] == "Valid")
    })
    .await;
    assert_eq!(services(&api), ips, "a Service's IP moved");
    assert_eq!(ingress(&api, "default", "pending"), ["10.79.0.0"]);
    assert_eq!(helm::config_objects(&api), backup);
    assert!(api.get("/api/v1/secrets", NS, "memberlist").is_some());
    let _ = tx.send(());
    task.await.unwrap();
}

/// What docs/kubernetes.md used to say ("helm uninstall keeps CRDs"): without the keep
/// annotation, the uninstall deletes MetalLB's CRDs and with them every object.
#[test]
fn uninstall_without_keep_loses_the_configuration() {
    let api = FakeApi::new();
    metallb_release(&api);
    assert_eq!(helm::config_objects(&api).len(), 6);
    helm::helm_uninstall(&api, &["/api/v1/services"]);
    let left: Vec<Value> = api.list(helm::CRD_COLLECTION);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(helm::config_objects(&api), vec![]);
}
