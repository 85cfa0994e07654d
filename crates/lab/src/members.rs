//! Layer 2 membership for the lab's nodes, as a real deployment has it: every speaker
//! reads the same `memberlist` Secret (the key that authenticates the gossip) and finds
//! the other speakers through their Node objects' InternalIP. Without both, each node's
//! `oxlb run` knows no other speaker, elects itself, and every node answers ARP for
//! every Layer 2 IP.
//!
//! What the configuration already has is kept; the lab adds only what is missing and
//! says so (`up` prints the notes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oxlb_config::memberlist::{SECRET_NAME, key_in, random_key, secret_yaml};
use oxlb_config::{DEFAULT_NAMESPACE, Snapshot, load_paths};

use crate::error::Error;
use crate::plan::{node_name, node_v4, node_v6};

/// Files the lab wrote, and what it did, for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Added {
    /// A path every node's `oxlb run` must read besides the configuration (`None`: the
    /// objects went into the configuration's own directory, or nothing was missing).
    pub extra_path: Option<PathBuf>,
    pub notes: Vec<String>,
}

/// Looks at the configuration at `config_paths` and writes the missing Node objects
/// (for nodes `1..=nodes`) and the missing `memberlist` Secret into `dir`.
/// `own_dir`: `dir` is the configuration's own directory (the built-in config), so
/// nothing extra has to be passed to `oxlb run`.
pub fn complete(
    config_paths: &[PathBuf],
    nodes: usize,
    dir: &Path,
    own_dir: bool,
) -> Result<Added, Error> {
    let snapshot = load_paths(config_paths, DEFAULT_NAMESPACE).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Error::Config(format!(
            "{}: {}",
            display_paths(config_paths),
            text.join("; ")
        ))
    })?;
    let mut added = Added::default();
    let mut wrote = false;
    std::fs::create_dir_all(dir)?;

    let present: BTreeSet<String> = snapshot
        .nodes
        .iter()
        .filter_map(|n| n.object.metadata.name.clone())
        .collect();
    let missing: Vec<usize> = (1..=nodes)
        .filter(|i| !present.contains(&node_name(*i)))
        .collect();
    let kept: Vec<String> = (1..=nodes)
        .map(node_name)
        .filter(|n| present.contains(n))
        .collect();
    if !kept.is_empty() {
        added.notes.push(format!(
            "Node objects {} from your configuration kept (their InternalIP is what the \
             other speakers use to reach them; the lab gives nodeN 172.31.0.(10+N))",
            kept.join(", ")
        ));
    }
    if !missing.is_empty() {
        let path = dir.join("lab-nodes.yaml");
        let text: Vec<String> = missing.iter().map(|i| node_yaml(*i)).collect();
        std::fs::write(&path, text.join("---\n"))?;
        wrote = true;
        let names: Vec<String> = missing.iter().map(|i| node_name(*i)).collect();
        added.notes.push(format!(
            "added Node objects {} with their lab InternalIPs, so the speakers find each \
             other: {}",
            names.join(", "),
            path.display()
        ));
    }

    if has_secret(&snapshot) {
        added.notes.push(format!(
            "Secret {SECRET_NAME:?} from your configuration kept (the Layer 2 speakers' shared key)"
        ));
    } else {
        let key = random_key()?;
        let text = secret_yaml(DEFAULT_NAMESPACE, &key)
            .map_err(|e| Error::Setup(format!("cannot write the memberlist Secret: {e}")))?;
        let path = dir.join("memberlist.yaml");
        std::fs::write(&path, text)?;
        wrote = true;
        added.notes.push(format!(
            "added a Secret {SECRET_NAME:?} with a new random key (as `oxlb memberlist-secret` \
             makes), shared by every node's Layer 2 membership: {}",
            path.display()
        ));
    }
    if wrote && !own_dir {
        added.extra_path = Some(dir.to_path_buf());
    }
    Ok(added)
}

/// The Secret as `oxlb run` looks for it: its name in the configuration namespace, with
/// a non-empty key.
fn has_secret(snapshot: &Snapshot) -> bool {
    key_in(snapshot).is_some()
}

/// A Node object as the kubelet would register node `index` (IPv4 InternalIP first:
/// the speakers reach each other there).
fn node_yaml(index: usize) -> String {
    let name = node_name(index);
    format!(
        "apiVersion: v1\n\
         kind: Node\n\
         metadata:\n\
         \x20 name: {name}\n\
         \x20 labels:\n\
         \x20   kubernetes.io/hostname: {name}\n\
         \x20   kubernetes.io/os: linux\n\
         status:\n\
         \x20 addresses:\n\
         \x20   - type: InternalIP\n\
         \x20     address: {}\n\
         \x20   - type: InternalIP\n\
         \x20     address: {}\n\
         \x20   - type: Hostname\n\
         \x20     address: {name}\n",
        node_v4(index),
        node_v6(index)
    )
}

/// `a.yaml, b.yaml`: the paths of a configuration, for messages.
pub fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("oxlb-lab-members-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_built_in_config_gets_nodes_and_a_secret_in_its_own_directory() {
        let dir = temp("builtin");
        std::fs::write(dir.join("lab.yaml"), crate::DEFAULT_CONFIG_YAML).unwrap();
        let added = complete(std::slice::from_ref(&dir), 3, &dir, true).unwrap();
        assert_eq!(added.extra_path, None);
        let snapshot = load_paths(std::slice::from_ref(&dir), DEFAULT_NAMESPACE).unwrap();
        let names: Vec<_> = snapshot
            .nodes
            .iter()
            .map(|n| n.object.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["node1", "node2", "node3"]);
        let ip = &snapshot.nodes[1]
            .object
            .status
            .as_ref()
            .unwrap()
            .addresses
            .as_ref()
            .unwrap()[0];
        assert_eq!(
            (ip.type_.as_str(), ip.address.as_str()),
            ("InternalIP", "172.31.0.12")
        );
        assert!(has_secret(&snapshot));
        assert_eq!(added.notes.len(), 2, "{:?}", added.notes);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_users_nodes_and_secret_are_kept_and_only_the_rest_added() {
        let dir = temp("user");
        let user = dir.join("user.yaml");
        let key = random_key().unwrap();
        let text = format!(
            "{}---\n{}",
            node_yaml(1),
            secret_yaml(DEFAULT_NAMESPACE, &key).unwrap()
        );
        std::fs::write(&user, text).unwrap();
        let extra = dir.join("added");
        let added = complete(std::slice::from_ref(&user), 2, &extra, false).unwrap();
        assert_eq!(added.extra_path.as_deref(), Some(extra.as_path()));
        assert!(!extra.join("memberlist.yaml").exists());
        let snapshot = load_paths(std::slice::from_ref(&extra), DEFAULT_NAMESPACE).unwrap();
        let names: Vec<_> = snapshot
            .nodes
            .iter()
            .map(|n| n.object.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["node2"]);
        assert!(
            added
                .notes
                .iter()
                .any(|n| n.contains("node1") && n.contains("kept"))
        );
        assert!(
            added
                .notes
                .iter()
                .any(|n| n.contains("Secret") && n.contains("kept"))
        );

        // Nothing missing: nothing written, nothing extra to read.
        let all = dir.join("all");
        let added = complete(std::slice::from_ref(&user), 1, &all, false).unwrap();
        assert_eq!(added.extra_path, None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
