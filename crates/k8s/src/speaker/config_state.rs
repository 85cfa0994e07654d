//! This speaker's own ConfigurationState (`speaker-<node>`), as MetalLB's speakers
//! write theirs: an invalid config is visible per node, not only as a metric.

use kube::Client;
use oxlb_node::status::ConfigStatus;

/// Writes `speaker-<node>` when its result or errors changed (and only once there is
/// something to say); a failed write is retried on the next pass.
pub(super) async fn write_own_state(
    client: &Client,
    namespace: &str,
    target: &crate::writer::StateObject,
    status: &ConfigStatus,
    written: &mut Option<crate::writer::ConfigState>,
) {
    if !status.loaded && status.errors.is_empty() {
        return;
    }
    let state = crate::writer::ConfigState {
        valid: status.errors.is_empty(),
        errors: status.errors.clone(),
    };
    if written.as_ref() == Some(&state) {
        return;
    }
    match crate::writer::write_configuration_state(client, namespace, target, &state, true).await {
        Ok(()) => *written = Some(state),
        Err(e) => tracing::warn!(error = %e, "writing this speaker's ConfigurationState failed"),
    }
}
