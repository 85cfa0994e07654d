//! The fault kinds `oxlb lab chaos` injects, by the names the command line takes.

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL a node's `oxlb run`, start it again after the hold.
    Kill,
    /// SIGTERM a node's `oxlb run` (graceful stop), start it again after the hold.
    Term,
    /// A node's LAN link down, up after the hold.
    LinkFlap,
    /// A node's gossip cut (memberlist port 7946 dropped both ways), the LAN still up.
    Partition,
    /// Loss and delay on a node's LAN link (a userspace relay in its bridge port).
    Lossy,
    /// The router's BGP daemon restarted (FRR bgpd; BIRD as a whole).
    BgpdRestart,
    /// The router's configuration applied again (`vtysh -f`, `birdc configure`).
    RouterReload,
    /// The BGP pool edited (a second range added, removed after the hold).
    PoolEdit,
    /// A LoadBalancer Service added, removed after the hold.
    ServiceChange,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill,
        FaultKind::Term,
        FaultKind::LinkFlap,
        FaultKind::Partition,
        FaultKind::Lossy,
        FaultKind::BgpdRestart,
        FaultKind::RouterReload,
        FaultKind::PoolEdit,
        FaultKind::ServiceChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Term => "term",
            FaultKind::LinkFlap => "link-flap",
            FaultKind::Partition => "partition",
            FaultKind::Lossy => "lossy",
            FaultKind::BgpdRestart => "bgpd-restart",
            FaultKind::RouterReload => "router-reload",
            FaultKind::PoolEdit => "pool-edit",
            FaultKind::ServiceChange => "service-change",
        }
    }

    /// Whether the fault hits one node (the others hit the router or the config).
    pub fn targets_node(self) -> bool {
        matches!(
            self,
            FaultKind::Kill
                | FaultKind::Term
                | FaultKind::LinkFlap
                | FaultKind::Partition
                | FaultKind::Lossy
        )
    }

    /// Parses a comma-separated list (`kill,lossy`); `all` is every kind. An unknown
    /// name is refused with the valid choices.
    pub fn parse_list(text: &str) -> Result<Vec<FaultKind>, Error> {
        let mut out = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                out.extend(FaultKind::ALL);
                continue;
            }
            match FaultKind::ALL.iter().find(|k| k.name() == word) {
                Some(kind) => out.push(*kind),
                None => {
                    return Err(Error::Config(format!(
                        "unknown fault kind {word:?}; valid: {}, all",
                        FaultKind::ALL.map(FaultKind::name).join(", ")
                    )));
                }
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(Error::Config(format!(
                "no fault kind given; valid: {}, all",
                FaultKind::ALL.map(FaultKind::name).join(", ")
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_list_the_choices() {
        assert_eq!(
            FaultKind::parse_list("lossy, kill,kill").unwrap(),
            [FaultKind::Kill, FaultKind::Lossy]
        );
        assert_eq!(FaultKind::parse_list("all").unwrap(), FaultKind::ALL);
        let err = FaultKind::parse_list("kill,nuke").unwrap_err().to_string();
        assert!(err.contains("\"nuke\""), "{err}");
        for kind in FaultKind::ALL {
            assert!(err.contains(kind.name()), "{err}");
        }
        assert!(FaultKind::parse_list(" , ").is_err());
    }
}
