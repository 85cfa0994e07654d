//! `BGPPeer` (metallb.io/v1beta2, the storage version): a BGP session to a router.

use k8s_openapi::api::core::v1::SecretReference;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::LabelSelector;

/// A BGP neighbour the speakers on the selected nodes connect to.
///
/// Rules one object decides alone are CEL rules in the CRD (the API server rejects the
/// object); `oxlb check` enforces the same rules and those that need other objects.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta2",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "BGPPeer is the Schema for the peers API.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "string", json_path = ".spec.peerASN"),
    printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
    printcolumn(
        name = "Multi Hops",
        type_ = "string",
        json_path = ".spec.ebgpMultiHop"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.peerASN) != has(self.dynamicASN)").message("exactly one of peerASN and dynamicASN must be set"),
    validation = Rule::new("has(self.peerAddress) != has(self.interface)").message("exactly one of peerAddress and interface must be set"),
    validation = Rule::new("!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) <= duration(self.holdTime)").message("keepaliveTime must not be greater than holdTime"),
    validation = Rule::new("!has(self.password) || !has(self.passwordSecret) || !has(self.passwordSecret.name)").message("password and passwordSecret are mutually exclusive"),
    // MetalLB refuses ebgpMultiHop only when peerASN equals myASN (its check compares the
    // two); with dynamicASN: internal it accepts it. `!has(self.peerASN) ||` also keeps
    // an absent field from adding an evaluation error ("no such key").
    validation = Rule::new("!has(self.ebgpMultiHop) || !self.ebgpMultiHop || !has(self.peerASN) || self.peerASN != self.myASN").message("ebgpMultiHop is only for eBGP sessions (peerASN different from myASN)")
)]
pub struct BGPPeerSpec {
    /// AS number of the local end of the session.
    #[serde(rename = "myASN")]
    pub my_asn: u32,

    /// AS number expected from the remote end. Exactly one of `peerASN` and
    /// `dynamicASN` must be set.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u32>,

    /// Learn the peer's AS from its OPEN: `internal` (must equal myASN) or `external`
    /// (must differ).
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicASNMode>,

    /// Address to dial. Exactly one of `peerAddress` and `interface` must be set.
    #[serde(
        rename = "peerAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub peer_address: Option<String>,

    /// Node interface for unnumbered BGP (IPv6 link-local peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,

    /// Source address for the session.
    #[serde(
        rename = "sourceAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_address: Option<String>,

    /// TCP port to dial, 1..16384 as MetalLB v0.15's v1beta2 schema; default 179.
    /// (v1beta1 still allows 0, read as 179.)
    #[serde(
        rename = "peerPort",
        default = "default_port",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 16384))]
    pub peer_port: Option<u16>,

    /// Requested hold time (RFC 4271 §4.2), a duration such as `90s`: 0 or 3s..65535s.
    /// When only keepaliveTime is given, hold = 3 × keepalive. Default 90s.
    #[serde(rename = "holdTime", default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("duration(self) == duration('0s') || duration(self) >= duration('3s')").message("holdTime must be 0 or at least 3s"),
        // The OPEN message carries the hold time in 16 bits of seconds.
        validation = Rule::new("duration(self) <= duration('65535s')").message("holdTime must be at most 65535s")
    )]
    pub hold_time: Option<String>,

    /// Requested keepalive interval, at most holdTime. When only holdTime is given,
    /// keepalive = hold / 3.
    #[serde(
        rename = "keepaliveTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    // Without this, a keepaliveTime that is no duration at all passes the API server
    // whenever holdTime is unset (the rule comparing the two is not evaluated then).
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s')").message("keepaliveTime must be a duration of 0s or more"))]
    pub keepalive_time: Option<String>,

    /// How long to wait between connection attempts, whole seconds in 1s..65535s.
    #[serde(
        rename = "connectTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(
        validation = Rule::new("duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535").message("connect time should be between 1 seconds to 65535"),
        validation = Rule::new("duration(self).getMilliseconds() % 1000 == 0").message("connect time should contain a whole number of seconds")
    )]
    pub connect_time: Option<String>,

    /// BGP router ID to advertise (an IPv4 address).
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,

    /// Only connect from nodes matching one of these selectors; empty = all nodes.
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_selectors: Option<Vec<LabelSelector>>,

    /// TCP MD5 (RFC 2385) password. Prefer passwordSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,

    /// A `kubernetes.io/basic-auth` Secret in MetalLB's namespace whose key `password`
    /// holds the TCP MD5 password.
    #[serde(
        rename = "passwordSecret",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub password_secret: Option<SecretReference>,

    /// Name of the BFDProfile for this session; unset = no BFD.
    #[serde(
        rename = "bfdProfile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bfd_profile: Option<String>,

    /// Graceful restart (RFC 4724). Immutable: changing it needs a session restart.
    #[serde(
        rename = "enableGracefulRestart",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("EnableGracefulRestart cannot be changed after creation"))]
    pub enable_graceful_restart: Option<bool>,

    /// The eBGP peer is several hops away (not allowed for iBGP).
    #[serde(
        rename = "ebgpMultiHop",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ebgp_multi_hop: Option<bool>,

    /// Host VRF whose interface the session uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,

    /// Deprecated in favour of dualStackAddressFamily; no effect in oxlb.
    #[serde(rename = "disableMP", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub disable_mp: Option<bool>,

    /// Exchange both IPv4 and IPv6 prefixes on this session (MP-BGP, RFC 4760).
    #[serde(
        rename = "dualStackAddressFamily",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = false))]
    pub dual_stack_address_family: Option<bool>,
    /// The AS this node presents to this peer instead of myASN (FRR's
    /// `local-as ASN no-prepend replace-as`: the peer sees only this AS, in the OPEN and
    /// in the AS_PATH). 0 or absent: myASN. (MetalLB main branch.)
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<u32>,
}

fn default_port() -> Option<u16> {
    Some(179)
}

/// `dynamicASN`: which kind of session a peer with an unknown AS must be.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicASNMode {
    #[serde(rename = "internal")]
    Internal,
    #[serde(rename = "external")]
    External,
}
