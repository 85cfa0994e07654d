//! From a snapshot of `metallb.io` objects (and the core objects they refer to) to a
//! validated [`Config`], or every error found.
//!
//! `model` is the contract every other crate consumes: once a `Config` exists it is valid
//! (parse, don't validate), so the allocator, the announcer and the speakers never
//! re-check it.
//!
//! Entry points: [`load_paths`] / [`load_str`] (YAML → [`Snapshot`]), then
//! [`build_config`] (Snapshot → `Config` or errors, plus warnings).

pub mod build;
pub mod diagnostic;
pub mod legacy;
pub mod load;
pub mod memberlist;
pub mod model;
pub mod quarantine;
pub mod schema;
pub mod selector;
pub mod snapshot;
pub mod string_map;
pub mod synthetic;

pub use diagnostic::{Code, Diagnostic, Origin, Severity};
pub use load::{load_bytes, load_paths, load_str};
pub use model::*;
pub use quarantine::{
    Built, Decision, LAST_VALID_ANNOTATION, LastValid, ObjectKind, Quarantined, build_config,
    build_config_with,
};
pub use selector::{LabelSelector, Requirement, SelectorOperator};
pub use snapshot::{DEFAULT_NAMESPACE, Snapshot, Sourced};
pub use string_map::StringMap;

/// What `oxlb check` and `oxlb explain` say about a BGPPeer in VRF `vrf`: the session
/// runs in the VRF, and what the host needs so that replies to clients that came in
/// through the VRF leave through it (docs/vrf.md; MetalLB #1983, #2326).
pub fn vrf_return_traffic_note(vrf: &str) -> String {
    format!(
        "the session runs inside VRF {vrf} (its socket is bound to the VRF device; source \
         address and next hop come from the VRF's interfaces); clients reaching the \
         service IPs through {vrf} are answered through it only if the host routes the \
         replies there: pods behind kube-proxy need `ip rule add to POD_CIDR lookup main \
         pref 998` (the way in) and `ip rule add from BACKEND_POD_IPS lookup VRF_TABLE \
         pref 999` (the way back), a process on the host must run in the VRF (`ip vrf \
         exec {vrf} ...`) or the host set net.ipv4.tcp_l3mdev_accept=1; see docs/vrf.md"
    )
}
