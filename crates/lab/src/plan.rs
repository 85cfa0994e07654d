//! The lab's names and addresses. Everything lives inside the lab's own network
//! namespaces; nothing is configured in the root namespace.
//!
//! Address plan (private ranges: RFC 1918 172.16.0.0/12 and an RFC 4193 ULA):
//!
//! | link                      | IPv4            | IPv6              |
//! |---------------------------|-----------------|-------------------|
//! | workstation — router (WAN)| 172.31.254.0/24 | fd00:6f78:fe::/64 |
//! |   workstation             | .2              | ::2               |
//! |   router                  | .1              | ::1               |
//! | router — nodes (LAN)      | 172.31.0.0/24   | fd00:6f78::/64    |
//! |   router                  | .1              | ::1               |
//! |   nodeN                   | .(10+N)         | ::(10+N)          |
//! | default BGP pool          | 172.31.100.0/24 |                   |
//! | default Layer 2 pool      | 172.31.0.200-172.31.0.250 (on the LAN) |  |
//!
//! Nodes are AS 64500, the router AS 64501 in the default configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Namespaces are named `<prefix>-ws`, `<prefix>-router`, `<prefix>-lan`,
/// `<prefix>-nodeN`.
pub const DEFAULT_PREFIX: &str = "oxlblab";
pub const DEFAULT_STATE_DIR: &str = "/run/oxlb-lab";
/// At most this many nodes: their LAN addresses stay below the Layer 2 pool.
pub const MAX_NODES: usize = 50;

pub const WS_V4: Ipv4Addr = Ipv4Addr::new(172, 31, 254, 2);
pub const ROUTER_WAN_V4: Ipv4Addr = Ipv4Addr::new(172, 31, 254, 1);
pub const ROUTER_LAN_V4: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
pub const WS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6f78, 0xfe, 0, 0, 0, 0, 2);
pub const ROUTER_WAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6f78, 0xfe, 0, 0, 0, 0, 1);
pub const ROUTER_LAN_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6f78, 0, 0, 0, 0, 0, 1);

/// The service addresses of the built-in default configuration.
pub const DEFAULT_BGP_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 100, 10);
pub const DEFAULT_L2_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 200);

/// Interface names inside the namespaces.
pub const WAN_IF: &str = "wan0";
pub const LAN_IF: &str = "lan0";
pub const BRIDGE: &str = "br0";
/// The bridge port (in the LAN namespace) facing the router.
pub const LAN_ROUTER_PORT: &str = "router";

pub fn node_name(index: usize) -> String {
    format!("node{index}")
}

pub fn node_v4(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 31, 0, u8::try_from(10 + index).unwrap_or(u8::MAX))
}

pub fn node_v6(index: usize) -> Ipv6Addr {
    // ::11 for node1: the hex digits read like the IPv4 host part.
    let digits = u16::from_str_radix(&format!("{}", 10 + index), 16).unwrap_or(0xffff);
    Ipv6Addr::new(0xfd00, 0x6f78, 0, 0, 0, 0, 0, digits)
}

pub fn node_addresses(index: usize) -> [IpAddr; 2] {
    [IpAddr::V4(node_v4(index)), IpAddr::V6(node_v6(index))]
}

/// The bridge port (in the LAN namespace) facing node `index`: `lab fail` downs it.
pub fn lan_node_port(index: usize) -> String {
    format!("node{index}")
}

#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn ws(&self) -> String {
        format!("{}-ws", self.prefix)
    }
    pub fn router(&self) -> String {
        format!("{}-router", self.prefix)
    }
    pub fn lan(&self) -> String {
        format!("{}-lan", self.prefix)
    }
    pub fn node(&self, index: usize) -> String {
        format!("{}-{}", self.prefix, node_name(index))
    }
    /// Whether a namespace name belongs to this lab (for `down` after a crash).
    pub fn owns(&self, namespace: &str) -> bool {
        namespace
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.starts_with('-'))
    }
}
