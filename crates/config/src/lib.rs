//! From a snapshot of `metallb.io` objects (and the core objects they refer to) to a
//! validated [`Config`], or every error found.
//!
//! `model` is the contract every other crate consumes: once a `Config` exists it is valid
//! (parse, don't validate), so the allocator, the announcer and the speakers never
//! re-check it.
//!
//! Entry points: [`load_paths`] / [`load_str`] (YAML → [`Snapshot`]), then
//! [`build_config`] (Snapshot → `Config` or errors, plus warnings).

pub mod build;
pub mod diagnostic;
pub mod legacy;
pub mod load;
pub mod memberlist;
pub mod model;
pub mod quarantine;
pub mod schema;
pub mod selector;
pub mod snapshot;
pub mod synthetic;

pub use diagnostic::{Code, Diagnostic, Origin, Severity};
pub use load::{load_bytes, load_paths, load_str};
pub use model::*;
pub use quarantine::{
    Built, Decision, LAST_VALID_ANNOTATION, LastValid, ObjectKind, Quarantined, build_config,
    build_config_with,
};
pub use selector::{LabelSelector, Requirement, SelectorOperator};
pub use snapshot::{DEFAULT_NAMESPACE, Snapshot, Sourced};
