//! Which interfaces the responder listens and announces on. The scan reads
//! /sys/class/net (the namespace's own view); the selection over its result is pure.

use std::path::Path;

use regex::Regex;

use crate::ethernet::Mac;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
    /// IFF_* flags (netdevice(7)).
    pub flags: u32,
    /// ARPHRD_* type; 1 is Ethernet.
    pub hardware_type: u32,
    /// The carrier-aware state from /sys/class/net/*/operstate.
    pub operstate: String,
    /// Enslaved to a bridge or bond: the master answers for it.
    pub has_master: bool,
}

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_NOARP: u32 = 0x80;
const ARPHRD_ETHER: u32 = 1;

/// Interface names never announced on by default: container, CNI and tunnel
/// plumbing, where answering ARP for a service IP would be wrong.
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "^veth",
    "^docker",
    "^cni",
    "^flannel",
    "^cali",
    "^kube-ipvs",
    "^kube-bridge",
    "^cilium",
    "^lxc",
    "^vxlan",
    "^genev",
    "^tunl",
    "^weave",
    "^nodelocaldns",
    "^virbr",
];

/// Why an interface is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Down,
    Loopback,
    NoArp,
    NotEthernet,
    Enslaved,
    Excluded,
}

/// The interface selection rules (exclusion regexes are configurable).
#[derive(Debug, Clone)]
pub struct Selection {
    exclude: Vec<Regex>,
}

impl Selection {
    /// `exclude` are regular expressions matched against interface names.
    pub fn new<S: AsRef<str>>(exclude: &[S]) -> Result<Selection, regex::Error> {
        let exclude = exclude
            .iter()
            .map(|s| Regex::new(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Selection { exclude })
    }

    pub fn with_defaults() -> Result<Selection, regex::Error> {
        Selection::new(DEFAULT_EXCLUDE)
    }

    /// Whether `link` may be announced on, or why not.
    pub fn check(&self, link: &Link) -> Result<(), Skip> {
        if link.flags & IFF_LOOPBACK != 0 {
            return Err(Skip::Loopback);
        }
        if link.flags & IFF_UP == 0
            || matches!(
                link.operstate.as_str(),
                "down" | "lowerlayerdown" | "notpresent"
            )
        {
            return Err(Skip::Down);
        }
        if link.flags & IFF_NOARP != 0 {
            return Err(Skip::NoArp);
        }
        if link.hardware_type != ARPHRD_ETHER {
            return Err(Skip::NotEthernet);
        }
        if link.has_master {
            return Err(Skip::Enslaved);
        }
        if self.exclude.iter().any(|r| r.is_match(&link.name)) {
            return Err(Skip::Excluded);
        }
        Ok(())
    }
}

/// Reads every interface of the current network namespace from sysfs. Interfaces
/// that vanish during the scan are left out.
pub fn scan(root: &Path) -> Vec<Link> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut links: Vec<Link> = entries
        .flatten()
        .filter_map(|entry| read_link(&entry.path()))
        .collect();
    links.sort_by_key(|l| l.index);
    links
}

fn read_link(dir: &Path) -> Option<Link> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let number = |file: &str| {
        let text = read(file)?;
        let text = text.trim();
        match text.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        }
    };
    Some(Link {
        name: dir.file_name()?.to_str()?.to_string(),
        index: number("ifindex")?,
        mac: read("address")
            .and_then(|a| Mac::parse(&a))
            .unwrap_or_default(),
        flags: number("flags")?,
        hardware_type: number("type")?,
        operstate: read("operstate")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        has_master: dir.join("master").exists(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> Link {
        Link {
            name: name.into(),
            index: 2,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            flags: 0x1003,
            hardware_type: 1,
            operstate: "up".into(),
            has_master: false,
        }
    }

    #[test]
    fn selects_plain_ethernet_and_skips_the_rest() {
        let s = Selection::with_defaults().unwrap();
        assert_eq!(s.check(&link("eth1")), Ok(()));
        assert_eq!(s.check(&link("enp3s0")), Ok(()));
        assert_eq!(s.check(&link("veth12ab")), Err(Skip::Excluded));
        assert_eq!(s.check(&link("cali1234")), Err(Skip::Excluded));
        assert_eq!(s.check(&link("kube-ipvs0")), Err(Skip::Excluded));
        assert_eq!(
            s.check(&Link {
                flags: 0x1002,
                ..link("eth1")
            }),
            Err(Skip::Down)
        );
        assert_eq!(
            s.check(&Link {
                operstate: "down".into(),
                ..link("eth1")
            }),
            Err(Skip::Down)
        );
        assert_eq!(
            s.check(&Link {
                flags: 0x9,
                ..link("lo")
            }),
            Err(Skip::Loopback)
        );
        assert_eq!(
            s.check(&Link {
                flags: 0x1083,
                ..link("wg0")
            }),
            Err(Skip::NoArp)
        );
        assert_eq!(
            s.check(&Link {
                has_master: true,
                ..link("eth2")
            }),
            Err(Skip::Enslaved)
        );
        assert_eq!(
            s.check(&Link {
                hardware_type: 772,
                ..link("x")
            }),
            Err(Skip::NotEthernet)
        );
        // "unknown" is what many virtual devices without carrier reporting say.
        assert_eq!(
            s.check(&Link {
                operstate: "unknown".into(),
                ..link("eth1")
            }),
            Ok(())
        );
    }

    #[test]
    fn the_exclusion_list_is_configurable() {
        let s = Selection::new(&["^eth9$"]).unwrap();
        assert_eq!(s.check(&link("veth0")), Ok(()));
        assert_eq!(s.check(&link("eth9")), Err(Skip::Excluded));
        assert!(Selection::new(&["("]).is_err());
    }

    #[test]
    fn scans_this_namespace() {
        // Every Linux namespace has a loopback; it is found and skipped.
        let links = scan(Path::new("/sys/class/net"));
        let lo = links.iter().find(|l| l.name == "lo").unwrap();
        assert_eq!(
            Selection::with_defaults().unwrap().check(lo),
            Err(Skip::Loopback)
        );
    }
}
