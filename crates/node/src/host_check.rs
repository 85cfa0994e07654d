//! Would this host's kernel answer ARP/NDP for Layer 2 IPs this node does not own?
//! (kube-proxy in IPVS mode without strictARP puts every LB IP on `kube-ipvs0`; a
//! sysctl the responder could not set; a service IP on the LAN interface itself.)
//! The decision is [`oxlb_l2::kernel_arp::assess`]; this shell reads the host, keeps
//! the last verdict so only changes are logged, and fills the status report
//! (`/metrics` gauge `oxlb_layer2_kernel_unowned_answers`, `oxlb status`/`explain`).
//! Shared by `oxlb run` and `oxlb speaker`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oxlb_config::Config;
use oxlb_l2::kernel_arp::{self, Ghost, HostView, Knob, KnobState};
use oxlb_l2::sysctl::InterfaceArp;

use crate::status::HostStatus;

/// Per interface the responder serves, its ARP sysctls as found or set.
pub type KernelArp = BTreeMap<String, InterfaceArp>;

/// How often the host is read again without a change of announcements.
pub const RECHECK: Duration = Duration::from_secs(10);

/// The IPs of the given (pool, IPs) pairs whose pool an L2Advertisement announces.
pub fn layer2_ips<'a>(
    config: &Config,
    services: impl Iterator<Item = (&'a str, &'a [IpAddr])>,
) -> BTreeSet<IpAddr> {
    let pools: BTreeSet<&str> = config
        .l2_advertisements
        .values()
        .flat_map(|a| a.pools.iter().map(String::as_str))
        .collect();
    services
        .filter(|(pool, _)| pools.contains(pool))
        .flat_map(|(_, ips)| ips.iter().copied())
        .collect()
}

/// Served interface -> effective arp_ignore, from what the responder found or set.
pub fn served(kernel_arp: &BTreeMap<String, InterfaceArp>) -> BTreeMap<String, u32> {
    kernel_arp
        .iter()
        .map(|(name, knobs)| {
            let value = match knobs.get(&Knob::ArpIgnore) {
                Some(KnobState::Safe(v)) => *v,
                Some(KnobState::Changed { to, .. }) => *to,
                Some(KnobState::Unsafe { effective, .. }) => *effective,
                None => 0,
            };
            (name.clone(), value)
        })
        .collect()
}

/// Reads every local address of this namespace, by netlink, with its interface name.
pub fn read_host(served: BTreeMap<String, u32>) -> std::io::Result<HostView> {
    let names: BTreeMap<u32, String> =
        oxlb_l2::interfaces::scan(std::path::Path::new("/sys/class/net"))
            .into_iter()
            .map(|link| (link.index, link.name))
            .collect();
    let local = oxlb_l2::host_addrs::all_addresses()?
        .into_iter()
        .filter_map(|(index, ip)| Some((ip, names.get(&index)?.clone())))
        .collect();
    Ok(HostView {
        served,
        local,
        local_routes: oxlb_l2::host_addrs::local_routes()?,
    })
}

/// The last verdict, so a log line (and the caller's event) comes only on a change.
#[derive(Debug, Default)]
pub struct HostCheck {
    last: Option<Vec<Ghost>>,
    at: Option<Instant>,
}

/// What a check found, compared with the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    /// Ghosts now (the first check, or a change): the caller raises a Warning event.
    Ghosts(String),
    /// None any more (or none at the first check).
    Clear,
}

impl HostCheck {
    /// Makes the next [`HostCheck::due`] true (the inputs changed).
    pub fn expire(&mut self) {
        self.at = None;
    }

    pub fn due(&self, now: Instant) -> bool {
        self.at.is_none_or(|at| now.duration_since(at) >= RECHECK)
    }

    /// Records `ghosts`, logs a change, and returns it.
    pub fn record(&mut self, ghosts: Vec<Ghost>, host: &HostView, now: Instant) -> Verdict {
        self.at = Some(now);
        let first = self.last.is_none();
        if self.last.as_ref() == Some(&ghosts) {
            return Verdict::Unchanged;
        }
        let verdict = match kernel_arp::describe(&ghosts) {
            Some(text) => {
                tracing::warn!(ips = ghosts.len(), "layer2: {text}");
                Verdict::Ghosts(text)
            }
            None => {
                let interfaces: Vec<String> = host
                    .served
                    .iter()
                    .map(|(name, ignore)| format!("{name} arp_ignore={ignore}"))
                    .collect();
                tracing::info!(
                    "layer2: {}this node's kernel answers ARP/NDP for no Layer 2 IP it does \
                     not own (served: {})",
                    if first { "" } else { "fixed: " },
                    interfaces.join(", ")
                );
                Verdict::Clear
            }
        };
        self.last = Some(ghosts);
        verdict
    }

    /// The report's view of the last check.
    pub fn status(&self, kernel_arp: &BTreeMap<String, InterfaceArp>) -> HostStatus {
        HostStatus {
            kernel_unowned_answers: self.last.as_ref().map(|g| g.len() as u64),
            kernel_note: self.last.as_deref().and_then(kernel_arp::describe),
            arp_sysctls: kernel_arp
                .iter()
                .map(|(name, knobs)| {
                    let text: Vec<String> = knobs
                        .iter()
                        .map(|(knob, state)| format!("{}={}", knob.name(), state_text(state)))
                        .collect();
                    (name.clone(), text.join(" "))
                })
                .collect(),
        }
    }
}

fn state_text(state: &KnobState) -> String {
    match state {
        KnobState::Safe(v) => v.to_string(),
        KnobState::Changed { from, to } => format!("{to} (set by oxlb, was {from})"),
        KnobState::Unsafe {
            effective,
            error: Some(_),
        } => format!("{effective} (could not be set)"),
        KnobState::Unsafe { effective, .. } => format!("{effective} (too low, only checked)"),
    }
}

/// Reads the host and assesses it (blocking: a netlink dump).
pub fn check_now(
    kernel_arp: &BTreeMap<String, InterfaceArp>,
    layer2: &BTreeSet<IpAddr>,
    owned: &BTreeSet<IpAddr>,
) -> std::io::Result<(Vec<Ghost>, HostView)> {
    let host = read_host(served(kernel_arp))?;
    Ok((kernel_arp::assess(&host, layer2, owned), host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ghost(ip: &str) -> Ghost {
        Ghost {
            ip: ip.parse().unwrap(),
            on: "kube-ipvs0".into(),
            reason: kernel_arp::GhostReason::ArpIgnoreZero,
            answered_on: vec!["eth0".into()],
        }
    }

    #[test]
    fn only_changes_are_reported() {
        let host = HostView::default();
        let now = Instant::now();
        let mut check = HostCheck::default();
        assert!(check.due(now));
        assert_eq!(check.record(vec![], &host, now), Verdict::Clear);
        assert!(!check.due(now));
        assert_eq!(check.record(vec![], &host, now), Verdict::Unchanged);
        let Verdict::Ghosts(text) = check.record(vec![ghost("10.0.0.5")], &host, now) else {
            panic!("a ghost is reported");
        };
        assert!(text.contains("10.0.0.5"), "{text}");
        assert_eq!(
            check.record(vec![ghost("10.0.0.5")], &host, now),
            Verdict::Unchanged
        );
        assert_eq!(
            check.status(&BTreeMap::new()).kernel_unowned_answers,
            Some(1)
        );
        assert_eq!(check.record(vec![], &host, now), Verdict::Clear);
        assert_eq!(check.status(&BTreeMap::new()).kernel_note, None);
    }
}
