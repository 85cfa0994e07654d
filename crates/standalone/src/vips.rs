//! The service IPs this host announces, made local so the host accepts the traffic
//! the router (BGP) or the LAN (Layer 2) sends it. In a cluster kube-proxy does this;
//! a standalone host has no kube-proxy.
//!
//! Each service IP is a local route in the kernel's `local` table through oxlb's
//! dummy interface (`oxlb0`), not an address on it: see them with
//! `ip route show table local dev oxlb0` (and `ip -6 route show table local dev
//! oxlb0`), each as `local IP proto static scope host`. The kernel accepts traffic to
//! a local route exactly as to an address (RTN_LOCAL, "AnyIP"), and a socket bound to
//! the wildcard address answers from it. Why not addresses: the kernel's own work per
//! address grows with the number already there (IPv4 walks the interface's address
//! list on every add; IPv6 walks the whole IPv6 routing table on every removal):
//! 10,000 took 1.5 s to add (IPv4) and 8.5 s to remove (IPv6), against a fraction of
//! a second both ways as routes (the `batch_figures` benchmark in tests/vips.rs).
//! Routes are added and removed by rtnetlink in batch ([`oxlb_l2::host_addrs`]); the
//! interface is only their anchor: a clean stop removes it, and its routes with it.
//! Addresses an older oxlb put on the interface are removed on the first change.
//!
//! The interface itself (created once, removed on a clean stop) is made with
//! iproute2's `ip`, easy to reproduce by hand.

use std::collections::BTreeSet;
use std::net::IpAddr;

use oxlb_l2::host_addrs::HostAddrs;
use oxlb_l2::netlink::AddrOp;
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
        // NOARP: the interface only holds addresses, it has no neighbours; and the
        // kernel then joins no IPv6 solicited-node group per address (with one group
        // per address, adding 5,000 IPv6 addresses took 19.5 s here; without, 10,000
        // took 1.8 s).
        self.ip(&["link", "set", &self.interface, "arp", "off", "up"])
            .await
            .map(drop)
    }

    /// The service IPs currently local through the interface (its local routes).
    pub async fn current(&self) -> std::io::Result<BTreeSet<IpAddr>> {
        let (netns, interface) = (self.netns_path(), self.interface.clone());
        blocking(move || HostAddrs::open(netns.as_deref(), &interface)?.list_local_routes()).await
    }

    /// Makes exactly `desired` local through the interface: one batch of removals, one
    /// of additions. Routes a previous run left behind (killed, crashed) and no longer
    /// wanted go with the first call, as do addresses an older oxlb put on it.
    pub async fn apply(&self, desired: &BTreeSet<IpAddr>) -> std::io::Result<VipChange> {
        let (netns, interface) = (self.netns_path(), self.interface.clone());
        let desired = desired.clone();
        blocking(move || {
            let mut host = HostAddrs::open(netns.as_deref(), &interface)?;
            let refused =
                |refused: oxlb_l2::host_addrs::Refused| std::io::Error::other(refused.to_string());
            let old_addresses: Vec<IpAddr> = host
                .list()?
                .into_iter()
                .filter(|ip| !is_ipv6_link_local(ip))
                .collect();
            if !old_addresses.is_empty() {
                host.change(AddrOp::Remove, &old_addresses)?
                    .map_err(refused)?;
            }
            let current = host.list_local_routes()?;
            let change = diff(&current, &desired);
            let removed: Vec<IpAddr> = change.removed.iter().copied().collect();
            let added: Vec<IpAddr> = change.added.iter().copied().collect();
            for (op, ips) in [(AddrOp::Remove, removed), (AddrOp::Add, added)] {
                if !ips.is_empty() {
                    host.change_local_routes(op, &ips)?.map_err(refused)?;
                }
            }
            Ok(change)
        })
        .await
    }

    /// The namespace's path for setns(2), as `ip netns` names it.
    fn netns_path(&self) -> Option<std::path::PathBuf> {
        self.netns
            .as_ref()
            .map(|name| std::path::Path::new("/run/netns").join(name))
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

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(format!("address task failed: {e}")))?
}

impl VipChange {
    /// One log line's worth: counts and the first few of each.
    pub fn summary(&self) -> String {
        let added: Vec<&IpAddr> = self.added.iter().collect();
        let removed: Vec<&IpAddr> = self.removed.iter().collect();
        format!(
            "+{} [{}] -{} [{}]",
            added.len(),
            oxlb_l2::responder::first_few(&added),
            removed.len(),
            oxlb_l2::responder::first_few(&removed)
        )
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
