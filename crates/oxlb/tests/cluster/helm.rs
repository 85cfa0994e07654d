//! A MetalLB installed with Helm, and the migration steps of docs/kubernetes.md
//! ("From a Helm-installed MetalLB") played against the fake API server.
//!
//! What Helm and the API server would do is *modelled* here, from their documented
//! behaviour, because neither runs in these tests: `helm uninstall` deletes every
//! object of the release except those annotated `helm.sh/resource-policy: keep`
//! (helm.sh "Chart tips and tricks"; MetalLB's chart ships its CRDs as ordinary
//! templates of its `crds` subchart, so they are release objects), and deleting a CRD
//! deletes every object of its kind. `kubectl replace` of a CRD stores exactly the new
//! object (so MetalLB's conversion webhook goes away).
#![allow(dead_code)]

use oxlb_fakeapi::FakeApi;
use serde_json::{Value, json};

pub const RELEASE: &str = "metallb";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// The metallb.io collections a MetalLB install holds user objects in.
pub const CONFIG_COLLECTIONS: [&str; 6] = [
    "/apis/metallb.io/v1beta1/ipaddresspools",
    "/apis/metallb.io/v1beta1/l2advertisements",
    "/apis/metallb.io/v1beta1/bgpadvertisements",
    "/apis/metallb.io/v1beta2/bgppeers",
    "/apis/metallb.io/v1beta1/bfdprofiles",
    "/apis/metallb.io/v1beta1/communities",
];

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// oxlb's CRDs (deploy/crds.yaml), one JSON value each.
pub fn oxlb_crds() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("deploy/crds.yaml")).unwrap();
    text.split("\n---\n")
        .filter(|d| d.contains("kind: CustomResourceDefinition"))
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect()
}

/// Marks an object as created by Helm release `metallb` (what Helm 3 writes on every
/// object it creates).
pub fn helm_owned(mut object: Value) -> Value {
    let meta = &mut object["metadata"];
    meta["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
    meta["annotations"]["meta.helm.sh/release-name"] = json!(RELEASE);
    meta["annotations"]["meta.helm.sh/release-namespace"] = json!("metallb-system");
    object
}

/// MetalLB's CRDs as its Helm chart installs them: release objects, and BGPPeer with
/// the conversion webhook pointing at MetalLB's webhook Service. (The schemas are
/// oxlb's, which serve the same versions; the fake does not validate.)
pub fn metallb_helm_crds() -> Vec<Value> {
    oxlb_crds()
        .into_iter()
        .map(|mut crd| {
            if crd["spec"]["names"]["kind"] == "BGPPeer" {
                crd["spec"]["conversion"] = json!({
                    "strategy": "Webhook",
                    "webhook": {
                        "conversionReviewVersions": ["v1beta1", "v1beta2"],
                        "clientConfig": {
                            "caBundle": "LS0tLS1CRUdJTi0tLS0t",
                            "service": {"name": "metallb-webhook-service",
                                        "namespace": "metallb-system", "path": "/convert"},
                        },
                    },
                });
            }
            helm_owned(crd)
        })
        .collect()
}

/// Helm's other release objects that the uninstall removes (a sample: the workloads,
/// the webhook Service).
pub fn metallb_helm_workloads() -> Vec<Value> {
    vec![helm_owned(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "metallb-webhook-service", "namespace": "metallb-system"},
        "spec": {"ports": [{"port": 443}]},
    }))]
}

/// Every user-visible metallb.io object: (collection, namespace/name, spec).
pub fn config_objects(api: &FakeApi) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for collection in CONFIG_COLLECTIONS {
        for object in api.list(collection) {
            let key = format!(
                "{}/{}",
                object["metadata"]["namespace"].as_str().unwrap_or(""),
                object["metadata"]["name"].as_str().unwrap_or("")
            );
            out.push((collection.to_string(), key, object["spec"].clone()));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// Step "keep": `kubectl annotate crd ... helm.sh/resource-policy=keep` and the same on
/// the release's metallb.io objects (`-l app.kubernetes.io/managed-by=Helm`).
pub fn annotate_keep(api: &FakeApi) {
    let mut collections = vec![CRDS];
    collections.extend(CONFIG_COLLECTIONS);
    for collection in collections {
        for mut object in api.list(collection) {
            if object["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm" {
                object["metadata"]["annotations"]["helm.sh/resource-policy"] = json!("keep");
                api.put(object);
            }
        }
    }
}

/// `helm uninstall metallb` as documented: every release object not marked keep is
/// deleted; a deleted CRD takes every object of its kind with it.
pub fn helm_uninstall(api: &FakeApi, collections: &[&str]) {
    let released = |o: &Value| {
        o["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
            && o["metadata"]["annotations"]["helm.sh/resource-policy"] != "keep"
    };
    for collection in collections.iter().copied().chain(CONFIG_COLLECTIONS) {
        for object in api.list(collection).into_iter().filter(|o| released(o)) {
            let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
            api.delete(collection, ns, object["metadata"]["name"].as_str().unwrap());
        }
    }
    for crd in api.list(CRDS).into_iter().filter(|o| released(o)) {
        let name = crd["metadata"]["name"].as_str().unwrap().to_string();
        api.delete(CRDS, "", &name);
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        for collection in CONFIG_COLLECTIONS
            .iter()
            .filter(|c| c.ends_with(&format!("/{plural}")))
        {
            for object in api.list(collection) {
                let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
                api.delete(collection, ns, object["metadata"]["name"].as_str().unwrap());
            }
        }
    }
}

/// `kubectl replace -f deploy/crds.yaml`: oxlb's CRDs stored as they are (conversion
/// strategy None: MetalLB's webhook is no longer called).
pub fn replace_crds(api: &FakeApi) {
    for crd in oxlb_crds() {
        api.put(crd);
    }
}

/// The BGPPeer CRD's conversion as stored.
pub fn peer_conversion(api: &FakeApi) -> Value {
    api.get(CRDS, "", "bgppeers.metallb.io")
        .map(|c| c["spec"]["conversion"].clone())
        .unwrap_or(Value::Null)
}

pub const CRD_COLLECTION: &str = CRDS;
