//! The router's side of oxlb's BGP sessions, generated from the same [`Config`] the
//! speakers run with: FRR (what pfSense's and OPNsense's FRR packages and VyOS build on),
//! BIRD 2, VyOS 1.4 `set` commands and MikroTik RouterOS 7.
//!
//! [`generate`] is pure: a config and the nodes' addresses in, configuration text out,
//! or an [`Error`] that says what is missing. Every flavour renders the same [`plan`]:
//! one neighbor per node address with the node's AS, the router's own AS and router id,
//! password, multihop, BFD with the profile's timers, ECMP, and an import policy that
//! accepts exactly the pools' prefixes (and every longer prefix inside them, so the /32
//! and /128 host routes oxlb announces match) instead of switching the RFC 8212 policy
//! requirement off.

mod bird;
mod error;
mod frr;
mod mikrotik;
mod out;
pub mod plan;
mod prefixes;
pub mod unnumbered;
mod vyos;

use std::net::IpAddr;

use oxlb_config::Config;

pub use error::Error;
pub use plan::{Plan, RouterPeer, plan};
pub use prefixes::pool_prefixes;

/// Which router software the configuration is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// frr.conf / vtysh syntax (FRR 8+; pfSense and OPNsense FRR packages, VyOS underneath).
    Frr,
    /// bird.conf for BIRD 2.
    Bird,
    /// VyOS 1.4 (sagitta) `set` commands.
    Vyos,
    /// MikroTik RouterOS 7 commands.
    Mikrotik,
}

impl Flavor {
    pub const ALL: [Flavor; 4] = [Flavor::Frr, Flavor::Bird, Flavor::Vyos, Flavor::Mikrotik];

    /// The name used on the command line (`--flavor frr`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Frr => "frr",
            Flavor::Bird => "bird",
            Flavor::Vyos => "vyos",
            Flavor::Mikrotik => "mikrotik",
        }
    }
}

impl std::str::FromStr for Flavor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Flavor, Error> {
        Flavor::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| Error::UnknownFlavor(text.to_string()))
    }
}

/// The router's configuration for every BGPPeer of `config` that points at this router.
///
/// `nodes` are the cluster nodes (name, address the router sees them at); every node
/// becomes a neighbor of each peer of the same address family. `router_address` picks the
/// router when the config has peers on several routers (the peers whose `peerAddress` is
/// this address); `None` takes every peer with an address.
pub fn generate(
    flavor: Flavor,
    config: &Config,
    nodes: &[(String, IpAddr)],
    router_address: Option<IpAddr>,
) -> Result<String, Error> {
    generate_with_asn(flavor, config, nodes, router_address, None)
}

/// Like [`generate`], with the router's AS given explicitly (`--router-asn`): needed for
/// peers with `dynamicASN: external`, where the config does not say what the router's AS
/// is; when given for other peers it must agree with the config.
pub fn generate_with_asn(
    flavor: Flavor,
    config: &Config,
    nodes: &[(String, IpAddr)],
    router_address: Option<IpAddr>,
    router_asn: Option<u32>,
) -> Result<String, Error> {
    let plan = plan(config, nodes, router_address, router_asn)?;
    Ok(match flavor {
        Flavor::Frr => frr::render(&plan),
        Flavor::Bird => bird::render(&plan),
        Flavor::Vyos => vyos::render(&plan),
        Flavor::Mikrotik => mikrotik::render(&plan),
    })
}

/// Like [`generate_with_asn`], with the unnumbered BGPPeers too: `links` are (node, the
/// router's interface toward it). The numbered part needs `nodes` and is left out
/// when none are given; the unnumbered part needs `links` and is appended.
pub fn generate_with_links(
    flavor: Flavor,
    config: &Config,
    nodes: &[(String, IpAddr)],
    links: &[(String, String)],
    router_address: Option<IpAddr>,
    router_asn: Option<u32>,
) -> Result<String, Error> {
    let numbered = config
        .peers
        .values()
        .any(|p| matches!(p.address, oxlb_config::PeerAddress::Ip(_)));
    // Without --link, unnumbered peers stay a note beside the numbered ones (their
    // router may be another one); alone, they need the links.
    let unnumbered = if links.is_empty() && numbered {
        Vec::new()
    } else {
        unnumbered::plan_unnumbered(config, links, router_asn)?
    };
    let mut text = if !unnumbered.is_empty() && (nodes.is_empty() || !numbered) {
        String::new()
    } else {
        generate_with_asn(flavor, config, nodes, router_address, router_asn)?
    };
    let mut o = out::Out::default();
    match flavor {
        Flavor::Frr => {
            if text.is_empty() {
                o.line(
                    "! oxlb router-config --flavor frr: the router's side of oxlb's BGP sessions.",
                );
                o.line("frr defaults traditional");
                o.line("!");
            }
            unnumbered::render_frr(&unnumbered, &mut o);
        }
        Flavor::Bird => {
            if text.is_empty() {
                o.line(
                    "# oxlb router-config --flavor bird: the router's side of oxlb's BGP sessions.",
                );
                o.line("protocol device {}");
                o.line("protocol kernel { ipv4 { export all; }; }");
                o.line("protocol kernel { ipv6 { export all; }; }");
                o.line("");
            }
            unnumbered::render_bird(&unnumbered, &mut o);
        }
        Flavor::Vyos | Flavor::Mikrotik => {
            if let Some(note) = unnumbered::note(&unnumbered) {
                o.comment("#", &format!("NOTE: {note}"));
            }
        }
    }
    text.push_str(&o.finish());
    Ok(text)
}
