//! Health-checked announcements (`oxlb.io/health-check`).
//!
//! - [`spec`]: the annotations, parsed and validated (pure);
//! - [`state`]: the rise/fall state machine per check (pure);
//! - [`probe`]: one HTTP, HTTPS or TCP check (I/O);
//! - [`runner`]: a tokio task per checked Service, and the shared view of every
//!   check's state that the announcement decisions read.
//!
//! The decision itself (a node whose check does not pass does not announce) is pure and
//! lives in `oxlb_announce::health`.

pub mod probe;
pub mod runner;
pub mod spec;
pub mod state;

pub use runner::{CheckReport, Checks};
pub use spec::{CheckSpec, SpecError, Target};
pub use state::{CheckState, Machine};
