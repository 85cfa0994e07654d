//! Whether a node may announce a service at all, whatever the protocol.

use crate::Skip;
use crate::snapshot::{Endpoint, Endpoints, NodeView, ServiceView, TrafficPolicy};

/// MetalLB's rule: some endpoint must be able to serve, and with
/// `externalTrafficPolicy: Local` one on this very node (traffic is not forwarded to
/// other nodes, so announcing from a node without one would black-hole it).
pub fn serves_from(service: &ServiceView, node: &NodeView) -> Result<(), Skip> {
    if node.is_excluded() {
        return Err(Skip::NodeExcluded);
    }
    // Graceful drain: a cordoned node withdraws (BGP) and hands its Layer 2 IPs over
    // before `kubectl drain` evicts its pods, so no new connection reaches a node whose
    // endpoints are about to go.
    if node.cordoned {
        return Err(Skip::NodeCordoned);
    }
    match &service.endpoints {
        Endpoints::Unknown => Ok(()),
        Endpoints::Known(endpoints) => match service.traffic_policy {
            TrafficPolicy::Cluster => {
                if endpoints.iter().any(|e| e.can_serve()) {
                    Ok(())
                } else {
                    Err(Skip::NoServingEndpoint)
                }
            }
            TrafficPolicy::Local => {
                let local = |e: &&Endpoint| e.node.as_deref() == Some(node.name.as_str());
                if endpoints.iter().filter(local).any(|e| e.ready) {
                    Ok(())
                } else if endpoints.iter().filter(local).any(|e| e.can_serve()) {
                    // Only terminating endpoints here: stop attracting new connections
                    // at once when a ready endpoint exists elsewhere (its node
                    // announces); if every endpoint is terminating, keep announcing
                    // (MetalLB's rule) rather than black-hole the service.
                    if endpoints.iter().any(|e| e.ready) {
                        Err(Skip::LocalEndpointsTerminating)
                    } else {
                        Ok(())
                    }
                } else if endpoints.iter().any(|e| e.can_serve()) {
                    Err(Skip::NoLocalEndpoint)
                } else {
                    Err(Skip::NoServingEndpoint)
                }
            }
        },
    }
}
