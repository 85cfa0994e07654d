//! nf_tables over netlink, by hand (no `nft` binary in the image, and the one Rust
//! nf_tables crate is GPL-3.0): just what the second-chance ruleset needs.
//!
//! - [`netlink`]: the framing (messages, nested attributes, the batch that makes them
//!   one transaction) and the parsing of the kernel's answers, pure.
//! - [`expr`]: the expressions rules are made of, pure.
//! - [`second_chance`]: the ruleset that hands packets of connections a node does not
//!   know to the node that does (issue 19), pure.
//! - [`socket`]: the shell that sends a batch and reads the acknowledgements.

pub mod expr;
pub mod netlink;
pub mod second_chance;
pub mod socket;

pub use second_chance::{Link, Plan, install, remove};
pub use socket::{Refused, in_namespace, links_here, send, table_exists};
