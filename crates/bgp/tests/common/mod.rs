//! Shared kit for the interop tests: a probe process (the speaker) in a namespace, its
//! JSON config, and polling helpers for router state.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_netlab::{Guarded, Netns, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

pub const PROBE: &str = env!("CARGO_BIN_EXE_oxlb-bgp-probe");

pub struct Probe {
    pub process: Guarded,
    pub config: PathBuf,
    pub log: PathBuf,
}

/// A scratch directory under the temp dir, removed when dropped (also when the test
/// fails: the panic unwinds through it).
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("oxlb-bgp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

impl Probe {
    pub fn start(ns: &Netns, dir: &std::path::Path, name: &str, config: &Value) -> Probe {
        let config_path = dir.join(format!("{name}.json"));
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = dir.join(format!("{name}.log"));
        let process = ns
            .spawn(&[PROBE, config_path.to_str().unwrap()], Some(&log))
            .unwrap();
        Probe {
            process,
            config: config_path,
            log,
        }
    }

    /// Rewrites the config and makes the probe re-read it.
    pub fn reconfigure(&self, config: &Value) {
        std::fs::write(&self.config, config.to_string()).unwrap();
        self.process.signal("HUP").unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last status line the probe printed (it prints one every `status_interval_ms`).
    pub fn last_status(&self) -> Option<Value> {
        self.log_text()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v.get("peers").is_some())
    }

    pub fn peer_status(&self, name: &str) -> Option<Value> {
        self.last_status()?["peers"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn stop(&mut self) {
        self.process.signal("TERM").unwrap();
        let exited = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            self.process.has_exited().then_some(())
        });
        assert!(exited.is_some(), "probe did not exit on SIGTERM");
    }
}

pub fn peer(name: &str, local_asn: u32, peer_asn: u32, peer: &str, router_id: &str) -> Value {
    serde_json::json!({
        "name": name,
        "local_asn": local_asn,
        "peer_asn": peer_asn,
        "peer_address": peer,
        "router_id": router_id,
        "connect_retry_time": 2,
        "routes": [],
    })
}

pub fn wait<T>(what: &str, secs: u64, probe: impl FnMut() -> Option<T>) -> T {
    wait_until(Duration::from_secs(secs), Duration::from_millis(100), probe)
        .unwrap_or_else(|| panic!("timed out after {secs} s waiting for {what}"))
}

pub fn json(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

/// A router namespace and a node namespace on one veth: router 10.0.0.1/24 + fd00::1/64,
/// node 10.0.0.2/24 + fd00::2/64 (plus `extra` addresses on the node).
pub fn router_and_node(extra: &[&str]) -> (Netns, Netns) {
    let router = Netns::new("rt").unwrap();
    let node = Netns::new("nd").unwrap();
    oxlb_netlab::veth(&router, "r0", &node, "n0").unwrap();
    router.add_address("r0", "10.0.0.1/24").unwrap();
    router.add_address("r0", "fd00::1/64").unwrap();
    node.add_address("n0", "10.0.0.2/24").unwrap();
    node.add_address("n0", "fd00::2/64").unwrap();
    for a in extra {
        node.add_address("n0", a).unwrap();
    }
    (router, node)
}

/// FRR's view of one prefix: its first path, if any.
pub fn frr_path(frr: &oxlb_netlab::Frr, family: &str, prefix: &str) -> Option<Value> {
    let out = json(
        &frr.vtysh(&format!("show bgp {family} unicast {prefix} json"))
            .ok()?,
    )?;
    out["paths"].as_array()?.first().cloned()
}

pub fn frr_neighbor(frr: &oxlb_netlab::Frr, neighbor: &str) -> Option<Value> {
    let out = json(
        &frr.vtysh(&format!("show bgp neighbors {neighbor} json"))
            .ok()?,
    )?;
    out.get(neighbor).cloned()
}

pub fn frr_established(frr: &oxlb_netlab::Frr, neighbor: &str) -> Option<Value> {
    frr_neighbor(frr, neighbor).filter(|n| n["bgpState"] == "Established")
}
