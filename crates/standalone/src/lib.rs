//! `oxlb run`: the whole system for one host, from files, without Kubernetes.
//!
//! The shell reads the objects, runs the pure cores (config, allocator, announce) and
//! applies their decisions: BGP sessions, Layer 2 answers, the service IPs on a local
//! interface, and the persisted assignments that make a restart keep every IP.

pub mod bfd_glue;
pub mod bgp_glue;
pub mod client;
pub mod engine;
pub mod health_glue;
pub mod host_check;
pub mod http;
pub mod l2_glue;
pub mod metrics;
pub mod plan;
pub mod render;
pub mod state;
pub mod status;
pub mod views;
pub mod vips;
pub mod watch;
