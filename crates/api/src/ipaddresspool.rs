//! `IPAddressPool` (metallb.io/v1beta1): the addresses MetalLB may hand out.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LabelSelector;

/// A pool of IP addresses that can be allocated to LoadBalancer services.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "IPAddressPoolStatus",
    doc = "IPAddressPool represents a pool of IP addresses that can be allocated to LoadBalancer services.",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses")
)]
pub struct IPAddressPoolSpec {
    /// A list of IP address ranges over which MetalLB has authority. Each range is either
    /// a CIDR prefix (`192.168.10.0/24`) or an explicit `start-end` range of IPs, IPv4 or
    /// IPv6. No range may overlap any range of any pool.
    pub addresses: Vec<String>,

    /// When false, the pool is used only for services that ask for it by annotation or
    /// for one of its IPs explicitly.
    #[serde(
        rename = "autoAssign",
        default = "default_true",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_assign: Option<bool>,

    /// Do not hand out IPv4 addresses ending in .0 or .255.
    #[serde(
        rename = "avoidBuggyIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = false))]
    pub avoid_buggy_ips: Option<bool>,

    /// Restricts the pool to some namespaces and/or services, with a priority (lower
    /// number preferred, unset = used last).
    #[serde(
        rename = "serviceAllocation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_allocation: Option<ServiceAllocation>,
}

fn default_true() -> Option<bool> {
    Some(true)
}

/// Pins a pool to namespaces and/or services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceAllocation {
    /// Priority of this pool for matching services: lower is preferred; 0 (unset) last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Namespaces whose services may use this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Label selectors for namespaces whose services may use this pool.
    #[serde(
        rename = "namespaceSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace_selectors: Option<Vec<LabelSelector>>,
    /// Label selectors for services that may use this pool.
    #[serde(
        rename = "serviceSelectors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_selectors: Option<Vec<LabelSelector>>,
}

/// Counts of assigned and available addresses, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IPAddressPoolStatus {
    #[serde(rename = "assignedIPv4", default)]
    pub assigned_ipv4: i64,
    #[serde(rename = "assignedIPv6", default)]
    pub assigned_ipv6: i64,
    #[serde(rename = "availableIPv4", default)]
    pub available_ipv4: i64,
    #[serde(rename = "availableIPv6", default)]
    pub available_ipv6: i64,
}
