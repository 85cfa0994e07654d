//! oxlb in a Kubernetes cluster: the thin shells of `oxlb controller` (and later
//! `oxlb speaker`) around the pure cores. Reflectors feed caches; one reconcile loop
//! builds the config, runs the controller core and writes what it decided; a Lease
//! makes exactly one replica the writer.
//!
//! Entry point: [`run_controller`] with [`ControllerOptions`].

pub mod allocation_log;
pub mod cached_service;
pub mod controller;
pub mod endpoints;
pub mod event_sink;
pub mod health_events;
pub mod host_warning;
pub mod last_valid;
pub mod lease;
pub mod lenient;
pub mod liveness;
pub mod memberlist;
pub mod own_state;
pub mod projected;
pub mod protocols;
pub mod rbac;
pub mod reconciler;
pub mod speaker;
pub mod stable_name;
pub mod stores;
pub mod writer;

pub use controller::{
    ControllerError, ControllerOptions, run_controller, run_controller_with_client,
};
pub use liveness::MembershipOptions;
pub use protocols::{NodeInfo, ProtocolOptions, ProtocolStatus, Protocols};
pub use speaker::write_budget::DEFAULT_CLUSTER_WRITES_PER_SECOND;
pub use speaker::{
    PodIdentity, SpeakerOptions, run_speaker, run_speaker_in_cluster, run_speaker_with_protocols,
};
