//! The views of Kubernetes objects the decisions need, free of client types so this
//! crate stays pure and quick to test. Shells convert their objects into these.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// `namespace/name` of a Service; orders and prints as such.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// A LoadBalancer Service that holds IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub key: ServiceKey,
    /// `status.loadBalancer.ingress[].ip`, in order: the first one decides the Layer 2
    /// owner of all of them (MetalLB).
    pub ips: Vec<IpAddr>,
    /// The pool the IPs came from (`metallb.io/ip-allocated-from-pool`).
    pub pool: String,
    pub traffic_policy: TrafficPolicy,
    pub endpoints: Endpoints,
    /// The Service's labels, matched by advertisements' `serviceSelectors`.
    pub labels: BTreeMap<String, String>,
}

/// What is known about a service's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// No EndpointSlice exists for the service. Standalone `oxlb run` treats such a
    /// service as served on every node (a VIP for a process on the host).
    Unknown,
    /// The endpoints of every EndpointSlice of the service.
    Known(Vec<Endpoint>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Shared: tens of thousands of endpoints name a few nodes.
    pub node: Option<std::sync::Arc<str>>,
    /// `conditions.ready`; Kubernetes says a missing value means ready.
    pub ready: bool,
    /// `conditions.serving` (ready, or terminating but still able to serve).
    pub serving: bool,
}

impl Endpoint {
    pub fn can_serve(&self) -> bool {
        self.ready || self.serving
    }
}

/// What the decisions need of a Node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Condition NetworkUnavailable is True.
    pub network_unavailable: bool,
    /// `spec.unschedulable` (cordoned, as `kubectl drain` does first) and the speaker
    /// treats a cordon as the start of a drain (the default; `false` when the shell was
    /// told to keep MetalLB's label-only behaviour).
    pub cordoned: bool,
    /// `oxlb run`: the node's speaker is drained (`oxlb drain`, told to the others with
    /// its health news). Layer 2 only: it stands in no election while a live node that
    /// is not drained can answer (its BGP routes are withheld by the drain itself).
    pub drained: bool,
}

/// The label that takes a node out of external load balancing (Kubernetes well-known).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

impl NodeView {
    pub fn is_excluded(&self) -> bool {
        self.network_unavailable || self.labels.contains_key(EXCLUDE_LABEL)
    }
}
