//! Objects tests seed the fake with, and a wait helper.

use std::time::Duration;

use serde_json::{Value, json};

use crate::FakeApi;

/// Polls `condition` every 20 ms until it holds (generous limit, not a timed
/// assertion); panics, as a failed test should, if it never does.
#[allow(clippy::panic)]
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn service(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack"},
    })
}

/// `service` as MetalLB's controller left it: the ingress IP and the pool annotation.
pub fn with_status(mut service: Value, ip: &str, pool: &str) -> Value {
    service["metadata"]["annotations"] = json!({"metallb.io/ip-allocated-from-pool": pool});
    service["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    service
}

pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": {"addresses": addresses},
    })
}

pub fn l2(name: &str) -> Value {
    json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
           "metadata": {"name": name, "namespace": "metallb-system"}, "spec": {}})
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The ingress IPs of a stored Service.
pub fn ingress(api: &FakeApi, namespace: &str, name: &str) -> Vec<String> {
    api.get("/api/v1/services", namespace, name)
        .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect()
}
