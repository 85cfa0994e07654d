//! Whether a node may announce a service at all, whatever the protocol.

use crate::Skip;
use crate::snapshot::{Endpoints, NodeView, ServiceView, TrafficPolicy};

/// MetalLB's rule: some endpoint must be able to serve, and with
/// `externalTrafficPolicy: Local` one on this very node (traffic is not forwarded to
/// other nodes, so announcing from a node without one would black-hole it).
pub fn serves_from(service: &ServiceView, node: &NodeView) -> Result<(), Skip> {
    if node.is_excluded() {
        return Err(Skip::NodeExcluded);
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
                if endpoints
                    .iter()
                    .any(|e| e.can_serve() && e.node.as_deref() == Some(node.name.as_str()))
                {
                    Ok(())
                } else if endpoints.iter().any(|e| e.can_serve()) {
                    Err(Skip::NoLocalEndpoint)
                } else {
                    Err(Skip::NoServingEndpoint)
                }
            }
        },
    }
}
