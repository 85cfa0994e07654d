//! Weighted ECMP: this node's weight for a Service, the share of traffic the router
//! should send it (carried as the link bandwidth community, see `oxlb_bgp`).
//!
//! Rule: with `externalTrafficPolicy: Local` traffic stays on the node that receives it,
//! so a node's fair share is proportional to its ready local endpoints. Cluster Services
//! spread traffic over all endpoints from any node, so their paths stay equal (no
//! weight). A node whose local endpoints are all terminating but still serving keeps
//! announcing (MetalLB's eligibility) with the smallest weight, 1, so it attracts as
//! little new traffic as the router allows while existing connections finish.

use crate::snapshot::{Endpoints, NodeView, ServiceView, TrafficPolicy};

/// The largest weight sent; above it the link bandwidth value (weight × 125 000 bytes/s
/// as an f32) would no longer be exact. Equal to `oxlb_bgp`'s `MAX_EXACT_WEIGHT`.
pub const MAX_WEIGHT: u32 = 1024;

/// This node's weight for one Service, and how it was found (status, explain, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight {
    /// What is sent, 1..=[`MAX_WEIGHT`].
    pub value: u32,
    /// Ready endpoints of the Service on this node.
    pub ready_local: usize,
    /// Terminating but serving endpoints on this node.
    pub serving_local: usize,
    /// `ready_local` exceeded [`MAX_WEIGHT`] (the shell logs it).
    pub clamped: bool,
}

/// `None`: no weight (Cluster policy, endpoints unknown, or no local endpoint, in which
/// case the node does not announce at all).
pub fn local_weight(service: &ServiceView, node: &NodeView) -> Option<Weight> {
    if service.traffic_policy != TrafficPolicy::Local {
        return None;
    }
    let Endpoints::Known(endpoints) = &service.endpoints else {
        return None;
    };
    let local = endpoints
        .iter()
        .filter(|e| e.node.as_deref() == Some(node.name.as_str()));
    let (mut ready_local, mut serving_local) = (0usize, 0usize);
    for e in local {
        if e.ready {
            ready_local += 1;
        } else if e.serving {
            serving_local += 1;
        }
    }
    if ready_local == 0 && serving_local == 0 {
        return None;
    }
    let max = MAX_WEIGHT as usize;
    let value = ready_local.clamp(1, max) as u32;
    Some(Weight {
        value,
        ready_local,
        serving_local,
        clamped: ready_local > max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Endpoint, ServiceKey};

    fn service(policy: TrafficPolicy, endpoints: &[(&str, bool, bool)]) -> ServiceView {
        ServiceView {
            key: ServiceKey {
                namespace: "default".into(),
                name: "web".into(),
            },
            ips: vec![],
            pool: "p".into(),
            traffic_policy: policy,
            endpoints: Endpoints::Known(
                endpoints
                    .iter()
                    .map(|(node, ready, serving)| Endpoint {
                        node: Some((*node).into()),
                        ready: *ready,
                        serving: *serving,
                    })
                    .collect(),
            ),
            labels: Default::default(),
        }
    }

    fn node(name: &str) -> NodeView {
        NodeView {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn local_weight_counts_ready_endpoints_on_this_node_only() {
        let s = service(
            TrafficPolicy::Local,
            &[("a", true, true), ("a", true, true), ("b", true, true)],
        );
        assert_eq!(local_weight(&s, &node("a")).map(|w| w.value), Some(2));
        assert_eq!(local_weight(&s, &node("b")).map(|w| w.value), Some(1));
        assert_eq!(local_weight(&s, &node("c")), None);
    }

    #[test]
    fn cluster_policy_keeps_equal_paths() {
        let s = service(TrafficPolicy::Cluster, &[("a", true, true)]);
        assert_eq!(local_weight(&s, &node("a")), None);
    }

    #[test]
    fn terminating_but_serving_endpoints_keep_the_smallest_weight() {
        let s = service(
            TrafficPolicy::Local,
            &[("a", false, true), ("a", false, true), ("a", false, false)],
        );
        let w = local_weight(&s, &node("a")).unwrap();
        assert_eq!((w.value, w.ready_local, w.serving_local), (1, 0, 2));
        // A terminating endpoint no longer adds weight next to ready ones.
        let s = service(
            TrafficPolicy::Local,
            &[("a", true, true), ("a", false, true)],
        );
        assert_eq!(local_weight(&s, &node("a")).unwrap().value, 1);
    }

    #[test]
    fn a_count_beyond_the_exact_float_range_is_clamped_and_flagged() {
        let many: Vec<(&str, bool, bool)> = (0..MAX_WEIGHT as usize + 5)
            .map(|_| ("a", true, true))
            .collect();
        let w = local_weight(&service(TrafficPolicy::Local, &many), &node("a")).unwrap();
        assert_eq!((w.value, w.clamped), (MAX_WEIGHT, true));
        assert_eq!(w.ready_local, MAX_WEIGHT as usize + 5);
    }
}
