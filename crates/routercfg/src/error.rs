use std::fmt;
use std::net::IpAddr;

/// Why a configuration cannot be rendered. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    UnknownFlavor(String),
    /// The config has no BGPPeer with an address.
    NoPeers,
    /// No node addresses were given.
    NoNodes,
    /// `router_address` matches no BGPPeer's `peerAddress`.
    NoPeerForRouter {
        router: IpAddr,
        known: Vec<IpAddr>,
    },
    /// `dynamicASN: external` says only that the router's AS differs from the node's.
    RouterAsnUnknown {
        peer: String,
    },
    /// The peers chosen describe routers with different ASes: one router has one AS.
    ConflictingRouterAsn {
        first: (String, u32),
        second: (String, u32),
    },
    /// A node address of a family no chosen peer speaks.
    NodeFamily {
        node: String,
        address: IpAddr,
    },
    /// A peer of one family has no node address of that family.
    PeerWithoutNodes {
        peer: String,
        family: &'static str,
    },
    /// Two peers would make the same node address a neighbor twice.
    DuplicateNeighbor {
        address: IpAddr,
        first: String,
        second: String,
    },
    /// No BGPAdvertisement selects a pool for the chosen peers: nothing would be accepted.
    NoPrefixes,
    /// A BGP router id is an IPv4 address and none is known.
    NoRouterId,
    /// A password the router's configuration language cannot quote.
    Password {
        peer: String,
    },
    /// An unnumbered BGPPeer and no `--link NODE=IFNAME`: the router's interfaces toward
    /// the nodes are not in the config.
    NoLinks {
        peer: String,
        interface: String,
    },
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownFlavor(flavor) => write!(
                f,
                "unknown router flavor {flavor:?}: choose one of frr, bird, vyos, mikrotik"
            ),
            Error::NoPeers => write!(
                f,
                "the configuration has no BGPPeer with a peerAddress: there is no BGP session \
                 to configure on a router (add a BGPPeer, or use Layer 2 mode, which needs \
                 no router configuration)"
            ),
            Error::NoNodes => write!(
                f,
                "no node addresses given: the router needs one neighbor per node \
                 (give --node NAME=ADDRESS for each node)"
            ),
            Error::NoPeerForRouter { router, known } => {
                let known: Vec<String> = known.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "no BGPPeer has peerAddress {router}; the peers' addresses are: {}",
                    known.join(", ")
                )
            }
            Error::RouterAsnUnknown { peer } => write!(
                f,
                "BGPPeer {peer} uses dynamicASN: external, so the configuration does not say \
                 which AS the router has: give it with --router-asn"
            ),
            Error::ConflictingRouterAsn { first, second } => write!(
                f,
                "BGPPeer {} says the router is AS {} but BGPPeer {} says AS {}: they describe \
                 different routers; choose one with --router-address",
                first.0, first.1, second.0, second.1
            ),
            Error::NodeFamily { node, address } => write!(
                f,
                "node {node} address {address} is of a family no chosen BGPPeer uses \
                 (a BGP session runs between addresses of one family): give the node's \
                 address in the same family as the peer's peerAddress"
            ),
            Error::PeerWithoutNodes { peer, family } => write!(
                f,
                "BGPPeer {peer} has an {family} peerAddress but no node has an {family} \
                 address: give --node NAME={family}-ADDRESS for the nodes"
            ),
            Error::DuplicateNeighbor {
                address,
                first,
                second,
            } => write!(
                f,
                "BGPPeers {first} and {second} both point at this router, so node address \
                 {address} would be configured twice: choose one with --router-address"
            ),
            Error::NoPrefixes => write!(
                f,
                "no BGPAdvertisement selects an IPAddressPool for these peers: the router \
                 would accept nothing (add a BGPAdvertisement for the pools to announce)"
            ),
            Error::NoRouterId => write!(
                f,
                "the router needs an IPv4 router id and no IPv4 address of the router is \
                 known: give --router-address with the router's IPv4 address"
            ),
            Error::Password { peer } => write!(
                f,
                "BGPPeer {peer}'s password contains whitespace or quotes, which router \
                 configuration languages cannot carry safely: choose another password"
            ),
            Error::NoLinks { peer, interface } => write!(
                f,
                "BGPPeer {peer} is unnumbered (the nodes peer on their interface \
                 {interface}): give the router's interface toward each node with \
                 --link NODE=IFNAME"
            ),
        }
    }
}
