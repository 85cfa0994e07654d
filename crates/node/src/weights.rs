//! Weighted ECMP on a node (both shells, through the driver): applies the damping rule of
//! `oxlb_announce::weight_damping` to the desired routes and logs clamped weights.

use oxlb_announce::{Announcements, WeightDamper};
use tracing::warn;

/// Damps weight changes in `announcements.bgp` (in place) and returns when a held
/// change is due.
pub fn damp(
    damper: &mut WeightDamper,
    announcements: &mut Announcements,
) -> Option<tokio::time::Instant> {
    for (service, w) in &announcements.weights {
        if w.clamped {
            warn!(
                service = %service,
                ready_local_endpoints = w.ready_local,
                weight = w.value,
                "weighted ECMP: more ready endpoints than the largest exact weight; clamped"
            );
        }
    }
    damper
        .apply(std::time::Instant::now(), &mut announcements.bgp)
        .map(tokio::time::Instant::from_std)
}

/// The status form of this node's weight for one service (`oxlb status`, `explain`).
pub fn status(w: &oxlb_announce::Weight) -> crate::status::WeightStatus {
    crate::status::WeightStatus {
        weight: w.value,
        ready_local_endpoints: w.ready_local,
        terminating_local_endpoints: w.serving_local,
        clamped: w.clamped,
    }
}

/// Resolves when a held weight change is due; never without one.
pub async fn due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
