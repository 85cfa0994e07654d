//! `oxlb lab`: a throw-away network on one machine to learn oxlb, rehearse a real
//! configuration against a real router daemon before touching the real router, and test.
//!
//! ```text
//!  workstation ──veth── router (FRR or BIRD) ──veth── LAN bridge ──veths── node1..nodeN
//!   (curl)               BGP sessions to every node    (own ns)            oxlb run + HTTP backend
//! ```
//!
//! Every piece is a network namespace named `<prefix>-…` (default `oxlblab-ws`,
//! `oxlblab-router`, `oxlblab-lan`, `oxlblab-node1`…); nothing touches the root
//! namespace. The addresses are in [`plan`]. A state file (default
//! `/run/oxlb-lab/state.json`) lets later commands find the lab; `down` also finds it by
//! prefix after a crash.
//!
//! The CLI is a thin layer: `oxlb lab up|status|curl|fail|heal|down|demo|chaos` map to
//! [`Lab::up`], [`Lab::status`], [`Lab::curl`], [`Lab::fail`], [`Lab::heal`],
//! [`down`], [`demo`], [`chaos::run`]; the hidden `oxlb lab-backend NODE` to
//! [`backend::serve`], `oxlb lab-load` and `oxlb lab-relay` (chaos's request load and
//! lossy link) to [`chaos::load::run`] and [`chaos::relay::run`].

pub mod backend;
mod build;
pub mod chaos;
mod demo;
mod down;
mod error;
mod exec;
mod layer2;
mod members;
pub mod plan;
mod preflight;
mod router;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use oxlb_config::Config;

pub use build::DEFAULT_CONFIG_YAML;
pub use demo::{DemoOptions, demo};
pub use error::Error;
pub use preflight::is_root;
pub use state::{NodeState, RouterKind, State};

/// Loads configuration paths (files or directories, as given to `oxlb run -f`) into a
/// validated [`Config`]; the message says what is wrong. The CLI passes the config
/// crate's loader; tests can pass a closure that builds the model directly.
pub type ConfigLoader = Box<dyn Fn(&[PathBuf]) -> Result<Config, String> + Send + Sync>;

/// What `lab up` builds.
pub struct LabOptions {
    /// Number of nodes, 1..=[`plan::MAX_NODES`]. Default 3.
    pub nodes: usize,
    pub router: RouterKind,
    /// The user's configuration (`-f`, as many files or directories as `oxlb check`
    /// and `oxlb run` take); empty writes [`DEFAULT_CONFIG_YAML`].
    pub config: Vec<PathBuf>,
    /// The `oxlb` executable run on every node (`run`, `status`): normally the running
    /// executable (`std::env::current_exe()`).
    pub oxlb_bin: PathBuf,
    /// The executable started as `BACKEND_BIN lab-backend NODE` for the HTTP backend:
    /// normally `oxlb_bin` as well.
    pub backend_bin: PathBuf,
    pub load_config: ConfigLoader,
    /// Namespace name prefix (default [`plan::DEFAULT_PREFIX`]).
    pub prefix: String,
    /// Where the state file, generated configs and logs go (default
    /// [`plan::DEFAULT_STATE_DIR`]).
    pub state_dir: PathBuf,
}

impl LabOptions {
    /// Defaults: 3 nodes, FRR, the built-in config, `oxlb_bin` also as the backend.
    pub fn new(oxlb_bin: PathBuf, load_config: ConfigLoader) -> LabOptions {
        LabOptions {
            nodes: 3,
            router: RouterKind::Frr,
            config: Vec::new(),
            backend_bin: oxlb_bin.clone(),
            oxlb_bin,
            load_config,
            prefix: plan::DEFAULT_PREFIX.to_string(),
            state_dir: PathBuf::from(plan::DEFAULT_STATE_DIR),
        }
    }
}

/// A lab that is up.
#[derive(Debug, Clone)]
pub struct Lab {
    state: State,
}

impl Lab {
    /// Builds the lab; on any failure everything made so far is removed again.
    pub fn up(options: LabOptions) -> Result<Lab, Error> {
        build::up(options).map(|state| Lab { state })
    }

    /// The lab described by the default state file.
    pub fn load() -> Result<Lab, Error> {
        Lab::load_from(Path::new(plan::DEFAULT_STATE_DIR))
    }

    pub fn load_from(state_dir: &Path) -> Result<Lab, Error> {
        State::read(state_dir).map(|state| Lab { state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// What was built: namespaces, addresses, where the config and logs are.
    pub fn describe(&self) -> String {
        build::describe(&self.state)
    }

    /// The router's BGP sessions and routes (with ECMP paths), the router's and the
    /// workstation's neighbour tables, which node owns each Layer 2 IP (and who really
    /// answers ARP for it), and every node's `oxlb status`.
    pub fn status(&self) -> String {
        let mut out = format!("=== router ({}) ===\n", self.state.router.name());
        out.push_str(&router::status(&self.state));
        out.push_str("=== workstation neighbour table (ip neigh) ===\n");
        match exec::run_in(&self.state.ws_namespace, &["ip", "neigh", "show"]) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("(unavailable: {e})\n")),
        }
        out.push_str("=== Layer 2 owners (each node's oxlb status; ARP from the router) ===\n");
        out.push_str(&layer2::report(&self.state));
        let oxlb = self.state.oxlb_bin.to_string_lossy().into_owned();
        for node in &self.state.nodes {
            out.push_str(&format!("=== {} (oxlb status) ===\n", node.name));
            match exec::run_in(
                &node.namespace,
                &["timeout", "10", &oxlb, "status", "--addr", "127.0.0.1:7472"],
            ) {
                Ok(text) => out.push_str(&text),
                Err(e) => out.push_str(&format!("(unavailable: {e})\n")),
            }
        }
        out
    }

    /// An HTTP GET of `http://IP/` from the workstation, through the router; the body
    /// (the answering node's name and a newline).
    pub fn curl(&self, ip: IpAddr) -> Result<String, Error> {
        let url = match ip {
            IpAddr::V4(v4) => format!("http://{v4}/"),
            IpAddr::V6(v6) => format!("http://[{v6}]/"),
        };
        build::in_ws(
            &self.state,
            &["curl", "-sS", "--max-time", "5", "--noproxy", "*", &url],
        )
    }

    /// The nodes that answer ARP for `ip` on the LAN (requests sent from the router;
    /// a reply from a MAC that is no node's appears as the MAC). A correct lab has
    /// exactly one.
    pub fn arp_answerers(&self, ip: Ipv4Addr) -> Result<BTreeSet<String>, Error> {
        layer2::arp_answerers(&self.state, ip)
    }

    /// Each Layer 2 IP with the nodes whose `oxlb status` says they answer for it.
    pub fn l2_claims(&self) -> BTreeMap<IpAddr, BTreeSet<String>> {
        layer2::claimed(&self.state)
    }

    /// The node the Layer 2 election picks for `ip` among `candidates`, when every
    /// candidate is eligible (the built-in configuration).
    pub fn l2_elected<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
        ip: IpAddr,
    ) -> Option<String> {
        layer2::elected(candidates, ip)
    }

    /// Cuts a node's LAN link (its port on the LAN bridge goes down, so the node loses
    /// carrier too): BGP sessions time out, Layer 2 ownership moves.
    pub fn fail(&self, node: &str) -> Result<(), Error> {
        self.set_link(node, "down")
    }

    /// Restores a node's LAN link.
    pub fn heal(&self, node: &str) -> Result<(), Error> {
        self.set_link(node, "up")
    }

    fn set_link(&self, node: &str, updown: &str) -> Result<(), Error> {
        let found = self.node(node)?;
        exec::run_in(
            &self.state.lan_namespace,
            &[
                "ip",
                "link",
                "set",
                &plan::lan_node_port(found.index),
                updown,
            ],
        )
        .map(drop)
    }

    /// A node by name (`node2`) or number (`2`).
    pub fn node(&self, node: &str) -> Result<&NodeState, Error> {
        self.state
            .nodes
            .iter()
            .find(|n| n.name == node || n.index.to_string() == node)
            .ok_or_else(|| {
                let known: Vec<&str> = self.state.nodes.iter().map(|n| n.name.as_str()).collect();
                Error::NoSuchNode(format!(
                    "no node {node:?} in the lab; nodes: {}",
                    known.join(", ")
                ))
            })
    }

    /// Removes this lab (see [`down`]).
    pub fn down(self) -> Result<Vec<String>, Error> {
        down(&self.state.prefix, &self.state.state_dir)
    }
}

/// Removes every namespace `<prefix>-*` with its processes, the router's FRR instance
/// files and the state directory. Works with no state file (after a crash) and when
/// nothing is left. Returns what was removed.
pub fn down(prefix: &str, state_dir: &Path) -> Result<Vec<String>, Error> {
    down::down(prefix, state_dir).map_err(|e| Error::Setup(format!("lab down: {e}")))
}
