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
    "servicemonitor.yaml",
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

/// The chart rendered by Helm with `values` over values.yaml, as one stream in
/// `kubectl apply` order; lint must find no error.
fn render_chart(values: &Value) -> String {
    let namespace = values["namespace"].as_str().unwrap_or("metallb-system");
    let rendered = helm::render(values, namespace).unwrap_or_else(|e| panic!("helm: {e}"));
    assert!(
        rendered.lint_errors.is_empty(),
        "helm lint: {:?}",
        rendered.lint_errors
    );
    let names: Vec<String> = rendered
        .templates
        .keys()
        .filter(|k| !k.ends_with(".tpl") && !k.ends_with("NOTES.txt"))
        .cloned()
        .collect();
    for name in &names {
        assert!(
            TEMPLATES
                .iter()
                .any(|t| name == &format!("oxlb/templates/{t}")),
            "{name} is not in TEMPLATES"
        );
    }
    let mut out = String::new();
    for template in TEMPLATES {
        let rendered = rendered
            .templates
            .get(&format!("oxlb/templates/{template}"))
            .cloned()
            .unwrap_or_default();
        if rendered.trim().is_empty() {
            continue;
        }
        out.push_str(&format!("---\n# Source: oxlb/templates/{template}\n"));
        out.push_str(
            rendered
                .trim_start_matches(['\n', '-'])
                .trim_start_matches('\n'),
        );
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
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
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
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]})
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
    values["prometheus"]["prometheusRule"]["enabled"] = json!(true);
    values["prometheus"]["podMonitor"]["enabled"] = json!(true);
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
    let rules = rules["spec"]["groups"][0]["rules"].as_array().unwrap();
    let alerts: Vec<(&str, Option<&str>, &str)> = rules
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap(),
                r["for"].as_str(),
                r["expr"].as_str().unwrap(),
            )
        })
        .collect();
    // MetalLB's chart: the same names, expressions and `for:` (none on the usage ones).
    assert_eq!(
        alerts,
        [
            (
                "MetalLBStaleConfig",
                Some("1m"),
                "metallb_k8s_client_config_stale_bool{job=\"metallb\"} == 1"
            ),
            (
                "MetalLBConfigNotLoaded",
                Some("1m"),
                "metallb_k8s_client_config_loaded_bool{job=\"metallb\"} == 0"
            ),
            (
                "MetalLBAddressPoolExhausted",
                Some("1m"),
                "metallb_allocator_addresses_in_use_total >= on(pool) metallb_allocator_addresses_total"
            ),
            (
                "MetalLBAddressPoolUsage75Percent",
                None,
                "( metallb_allocator_addresses_in_use_total / on(pool) metallb_allocator_addresses_total ) * 100 > 75"
            ),
            (
                "MetalLBAddressPoolUsage85Percent",
                None,
                "( metallb_allocator_addresses_in_use_total / on(pool) metallb_allocator_addresses_total ) * 100 > 85"
            ),
            (
                "MetalLBAddressPoolUsage95Percent",
                None,
                "( metallb_allocator_addresses_in_use_total / on(pool) metallb_allocator_addresses_total ) * 100 > 95"
            ),
            (
                "MetalLBBGPSessionDown",
                Some("1m"),
                "metallb_bgp_session_up{job=\"metallb\"} == 0"
            ),
        ]
    );
    assert_eq!(
        rules[2]["annotations"]["message"],
        "{{ $labels.job }} - MetalLB {{ $labels.container }} on {{ $labels.pod }} has exhausted address pool {{ $labels.pool }} for > 1 minute"
    );
    // The job the alerts select is the pods' `app` label, taken by the monitor.
    let monitor = find(&docs, "PodMonitor", "oxlb-controller");
    assert_eq!(monitor["spec"]["jobLabel"], "app");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["port"],
        "monitoring"
    );
    let pod_labels = &controller["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels["app"], "metallb");
    assert_eq!(pod_labels["component"], "controller");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&pod_labels[key], value, "the monitor selects the pods");
    }
    assert_eq!(
        find(&docs, "RoleBinding", "oxlb-controller")["subjects"][0]["namespace"],
        "lb"
    );
    assert_eq!(find(&docs, "Namespace", "lb")["metadata"]["name"], "lb");
    // Into MetalLB's existing namespace: no Namespace object for Helm to adopt.
    values["createNamespace"] = json!(false);
    let docs = helm::documents(&render_chart(&values));
    assert!(docs.iter().all(|d| d["kind"] != "Namespace"));
}

/// A migrating user's MetalLB values file (the keys of MetalLB's charts/metallb
/// values.yaml that users set), passed unchanged: each takes effect.
#[test]
fn metallb_values_layout_is_honoured() {
    let metallb: Value = json!({
        "imagePullSecrets": [{"name": "regcred"}],
        "loadBalancerClass": "lb.example/x",
        "prometheus": {
            "scrapeAnnotations": true,
            "metricsPort": 7473,
            "podMonitor": {"enabled": true, "additionalLabels": {"release": "kps"},
                           "annotations": {"a": "b"}, "interval": "15s",
                           "metricRelabelings": [{"action": "keep", "sourceLabels": ["__name__"], "regex": "metallb_.*"}],
                           "relabelings": [{"targetLabel": "x", "replacement": "y"}]},
            "serviceMonitor": {"enabled": true, "interval": "20s",
                               "speaker": {"additionalLabels": {"release": "kps"}},
                               "controller": {"annotations": {"c": "d"}}},
            "prometheusRule": {"enabled": true, "additionalLabels": {"release": "kps"},
                               "staleConfig": {"enabled": false},
                               "addressPoolExhausted": {"excludePools": "test-.*", "labels": {"severity": "page"}},
                               "addressPoolUsage": {"thresholds": [{"percent": 90, "labels": {"severity": "warning"}}]},
                               "extraAlerts": [{"alert": "Mine", "expr": "vector(1)"}]}
        },
        "controller": {
            "logLevel": "all",
            "image": {"repository": "registry.local/oxlb", "tag": "9.9", "pullPolicy": "Always"},
            "strategy": {"type": "Recreate"},
            "resources": {"limits": {"cpu": "100m"}},
            "nodeSelector": {"role": "lb"},
            "tolerations": [{"key": "t", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}},
            "priorityClassName": "system-cluster-critical",
            "runtimeClassName": "rc",
            "podAnnotations": {"p": "q"},
            "labels": {"team": "net"},
            "livenessProbe": {"enabled": false},
            "readinessProbe": {"periodSeconds": 3, "failureThreshold": 7},
            // Keys with no meaning for oxlb: accepted, ignored.
            "webhookMode": "disabled",
            "serviceAccount": {"create": true}
        },
        "speaker": {
            "logLevel": "none",
            "tolerateMaster": false,
            "memberlist": {"enabled": true, "mlBindPort": 7950, "mlBindAddrOverride": "10.9.9.9"},
            "image": {"repository": "registry.local/oxlb", "tag": "9.9"},
            "updateStrategy": {"type": "OnDelete"},
            "tolerations": [{"key": "s", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {}},
            "priorityClassName": "system-node-critical",
            "podAnnotations": {"s": "t"},
            "labels": {"team": "net"},
            "frr": {"enabled": true}
        },
        "crds": {"enabled": true},
        "frrk8s": {"enabled": false},
        "rbac": {"create": true}
    });
    let docs = helm::documents(&render_chart(&metallb));
    let controller = find(&docs, "Deployment", "oxlb-controller");
    let pod = &controller["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.local/oxlb:9.9");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--log-level=trace"))
    );
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--lb-class=lb.example/x"))
    );
    assert_eq!(c["ports"][0]["containerPort"], 7473);
    // Helm merges maps with values.yaml's: the user's limit beside oxlb's defaults.
    assert_eq!(c["resources"]["limits"]["cpu"], "100m");
    assert!(c.get("livenessProbe").is_none());
    assert_eq!(c["readinessProbe"]["periodSeconds"], 3);
    assert_eq!(c["readinessProbe"]["failureThreshold"], 7);
    assert_eq!(controller["spec"]["strategy"], json!({"type": "Recreate"}));
    let spec = &pod["spec"];
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(spec["nodeSelector"]["role"], "lb");
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "t", "operator": "Exists"}])
    );
    assert_eq!(spec["affinity"], metallb["controller"]["affinity"]);
    assert_eq!(spec["priorityClassName"], "system-cluster-critical");
    assert_eq!(spec["runtimeClassName"], "rc");
    assert_eq!(pod["metadata"]["labels"]["team"], "net");
    assert_eq!(pod["metadata"]["annotations"]["p"], "q");
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "7473");

    let speaker = find(&docs, "DaemonSet", "oxlb-speaker");
    let pod = &speaker["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.local/oxlb:9.9");
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--log-level=error"))
    );
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(env("OXLB_MEMBERLIST_BIND_PORT")["value"], "7950");
    assert_eq!(env("OXLB_MEMBERLIST_BIND_ADDR")["value"], "10.9.9.9");
    assert!(
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"] == 7950)
    );
    // tolerateMaster: false leaves only the user's tolerations.
    assert_eq!(
        pod["spec"]["tolerations"],
        json!([{"key": "s", "operator": "Exists"}])
    );
    assert_eq!(
        speaker["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    assert_eq!(pod["spec"]["priorityClassName"], "system-node-critical");
    assert_eq!(pod["spec"]["affinity"], json!({"podAntiAffinity": {}}));

    let monitor = find(&docs, "PodMonitor", "oxlb-speaker");
    assert_eq!(monitor["metadata"]["labels"]["release"], "kps");
    assert_eq!(monitor["metadata"]["annotations"]["a"], "b");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["interval"], "15s");
    assert_eq!(endpoint["metricRelabelings"][0]["regex"], "metallb_.*");
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "x");
    let service_monitor = find(&docs, "ServiceMonitor", "oxlb-speaker");
    assert_eq!(service_monitor["metadata"]["labels"]["release"], "kps");
    assert_eq!(service_monitor["spec"]["endpoints"][0]["interval"], "20s");
    assert_eq!(
        find(&docs, "ServiceMonitor", "oxlb-controller")["metadata"]["annotations"]["c"],
        "d"
    );
    let service = find(&docs, "Service", "oxlb-speaker-monitor-service");
    assert_eq!(service["spec"]["ports"][0]["port"], 7473);
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][key], value);
    }

    let rules = find(&docs, "PrometheusRule", "oxlb");
    assert_eq!(rules["metadata"]["labels"]["release"], "kps");
    let rules = rules["spec"]["groups"][0]["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "MetalLBConfigNotLoaded",
            "MetalLBAddressPoolExhausted",
            "MetalLBAddressPoolUsage90Percent",
            "MetalLBBGPSessionDown",
            "Mine"
        ]
    );
    assert_eq!(
        rules[1]["expr"],
        "metallb_allocator_addresses_in_use_total{pool!~\"test-.*\"} >= on(pool) metallb_allocator_addresses_total"
    );
    assert_eq!(rules[1]["labels"]["severity"], "page");
}

/// MetalLB's own images under MetalLB's keys would run MetalLB's binaries with oxlb's
/// arguments: refused with a message saying what to do.
#[test]
fn metallb_images_are_refused_with_a_reason() {
    for component in ["controller", "speaker"] {
        let values = json!({component: {"image": {"repository": format!("quay.io/metallb/{component}"), "tag": "v0.15.3"}}});
        let error = helm::render(&values, "metallb-system")
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("is MetalLB's") && error.contains("oxlb's image"),
            "{component}: {error}"
        );
    }
}

/// The speaker's membership: the key mounted where the environment says, the pod IP as
/// the bind address, the port from the values in both the environment and the ports.
#[test]
fn speaker_memberlist_is_wired() {
    let mut values = default_values();
    values["speaker"]["memberlist"]["mlBindPort"] = json!(7950);
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

/// `speaker.drainDelaySeconds` (issue 19): passed to `oxlb speaker`, and the Pod's
/// grace period stays longer than it, so the kubelet does not kill the speaker in the
/// middle of its drain delay. The default (0) passes nothing (MetalLB's immediate
/// Cease) and keeps 5 s.
#[test]
fn speaker_drain_delay_is_passed_and_the_grace_period_exceeds_it() {
    let speaker = |delay: Option<u64>| {
        let mut values = default_values();
        if let Some(delay) = delay {
            values["speaker"]["drainDelaySeconds"] = json!(delay);
        }
        let docs = helm::documents(&render_chart(&values));
        find(&docs, "DaemonSet", "oxlb-speaker")["spec"]["template"]["spec"].clone()
    };
    let default = speaker(None);
    assert_eq!(default["terminationGracePeriodSeconds"], 5);
    let args = default["containers"][0]["args"].to_string();
    assert!(!args.contains("drain-delay"), "{args}");
    let set = speaker(Some(20));
    assert_eq!(set["terminationGracePeriodSeconds"], 25);
    assert!(
        set["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--drain-delay-seconds=20")),
        "{}",
        set["containers"][0]["args"]
    );
}

/// `speaker.statusWritesPerSecond` and `speaker.bgpNodeStatus` (issue 22): passed to
/// `oxlb speaker` when they differ from its defaults (100, true), so the default render
/// passes neither; a rate that is not above zero is refused at render time.
#[test]
fn speaker_status_write_values_are_passed() {
    let speaker_args = |speaker: Value| {
        let mut values = default_values();
        for (key, value) in speaker.as_object().unwrap() {
            values["speaker"][key] = value.clone();
        }
        let docs = helm::documents(&render_chart(&values));
        let args = &find(&docs, "DaemonSet", "oxlb-speaker")["spec"]["template"]["spec"]["containers"]
            [0]["args"];
        args.as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let ours = |args: &[String]| {
        args.iter()
            .filter(|a| {
                a.starts_with("--status-writes-per-second") || a.starts_with("--bgp-node-status")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ours(&speaker_args(json!({}))), Vec::<String>::new());
    // values.yaml shows the speaker's defaults, and the template leaves out exactly those
    // (it compares with 100: this fails when the speaker's default changes alone).
    let default = oxlb_k8s::DEFAULT_CLUSTER_WRITES_PER_SECOND;
    assert_eq!(
        default_values()["speaker"]["statusWritesPerSecond"].as_f64(),
        Some(default)
    );
    assert_eq!(default_values()["speaker"]["bgpNodeStatus"], true);
    assert_eq!(
        ours(&speaker_args(
            json!({"statusWritesPerSecond": default, "bgpNodeStatus": true})
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        ours(&speaker_args(
            json!({"statusWritesPerSecond": 0.5, "bgpNodeStatus": false})
        )),
        ["--status-writes-per-second=0.5", "--bgp-node-status=false"]
    );
    // `--set speaker.statusWritesPerSecond=2.5` arrives as a string.
    assert_eq!(
        ours(&speaker_args(json!({"statusWritesPerSecond": "2.5"}))),
        ["--status-writes-per-second=2.5"]
    );
    assert_eq!(
        ours(&speaker_args(json!({"statusWritesPerSecond": 1000}))),
        ["--status-writes-per-second=1000"]
    );
    for rate in [json!(0), json!(-1), json!("many")] {
        let values = json!({"speaker": {"statusWritesPerSecond": rate}});
        let error = helm::render(&values, "metallb-system")
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("speaker.statusWritesPerSecond") && error.contains("above zero"),
            "{rate}: {error}"
        );
    }
}
