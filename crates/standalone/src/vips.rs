//! The service IPs this host announces, made local on a dummy interface so the host
//! accepts the traffic the router (BGP) or the LAN (Layer 2) sends it. In a cluster
//! kube-proxy does this; a standalone host has no kube-proxy.
//!
//! Uses iproute2's `ip` (present on every host `oxlb run` targets) rather than raw
//! netlink: a handful of calls per change, each easy to reproduce by hand.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;
use tokio::process::Command;

/// Default name of the interface oxlb owns.
pub const DEFAULT_INTERFACE: &str = "oxlb0";

#[derive(Debug, Clone)]
pub struct LocalVips {
    interface: String,
    /// Network namespace to act in (`ip -n`); `None` = the process's own. Tests use it
    /// so they never touch the root namespace.
    netns: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipChange {
    pub added: BTreeSet<IpAddr>,
    pub removed: BTreeSet<IpAddr>,
}

/// What to add and remove to go from `current` to `desired`.
pub fn diff(current: &BTreeSet<IpAddr>, desired: &BTreeSet<IpAddr>) -> VipChange {
    VipChange {
        added: desired.difference(current).copied().collect(),
        removed: current.difference(desired).copied().collect(),
    }
}

#[derive(Debug, Deserialize)]
struct IpJsonLink {
    #[serde(default)]
    addr_info: Vec<IpJsonAddress>,
}

#[derive(Debug, Deserialize)]
struct IpJsonAddress {
    local: IpAddr,
}

impl LocalVips {
    pub fn new(interface: &str, netns: Option<&str>) -> LocalVips {
        LocalVips {
            interface: interface.to_string(),
            netns: netns.map(str::to_string),
        }
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Creates the interface if missing and sets it up: a dummy interface, or, on
    /// kernels built without the dummy driver (minimal VM and container kernels), a
    /// bridge without ports, which holds local addresses the same way and sends nothing.
    pub async fn ensure_interface(&self) -> std::io::Result<()> {
        if self
            .ip(&["link", "show", "dev", &self.interface])
            .await
            .is_err()
        {
            let dummy = self
                .ip(&["link", "add", &self.interface, "type", "dummy"])
                .await;
            if let Err(dummy_error) = dummy {
                self.ip(&["link", "add", &self.interface, "type", "bridge"])
                    .await
                    .map_err(|bridge_error| {
                        std::io::Error::other(format!("{dummy_error}; {bridge_error}"))
                    })?;
            }
        }
        self.ip(&["link", "set", &self.interface, "up"])
            .await
            .map(drop)
    }

    /// The addresses currently on the interface.
    pub async fn current(&self) -> std::io::Result<BTreeSet<IpAddr>> {
        let output = self
            .ip(&["-j", "address", "show", "dev", &self.interface])
            .await?;
        let links: Vec<IpJsonLink> = serde_json::from_str(&output)
            .map_err(|e| std::io::Error::other(format!("unexpected `ip -j` output: {e}")))?;
        Ok(links
            .into_iter()
            .flat_map(|l| l.addr_info)
            .map(|a| a.local)
            .filter(|ip| !is_ipv6_link_local(ip))
            .collect())
    }

    /// Makes the interface hold exactly `desired`.
    pub async fn apply(&self, desired: &BTreeSet<IpAddr>) -> std::io::Result<VipChange> {
        let change = diff(&self.current().await?, desired);
        for ip in &change.removed {
            self.ip(&["address", "del", &host_prefix(ip), "dev", &self.interface])
                .await?;
        }
        for ip in &change.added {
            let prefix = host_prefix(ip);
            let mut argv = vec!["address", "add", prefix.as_str(), "dev", &self.interface];
            if ip.is_ipv6() {
                // A service IP must work at once, not after duplicate address detection.
                argv.push("nodad");
            }
            self.ip(&argv).await?;
        }
        Ok(change)
    }

    /// Removes the interface and with it every service IP (clean stop).
    pub async fn remove_interface(&self) -> std::io::Result<()> {
        self.ip(&["link", "del", &self.interface]).await.map(drop)
    }

    async fn ip(&self, args: &[&str]) -> std::io::Result<String> {
        let mut command = Command::new("ip");
        if let Some(netns) = &self.netns {
            command.args(["-n", netns]);
        }
        let output = command.args(args).output().await.map_err(|e| {
            std::io::Error::other(format!("cannot run `ip` (install iproute2): {e}"))
        })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(std::io::Error::other(format!(
                "ip {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
}

fn host_prefix(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

fn is_ipv6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_adds_the_missing_and_removes_the_stale() {
        let current: BTreeSet<IpAddr> =
            ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()].into();
        let desired: BTreeSet<IpAddr> =
            ["10.0.0.2".parse().unwrap(), "fd00::3".parse().unwrap()].into();
        let change = diff(&current, &desired);
        assert_eq!(change.added, ["fd00::3".parse().unwrap()].into());
        assert_eq!(change.removed, ["10.0.0.1".parse().unwrap()].into());
    }
}
