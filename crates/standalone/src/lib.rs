//! `oxlb run`: the whole system for one host, from files, without Kubernetes.
//!
//! The shell reads the objects, runs the pure cores (config, allocator, announce) and
//! applies their decisions: through the node driver (`oxlb_node`, shared with
//! `oxlb speaker`) the BGP sessions, Layer 2 answers and BFD; here the service IPs on a
//! local interface, the Layer 2 membership from the files, and the persisted
//! assignments that make a restart keep every IP. The status report and `/metrics` are
//! `oxlb_node`'s too.

pub mod client;
pub mod drain;
pub mod drain_http;
pub mod engine;
pub mod health_render;
pub mod l2_glue;
/// Moved to oxlb-node (the Kubernetes controller uses it too); re-exported for `oxlb run`.
pub use oxlb_node::memory;
pub mod plan;
pub mod render;
pub mod services;
pub mod state;
pub mod trim;
pub mod vips;
pub mod watch;
