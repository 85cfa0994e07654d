//! The speaker's side of the Layer 2 host check ([`oxlb_node::host_check`]):
//! when this node's kernel would answer ARP/NDP for Layer 2 IPs it does not own
//! (typically kube-proxy in IPVS mode without `strictARP`, whose `kube-ipvs0` holds
//! every LB IP), a Warning event on the Node says so, beside the log line, the
//! `oxlb_layer2_kernel_unowned_answers` gauge and the line in `oxlb explain`.
//!
//! The speaker also sets the sysctls itself where it can (its responder does, on the
//! interfaces it serves, as under `oxlb run`): it runs in the host's network
//! namespace, and `arp_ignore=1`/`arp_announce=2` on those interfaces are exactly what
//! kube-proxy's strictARP sets host-wide, narrowed to where Layer 2 is served. Where
//! /proc/sys is read-only (an unprivileged container) it cannot, and this warning is
//! what is left.

use k8s_openapi::api::core::v1::Node;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::event_sink::EventSink;

/// The event's reason (a stable word for `kubectl get events --field-selector`).
pub const REASON: &str = "Layer2KernelAnswersUnownedIPs";

/// Records the Warning event on `node`.
pub async fn publish(recorder: &EventSink, node: &Node, note: &str) {
    let event = Event {
        type_: EventType::Warning,
        reason: REASON.to_string(),
        note: Some(note.to_string()),
        action: "CheckHost".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &node.object_ref(&())).await {
        tracing::warn!(error = %e, "recording the host warning failed");
    }
}
