//! The second chance on this node (issue 19): connections an ECMP router re-hashes to
//! another node (a drain, a node failure or return, a Local Service's endpoints
//! moving) keep working, because a node hands the packets of a connection it does not
//! know to the node that does ([`oxlb_nft::second_chance`] has the rules and why).
//!
//! The same in both shells: the plan is a pure function of the config (every address
//! pool's prefixes) and the host's links; the ruleset is programmed when either
//! changes, replaced in one transaction, and left in place when oxlb stops (a restart
//! must not unhook conntrack: connections made meanwhile would then be unknown).
//! Turned off (`--second-chance=false`), the tables are removed.

use std::net::IpAddr;

use oxlb_config::Config;
use oxlb_nft::Plan;
use tracing::{info, warn};

/// `--second-chance` and `--second-chance-rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub enabled: bool,
    /// Copies per second at most (all connections together).
    pub copies_per_second: u32,
    /// False: never touch nf_tables, neither to program nor to remove (a driver run
    /// inside another program's namespace, such as the in-process tests on the
    /// machine's own namespace).
    pub manage_nf_tables: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            enabled: true,
            copies_per_second: 20_000,
            manage_nf_tables: true,
        }
    }
}

impl Options {
    /// Leaves the host's nf_tables alone (see [`Options::manage_nf_tables`]).
    pub fn unmanaged() -> Options {
        Options {
            enabled: false,
            manage_nf_tables: false,
            ..Options::default()
        }
    }
}

/// What the node's status shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    /// Not applied yet (no config yet).
    #[default]
    Pending,
    /// Turned off; the tables are removed.
    Off,
    /// No address pool: nothing to cover.
    NoPools,
    Active {
        /// The prefixes covered and the links copies go out on.
        prefixes: Vec<String>,
        ipv4_links: usize,
    },
    /// The kernel refused (or nf_tables is missing): connections re-hashed by the
    /// router are reset as without it.
    Failed { error: String },
}

/// The pools' prefixes: what a re-hashed connection can be addressed to.
pub fn plan(config: &Config, options: &Options) -> Plan {
    let prefixes = config.pools.values().flat_map(|pool| {
        pool.ranges
            .iter()
            .flat_map(|r| oxlb_config::build::parse::range_to_cidrs(r.start(), r.end()))
    });
    Plan::new(prefixes, options.copies_per_second)
}

/// The shell: programs the ruleset when the plan or the links change.
#[derive(Debug, Default)]
pub struct SecondChance {
    options: Options,
    /// The plan of the config in force, without the links (they are read each time).
    wanted: Option<Plan>,
    applied: Option<Plan>,
    /// Whether the tables were removed (turned off) already.
    removed: bool,
    state: State,
}

impl SecondChance {
    pub fn new(options: Options) -> SecondChance {
        SecondChance {
            options,
            ..Default::default()
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Makes the kernel hold the plan for `config` (quick: one netlink batch, only
    /// when something changed).
    pub fn apply(&mut self, config: &Config) {
        if !self.options.manage_nf_tables {
            self.state = State::Off;
            return;
        }
        if !self.options.enabled {
            if !self.removed {
                self.removed = true;
                self.state = State::Off;
                let present = [
                    oxlb_nft::netlink::Family::Ipv4,
                    oxlb_nft::netlink::Family::Ipv6,
                ]
                .into_iter()
                .any(|f| oxlb_nft::table_exists(f, oxlb_nft::second_chance::TABLE).unwrap_or(true));
                if !present {
                    return;
                }
                let (batch, steps) = oxlb_nft::remove(1);
                match oxlb_nft::send(batch, &steps) {
                    Ok(Ok(())) => {
                        info!("second chance off (--second-chance=false): its tables are removed")
                    }
                    Ok(Err(e)) => {
                        warn!("second chance off, but its tables could not be removed: {e}")
                    }
                    Err(e) => warn!("second chance off, but nf_tables could not be reached: {e}"),
                }
                self.state = State::Off;
            }
            return;
        }
        let wanted = plan(config, &self.options);
        self.wanted = Some(wanted.clone());
        self.program(wanted);
    }

    /// Reads the host's links again and reprograms if they changed (an address that
    /// came after the last apply, an interface re-created with a new index). Both
    /// shells call it every second; it costs one interface dump.
    pub fn recheck(&mut self) {
        if let Some(wanted) = self.wanted.clone() {
            self.program(wanted);
        }
    }

    fn program(&mut self, wanted: Plan) {
        let links = match oxlb_nft::links_here() {
            Ok(links) => links,
            Err(e) => {
                self.fail(format!("cannot list this host's interfaces: {e}"));
                return;
            }
        };
        let plan = wanted.with_links(links);
        if self.applied.as_ref() == Some(&plan) {
            return;
        }
        let (batch, steps) = oxlb_nft::install(&plan, 1);
        match oxlb_nft::send(batch, &steps) {
            Ok(Ok(())) => {
                let prefixes: Vec<String> = plan
                    .ipv4
                    .iter()
                    .map(|n| n.to_string())
                    .chain(plan.ipv6.iter().map(|n| n.to_string()))
                    .collect();
                if plan.is_empty() {
                    info!("second chance: no address pool, nothing to cover");
                    self.state = State::NoPools;
                } else {
                    info!(
                        prefixes = %prefixes.join(","),
                        ipv4_links = plan.links.len(),
                        copies_per_second = plan.copies_per_second,
                        "second chance on: TCP connections to these prefixes that the router re-hashes to \
                         another node are handed to the node that has them (nft list table ip oxlb)"
                    );
                    self.state = State::Active {
                        prefixes,
                        ipv4_links: plan.links.len(),
                    };
                }
                self.applied = Some(plan);
            }
            Ok(Err(refused)) => self.fail(refused.to_string()),
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&mut self, error: String) {
        let hint = if error.contains("Operation not permitted") {
            " (oxlb needs CAP_NET_ADMIN for it)"
        } else {
            ""
        };
        let error = format!("{error}{hint}");
        if self.state
            != (State::Failed {
                error: error.clone(),
            })
        {
            warn!(
                "second chance unavailable: {error}; connections the router re-hashes to another \
                 node are reset, as without it"
            );
        }
        self.state = State::Failed { error };
        // Tried again at the next apply.
        self.applied = None;
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Pending => write!(f, "not applied yet"),
            State::Off => write!(f, "off (--second-chance=false)"),
            State::NoPools => write!(f, "on, no address pool to cover"),
            State::Active {
                prefixes,
                ipv4_links,
            } => write!(
                f,
                "on for {} ({ipv4_links} IPv4 link(s)): connections the router re-hashes to \
                 another node are handed to the node that has them",
                prefixes.join(", ")
            ),
            State::Failed { error } => write!(
                f,
                "UNAVAILABLE: {error}; connections the router re-hashes are reset"
            ),
        }
    }
}

/// Whether `ip` lies in a prefix the plan covers (for `oxlb explain`).
pub fn covers(plan: &Plan, ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => plan.ipv4.iter().any(|n| n.contains(v4)),
        IpAddr::V6(v6) => plan.ipv6.iter().any(|n| n.contains(v6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_every_pool_range_and_nothing_else() {
        let yaml = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: a, namespace: metallb-system}
spec:
  addresses: ["10.79.0.0/24", "10.80.0.10-10.80.0.13", "fd00:79::/64"]
"#;
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let config = oxlb_config::build_config(&snapshot).config.unwrap();
        let plan = plan(&config, &Options::default());
        let shown: Vec<String> = plan.ipv4.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.79.0.0/24", "10.80.0.10/31", "10.80.0.12/31"]);
        assert_eq!(plan.ipv6.len(), 1);
        assert!(covers(&plan, &"10.80.0.13".parse().unwrap()));
        assert!(!covers(&plan, &"10.80.0.14".parse().unwrap()));
    }
}
