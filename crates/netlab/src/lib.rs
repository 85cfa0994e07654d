//! Throw-away networks on one machine: network namespaces joined by veths and bridges,
//! processes started inside them, and real router daemons (FRR) configured for them.
//!
//! Network safety (DESIGN.md): everything created here lives inside namespaces this
//! crate created; nothing is configured in the root namespace. Every namespace is removed
//! (and every process in it killed) when its guard drops, also when a test panics.
//! Names carry the creating process id so [`sweep_stale`] can remove leftovers of a run
//! that was killed.

mod bird;
mod frr;
mod netns;
mod process;
pub mod vm;
mod wait;

pub use bird::Bird;
pub use frr::{Frr, Vty};
pub use netns::{Netns, sweep_stale, veth};
pub use process::Guarded;
pub use wait::wait_until;

/// Whether tests that need root and network namespaces can run here. Not root: an
/// error saying what to do, unless `OXLB_SKIP_NETNS=1`, which makes the caller skip.
pub fn netns_tests_enabled(test: &str) -> Result<bool, String> {
    if std::env::var_os("OXLB_SKIP_NETNS").is_some_and(|v| v == "1") {
        eprintln!("skipping {test}: OXLB_SKIP_NETNS=1");
        return Ok(false);
    }
    if !is_root() {
        return Err(format!(
            "{test} needs root (network namespaces): run the tests as root, \
             or set OXLB_SKIP_NETNS=1 to skip them"
        ));
    }
    Ok(true)
}

/// Whether this process runs with effective user id 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
