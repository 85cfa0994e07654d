//! Everything read from files (or, later, the API server), with where each object came
//! from. The input of [`crate::build_config`]; also what the allocator reads Services,
//! Nodes and Namespaces from.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use oxlb_api::{BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement};

use crate::diagnostic::{Diagnostic, Origin};

/// The oxlb (MetalLB) namespace when none is given.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// An object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub object: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(object: T, origin: Origin) -> Sourced<T> {
        Sourced { object, origin }
    }
}

/// The objects oxlb decides from. metallb.io objects are only those in `namespace`
/// (others are dropped with a warning when loaded); core objects are from every namespace.
/// BGPPeers are always v1beta2 (v1beta1 objects are converted when loaded); legacy
/// ConfigMaps and Helm values appear here already converted into these kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub namespace: String,
    pub ip_address_pools: Vec<Sourced<IPAddressPool>>,
    pub l2_advertisements: Vec<Sourced<L2Advertisement>>,
    pub bgp_advertisements: Vec<Sourced<BGPAdvertisement>>,
    pub bgp_peers: Vec<Sourced<BGPPeer>>,
    pub bfd_profiles: Vec<Sourced<BFDProfile>>,
    pub communities: Vec<Sourced<Community>>,
    pub secrets: Vec<Sourced<Secret>>,
    pub services: Vec<Sourced<Service>>,
    pub nodes: Vec<Sourced<Node>>,
    pub namespaces: Vec<Sourced<Namespace>>,
    pub endpoint_slices: Vec<Sourced<EndpointSlice>>,
    pub config_maps: Vec<Sourced<ConfigMap>>,
    /// Warnings found while loading (unknown fields, objects from other namespaces...).
    pub warnings: Vec<Diagnostic>,
}

impl Snapshot {
    pub fn new(namespace: &str) -> Snapshot {
        Snapshot {
            namespace: namespace.to_string(),
            ..Snapshot::default()
        }
    }

    /// Number of objects held, of every kind.
    pub fn object_count(&self) -> usize {
        self.ip_address_pools.len()
            + self.l2_advertisements.len()
            + self.bgp_advertisements.len()
            + self.bgp_peers.len()
            + self.bfd_profiles.len()
            + self.communities.len()
            + self.secrets.len()
            + self.services.len()
            + self.nodes.len()
            + self.namespaces.len()
            + self.endpoint_slices.len()
            + self.config_maps.len()
    }
}
