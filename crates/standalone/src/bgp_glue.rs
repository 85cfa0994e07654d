//! From the validated config and this node's announcements to what the BGP speaker is
//! told: one entry per BGPPeer that applies to this node (a session is kept up even with
//! nothing to announce, as MetalLB does), with the routes to send on it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use oxlb_announce::Announcements;
use oxlb_config::selector::any_matches;
use oxlb_config::{Community, Config, Peer, PeerAddress};

/// What the speaker should run: per peer name, its settings and routes.
pub type DesiredSessions = BTreeMap<
    String,
    (
        oxlb_bgp::PeerSettings,
        BTreeMap<IpNet, oxlb_bgp::RouteAttributes>,
    ),
>;

/// Why a BGPPeer that applies to this node gets no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSkip {
    /// `interface:` (unnumbered BGP) needs link-local discovery oxlb run does not do yet.
    Unnumbered { peer: String, interface: String },
    /// No router ID: none configured and none could be derived.
    NoRouterId { peer: String },
}

impl std::fmt::Display for SessionSkip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionSkip::Unnumbered { peer, interface } => write!(
                f,
                "BGPPeer {peer}: unnumbered peering on interface {interface} is not supported by \
                 oxlb run yet; give peerAddress instead"
            ),
            SessionSkip::NoRouterId { peer } => write!(
                f,
                "BGPPeer {peer}: no routerID configured and this node has no IPv4 address to \
                 use as one; set spec.routerID"
            ),
        }
    }
}

/// `fallback_router_id(peer_address)`: the router ID to use when the BGPPeer gives none
/// (MetalLB uses the node's IPv4 address). Returns the sessions and the peers skipped.
pub fn desired_sessions(
    config: &Config,
    node_labels: &BTreeMap<String, String>,
    announcements: &Announcements,
    fallback_router_id: impl Fn(&IpAddr) -> Option<Ipv4Addr>,
) -> (DesiredSessions, Vec<SessionSkip>) {
    let mut sessions = DesiredSessions::new();
    let mut skipped = Vec::new();
    for peer in config
        .peers
        .values()
        .filter(|p| any_matches(&p.node_selectors, node_labels))
    {
        let address = match &peer.address {
            PeerAddress::Ip(address) => *address,
            PeerAddress::Interface(interface) => {
                skipped.push(SessionSkip::Unnumbered {
                    peer: peer.name.clone(),
                    interface: interface.clone(),
                });
                continue;
            }
        };
        let Some(router_id) = peer.router_id.or_else(|| fallback_router_id(&address)) else {
            skipped.push(SessionSkip::NoRouterId {
                peer: peer.name.clone(),
            });
            continue;
        };
        let routes = announcements
            .bgp
            .get(&peer.name)
            .map(|routes| {
                routes
                    .iter()
                    .map(|(prefix, attributes)| (*prefix, route_attributes(attributes)))
                    .collect()
            })
            .unwrap_or_default();
        sessions.insert(
            peer.name.clone(),
            (settings(peer, address, router_id), routes),
        );
    }
    (sessions, skipped)
}

fn settings(peer: &Peer, address: IpAddr, router_id: Ipv4Addr) -> oxlb_bgp::PeerSettings {
    let peer_asn = match peer.peer_asn {
        oxlb_config::PeerAsn::Fixed(asn) => oxlb_bgp::PeerAsn::Fixed(asn),
        oxlb_config::PeerAsn::DynamicInternal => oxlb_bgp::PeerAsn::DynamicInternal,
        oxlb_config::PeerAsn::DynamicExternal => oxlb_bgp::PeerAsn::DynamicExternal,
    };
    let mut settings =
        oxlb_bgp::PeerSettings::new(peer.name.clone(), peer.my_asn, peer_asn, address, router_id);
    settings.peer_port = peer.port;
    settings.source_address = peer.source_address;
    settings.hold_time = peer.hold_time;
    settings.keepalive_time = peer.keepalive_time;
    settings.connect_retry_time = peer.connect_time;
    settings.password = peer.password.clone();
    settings.ebgp_multihop = peer.ebgp_multihop;
    settings.graceful_restart = peer.graceful_restart;
    // A session carries its own family, both with dualStackAddressFamily (RFC 4760).
    settings.ipv4 = address.is_ipv4() || peer.dual_stack_address_family;
    settings.ipv6 = address.is_ipv6() || peer.dual_stack_address_family;
    settings
}

fn route_attributes(attributes: &oxlb_announce::RouteAttributes) -> oxlb_bgp::RouteAttributes {
    let mut out = oxlb_bgp::RouteAttributes {
        local_pref: attributes.local_pref,
        ..Default::default()
    };
    for community in &attributes.communities {
        match *community {
            Community::Standard(value) => {
                out.communities.insert(value);
            }
            Community::Large(a, b, c) => {
                out.large_communities.insert((a, b, c));
            }
        }
    }
    out
}

/// The address this host would send from to reach `peer` (either family): a route
/// lookup by connecting a UDP socket, which sends nothing. Used for the router ID
/// fallback and as the local end of BFD sessions.
pub fn local_address_toward(peer: &IpAddr) -> Option<IpAddr> {
    let bind = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket
        .connect(std::net::SocketAddr::new(*peer, 3784))
        .ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// The IPv4 address this host would send from to reach an IPv4 `peer`.
pub fn local_ipv4_toward(peer: &IpAddr) -> Option<Ipv4Addr> {
    match local_address_toward(peer)? {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}
