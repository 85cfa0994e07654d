//! `BFDProfile` (metallb.io/v1beta1): BFD session settings a BGPPeer can refer to.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of the BFD session (RFC 5880) optionally attached to a BGP session.
/// Intervals are in milliseconds. Unset fields take the defaults noted on each.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    doc = "BFDProfile represents the settings of the bfd session that can be optionally associated with a BGP session.",
    printcolumn(
        name = "Passive Mode",
        type_ = "boolean",
        json_path = ".spec.passiveMode"
    ),
    printcolumn(
        name = "Transmit Interval",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive Interval",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    )
)]
pub struct BFDProfileSpec {
    /// Minimum interval this system can receive control packets at (ms). Default 300.
    #[serde(
        rename = "receiveInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Minimum interval this system wants to send control packets at (ms). Default 300.
    #[serde(
        rename = "transmitInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Packets missed before the session is declared down. Default 3.
    #[serde(
        rename = "detectMultiplier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Minimum echo receive interval (ms). Default 50.
    #[serde(
        rename = "echoInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Echo mode (single hop only). Default false.
    #[serde(rename = "echoMode", default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer's control packets before replying. Default false.
    #[serde(
        rename = "passiveMode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub passive_mode: Option<bool>,
    /// Multi-hop only: minimum TTL expected on incoming control packets. Default 254.
    #[serde(
        rename = "minimumTtl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}
