//! What the speaker reads from the API before the pure step: which speakers are alive
//! by Pod readiness, and this node's announce input
//! ([`oxlb_node::inputs::announce_input`] with the cluster's policy).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use oxlb_node::inputs::{AnnounceInput, Source, announce_input};
use oxlb_node::views::SliceView;

use super::SpeakerService;

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

/// This node's announce input from the API's objects
/// ([`oxlb_node::inputs::announce_input`] with the cluster's policy).
pub fn cluster_input(
    me: &str,
    services: &[Arc<SpeakerService>],
    slices: &[Arc<SliceView>],
    nodes: &[Arc<Node>],
    live: &BTreeSet<String>,
    lb_class: Option<&str>,
) -> AnnounceInput {
    announce_input(
        Source::Cluster,
        me,
        services.iter().filter_map(|s| s.assigned(lb_class)),
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
