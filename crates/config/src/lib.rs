//! From a snapshot of `metallb.io` objects (and the core objects they refer to) to a
//! validated [`Config`], or every error found.
//!
//! `model` is the contract every other crate consumes: once a `Config` exists it is valid
//! (parse, don't validate), so the allocator, the announcer and the speakers never
//! re-check it.

pub mod model;
pub mod selector;

pub use model::*;
pub use selector::{LabelSelector, Requirement, SelectorOperator};
