//! The speaker's Warning event for a host whose kernel would answer ARP/NDP for Layer 2
//! IPs this node does not own (kube-proxy IPVS without strictARP), against the fake API
//! server: the host as read goes through the pure check, and its words become the
//! event on the Node.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use oxlb_l2::kernel_arp::{HostView, assess, describe};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn an_ipvs_host_without_strict_arp_gets_a_warning_event_on_its_node() {
    let api = FakeApi::new();
    let node_json =
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n1"}});
    api.put(node_json.clone());
    let node: Node = serde_json::from_value(node_json).unwrap();
    let ip = |t: &str| -> IpAddr { t.parse().unwrap() };
    // kube-ipvs0 holds every LB IP; eth0 (served) at the kernel default arp_ignore=0.
    let host = HostView {
        served: BTreeMap::from([("eth0".to_string(), 0)]),
        local: BTreeMap::from([
            (ip("192.168.1.10"), "eth0".to_string()),
            (ip("192.168.1.240"), "kube-ipvs0".to_string()),
            (ip("192.168.1.241"), "kube-ipvs0".to_string()),
        ]),
        local_routes: vec![],
    };
    let layer2: BTreeSet<IpAddr> = [ip("192.168.1.240"), ip("192.168.1.241")].into();
    let owned: BTreeSet<IpAddr> = [ip("192.168.1.241")].into();
    let ghosts = assess(&host, &layer2, &owned);
    let note = describe(&ghosts).expect("a ghost");

    let client = api.client();
    let recorder = oxlb_k8s::writer::recorder(&client, "n1");
    oxlb_k8s::host_warning::publish(&recorder, &node, &note).await;

    let events: Vec<Value> = api
        .writes()
        .into_iter()
        .filter(|r| r.path.contains("/events"))
        .map(|r| r.body)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], oxlb_k8s::host_warning::REASON);
    assert_eq!(event["regarding"]["kind"], "Node");
    assert_eq!(event["regarding"]["name"], "n1");
    let text = event["note"].as_str().unwrap();
    assert!(text.contains("192.168.1.240"), "{text}");
    assert!(!text.contains("192.168.1.241"), "owned here: {text}");
    assert!(text.contains("strictARP"), "{text}");
}
