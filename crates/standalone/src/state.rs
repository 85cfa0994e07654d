//! The assignments a host made, persisted so a restart (or a reordering of the files)
//! never moves an IP: at start every held IP is re-claimed before anything new is
//! allocated, exactly as a cluster re-reads Service statuses.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "assignments.json";
/// A state file larger than this is not ours (one entry is well under 200 bytes).
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// What a Service held last time: its IPs (in ingress order) and the pool they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAssignment {
    pub ips: Vec<IpAddr>,
    pub pool: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    /// Keyed by `namespace/name`.
    pub services: BTreeMap<String, HeldAssignment>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(flatten)]
    assignments: Assignments,
}

#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
}

#[derive(Debug)]
pub enum StateError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Corrupt {
        path: PathBuf,
        reason: String,
    },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StateError::Corrupt { path, reason } => write!(
                f,
                "{}: {reason}; move the file away to start without remembered assignments \
                 (services may then get different IPs)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

impl StateStore {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|error| StateError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        Ok(StateStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The last saved assignments; none saved yet is an empty set. A file that cannot be
    /// read is an error, never silently ignored: forgetting it could move IPs.
    pub fn load(&self) -> Result<Assignments, StateError> {
        let path = self.path();
        let io = |error| StateError::Io {
            path: path.clone(),
            error,
        };
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Assignments::default());
            }
            Err(error) => return Err(io(error)),
        };
        if metadata.len() > MAX_STATE_BYTES {
            return Err(StateError::Corrupt {
                path,
                reason: format!("{} bytes is more than a state file can be", metadata.len()),
            });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let file: StateFile =
            serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        if file.version != 1 {
            return Err(StateError::Corrupt {
                path,
                reason: format!("unknown state version {}", file.version),
            });
        }
        Ok(file.assignments)
    }

    /// Replaces the saved assignments atomically: a crash leaves either the old or the
    /// new file, never a torn one (write a temporary file, fsync, rename, fsync the dir).
    pub fn save(&self, assignments: &Assignments) -> Result<(), StateError> {
        let path = self.path();
        let temporary = self.dir.join(format!(".{FILE_NAME}.tmp"));
        let io = |error| StateError::Io {
            path: temporary.clone(),
            error,
        };
        let text = serde_json::to_vec_pretty(&StateFile {
            version: 1,
            assignments: assignments.clone(),
        })
        .map_err(|error| StateError::Corrupt {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        let mut file = std::fs::File::create(&temporary).map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(io)?;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| StateError::Io {
                path: self.dir.clone(),
                error,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.load().unwrap(), Assignments::default());
        let mut assignments = Assignments::default();
        assignments.services.insert(
            "default/web".into(),
            HeldAssignment {
                ips: vec!["192.168.10.1".parse().unwrap(), "fd00::1".parse().unwrap()],
                pool: "lan".into(),
            },
        );
        store.save(&assignments).unwrap();
        assert_eq!(store.load().unwrap(), assignments);
        assert!(!dir.path().join("state/.assignments.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{not json").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("move the file away"), "{error}");
    }
}
