//! The controller's pure reconcile core, shared by `oxlb controller` (Kubernetes) and
//! `oxlb run` (standalone): Config + Services + Namespaces in, per Service the desired
//! `status.loadBalancer.ingress`, the `metallb.io/ip-allocated-from-pool` annotation and
//! the events out, plus every pool's counters. No I/O.
//!
//! Usage: build a [`Controller`] with the validated config, then feed it a snapshot
//! ([`Controller::sync`]) or changes ([`Controller::apply`]); write what the returned
//! [`Outcome`] says. After a restart, build a fresh one and `sync` the Services with
//! their current status: every held address is re-claimed before anything new is
//! allocated. Do not build one before the config is loaded: with no pools at all every
//! Service's address is released (MetalLB does the same).

pub mod controller;
pub mod events;
pub mod outcome;
pub mod service;

pub use controller::{Change, Controller};
pub use events::{Event, EventReason, EventType};
pub use outcome::{Desired, Outcome, PoolMetrics, PoolStatus, ServiceOutcome};
pub use service::{DEPRECATED_POOL_ANNOTATION, POOL_ANNOTATION};
