//! What the speaker reads from the API before the pure step: which speakers are alive
//! by Pod readiness, which addresses a Service holds, and this node's announce input
//! ([`oxlb_node::inputs::announce_input`] with the cluster's policy).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use oxlb_node::inputs::{AnnounceInput, Assigned, Source, announce_input};
use oxlb_node::views::SliceView;

/// The nodes whose speaker is alive by pod readiness, as every speaker sees them from
/// the API (so they all agree on the Layer 2 owners): nodes with a Ready, not
/// terminating speaker pod, and always this node. With no speaker pods visible at all
/// (not run as the DaemonSet), every Ready node counts. Only the fallback: the
/// membership decides when it runs ([`crate::liveness`]).
pub fn live_speakers(pods: &[Arc<Pod>], nodes: &[Arc<Node>], me: &str) -> BTreeSet<String> {
    let mut live: BTreeSet<String> = if pods.is_empty() {
        nodes
            .iter()
            .filter(|n| is_ready(n))
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    } else {
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect()
    };
    live.insert(me.to_string());
    live
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The addresses a Service holds by its status, for this speaker's class: a
/// `LoadBalancer` Service of `lb_class` with at least one ingress IP; its pool from the
/// controller's annotation.
pub fn assigned_in_status(
    service: &Service,
    lb_class: Option<&str>,
) -> Option<(Vec<std::net::IpAddr>, String)> {
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer")
        || spec.and_then(|s| s.load_balancer_class.as_deref()) != lb_class
    {
        return None;
    }
    let ips: Vec<std::net::IpAddr> = service
        .status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    if ips.is_empty() {
        return None;
    }
    let pool = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(oxlb_controller::POOL_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    Some((ips, pool))
}

/// This node's announce input from the API's objects
/// ([`oxlb_node::inputs::announce_input`] with the cluster's policy).
pub fn cluster_input(
    me: &str,
    services: &[Arc<Service>],
    slices: &[Arc<SliceView>],
    nodes: &[Arc<Node>],
    live: &BTreeSet<String>,
    lb_class: Option<&str>,
) -> AnnounceInput {
    let held: Vec<(&Service, (Vec<std::net::IpAddr>, String))> = services
        .iter()
        .filter_map(|s| Some((&**s, assigned_in_status(s, lb_class)?)))
        .collect();
    announce_input(
        Source::Cluster,
        me,
        held.iter()
            .map(|(service, (ips, pool))| Assigned { service, ips, pool }),
        slices.iter().map(|s| &**s),
        nodes.iter().map(|n| &**n),
        Some(live),
    )
}

/// `--keep-routes-when-cordoned`: MetalLB's behaviour, where a cordoned node announces
/// as before (only the exclude-from-external-load-balancers label withdraws).
pub fn ignore_cordon(input: &mut AnnounceInput) {
    input.node.cordoned = false;
    for view in input.nodes.values_mut() {
        view.cordoned = false;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(node: &str, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("speaker-{node}")},
            "spec": {"nodeName": node, "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap_or_default();
        if terminating {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
        }
        Arc::new(p)
    }

    fn node(name: &str, ready: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
            .unwrap_or_default(),
        )
    }

    #[test]
    fn live_speakers_are_ready_speaker_pods_and_me() {
        let nodes = [node("a", true), node("b", true), node("c", false)];
        let pods = [
            pod("a", true, false),
            pod("b", false, false),
            pod("d", true, true),
        ];
        let live = live_speakers(&pods, &nodes, "me");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a", "me"]);
        let live = live_speakers(&[], &nodes, "a");
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
