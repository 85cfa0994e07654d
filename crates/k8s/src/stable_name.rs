//! Names derived from hashes that must not change between builds: status object names
//! (an object renamed by an upgrade would be written anew and the old one deleted, a
//! needless churn of every status object in the cluster) and event actions (the API
//! server aggregates events by action, so a renamed action starts a new series).
//!
//! The hash is SHA-256 over a documented byte encoding, so a name is a contract that
//! any release, and any tool, can compute: `std`'s `DefaultHasher` is explicitly not
//! stable across Rust releases and was used here before.

use oxlb_announce::ServiceKey;
use sha2::{Digest, Sha256};

/// The name of a node's status object for a Service: `{prefix}-{hex}`, where hex is the
/// first 8 bytes of SHA-256 over `node NUL namespace NUL name`, in lower-case hex
/// (16 characters). NUL separates the fields because no Kubernetes name contains it,
/// so two different triples never encode alike. At most 63 characters for any
/// prefix of up to 46, whatever the lengths of node and Service names.
pub fn status_name(prefix: &str, node: &str, key: &ServiceKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.namespace.as_bytes());
    hasher.update([0u8]);
    hasher.update(key.name.as_bytes());
    format!("{prefix}-{}", hex(&hasher.finalize()[..8]))
}

/// A short tag for a text (an event action's suffix): the first 4 bytes of its SHA-256
/// in lower-case hex (8 characters).
pub fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..4])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(namespace: &str, name: &str) -> ServiceKey {
        ServiceKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The names are the documented contract: these values must never change.
    #[test]
    fn status_names_are_pinned() {
        assert_eq!(
            status_name("l2", "node-a", &key("default", "web")),
            "l2-f0c1b336bd00881b"
        );
        assert_eq!(
            status_name("bgp", "node-a", &key("default", "web")),
            "bgp-f0c1b336bd00881b"
        );
        assert_eq!(
            status_name("l2", "worker-1.example.com", &key("kube-system", "dns")),
            "l2-15101323f108de3c"
        );
    }

    #[test]
    fn fields_do_not_run_together() {
        // Without a separator these two would hash the same bytes.
        assert_ne!(
            status_name("l2", "ab", &key("c", "d")),
            status_name("l2", "a", &key("bc", "d"))
        );
        assert_ne!(
            status_name("l2", "a", &key("b", "cd")),
            status_name("l2", "a", &key("bc", "d"))
        );
    }

    #[test]
    fn short_hash_is_pinned() {
        // SHA-256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2, appendix B.1).
        assert_eq!(short_hash("abc"), "ba7816bf");
    }

    #[test]
    fn names_fit_kubernetes_limits() {
        let long = "n".repeat(253);
        let name = status_name("bgp", &long, &key(&"s".repeat(63), &"x".repeat(63)));
        assert_eq!(name.len(), "bgp-".len() + 16);
    }
}
