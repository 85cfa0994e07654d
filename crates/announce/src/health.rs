//! Health-checked announcements (`oxlb.io/health-check`): which nodes' checks do not
//! pass, per Service. A node announces a checked Service (BGP path, Layer 2 ownership)
//! only while its own check passes, and a node whose check does not pass is no
//! candidate in the Layer 2 election, so ownership moves to a healthy node.
//!
//! Rule when every node fails: withdraw everywhere. Why: by the operator's own
//! definition no node can serve, so announcing would only attract traffic to a dead
//! backend (a router keeps no other path; a client sees a timeout instead of "no route",
//! and a backup route, e.g. a static one with a worse preference, cannot take over). It
//! is also the only rule BGP nodes can follow without talking to each other: each node
//! knows only its own check, so "keep the last one" would need an agreement that could
//! split under a partition. The typo case a fail-open rule would protect against is
//! handled before: an invalid check annotation is ignored (the Service is announced as
//! if unchecked) and reported. Visibility: the reason [`crate::Skip::HealthCheckFailing`]
//! in `oxlb status`/`explain`, the check state metric, and a warning event.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::ServiceKey;

/// Per checked Service, the nodes whose check does not pass now (failing, or not yet
/// passed since start). A Service absent from the map is unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub not_passing: BTreeMap<ServiceKey, BTreeSet<String>>,
}

impl Health {
    /// Whether `node` may announce `service` as far as health checks go.
    pub fn passes(&self, service: &ServiceKey, node: &str) -> bool {
        self.not_passing
            .get(service)
            .is_none_or(|nodes| !nodes.contains(node))
    }

    pub fn is_empty(&self) -> bool {
        self.not_passing.values().all(BTreeSet::is_empty)
    }
}
