//! What runs on one node, the same under `oxlb run` (files) and `oxlb speaker`
//! (Kubernetes): the shells gather the inputs and write the outputs, this crate does the
//! rest.
//!
//! - [`driver::Driver`]: the one protocol driver. Desired state in (config in force,
//!   this node's announcements, this node's identity); BGP sessions, the Layer 2
//!   responder and BFD out; session status for reports and `/metrics`; a clean stop that
//!   chooses graceful restart or withdrawal ([`driver::StopMode`]).
//! - [`bgp`] and [`bfd`]: the pure mapping from the config to the sessions wanted.
//! - [`inputs`]: the one pure step from Services, EndpointSlices, Nodes and the live
//!   speakers to the announce core's input, with the policy for what is missing.
//! - [`views`] and [`node_info`]: single Kubernetes objects to what the cores decide on.
//! - [`status`], [`metrics`], [`http`]: the node's status report and how it is served.
//! - [`health`]: the `oxlb.io/health-check` checks this node runs, the health view the
//!   announce core decides with, their status rows and `/metrics`.
//! - [`host_check`]: whether this host's kernel would answer for IPs it does not own.
//! - [`mixed_paths`]: weighted ECMP paths a router gets with and without the
//!   link-bandwidth community (older speakers), from the speakers' news.
//! - [`second_chance`]: connections an ECMP router re-hashes to another node are
//!   handed to the node that has them (nf_tables on the host).
//! - [`stop`]: how a node told to stop leaves its peers (going down or restarting).

pub mod bfd;
pub mod bgp;
pub mod driver;
pub mod health;
pub mod host_check;
pub mod http;
pub mod inputs;
pub mod interner;
pub mod memory;
pub mod metrics;
pub mod mixed_paths;
pub mod node_info;
pub mod second_chance;
pub mod status;
pub mod stop;
pub mod views;
pub mod weights;
