//! The state file: everything a later `lab status` / `lab down` needs, written
//! atomically once the lab is up. `down` also works without it (names carry a prefix).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouterKind {
    Frr,
    Bird,
}

impl RouterKind {
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Frr => "frr",
            RouterKind::Bird => "bird",
        }
    }
}

impl std::str::FromStr for RouterKind {
    type Err = Error;
    fn from_str(text: &str) -> Result<RouterKind, Error> {
        match text {
            "frr" => Ok(RouterKind::Frr),
            "bird" => Ok(RouterKind::Bird),
            other => Err(Error::Config(format!(
                "unknown router {other:?}: choose frr or bird"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub index: usize,
    pub namespace: String,
    pub ipv4: String,
    pub ipv6: String,
    /// Pids of `oxlb run` and the HTTP backend (informational: `down` kills every
    /// process in the namespace anyway).
    pub pids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub prefix: String,
    pub state_dir: PathBuf,
    pub router: RouterKind,
    pub ws_namespace: String,
    pub router_namespace: String,
    pub lan_namespace: String,
    pub nodes: Vec<NodeState>,
    /// The `-f` paths every node's `oxlb run` reads.
    #[serde(default)]
    pub config_paths: Vec<PathBuf>,
    /// A second `-f` path with the objects the lab added to a user's configuration
    /// (Node objects, the `memberlist` Secret), when it lacked them.
    #[serde(default)]
    pub added_path: Option<PathBuf>,
    /// What the lab added or kept for Layer 2 membership, in words.
    #[serde(default)]
    pub added: Vec<String>,
    pub oxlb_bin: PathBuf,
    /// BIRD's control socket (BIRD router only).
    pub bird_socket: Option<PathBuf>,
}

pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

impl State {
    pub fn write(&self) -> Result<(), Error> {
        let path = state_file(&self.state_dir);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Setup(format!("cannot encode the lab state: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub fn read(state_dir: &Path) -> Result<State, Error> {
        let path = state_file(state_dir);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            Error::NotUp(format!(
                "no lab is up ({} not found): start one with `oxlb lab up`",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Setup(format!(
                "{} is damaged ({e}): `oxlb lab down` removes the lab anyway",
                path.display()
            ))
        })
    }
}
