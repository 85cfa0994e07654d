//! No ghost answers: the kernel must never answer ARP/NDP for a Layer 2 IP that this
//! node does not own. Pure: which sysctl values make that so, and, from what was read
//! of a host, whether its kernel would answer for IPs this node does not own.
//!
//! # The problem
//!
//! A Layer 2 IP must be a local address of the owner (on `oxlb0` under `oxlb run`, on
//! `kube-ipvs0` under kube-proxy in IPVS mode) so the host accepts its traffic. With
//! the kernel's default `arp_ignore=0` the kernel answers ARP, on every interface, for
//! every local address of any interface. The address outlives the process when it is
//! killed (SIGKILL, OOM, panic: nothing removes it), and in IPVS mode every node holds
//! every LB IP: so the kernel answers beside the elected owner, and two (or N) MACs
//! answer.
//!
//! # The design
//!
//! Kernel answers are switched off where Layer 2 is served, and only oxlb's responder
//! (which answers only while this node owns the IP) speaks for service IPs:
//!
//! - `net.ipv4.conf.<if>.arp_ignore=1` on every interface the responder serves: the
//!   kernel answers only for addresses configured on the interface the request came
//!   in on, so addresses on `oxlb0`/`kube-ipvs0` are never answered on the LAN,
//!   whether oxlb runs, was killed or panicked. This holds without any action at the
//!   time of death, which is the only kind of guarantee a SIGKILL leaves room for.
//! - `net.ipv4.conf.<if>.arp_announce=2`: the kernel's own ARP requests on the LAN
//!   use the interface's address as sender, never a service IP; otherwise every
//!   neighbour that hears such a request updates its cache for the service IP to this
//!   node's MAC (RFC 826 merge), also after another node took the IP over.
//! - The kernel uses the larger of `all` and `<if>` for both (ip-sysctl.rst), so a
//!   value is written only where the larger of the two is too low, at the interface
//!   level; `all` is never lowered nor raised (that would reach every interface of the
//!   host, container veths included).
//! - Set before the first address is added, and again for every interface that
//!   appears later; verified by reading back. A reboot clears both the sysctls and the
//!   dummy interface with its addresses, and the next start sets them again first.
//! - IPv6 needs nothing: Linux answers a Neighbor Solicitation only for an address of
//!   the interface it arrived on (`ndisc_recv_ns` looks the target up strictly on the
//!   receiving device), unless `proxy_ndp` is on. A test in a namespace checks this
//!   (the kernel stays silent for an address on a dummy interface).
//! - A service IP configured on a served interface itself is answered by the kernel
//!   whatever the sysctls say: [`assess`] reports it.
//!
//! A host where the values cannot be written (read-only /proc/sys, an unprivileged
//! container) gets an error naming the setting and the command that fixes it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One of the two per-interface IPv4 ARP sysctls oxlb needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Knob {
    ArpIgnore,
    ArpAnnounce,
}

impl Knob {
    pub const ALL: [Knob; 2] = [Knob::ArpIgnore, Knob::ArpAnnounce];

    /// The file name under /proc/sys/net/ipv4/conf/<if>/.
    pub fn name(self) -> &'static str {
        match self {
            Knob::ArpIgnore => "arp_ignore",
            Knob::ArpAnnounce => "arp_announce",
        }
    }

    /// The smallest effective value that is safe.
    pub fn wanted(self) -> u32 {
        match self {
            Knob::ArpIgnore => 1,
            Knob::ArpAnnounce => 2,
        }
    }

    /// Why, in the words of a log line.
    pub fn why(self) -> &'static str {
        match self {
            Knob::ArpIgnore => {
                "so the kernel answers ARP on this interface only for its own addresses: \
                 service IPs are answered by the oxlb responder of the node that owns them, \
                 never by a node's kernel (also after a crash)"
            }
            Knob::ArpAnnounce => {
                "so the kernel never uses a service IP as the sender of its own ARP \
                 requests, which would point neighbours' caches at this node"
            }
        }
    }

    /// The setting's full name for one interface.
    pub fn setting(self, interface: &str) -> String {
        format!("net.ipv4.conf.{interface}.{}", self.name())
    }
}

/// The value to write at the interface level, if any: the kernel uses the larger of
/// `all` and the interface's own value, so nothing is written when that is enough.
pub fn needed(knob: Knob, all: u32, interface: u32) -> Option<u32> {
    (all.max(interface) < knob.wanted()).then_some(knob.wanted())
}

/// What was found (and done) for one knob of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnobState {
    /// Already safe (the effective value).
    Safe(u32),
    /// Raised from `from` to `to`.
    Changed { from: u32, to: u32 },
    /// Too low (the effective value) and left so: only checked, or the write failed
    /// (why).
    Unsafe {
        effective: u32,
        error: Option<String>,
    },
}

impl KnobState {
    pub fn is_safe(&self) -> bool {
        !matches!(self, KnobState::Unsafe { .. })
    }
}

/// A host as read: the served interfaces with their effective `arp_ignore`, and every
/// local address with the interface it is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// Interface name -> effective arp_ignore (the larger of `all` and its own).
    pub served: BTreeMap<String, u32>,
    /// Local address -> the interface it is configured on.
    pub local: BTreeMap<IpAddr, String>,
    /// Local routes (destination, prefix length): `ip route add local ...` makes a
    /// whole prefix the host's own without addresses (AnyIP); the kernel answers ARP
    /// for it as for an address on another interface.
    pub local_routes: Vec<(IpAddr, u8)>,
}

/// Whether `ip` lies in `net`/`prefix` (same family).
fn covers((net, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// Why the kernel would answer for an IP this node does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GhostReason {
    /// The IP is configured on a served interface itself.
    OnServedInterface,
    /// The IP is local (e.g. on kube-ipvs0) and a served interface has arp_ignore 0.
    ArpIgnoreZero,
}

impl GhostReason {
    pub fn label(self) -> &'static str {
        match self {
            GhostReason::OnServedInterface => "on_served_interface",
            GhostReason::ArpIgnoreZero => "arp_ignore_0",
        }
    }
}

/// One IP the kernel would answer for although this node does not own it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ghost {
    pub ip: IpAddr,
    /// The interface it is configured on.
    pub on: String,
    pub reason: GhostReason,
    /// The served interfaces the kernel would answer it on.
    pub answered_on: Vec<String>,
}

/// Every IP of `layer2_ips` that this node does not own (`owned`) and that its kernel
/// would answer ARP/NDP for on a served interface, sorted by IP.
pub fn assess(
    host: &HostView,
    layer2_ips: &BTreeSet<IpAddr>,
    owned: &BTreeSet<IpAddr>,
) -> Vec<Ghost> {
    let weak: Vec<String> = host
        .served
        .iter()
        .filter(|(_, ignore)| **ignore < Knob::ArpIgnore.wanted())
        .map(|(name, _)| name.clone())
        .collect();
    // Host routes (/32, /128: oxlb's own under `oxlb run`, thousands of them) are
    // looked up in a set, only shorter prefixes one by one.
    let (host_routes, prefixes): (Vec<_>, Vec<_>) = host
        .local_routes
        .iter()
        .partition(|(net, prefix)| *prefix == if net.is_ipv4() { 32 } else { 128 });
    let host_routes: BTreeSet<IpAddr> = host_routes.into_iter().map(|(ip, _)| ip).collect();
    layer2_ips
        .iter()
        .filter(|ip| !owned.contains(ip))
        .filter_map(|ip| {
            let route = || {
                (host_routes.contains(ip) || prefixes.iter().any(|net| covers(*net, *ip)))
                    .then(|| "a local route".to_string())
            };
            let on = host.local.get(ip).cloned().or_else(route)?;
            let on = &on;
            if host.served.contains_key(on) {
                return Some(Ghost {
                    ip: *ip,
                    on: on.clone(),
                    reason: GhostReason::OnServedInterface,
                    answered_on: vec![on.clone()],
                });
            }
            // IPv6: Linux answers a solicitation only for the receiving interface's
            // own addresses (see the module comment).
            (ip.is_ipv4() && !weak.is_empty()).then(|| Ghost {
                ip: *ip,
                on: on.clone(),
                reason: GhostReason::ArpIgnoreZero,
                answered_on: weak.clone(),
            })
        })
        .collect()
}

/// One line for logs, events and `oxlb explain`; `None` when there is nothing to say.
pub fn describe(ghosts: &[Ghost]) -> Option<String> {
    let first = ghosts.first()?;
    let ips: Vec<String> = ghosts.iter().take(3).map(|g| g.ip.to_string()).collect();
    let more = ghosts.len().saturating_sub(3);
    let fix = match first.reason {
        GhostReason::ArpIgnoreZero => format!(
            "arp_ignore=1 and arp_announce=2 on {} (e.g. `sysctl -w {}=1`; kube-proxy in \
             IPVS mode: ipvs.strictARP: true)",
            first.answered_on.join(", "),
            Knob::ArpIgnore.setting(first.answered_on.first().map_or("all", String::as_str)),
        ),
        GhostReason::OnServedInterface => format!(
            "remove the service IPs from {}: they belong on a dummy interface",
            first.on
        ),
    };
    Some(format!(
        "this node's kernel would answer ARP/NDP for {} Layer 2 IP(s) it does not own \
         ({}{}; on {}, {}): two MACs would answer. Fix: {fix}",
        ghosts.len(),
        ips.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        first.on,
        first.reason.label(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_what_is_too_low_is_written_and_all_counts() {
        assert_eq!(needed(Knob::ArpIgnore, 0, 0), Some(1));
        assert_eq!(needed(Knob::ArpIgnore, 1, 0), None);
        assert_eq!(needed(Knob::ArpIgnore, 0, 2), None);
        assert_eq!(needed(Knob::ArpIgnore, 8, 0), None);
        assert_eq!(needed(Knob::ArpAnnounce, 0, 1), Some(2));
        assert_eq!(needed(Knob::ArpAnnounce, 2, 0), None);
        assert_eq!(
            Knob::ArpIgnore.setting("eth0"),
            "net.ipv4.conf.eth0.arp_ignore"
        );
    }

    fn ipvs_host(arp_ignore: u32) -> HostView {
        HostView {
            served: BTreeMap::from([("eth0".to_string(), arp_ignore)]),
            local: BTreeMap::from([
                (ip("192.168.1.10"), "eth0".to_string()),
                (ip("192.168.1.200"), "kube-ipvs0".to_string()),
                (ip("192.168.1.201"), "kube-ipvs0".to_string()),
                (ip("fd00::200"), "kube-ipvs0".to_string()),
            ]),
            local_routes: vec![],
        }
    }

    #[test]
    fn ipvs_without_strict_arp_is_a_ghost_for_every_ip_not_owned() {
        let l2: BTreeSet<IpAddr> =
            [ip("192.168.1.200"), ip("192.168.1.201"), ip("fd00::200")].into();
        let owned: BTreeSet<IpAddr> = [ip("192.168.1.201")].into();
        let ghosts = assess(&ipvs_host(0), &l2, &owned);
        assert_eq!(
            ghosts,
            vec![Ghost {
                ip: ip("192.168.1.200"),
                on: "kube-ipvs0".into(),
                reason: GhostReason::ArpIgnoreZero,
                answered_on: vec!["eth0".into()],
            }]
        );
        let text = describe(&ghosts).unwrap();
        assert!(text.contains("192.168.1.200"), "{text}");
        assert!(text.contains("strictARP"), "{text}");
        // strictARP (arp_ignore 1): nothing.
        assert_eq!(assess(&ipvs_host(1), &l2, &owned), vec![]);
        assert_eq!(describe(&[]), None);
    }

    #[test]
    fn an_ip_on_the_served_interface_is_a_ghost_whatever_the_sysctls() {
        let mut host = ipvs_host(1);
        host.local.insert(ip("fd00::300"), "eth0".into());
        let l2: BTreeSet<IpAddr> = [ip("fd00::300"), ip("192.168.1.99")].into();
        let ghosts = assess(&host, &l2, &BTreeSet::new());
        assert_eq!(ghosts.len(), 1);
        assert_eq!(ghosts[0].reason, GhostReason::OnServedInterface);
        // Owned here: the kernel and the responder answer with the same MAC.
        assert_eq!(assess(&host, &l2, &l2), vec![]);
    }

    #[test]
    fn a_local_route_counts_as_local() {
        // kube-proxy's part in a test cluster, or AnyIP: the pool local on lo.
        let host = HostView {
            served: BTreeMap::from([("eth0".to_string(), 0)]),
            local: BTreeMap::new(),
            // A prefix, and a host route (how `oxlb run` makes service IPs local).
            local_routes: vec![(ip("10.77.0.192"), 27), (ip("10.77.1.5"), 32)],
        };
        let l2: BTreeSet<IpAddr> = [ip("10.77.0.200"), ip("10.77.0.100"), ip("10.77.1.5")].into();
        let ghosts = assess(&host, &l2, &BTreeSet::new());
        assert_eq!(ghosts.len(), 2);
        assert_eq!(ghosts[1].ip, ip("10.77.1.5"));
        assert_eq!(ghosts[0].ip, ip("10.77.0.200"));
        assert_eq!(ghosts[0].on, "a local route");
        assert!(covers((ip("0.0.0.0"), 0), ip("1.2.3.4")));
        assert!(covers((ip("fd00::"), 64), ip("fd00::1:2")));
        assert!(!covers((ip("fd00::"), 128), ip("fd00::1")));
        assert!(!covers((ip("10.0.0.0"), 8), ip("fd00::1")));
    }

    #[test]
    fn ips_that_are_not_local_are_never_ghosts() {
        let l2: BTreeSet<IpAddr> = [ip("10.9.9.9")].into();
        assert_eq!(assess(&ipvs_host(0), &l2, &BTreeSet::new()), vec![]);
    }
}
