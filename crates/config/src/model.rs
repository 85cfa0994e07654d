//! The validated configuration: what the allocator, the announcer and the speakers read.
//!
//! Every value here has passed validation: ranges are ordered and of one family, no two
//! pools overlap, names referred to exist, BGP timers are coherent, communities are
//! resolved from their aliases. Defaults (MetalLB's) are already filled in.
//!
//! This is a shared contract between crates: add fields freely, rename or remove only
//! with every consumer updated in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::selector::LabelSelector;

/// The whole validated configuration. Maps are keyed by object name so iteration is
/// deterministic (several standalone hosts must compute identical results).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub pools: BTreeMap<String, Pool>,
    pub peers: BTreeMap<String, Peer>,
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    pub l2_advertisements: BTreeMap<String, L2Advertisement>,
    pub bgp_advertisements: BTreeMap<String, BgpAdvertisement>,
}

/// IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// An inclusive range of addresses of one family, `start <= end`. A CIDR `a.b.c.d/n`
/// becomes the range from its network to its broadcast address (MetalLB hands out every
/// address of a CIDR, .0 and .255 included unless `avoidBuggyIPs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressRange {
    start: IpAddr,
    end: IpAddr,
}

impl AddressRange {
    /// `None` when the families differ or `start > end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<AddressRange> {
        (Family::of(&start) == Family::of(&end) && start <= end)
            .then_some(AddressRange { start, end })
    }

    pub fn from_cidr(net: ipnet::IpNet) -> AddressRange {
        AddressRange {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    pub fn start(&self) -> IpAddr {
        self.start
    }

    pub fn end(&self) -> IpAddr {
        self.end
    }

    pub fn family(&self) -> Family {
        Family::of(&self.start)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family() && self.start <= *ip && *ip <= self.end
    }

    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.family() == other.family() && self.start <= other.end && other.start <= self.end
    }

    /// Number of addresses, saturating at `u128::MAX` (a whole IPv6 /0).
    pub fn len(&self) -> u128 {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => u128::from(u32::from(e) - u32::from(s)) + 1,
            (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(e) - u128::from(s)).saturating_add(1),
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// An `IPAddressPool` (or a legacy `address-pools[]` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Sorted, non-overlapping (within and across pools).
    pub ranges: Vec<AddressRange>,
    /// The `addresses` entries as the user wrote them, for messages.
    pub addresses_as_written: Vec<String>,
    /// Default true. False: used only when a Service asks for the pool or an IP in it.
    pub auto_assign: bool,
    /// Skip IPv4 addresses ending in .0 or .255.
    pub avoid_buggy_ips: bool,
    pub service_allocation: Option<ServiceAllocation>,
    /// The pool object's labels, matched by `ipAddressPoolSelectors`.
    pub labels: BTreeMap<String, String>,
}

impl Pool {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }
}

/// `IPAddressPool.spec.serviceAllocation`: pins a pool to some namespaces / services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAllocation {
    /// Lower is preferred; 0 (unset) sorts last, as in MetalLB.
    pub priority: u32,
    pub namespaces: BTreeSet<String>,
    pub namespace_selectors: Vec<LabelSelector>,
    pub service_selectors: Vec<LabelSelector>,
}

/// An `L2Advertisement` with its pool references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Advertisement {
    pub name: String,
    /// Names of the pools this advertisement applies to (from `ipAddressPools` and
    /// `ipAddressPoolSelectors`; both empty in the object = every pool).
    pub pools: BTreeSet<String>,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// Empty = every eligible interface.
    pub interfaces: Vec<String>,
    /// Services this advertisement applies to (any selector matching their labels);
    /// empty = every Service of the pools.
    pub service_selectors: Vec<LabelSelector>,
    /// Election preferences: a node's score is the sum of the weights whose selector
    /// matches it; the highest-scoring eligible nodes are the candidates.
    pub preferred_nodes: Vec<PreferredNode>,
}

/// One `preferredNodeSelectors` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferredNode {
    pub weight: i32,
    pub selector: LabelSelector,
}

/// A BGP community value, resolved from `A:B`, `large:A:B:C` or a `Community` alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// RFC 1997: high 16 bits the AS, low 16 bits the value.
    Standard(u32),
    /// RFC 8092: global administrator, local data 1, local data 2.
    Large(u32, u32, u32),
}

/// A `BGPAdvertisement` with references resolved and defaults filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpAdvertisement {
    pub name: String,
    pub pools: BTreeSet<String>,
    /// 1..=32, default 32.
    pub aggregation_length_v4: u8,
    /// 1..=128, default 128.
    pub aggregation_length_v6: u8,
    /// Sent to iBGP peers only.
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<Community>,
    /// BGPPeer names; empty = every peer.
    pub peers: BTreeSet<String>,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// Services this advertisement applies to (any selector matching their labels);
    /// empty = every Service of the pools.
    pub service_selectors: Vec<LabelSelector>,
    /// Annotation `oxlb.io/weighted-ecmp: "true"`: routes of `externalTrafficPolicy:
    /// Local` Services carry this node's share of the ready endpoints as the link
    /// bandwidth extended community (unequal-cost multipath on the router).
    pub weighted_ecmp: bool,
}

/// The peer's AS: fixed, or whatever the peer says in its OPEN (`dynamicASN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsn {
    Fixed(u32),
    /// Must equal `myASN`.
    DynamicInternal,
    /// Must differ from `myASN`.
    DynamicExternal,
}

/// Where the session goes: an address, or a link-local unnumbered peer on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    Ip(IpAddr),
    Interface(String),
}

/// A `BGPPeer` (v1beta2 or converted v1beta1 / legacy) with defaults filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub my_asn: u32,
    pub peer_asn: PeerAsn,
    pub address: PeerAddress,
    pub source_address: Option<IpAddr>,
    /// Default 179.
    pub port: u16,
    /// Zero (no keepalives, no hold timer) or at least 3 s. Default 90 s.
    pub hold_time: Duration,
    /// At most `hold_time`; derived as hold / 3 when not given.
    pub keepalive_time: Duration,
    /// Interval between connection attempts (RFC 4271 ConnectRetryTime); default 120 s
    /// as in RFC 4271 §10 unless `connectTime` says otherwise.
    pub connect_time: Duration,
    pub router_id: Option<Ipv4Addr>,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 (RFC 2385) password, already read from `passwordSecret` when given.
    pub password: Option<String>,
    /// Name of an existing `BFDProfile`.
    pub bfd_profile: Option<String>,
    pub graceful_restart: bool,
    pub ebgp_multihop: bool,
    pub vrf: Option<String>,
    pub dual_stack_address_family: bool,
    /// `localASN`: the AS this node presents to the peer instead of `my_asn` (in the
    /// OPEN and the AS_PATH, as FRR's `local-as ASN no-prepend replace-as`).
    pub local_asn: Option<u32>,
}

impl Peer {
    /// The AS this session speaks as: `localASN` when set, else `myASN`.
    pub fn session_asn(&self) -> u32 {
        self.local_asn.unwrap_or(self.my_asn)
    }

    /// iBGP when both ends share an AS (`dynamicASN` says which one it will be).
    pub fn is_ibgp(&self) -> bool {
        match self.peer_asn {
            PeerAsn::Fixed(asn) => asn == self.session_asn(),
            PeerAsn::DynamicInternal => true,
            PeerAsn::DynamicExternal => false,
        }
    }
}

/// A `BFDProfile` with defaults filled (intervals in milliseconds, 10..=60000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    pub name: String,
    pub receive_interval_ms: u32,
    pub transmit_interval_ms: u32,
    pub echo_interval_ms: u32,
    /// 2..=255, default 3.
    pub detect_multiplier: u8,
    /// 1..=254, default 254.
    pub minimum_ttl: u8,
    pub echo_mode: bool,
    pub passive_mode: bool,
}
