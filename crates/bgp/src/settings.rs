//! Plain settings the caller hands to the speaker (no dependency on oxlb-config: the
//! binary maps its `Config` onto these).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub type PeerName = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAsn {
    Fixed(u32),
    /// `dynamicASN: internal`: whatever AS the peer opens with, which must be ours.
    DynamicInternal,
    /// `dynamicASN: external`: whatever AS the peer opens with, which must differ.
    DynamicExternal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    pub name: PeerName,
    pub local_asn: u32,
    pub peer_asn: PeerAsn,
    pub peer_address: IpAddr,
    pub peer_port: u16,
    pub source_address: Option<IpAddr>,
    /// Zero disables keepalives and the hold timer (RFC 4271 §4.2).
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    /// Upper bound of the connect retry backoff (MetalLB `connectTime`).
    pub connect_retry_time: Duration,
    pub router_id: Ipv4Addr,
    /// TCP MD5 signature (RFC 2385).
    pub password: Option<String>,
    pub ebgp_multihop: bool,
    pub graceful_restart: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// IPv6 next hop for IPv6 routes on an IPv4 session (dual-stack address family),
    /// sent alone. Without it the speaker uses the node's own IPv6 addresses on the
    /// interface toward the peer (global, plus link-local when on-link), and withholds
    /// the IPv6 routes when there are none (never the IPv4-mapped session address,
    /// which routers accept but cannot install).
    pub ipv6_next_hop: Option<std::net::Ipv6Addr>,
    /// Unnumbered BGP (the BGPPeer's `interface`): the session goes to whatever router
    /// advertises itself on this interface, over IPv6 link-local; `peer_address` is then
    /// unspecified (`::`) and the speaker sends our Router Advertisements on it.
    pub interface: Option<String>,
    /// The Linux VRF (its master device's name) the session runs in; `None`: the
    /// default VRF. The socket is bound to it, so the source address and next hop come
    /// from the VRF's interfaces ([`crate::vrf`]).
    pub vrf: Option<String>,
}

impl PeerSettings {
    /// Defaults MetalLB uses for everything but the identity of the session.
    pub fn new(
        name: impl Into<String>,
        local_asn: u32,
        peer_asn: PeerAsn,
        peer_address: IpAddr,
        router_id: Ipv4Addr,
    ) -> PeerSettings {
        PeerSettings {
            name: name.into(),
            local_asn,
            peer_asn,
            peer_address,
            peer_port: 179,
            source_address: None,
            hold_time: Duration::from_secs(90),
            keepalive_time: Duration::from_secs(30),
            connect_retry_time: Duration::from_secs(10),
            router_id,
            password: None,
            ebgp_multihop: false,
            graceful_restart: false,
            ipv4: true,
            ipv6: true,
            ipv6_next_hop: None,
            interface: None,
            vrf: None,
        }
    }
}

/// What one prefix carries besides ORIGIN / AS_PATH / NEXT_HOP. Ordered so routes with
/// identical attributes group together for packing.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttributes {
    /// Sent to iBGP peers only (RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<u32>,
    pub large_communities: BTreeSet<(u32, u32, u32)>,
    /// Weighted ECMP: sent as the link bandwidth extended community of `weight` units
    /// ([`crate::packet::link_bandwidth`]); `None` sends no such community.
    pub link_bandwidth: Option<u32>,
}
