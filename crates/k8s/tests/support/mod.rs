//! The in-memory API server now lives in crates/fakeapi (also served over HTTP for the
//! process-level rehearsal); the tests keep using it through this module.
#![allow(dead_code, unused_imports)]

pub mod helm;

pub use oxlb_fakeapi::*;
