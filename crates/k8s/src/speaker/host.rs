//! The speaker's Layer 2 host check: whether this node's kernel would answer ARP/NDP
//! for Layer 2 IPs it does not own (`oxlb_node::host_check`), told as a log line, a
//! Warning event on the Node and the report.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use oxlb_node::driver::ProtocolStatus;
use oxlb_node::status::StatusReport;

/// The Layer 2 host check, when due: would this node's kernel answer ARP/NDP for
/// Layer 2 IPs it does not own? A log line on every change, a Warning event on the
/// Node when it starts to, the gauge and `oxlb explain` from the report.
pub(super) async fn check_host(
    check: &mut oxlb_node::host_check::HostCheck,
    protocols: Option<&tokio::sync::watch::Receiver<ProtocolStatus>>,
    inputs: Option<&(BTreeSet<std::net::IpAddr>, BTreeSet<std::net::IpAddr>)>,
    recorder: &crate::event_sink::EventSink,
    node: Option<Arc<Node>>,
    report: &tokio::sync::watch::Sender<StatusReport>,
) {
    let (Some(protocols), Some((layer2, owned))) = (protocols, inputs) else {
        return;
    };
    let Some(kernel_arp) = protocols.borrow().kernel_arp.clone() else {
        return;
    };
    let now = std::time::Instant::now();
    if !check.due(now) {
        return;
    }
    let (arp, layer2, owned) = (kernel_arp.clone(), layer2.clone(), owned.clone());
    let checked = tokio::task::spawn_blocking(move || {
        oxlb_node::host_check::check_now(&arp, &layer2, &owned)
    })
    .await;
    let (ghosts, host) = match checked {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "layer2: cannot read this host's addresses");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "layer2: host check failed");
            return;
        }
    };
    if let oxlb_node::host_check::Verdict::Ghosts(note) = check.record(ghosts, &host, now)
        && let Some(node) = node
    {
        crate::host_warning::publish(recorder, &node, &note).await;
    }
    let status = check.status(&kernel_arp);
    report.send_if_modified(|r| {
        let changed = r.host != status;
        r.host = status;
        changed
    });
}
