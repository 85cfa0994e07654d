//! A two-namespace lab shared by the interop tests and the benchmark: `router` (FRR or
//! a second probe) and `node` (oxlb-bfd-probe), joined by one veth.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use oxlb_netlab::{Frr, Guarded, Netns, veth, wait_until};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Lab {
    pub router: Netns,
    pub node: Netns,
    pub router_ip: &'static str,
    pub node_ip: &'static str,
}

impl Lab {
    pub fn new(ipv6: bool) -> Lab {
        let router = Netns::new("bfdrouter").unwrap();
        let node = Netns::new("bfdnode").unwrap();
        veth(&router, "r0", &node, "n0").unwrap();
        let (router_ip, node_ip, len) = if ipv6 {
            ("fd00:bfd::1", "fd00:bfd::2", 64)
        } else {
            ("10.98.0.1", "10.98.0.2", 24)
        };
        router
            .add_address("r0", &format!("{router_ip}/{len}"))
            .unwrap();
        node.add_address("n0", &format!("{node_ip}/{len}")).unwrap();
        // Wait for the path (IPv6 neighbour discovery, link up) before any daemon.
        let ping = if ipv6 { "ping6" } else { "ping" };
        let reachable = wait_until(WAIT, Duration::from_millis(200), || {
            node.exec(&[ping, "-c1", "-W1", router_ip]).ok()
        });
        assert!(reachable.is_some(), "{router_ip} unreachable from the node");
        Lab {
            router,
            node,
            router_ip,
            node_ip,
        }
    }

    /// FRR zebra + bfdd in the router namespace with one peer: the node.
    pub fn start_frr(&self, multihop: bool, rx: u32, tx: u32, mult: u8) -> Frr {
        let hop = if multihop { " multihop" } else { "" };
        let config = format!(
            "frr defaults traditional\n\
             bfd\n \
             peer {node}{hop} local-address {router}\n  \
             receive-interval {rx}\n  \
             transmit-interval {tx}\n  \
             detect-multiplier {mult}\n \
             !\n!\n",
            node = self.node_ip,
            router = self.router_ip,
        );
        Frr::start(&self.router, &config, &["zebra", "bfdd"]).unwrap()
    }

    pub fn start_probe(&self, log: &ProbeLog, multihop: bool, extra: &[&str]) -> Guarded {
        let mut argv = vec![
            env!("CARGO_BIN_EXE_oxlb-bfd-probe"),
            "--peer",
            self.router_ip,
            "--local",
            self.node_ip,
        ];
        if multihop {
            argv.push("--multihop");
        }
        argv.extend_from_slice(extra);
        let probe = self.node.spawn(&argv, Some(&log.path)).unwrap();
        log.wait_for_count("ready", 1);
        probe
    }

    pub fn start_probe_in_router(&self, log: &ProbeLog, extra: &[&str]) -> Guarded {
        let mut argv = vec![
            env!("CARGO_BIN_EXE_oxlb-bfd-probe"),
            "--peer",
            self.node_ip,
            "--local",
            self.router_ip,
        ];
        argv.extend_from_slice(extra);
        let probe = self.router.spawn(&argv, Some(&log.path)).unwrap();
        log.wait_for_count("ready", 1);
        probe
    }

    /// Drops every packet in and out of the router namespace (nftables), leaving the
    /// link up so neither side learns anything from an interface event.
    pub fn cut(&self) {
        // One nft transaction, so the drop starts at one instant.
        let rules = "table inet oxlbcut {\n\
                     chain in { type filter hook input priority 0; policy drop; }\n\
                     chain out { type filter hook output priority 0; policy drop; }\n}\n";
        let path = std::env::temp_dir().join(format!("{}.nft", self.router.name()));
        std::fs::write(&path, rules).unwrap();
        let result = self.router.exec(&["nft", "-f", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        result.unwrap();
    }

    pub fn restore(&self) {
        self.router
            .exec(&["nft", "delete", "table", "inet", "oxlbcut"])
            .unwrap();
    }

    /// The single peer of `show bfd peers json` once its status is `status`.
    pub fn wait_frr_status(frr: &Frr, status: &str) -> serde_json::Value {
        let peer = wait_until(WAIT, Duration::from_millis(100), || {
            Lab::frr_peer(frr).filter(|peer| peer["status"] == status)
        });
        peer.unwrap_or_else(|| {
            panic!(
                "FRR's BFD peer never became {status}: {}",
                frr.vtysh("show bfd peers json").unwrap_or_default()
            )
        })
    }

    pub fn frr_peer(frr: &Frr) -> Option<serde_json::Value> {
        let text = frr.vtysh("show bfd peers json").ok()?;
        let peers: serde_json::Value = serde_json::from_str(&text).ok()?;
        peers.as_array()?.first().cloned()
    }
}

/// The stdout of a probe, in a temporary file removed on drop.
pub struct ProbeLog {
    pub path: PathBuf,
}

impl ProbeLog {
    pub fn new(name: &str) -> ProbeLog {
        let path = std::env::temp_dir().join(format!("oxlb-bfd-{name}-{}.log", std::process::id()));
        ProbeLog { path }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.text()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    pub fn wait_for_count(&self, prefix: &str, count: usize) {
        let seen = wait_until(WAIT, Duration::from_millis(50), || {
            (self.count(prefix) >= count).then_some(())
        });
        assert!(
            seen.is_some(),
            "probe never printed {count} x {prefix:?}; log:\n{}",
            self.text()
        );
    }
}

impl Drop for ProbeLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
