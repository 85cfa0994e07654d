//! From the validated config and this node's announcements to what the BGP speaker is
//! told: one entry per BGPPeer that applies to this node (a session is kept up even with
//! nothing to announce, as MetalLB does), with the routes to send on it.

use std::collections::{BTreeMap, BTreeSet};
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
    /// No router ID: none configured and none could be derived.
    NoRouterId { peer: String },
}

impl std::fmt::Display for SessionSkip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionSkip::NoRouterId { peer } => write!(
                f,
                "BGPPeer {peer}: no routerID configured and none could be derived (no IPv4 \
                 address, no route toward the peer); set spec.routerID"
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
        // Unnumbered: the speaker finds the router on the interface (IPv6 link-local,
        // from its Router Advertisements); the address stays unspecified until then.
        let address = match &peer.address {
            PeerAddress::Ip(address) => *address,
            PeerAddress::Interface(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
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
        // localASN (FRR's local-as ... no-prepend replace-as): the peer sees only it.
        oxlb_bgp::PeerSettings::new(peer.name.clone(), peer.session_asn(), peer_asn, address, router_id);
    settings.peer_port = peer.port;
    settings.source_address = peer.source_address;
    settings.hold_time = peer.hold_time;
    settings.keepalive_time = peer.keepalive_time;
    settings.connect_retry_time = peer.connect_time;
    settings.password = peer.password.clone();
    settings.ebgp_multihop = peer.ebgp_multihop;
    settings.graceful_restart = peer.graceful_restart;
    // Inside the VRF or not at all: the speaker binds the socket to the VRF device and
    // reports a VRF that does not exist on this node as the session's error.
    settings.vrf = peer.vrf.clone().filter(|v| !v.is_empty());
    // A session carries its own family, both with dualStackAddressFamily (RFC 4760).
    // An unnumbered session carries both: IPv4 with the IPv6 link-local next hop
    // (RFC 8950), as FRR's interface neighbours do.
    let unnumbered = match &peer.address {
        PeerAddress::Interface(interface) => Some(interface.clone()),
        PeerAddress::Ip(_) => None,
    };
    settings.ipv4 = address.is_ipv4() || peer.dual_stack_address_family || unnumbered.is_some();
    settings.ipv6 = address.is_ipv6() || peer.dual_stack_address_family;
    settings.interface = unnumbered;
    settings
}

fn route_attributes(attributes: &oxlb_announce::RouteAttributes) -> oxlb_bgp::RouteAttributes {
    let mut out = oxlb_bgp::RouteAttributes {
        local_pref: attributes.local_pref,
        link_bandwidth: attributes.weight,
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
    local_address_toward_in(peer, None)
}

/// [`local_address_toward`] inside VRF `vrf` (`None`: the default VRF): the socket is
/// bound to the VRF device first, so the VRF's table and interfaces answer.
pub fn local_address_toward_in(peer: &IpAddr, vrf: Option<&str>) -> Option<IpAddr> {
    let bind = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    if let Some(vrf) = vrf {
        use std::os::fd::AsRawFd;
        oxlb_bgp::vrf::bind_to_device(socket.as_raw_fd(), vrf).ok()?;
    }
    socket
        .connect(std::net::SocketAddr::new(*peer, 3784))
        .ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// Where a router ID that no BGPPeer gave comes from (logged, so the choice is visible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterIdSource {
    /// The node's IPv4 InternalIP: what MetalLB uses.
    NodeInternalIp,
    /// The IPv4 address this host sends from toward the peer, or toward another BGPPeer.
    LocalIpv4,
    /// The node has no IPv4 address at all: the low 32 bits of its IPv6 address toward
    /// the peer. MetalLB refuses the session here; oxlb keeps IPv6-only nodes working.
    Ipv6LowBits(std::net::Ipv6Addr),
}

/// The router ID of a session whose BGPPeer names none. The BGP Identifier is a 32-bit
/// value that only has to be unique within the AS and non-zero (RFC 6286 §2.1), so an
/// IPv6-only node still has one: in order, the Node's IPv4 InternalIP (MetalLB's
/// choice), the IPv4 address this host sends from toward the peer or toward any other
/// BGPPeer (`ipv4_peers`), then the low 32 bits of the IPv6 address it sends from
/// toward the peer (distinct between nodes on one /64 with distinct interface IDs).
/// `toward(ip)`: the local address routing picks to reach `ip`.
pub fn fallback_router_id(
    peer: &IpAddr,
    node_ipv4: Option<Ipv4Addr>,
    ipv4_peers: &[IpAddr],
    toward: impl Fn(&IpAddr) -> Option<IpAddr>,
) -> Option<(Ipv4Addr, RouterIdSource)> {
    if let Some(ip) = node_ipv4 {
        return Some((ip, RouterIdSource::NodeInternalIp));
    }
    let local_v4 = std::iter::once(peer)
        .chain(ipv4_peers)
        .filter(|p| p.is_ipv4())
        .find_map(|p| match toward(p)? {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        });
    if let Some(v4) = local_v4 {
        return Some((v4, RouterIdSource::LocalIpv4));
    }
    match toward(peer)? {
        IpAddr::V6(v6) => {
            let low = u128::from(v6) as u32;
            (low != 0).then(|| (Ipv4Addr::from(low), RouterIdSource::Ipv6LowBits(v6)))
        }
        IpAddr::V4(v4) => Some((v4, RouterIdSource::LocalIpv4)),
    }
}

/// The sessions of [`desired_sessions`] with the router IDs that no BGPPeer gave taken
/// from [`fallback_router_id`], each derived ID logged once (info; a warning when it
/// comes from an IPv6 address). One per shell (`oxlb run`, `oxlb speaker`), kept across
/// applies so the log does not repeat.
#[derive(Debug, Default)]
pub struct RouterIds {
    logged: BTreeSet<(IpAddr, Ipv4Addr)>,
}

impl RouterIds {
    /// `node_ipv4`: the Node's IPv4 InternalIP, if known. `toward(ip)`: the local
    /// address routing picks to reach `ip` ([`local_address_toward`] in the shells).
    pub fn desired_sessions(
        &mut self,
        config: &Config,
        node_labels: &BTreeMap<String, String>,
        announcements: &Announcements,
        node_ipv4: Option<Ipv4Addr>,
        toward: impl Fn(&IpAddr) -> Option<IpAddr>,
    ) -> (DesiredSessions, Vec<SessionSkip>) {
        let ipv4_peers: Vec<IpAddr> = config
            .peers
            .values()
            .filter_map(|p| match p.address {
                PeerAddress::Ip(ip) if ip.is_ipv4() => Some(ip),
                _ => None,
            })
            .collect();
        // An unnumbered peer's address is `::` until found: no route lookup toward it
        // (the kernel would answer with loopback, ::1, the same on every node).
        let toward = |ip: &IpAddr| {
            if ip.is_unspecified() {
                None
            } else {
                toward(ip)
            }
        };
        let derived = std::cell::RefCell::new(Vec::new());
        let result = desired_sessions(config, node_labels, announcements, |peer| {
            let (id, source) = fallback_router_id(peer, node_ipv4, &ipv4_peers, toward)?;
            derived.borrow_mut().push((*peer, id, source));
            Some(id)
        });
        for (peer, id, source) in derived.into_inner() {
            if self.logged.insert((peer, id)) {
                match source {
                    RouterIdSource::Ipv6LowBits(v6) => tracing::warn!(
                        %peer, router_id = %id,
                        "no routerID in the BGPPeer and this node has no IPv4 address: router ID \
                         {id} is the low 32 bits of {v6}; set spec.routerID to choose one"
                    ),
                    _ => tracing::info!(
                        %peer, router_id = %id, ?source,
                        "router ID (no routerID in the BGPPeer)"
                    ),
                }
            }
        }
        result
    }
}

/// The IPv4 address this host would send from to reach an IPv4 `peer`.
pub fn local_ipv4_toward(peer: &IpAddr) -> Option<Ipv4Addr> {
    match local_address_toward(peer)? {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A host with IPv4 10.0.0.5 and IPv6 fd00::a:b:c:5.
    fn dual(peer: &IpAddr) -> Option<IpAddr> {
        Some(if peer.is_ipv4() {
            ip("10.0.0.5")
        } else {
            ip("fd00::a:b:c:5")
        })
    }

    /// What both shells call: a BGPPeer without routerID on an IPv6-only node (no IPv4
    /// InternalIP, no IPv4 route) still gets its session, with the low 32 bits of the
    /// node's IPv6 address toward the peer; one with a routerID keeps it.
    #[test]
    fn router_ids_give_an_ipv6_only_node_its_sessions() {
        let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: r6, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 'fd00::1'}\n\
                    ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: fixed, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 'fd00::2', routerID: 10.9.9.9}\n";
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let config = oxlb_config::build_config(&snapshot).config.unwrap();
        let v6_only = |_: &IpAddr| Some(ip("fd00::a:b:c:5"));
        let mut ids = RouterIds::default();
        let (sessions, skipped) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            None,
            v6_only,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let id = |name: &str| sessions.get(name).map(|(s, _)| s.router_id);
        assert_eq!(id("r6"), Some(Ipv4Addr::new(0, 12, 0, 5)));
        assert_eq!(id("fixed"), Some(Ipv4Addr::new(10, 9, 9, 9)));
        // Without any address toward the peer there is nothing to derive it from.
        let (sessions, skipped) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            None,
            |_| None,
        );
        assert_eq!(sessions.len(), 1);
        assert!(matches!(
            skipped.as_slice(),
            [SessionSkip::NoRouterId { .. }]
        ));
    }

    /// A BGPPeer with `vrf` gets its session inside that VRF (the speaker binds it to
    /// the VRF device), never one in the default VRF; `oxlb check` notes what return
    /// traffic needs; the peer beside it stays in the default VRF.
    #[test]
    fn a_vrf_peer_gets_its_session_in_that_vrf() {
        let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: red, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, vrf: red}\n\
                    ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: plain, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2}\n";
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let built = oxlb_config::build_config(&snapshot);
        let notes: Vec<_> = built
            .warnings
            .iter()
            .filter(|d| d.code == oxlb_config::Code::VrfReturnTraffic)
            .collect();
        assert_eq!(notes.len(), 1, "{:?}", built.warnings);
        let config = built.config.unwrap();
        let mut ids = RouterIds::default();
        let (sessions, skipped) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            None,
            dual,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let vrf = |name: &str| sessions.get(name).map(|(s, _)| s.vrf.clone());
        assert_eq!(vrf("red"), Some(Some("red".into())));
        assert_eq!(vrf("plain"), Some(None));
    }

    /// An unnumbered BGPPeer (`interface`, no address) gets its session: the speaker
    /// finds the router on that interface, and the session carries IPv4 (with the IPv6
    /// link-local next hop, RFC 8950) and IPv6, with no warning from the config.
    #[test]
    fn an_unnumbered_peer_gets_a_session_on_its_interface() {
        let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: up, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, interface: eth1}\n";
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let built = oxlb_config::build_config(&snapshot);
        assert!(built.warnings.is_empty(), "{:?}", built.warnings);
        let config = built.config.unwrap();
        let mut ids = RouterIds::default();
        let (sessions, skipped) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            Some(Ipv4Addr::new(10, 0, 0, 5)),
            dual,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let settings = &sessions["up"].0;
        assert_eq!(settings.interface.as_deref(), Some("eth1"));
        assert_eq!(settings.peer_address, ip("::"));
        assert!(settings.ipv4 && settings.ipv6);
        assert_eq!(settings.router_id, Ipv4Addr::new(10, 0, 0, 5));
        // No IPv4 anywhere: no router ID is made up from a lookup toward `::`.
        let loopback = |_: &IpAddr| Some(ip("::1"));
        let (sessions, skipped) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            None,
            loopback,
        );
        assert!(sessions.is_empty());
        assert_eq!(skipped, [SessionSkip::NoRouterId { peer: "up".into() }]);
    }

    /// MetalLB (main) `localASN`: the session presents it instead of myASN (FRR's
    /// `local-as ASN no-prepend replace-as`), so the OPEN and the AS_PATH carry it.
    #[test]
    fn local_asn_is_the_sessions_own_as() {
        let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: r, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, localASN: 65410, routerID: 10.9.9.9}\n\
                    ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                    metadata: {name: plain, namespace: metallb-system}\n\
                    spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2, routerID: 10.9.9.9}\n";
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        let config = oxlb_config::build_config(&snapshot).config.unwrap();
        let mut ids = RouterIds::default();
        let (sessions, _) = ids.desired_sessions(
            &config,
            &BTreeMap::new(),
            &Announcements::default(),
            None,
            dual,
        );
        assert_eq!(sessions["r"].0.local_asn, 65410);
        assert_eq!(sessions["plain"].0.local_asn, 64500);
    }

    #[test]
    fn the_nodes_ipv4_internal_ip_comes_first() {
        let node = Some(Ipv4Addr::new(192, 168, 1, 9));
        assert_eq!(
            fallback_router_id(&ip("fd00::1"), node, &[], dual),
            Some((
                Ipv4Addr::new(192, 168, 1, 9),
                RouterIdSource::NodeInternalIp
            ))
        );
    }

    #[test]
    fn an_ipv6_peer_takes_the_hosts_ipv4_address_toward_another_peer() {
        assert_eq!(
            fallback_router_id(&ip("fd00::1"), None, &[ip("10.0.0.1")], dual),
            Some((Ipv4Addr::new(10, 0, 0, 5), RouterIdSource::LocalIpv4))
        );
        assert_eq!(
            fallback_router_id(&ip("10.0.0.1"), None, &[], dual),
            Some((Ipv4Addr::new(10, 0, 0, 5), RouterIdSource::LocalIpv4))
        );
    }

    #[test]
    fn an_ipv6_only_node_still_gets_a_router_id() {
        let v6_only = |peer: &IpAddr| peer.is_ipv6().then(|| ip("fd00::a:b:c:5"));
        assert_eq!(
            fallback_router_id(&ip("fd00::1"), None, &[], v6_only),
            Some((
                Ipv4Addr::new(0, 0xc, 0, 5),
                RouterIdSource::Ipv6LowBits("fd00::a:b:c:5".parse().unwrap())
            ))
        );
        // Nothing to derive from (no route at all): no session rather than a zero ID.
        assert_eq!(
            fallback_router_id(&ip("fd00::1"), None, &[], |_| None),
            None
        );
        let zero = |_: &IpAddr| Some(ip("fd00:1::"));
        assert_eq!(fallback_router_id(&ip("fd00::1"), None, &[], zero), None);
    }
}
