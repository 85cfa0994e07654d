//! What the router needs, independent of its configuration language: the flavours only
//! render a [`Plan`]. Building it is where every "cannot be rendered" error is found.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use oxlb_config::{BfdProfile, Config, Family, Peer, PeerAddress, PeerAsn};

use crate::error::Error;
use crate::prefixes::pool_prefixes;

/// Everything a router flavour renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The router's own AS (each BGPPeer's peerASN, or the node's AS for dynamicASN internal).
    pub router_asn: u32,
    pub router_id: Ipv4Addr,
    /// One per BGPPeer that points at this router, in name order.
    pub peers: Vec<RouterPeer>,
    /// How many equal paths the router may install per prefix (ECMP): one per node.
    pub max_paths: usize,
    /// The nodes' ASes differ between peers: eBGP multipath must accept paths through
    /// different neighbouring ASes (FRR `bgp bestpath as-path multipath-relax`).
    pub multipath_relax: bool,
    /// Some BGPAdvertisement toward this router has `oxlb.io/weighted-ecmp: "true"`:
    /// the nodes' paths carry the link bandwidth community and the router should split
    /// traffic by it (unequal-cost multipath).
    pub weighted_ecmp: bool,
    /// Things the generator left out, said in the output as comments.
    pub notes: Vec<String>,
}

impl Plan {
    /// The BFD profiles used by at least one peer, by name.
    pub fn bfd_profiles(&self) -> BTreeMap<&str, &BfdProfile> {
        self.peers
            .iter()
            .filter_map(|p| p.bfd.as_ref())
            .map(|b| (b.name.as_str(), b))
            .collect()
    }

    pub fn any_family(&self, family: Family) -> bool {
        self.peers.iter().any(|p| p.families.contains(&family))
    }

    pub fn any_ibgp(&self) -> bool {
        self.peers.iter().any(|p| p.ibgp)
    }

    /// The VRFs of the peers, the default VRF (`None`) first.
    pub fn vrfs(&self) -> BTreeSet<Option<&str>> {
        self.peers.iter().map(|p| p.vrf.as_deref()).collect()
    }

    /// This plan with only the peers in `vrf` (one BGP instance of the router).
    pub fn in_vrf(&self, vrf: Option<&str>) -> Plan {
        Plan {
            peers: self
                .peers
                .iter()
                .filter(|p| p.vrf.as_deref() == vrf)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

/// The router's side of one BGPPeer: the nodes are its neighbors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPeer {
    /// The BGPPeer's name in the config.
    pub name: String,
    /// `name` reduced to `[a-z0-9-]`, usable in every flavour's identifiers.
    pub ident: String,
    /// The nodes' AS (the BGPPeer's myASN): the neighbors' remote AS.
    pub node_asn: u32,
    pub ibgp: bool,
    /// The router's address the nodes connect to (the BGPPeer's peerAddress).
    pub router_address: IpAddr,
    /// (node name, node address), in the order given.
    pub neighbors: Vec<(String, IpAddr)>,
    pub password: Option<String>,
    pub multihop: bool,
    pub bfd: Option<BfdProfile>,
    /// Address families carried on these sessions.
    pub families: Vec<Family>,
    /// Accepted prefixes (each with every longer prefix inside it).
    pub prefixes_v4: Vec<IpNet>,
    pub prefixes_v6: Vec<IpNet>,
    pub hold_time_s: u64,
    pub keepalive_s: u64,
    /// Seconds between connection attempts (the BGPPeer's connectTime).
    pub connect_retry_s: u64,
    pub graceful_restart: bool,
    pub port: u16,
    /// The BGPPeer's `vrf`: the nodes peer from this Linux VRF, so the router's side
    /// of these sessions goes into a VRF too (same name, unless the user renames it).
    pub vrf: Option<String>,
}

impl RouterPeer {
    /// IPv4 routes over IPv6 sessions (dualStackAddressFamily on an IPv6 peer): they
    /// carry IPv6 next hops, which the router must accept by offering the Extended Next
    /// Hop capability (RFC 8950 §3).
    pub fn ipv4_over_ipv6(&self) -> bool {
        self.router_address.is_ipv6() && self.families.contains(&Family::V4)
    }

    /// IPv6 routes over IPv4 sessions (dualStackAddressFamily on an IPv4 peer): their
    /// next hop is the node's IPv6 address on the link (RFC 4760 §3), nothing to offer.
    pub fn ipv6_over_ipv4(&self) -> bool {
        self.router_address.is_ipv4() && self.families.contains(&Family::V6)
    }

    pub fn prefixes(&self, family: Family) -> &[IpNet] {
        match family {
            Family::V4 => &self.prefixes_v4,
            Family::V6 => &self.prefixes_v6,
        }
    }
}

/// Builds the plan; see [`crate::generate`] for the arguments.
pub fn plan(
    config: &Config,
    nodes: &[(String, IpAddr)],
    router_address: Option<IpAddr>,
    router_asn: Option<u32>,
) -> Result<Plan, Error> {
    let mut notes = Vec::new();
    let with_address: Vec<(&Peer, IpAddr)> = config
        .peers
        .values()
        .filter_map(|p| match &p.address {
            PeerAddress::Ip(ip) => Some((p, *ip)),
            PeerAddress::Interface(interface) => {
                notes.push(format!(
                    "BGPPeer {} is unnumbered (interface {interface}): its router side \
                     (interface neighbours) comes with --link NODE=ROUTER-IFNAME",
                    p.name
                ));
                None
            }
        })
        .collect();
    if with_address.is_empty() {
        return Err(Error::NoPeers);
    }
    let chosen: Vec<(&Peer, IpAddr)> = match router_address {
        Some(router) => {
            let chosen: Vec<_> = with_address
                .iter()
                .filter(|(_, ip)| *ip == router)
                .copied()
                .collect();
            if chosen.is_empty() {
                return Err(Error::NoPeerForRouter {
                    router,
                    known: with_address.iter().map(|(_, ip)| *ip).collect(),
                });
            }
            chosen
        }
        None => with_address,
    };
    if nodes.is_empty() {
        return Err(Error::NoNodes);
    }

    let router_asn = resolve_router_asn(&chosen, router_asn)?;
    let router_id = router_address
        .into_iter()
        .chain(chosen.iter().map(|(_, ip)| *ip))
        .find_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .ok_or(Error::NoRouterId)?;

    for (node, address) in nodes {
        let family = Family::of(address);
        if !chosen.iter().any(|(_, ip)| Family::of(ip) == family) {
            return Err(Error::NodeFamily {
                node: node.clone(),
                address: *address,
            });
        }
    }

    let mut seen: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut peers = Vec::new();
    for (peer, address) in &chosen {
        let family = Family::of(address);
        let neighbors: Vec<(String, IpAddr)> = nodes
            .iter()
            .filter(|(_, ip)| Family::of(ip) == family)
            .cloned()
            .collect();
        if neighbors.is_empty() {
            return Err(Error::PeerWithoutNodes {
                peer: peer.name.clone(),
                family: family_name(family),
            });
        }
        for (_, ip) in &neighbors {
            if let Some(first) = seen.insert(*ip, peer.name.clone()) {
                return Err(Error::DuplicateNeighbor {
                    address: *ip,
                    first,
                    second: peer.name.clone(),
                });
            }
        }
        if let Some(password) = &peer.password
            && password
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(Error::Password {
                peer: peer.name.clone(),
            });
        }
        if peer.port != 179 {
            notes.push(format!(
                "BGPPeer {} connects to port {}: make the router listen there \
                 (it is not a per-neighbor setting on most routers)",
                peer.name, peer.port
            ));
        }
        let mut families = vec![family];
        if peer.dual_stack_address_family {
            let other = match family {
                Family::V4 => Family::V6,
                Family::V6 => Family::V4,
            };
            families.push(other);
        }
        let prefixes = peer_prefixes(config, &peer.name);
        let bfd = peer
            .bfd_profile
            .as_ref()
            .and_then(|name| config.bfd_profiles.get(name))
            .cloned();
        peers.push(RouterPeer {
            name: peer.name.clone(),
            ident: ident(&peer.name),
            node_asn: peer.session_asn(),
            ibgp: peer.session_asn() == router_asn,
            router_address: *address,
            neighbors,
            password: peer.password.clone(),
            multihop: peer.ebgp_multihop && peer.session_asn() != router_asn,
            bfd,
            families,
            prefixes_v4: of_family(&prefixes, Family::V4),
            prefixes_v6: of_family(&prefixes, Family::V6),
            hold_time_s: peer.hold_time.as_secs(),
            keepalive_s: peer.keepalive_time.as_secs(),
            connect_retry_s: peer.connect_time.as_secs().max(1),
            graceful_restart: peer.graceful_restart,
            port: peer.port,
            vrf: peer.vrf.clone().filter(|v| !v.is_empty()),
        });
    }
    let accepts_something = peers
        .iter()
        .any(|p| p.families.iter().any(|f| !p.prefixes(*f).is_empty()));
    if !accepts_something {
        return Err(Error::NoPrefixes);
    }
    let node_asns: BTreeSet<u32> = peers.iter().map(|p| p.node_asn).collect();
    let weighted_ecmp = config.bgp_advertisements.values().any(|a| {
        a.weighted_ecmp && (a.peers.is_empty() || peers.iter().any(|p| a.peers.contains(&p.name)))
    });
    Ok(Plan {
        weighted_ecmp,
        router_asn,
        router_id,
        max_paths: nodes
            .iter()
            .map(|(name, _)| name)
            .collect::<BTreeSet<_>>()
            .len()
            .clamp(1, 64),
        multipath_relax: node_asns.len() > 1,
        peers,
        notes,
    })
}

/// The router's AS: what each chosen peer says, all agreeing (and agreeing with the
/// explicit one when given).
fn resolve_router_asn(chosen: &[(&Peer, IpAddr)], explicit: Option<u32>) -> Result<u32, Error> {
    let mut found: Option<(String, u32)> = explicit.map(|asn| ("--router-asn".to_string(), asn));
    for (peer, _) in chosen {
        let asn = match peer.peer_asn {
            PeerAsn::Fixed(asn) => asn,
            PeerAsn::DynamicInternal => peer.session_asn(),
            PeerAsn::DynamicExternal => match explicit {
                Some(asn) if asn != peer.my_asn => continue,
                _ => {
                    return Err(Error::RouterAsnUnknown {
                        peer: peer.name.clone(),
                    });
                }
            },
        };
        match &found {
            Some((first, first_asn)) if *first_asn != asn => {
                return Err(Error::ConflictingRouterAsn {
                    first: (first.clone(), *first_asn),
                    second: (peer.name.clone(), asn),
                });
            }
            Some(_) => {}
            None => found = Some((peer.name.clone(), asn)),
        }
    }
    found.map(|(_, asn)| asn).ok_or(Error::NoPeers)
}

/// The prefixes of every pool some BGPAdvertisement announces to `peer`, at the
/// shortest aggregation length used for that pool.
/// The prefixes of one address family, in order (a peer's IPv4 and IPv6 lists).
pub(crate) fn of_family(prefixes: &BTreeSet<IpNet>, family: Family) -> Vec<IpNet> {
    prefixes
        .iter()
        .filter(|n| match family {
            Family::V4 => matches!(n, IpNet::V4(_)),
            Family::V6 => matches!(n, IpNet::V6(_)),
        })
        .copied()
        .collect()
}

fn peer_prefixes(config: &Config, peer: &str) -> BTreeSet<IpNet> {
    let mut lengths: BTreeMap<&str, (u8, u8)> = BTreeMap::new();
    for adv in config.bgp_advertisements.values() {
        if !adv.peers.is_empty() && !adv.peers.contains(peer) {
            continue;
        }
        for pool in &adv.pools {
            let entry = lengths.entry(pool.as_str()).or_insert((32, 128));
            entry.0 = entry.0.min(adv.aggregation_length_v4);
            entry.1 = entry.1.min(adv.aggregation_length_v6);
        }
    }
    let mut out = BTreeSet::new();
    for (pool, (v4, v6)) in lengths {
        if let Some(pool) = config.pools.get(pool) {
            out.extend(pool_prefixes(pool, v4, v6));
        }
    }
    let all: Vec<IpNet> = out.iter().copied().collect();
    out.retain(|n| !all.iter().any(|o| o != n && o.contains(n)));
    out
}

pub(crate) fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// A name made of `[a-z0-9-]` only: safe as an FRR/VyOS/RouterOS word; BIRD maps `-`.
pub(crate) fn ident(name: &str) -> String {
    let out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "peer".into() } else { out }
}
