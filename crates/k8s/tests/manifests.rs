//! deploy/oxlb.yaml and charts/oxlb: the chart's RBAC is generated from the code's
//! permission list, deploy/oxlb.yaml is the chart rendered with its default values
//! (plus the generated CRDs), and every object parses into its k8s-openapi type.
//! `OXLB_BLESS=1 cargo test -p oxlb-k8s --test manifests` rewrites the generated files.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use oxlb_k8s::rbac::{self, Permission, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::helm;

const NS_PLACEHOLDER: &str = "{{ .Values.namespace }}";
/// Templates in the order `kubectl apply` needs (namespace first, workloads last).
const TEMPLATES: &[&str] = &[
    "namespace.yaml",
    "serviceaccounts.yaml",
    "rbac.yaml",
    "controller.yaml",
    "speaker.yaml",
    "podmonitor.yaml",
    "prometheusrule.yaml",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_default()
}

fn bless() -> bool {
    std::env::var("OXLB_BLESS").is_ok_and(|v| v == "1")
}

fn check_generated(path: &str, expected: &str) {
    if bless() {
        std::fs::write(root().join(path), expected).unwrap();
        return;
    }
    assert!(
        read(path) == expected,
        "{path} is stale: run OXLB_BLESS=1 cargo test -p oxlb-k8s --test manifests"
    );
}

fn role_objects(component: &str, permissions: &[Permission]) -> Vec<Value> {
    let name = format!("oxlb-{component}");
    let labels =
        json!({"app.kubernetes.io/name": "oxlb", "app.kubernetes.io/component": component});
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": NS_PLACEHOLDER}]);
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name, "labels": labels},
               "rules": rbac::rules(permissions, Scope::Cluster)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name, "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": subject}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name, "namespace": NS_PLACEHOLDER, "labels": labels},
               "rules": rbac::rules(permissions, Scope::OwnNamespace)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": NS_PLACEHOLDER, "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": subject}),
    ]
}

fn rbac_template() -> String {
    let mut out = String::from(
        "# Generated from crates/k8s/src/rbac.rs (every API call the code makes); do not edit.\n",
    );
    let objects: Vec<Value> = role_objects("controller", rbac::CONTROLLER)
        .into_iter()
        .chain(role_objects("speaker", rbac::SPEAKER))
        .collect();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(object).unwrap());
    }
    out
}

fn default_values() -> Value {
    serde_saphyr::from_str(&read("charts/oxlb/values.yaml")).unwrap()
}

fn render_chart(values: &Value) -> String {
    let namespace = values["namespace"].as_str().unwrap();
    let mut out = String::new();
    for template in TEMPLATES {
        let text = read(&format!("charts/oxlb/templates/{template}"));
        let rendered =
            helm::render(&text, values, namespace).unwrap_or_else(|e| panic!("{template}: {e}"));
        if rendered.trim().is_empty() {
            continue;
        }
        out.push_str(&format!("---\n# Source: oxlb/templates/{template}\n"));
        out.push_str(rendered.trim_start_matches('\n'));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if *template == "namespace.yaml" {
            // CRDs right after the namespace, before anything that uses them.
            let crds = read("deploy/crds.yaml");
            let body = crds.split_once('\n').map(|(_, b)| b).unwrap_or("");
            out.push_str(body);
        }
    }
    out
}

fn deploy_text() -> String {
    format!(
        "# oxlb: kubectl apply -f deploy/oxlb.yaml\n\
         # Generated: charts/oxlb rendered with its default values; do not edit\n\
         # (OXLB_BLESS=1 cargo test -p oxlb-k8s --test manifests).\n{}",
        render_chart(&default_values())
    )
}

#[test]
fn chart_rbac_template_is_generated_from_the_code() {
    check_generated("charts/oxlb/templates/rbac.yaml", &rbac_template());
}

#[test]
fn chart_crds_are_the_generated_crds() {
    check_generated("charts/oxlb/crds/crds.yaml", &read("deploy/crds.yaml"));
}

#[test]
fn deploy_manifest_is_the_chart_rendered_with_default_values() {
    check_generated("deploy/oxlb.yaml", &deploy_text());
}

/// Parses into the typed object and back: a misspelt or misplaced field (which the
/// typed struct drops) makes the round trip differ.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) {
    let typed: T =
        serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{e}: {object:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, object,
        "round trip through k8s-openapi changed the object"
    );
}

fn objects() -> Vec<Value> {
    helm::documents(&read("deploy/oxlb.yaml"))
}

#[test]
fn every_object_is_valid_for_its_k8s_openapi_type() {
    let objects = objects();
    assert!(objects.len() > 15, "{}", objects.len());
    for object in &objects {
        match object["kind"].as_str().unwrap() {
            "Namespace" => round_trip::<Namespace>(object),
            "ServiceAccount" => round_trip::<ServiceAccount>(object),
            "ClusterRole" => round_trip::<ClusterRole>(object),
            "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object),
            "Role" => round_trip::<Role>(object),
            "RoleBinding" => round_trip::<RoleBinding>(object),
            "Deployment" => round_trip::<Deployment>(object),
            "DaemonSet" => round_trip::<DaemonSet>(object),
            "CustomResourceDefinition" => {
                let _: CustomResourceDefinition = serde_json::from_value(object.clone()).unwrap();
            }
            other => panic!("unexpected kind {other} in deploy/oxlb.yaml"),
        }
        if object["kind"] != "Namespace" && object["kind"] != "CustomResourceDefinition" {
            let namespaced = !matches!(
                object["kind"].as_str(),
                Some("ClusterRole" | "ClusterRoleBinding")
            );
            assert_eq!(
                object["metadata"]["namespace"].as_str(),
                namespaced.then_some("metallb-system"),
                "{object:#}"
            );
        }
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn rbac_in_the_manifest_is_exactly_what_the_code_uses() {
    let objects = objects();
    for (component, permissions) in [("controller", rbac::CONTROLLER), ("speaker", rbac::SPEAKER)] {
        let name = format!("oxlb-{component}");
        assert_eq!(
            find(&objects, "ClusterRole", &name)["rules"],
            Value::Array(rbac::rules(permissions, Scope::Cluster))
        );
        assert_eq!(
            find(&objects, "Role", &name)["rules"],
            Value::Array(rbac::rules(permissions, Scope::OwnNamespace))
        );
    }
    // Least privilege: nothing cluster-wide may touch Secrets, and no wildcards.
    for object in &objects {
        for rule in object["rules"].as_array().into_iter().flatten() {
            let text = rule.to_string();
            assert!(!text.contains("\"*\""), "wildcard in {rule}");
            if object["kind"] == "ClusterRole" {
                assert!(
                    !text.contains("secrets"),
                    "cluster-wide Secret access in {rule}"
                );
            }
        }
    }
}

#[test]
fn workloads_run_with_least_privilege() {
    let objects = objects();
    let controller = find(&objects, "Deployment", "oxlb-controller");
    assert_eq!(controller["spec"]["replicas"], 2);
    let pod = &controller["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    assert_eq!(
        container["ports"][0],
        json!({"name": "monitoring", "containerPort": 7472, "protocol": "TCP"})
    );
    assert_eq!(pod["serviceAccountName"], "oxlb-controller");

    let speaker = find(&objects, "DaemonSet", "oxlb-speaker");
    let pod = &speaker["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_RAW"]})
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    // PodMonitor-friendly: both components carry the same selector label and port name.
    for workload in [controller, speaker] {
        assert_eq!(
            workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
            "oxlb"
        );
        assert_eq!(
            workload["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"],
            "monitoring"
        );
    }
}

#[test]
fn chart_values_change_what_they_should() {
    let mut values = default_values();
    values["namespace"] = json!("lb");
    values["loadBalancerClass"] = json!("oxlb.io/lb");
    values["metrics"]["prometheusRule"]["enabled"] = json!(true);
    values["metrics"]["podMonitor"]["enabled"] = json!(true);
    values["controller"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
    values["speaker"]["enabled"] = json!(false);
    let docs = helm::documents(&render_chart(&values));
    let controller = find(&docs, "Deployment", "oxlb-controller");
    assert_eq!(controller["metadata"]["namespace"], "lb");
    let args = &controller["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--lb-class=oxlb.io/lb")),
        "{args}"
    );
    assert_eq!(
        controller["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "a", "operator": "Exists"}])
    );
    assert!(docs.iter().all(|d| d["kind"] != "DaemonSet"));
    let rules = find(&docs, "PrometheusRule", "oxlb");
    let alerts: Vec<&str> = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        alerts,
        [
            "MetalLBStaleConfig",
            "MetalLBConfigNotLoaded",
            "MetalLBAddressPoolExhausted",
            "MetalLBAddressPoolUsage75Percent",
            "MetalLBAddressPoolUsage85Percent",
            "MetalLBAddressPoolUsage95Percent",
            "MetalLBBGPSessionDown",
        ]
    );
    let summary = rules["spec"]["groups"][0]["rules"][2]["annotations"]["summary"]
        .as_str()
        .unwrap();
    assert_eq!(summary, "IPAddressPool {{ $labels.pool }} is exhausted.");
    let monitor = find(&docs, "PodMonitor", "oxlb");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["port"],
        "monitoring"
    );
    assert_eq!(
        find(&docs, "RoleBinding", "oxlb-controller")["subjects"][0]["namespace"],
        "lb"
    );
}

/// The speaker's membership: the key mounted where the environment says, the pod IP as
/// the bind address, the port from the values in both the environment and the ports.
#[test]
fn speaker_memberlist_is_wired() {
    let mut values = default_values();
    values["speaker"]["memberlist"]["port"] = json!(7950);
    let docs = helm::documents(&render_chart(&values));
    let speaker = &find(&docs, "DaemonSet", "oxlb-speaker")["spec"]["template"]["spec"];
    let container = &speaker["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        env("OXLB_MEMBERLIST_BIND_ADDR")["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    assert_eq!(env("OXLB_MEMBERLIST_BIND_PORT")["value"], "7950");
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"] == 7950 && p["protocol"] == "UDP"),
        "{container}"
    );
    let key_path = env("OXLB_MEMBERLIST_KEY_PATH")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| key_path.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("{key_path} is not under a mount: {container}"));
    let volume = speaker["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "memberlist");
    assert_eq!(volume["secret"]["optional"], true);
    // The file the speaker reads is the Secret's key.
    assert!(key_path.ends_with("/secretkey") || key_path == mount["mountPath"]);
}

/// The speaker learns its Pod (owner of its status objects) and the node's address
/// (where its metrics listener binds) from the downward API.
#[test]
fn speaker_gets_its_pod_and_node_address_from_the_downward_api() {
    let docs = helm::documents(&render_chart(&default_values()));
    let speaker = &find(&docs, "DaemonSet", "oxlb-speaker")["spec"]["template"]["spec"];
    let container = &speaker["containers"][0];
    let field = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(field("POD_NAME"), "metadata.name");
    assert_eq!(field("POD_UID"), "metadata.uid");
    assert_eq!(field("OXLB_HOST"), "status.hostIP");
    assert_eq!(speaker["hostNetwork"], true);
}
