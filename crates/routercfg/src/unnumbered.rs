//! The router's side of unnumbered BGPPeers (`interface`, no `peerAddress`): one
//! session per link to a node, over IPv6 link-local addresses, found on each side
//! from the other's Router Advertisements. The router's interface toward each node is
//! not in the config (the BGPPeer names the node's interface): `--link NODE=IFNAME`.
//!
//! Rendered after the numbered part (FRR merges a second `router bgp` block of the
//! same AS into the first). FRR and BIRD 2 can; VyOS and RouterOS get a comment.

use std::collections::BTreeSet;

use ipnet::IpNet;
use oxlb_config::{Config, Family, PeerAddress, PeerAsn};

use crate::error::Error;
use crate::out::Out;
use crate::plan::{ident, of_family};
use crate::prefixes::pool_prefixes;

/// One unnumbered BGPPeer as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnnumberedPeer {
    pub name: String,
    pub ident: String,
    /// The node's interface (the BGPPeer's `interface`), for the comments.
    pub node_interface: String,
    pub router_asn: u32,
    pub node_asn: u32,
    pub ibgp: bool,
    /// (node, the router's interface toward it).
    pub links: Vec<(String, String)>,
    pub password: Option<String>,
    pub hold_time_s: u64,
    pub keepalive_s: u64,
    pub connect_retry_s: u64,
    pub prefixes_v4: Vec<IpNet>,
    pub prefixes_v6: Vec<IpNet>,
}

/// The unnumbered BGPPeers of `config`, each with every `links` entry (node, router
/// interface). Empty when the config has none; an error when it has some but no link
/// was given, or the router's AS cannot be known.
pub fn plan_unnumbered(
    config: &Config,
    links: &[(String, String)],
    router_asn: Option<u32>,
) -> Result<Vec<UnnumberedPeer>, Error> {
    let mut out = Vec::new();
    for peer in config.peers.values() {
        let PeerAddress::Interface(interface) = &peer.address else {
            continue;
        };
        if links.is_empty() {
            return Err(Error::NoLinks {
                peer: peer.name.clone(),
                interface: interface.clone(),
            });
        }
        let asn = match peer.peer_asn {
            PeerAsn::Fixed(asn) => asn,
            PeerAsn::DynamicInternal => peer.session_asn(),
            PeerAsn::DynamicExternal => match router_asn {
                Some(asn) => asn,
                None => {
                    return Err(Error::RouterAsnUnknown {
                        peer: peer.name.clone(),
                    });
                }
            },
        };
        let prefixes = prefixes(config, &peer.name);
        out.push(UnnumberedPeer {
            name: peer.name.clone(),
            ident: ident(&peer.name),
            node_interface: interface.clone(),
            router_asn: asn,
            node_asn: peer.session_asn(),
            ibgp: peer.session_asn() == asn,
            links: links.to_vec(),
            password: peer.password.clone(),
            hold_time_s: peer.hold_time.as_secs(),
            keepalive_s: peer.keepalive_time.as_secs(),
            connect_retry_s: peer.connect_time.as_secs().max(1),
            prefixes_v4: of_family(&prefixes, Family::V4),
            prefixes_v6: of_family(&prefixes, Family::V6),
        });
    }
    Ok(out)
}

/// The pools' prefixes some BGPAdvertisement announces to `peer` (at the shortest
/// aggregation length, longer prefixes accepted by `le`).
fn prefixes(config: &Config, peer: &str) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    for adv in config.bgp_advertisements.values() {
        if !adv.peers.is_empty() && !adv.peers.contains(peer) {
            continue;
        }
        for pool in adv.pools.iter().filter_map(|p| config.pools.get(p)) {
            out.extend(pool_prefixes(
                pool,
                adv.aggregation_length_v4,
                adv.aggregation_length_v6,
            ));
        }
    }
    let all: Vec<IpNet> = out.iter().copied().collect();
    out.retain(|n| !all.iter().any(|o| o != n && o.contains(n)));
    out
}

/// FRR: `neighbor IFNAME interface peer-group G` per link. FRR learns each node's
/// link-local address from the node's Router Advertisements (oxlb sends them) and
/// sends its own, every 10 s on links with interface neighbours; the extended next hop
/// capability (RFC 8950, IPv4 routes via the IPv6 link-local next hop) is implied.
pub(crate) fn render_frr(peers: &[UnnumberedPeer], o: &mut Out) {
    if peers.is_empty() {
        return;
    }
    let c = |o: &mut Out, text: &str| o.comment("!", text);
    c(
        o,
        "Unnumbered BGPPeers: one session per link to a node over IPv6 link-local\n\
         addresses; no IPv4 or global IPv6 address is needed on these links.",
    );
    let interfaces: BTreeSet<&str> = peers
        .iter()
        .flat_map(|p| p.links.iter().map(|(_, i)| i.as_str()))
        .collect();
    for interface in interfaces {
        o.line(format!("interface {interface}"));
        o.comment(
            " !",
            "Router Advertisements tell the node this router's link-local address (FRR\n\
             sends them for interface neighbours anyway; stated here so nothing turns them\n\
             off). 10 s as FRR uses for unnumbered BGP.",
        );
        o.line(" ipv6 nd ra-interval 10");
        o.line(" no ipv6 nd suppress-ra");
        o.line("exit");
    }
    o.line("!");
    for peer in peers {
        for (keyword, suffix, max, prefixes) in [
            ("ip", "v4", 32, &peer.prefixes_v4),
            ("ipv6", "v6", 128, &peer.prefixes_v6),
        ] {
            for (i, net) in prefixes.iter().enumerate() {
                let le = if net.prefix_len() < max {
                    format!(" le {max}")
                } else {
                    String::new()
                };
                o.line(format!(
                    "{keyword} prefix-list oxlb-{}-{suffix} seq {} permit {net}{le}",
                    peer.ident,
                    (i + 1) * 10
                ));
            }
        }
    }
    o.line("!");
    let asns: BTreeSet<u32> = peers.iter().map(|p| p.router_asn).collect();
    for asn in asns {
        o.line(format!("router bgp {asn}"));
        for peer in peers.iter().filter(|p| p.router_asn == asn) {
            let group = format!("oxlb-{}", peer.ident);
            o.comment(
                " !",
                &format!(
                    "BGPPeer {} (the nodes' interface {}): {}.",
                    peer.name,
                    peer.node_interface,
                    if peer.ibgp { "iBGP" } else { "eBGP" }
                ),
            );
            o.line(format!(" neighbor {group} peer-group"));
            o.line(format!(" neighbor {group} remote-as {}", peer.node_asn));
            if let Some(password) = &peer.password {
                o.line(format!(" neighbor {group} password {password}"));
            }
            o.line(format!(
                " neighbor {group} timers {} {}",
                peer.keepalive_s, peer.hold_time_s
            ));
            o.line(format!(
                " neighbor {group} timers connect {}",
                peer.connect_retry_s
            ));
            o.comment(" !", "One interface neighbour per link to a node.");
            for (node, interface) in &peer.links {
                o.line(format!(
                    " neighbor {interface} interface peer-group {group}"
                ));
                o.line(format!(" neighbor {interface} description {node}"));
            }
        }
        for (afi, suffix) in [("ipv4", "v4"), ("ipv6", "v6")] {
            o.line(format!(" address-family {afi} unicast"));
            let paths = peers
                .iter()
                .filter(|p| p.router_asn == asn)
                .map(|p| p.links.len())
                .max()
                .unwrap_or(1)
                .clamp(1, 64);
            o.line(format!("  maximum-paths {paths}"));
            if peers.iter().any(|p| p.router_asn == asn && p.ibgp) {
                o.line(format!("  maximum-paths ibgp {paths}"));
            }
            for peer in peers.iter().filter(|p| p.router_asn == asn) {
                let group = format!("oxlb-{}", peer.ident);
                let has = match suffix {
                    "v4" => !peer.prefixes_v4.is_empty(),
                    _ => !peer.prefixes_v6.is_empty(),
                };
                o.line(format!("  neighbor {group} activate"));
                if has {
                    o.line(format!(
                        "  neighbor {group} prefix-list oxlb-{}-{suffix} in",
                        peer.ident
                    ));
                } else {
                    o.comment("  !", "No pool of this family: accept nothing.");
                    o.line(format!("  neighbor {group} route-map oxlb-deny-all in"));
                }
                o.line(format!("  neighbor {group} route-map oxlb-deny-all out"));
            }
            o.line(" exit-address-family");
        }
        o.line("exit");
        o.line("!");
    }
    c(
        o,
        "Nothing is sent to the nodes (oxlb ignores received routes).",
    );
    o.line("route-map oxlb-deny-all deny 10");
    o.line("exit");
    o.line("!");
}

/// BIRD 2: the `radv` protocol advertises the router on each link (Router Lifetime 0:
/// not the nodes' default router), and a dynamic BGP protocol per link accepts the
/// node's connection from any link-local address on that interface (`neighbor range
/// fe80::/10` with `interface`). IPv4 routes carry the IPv6 next hop (`extended next
/// hop on`, RFC 8950).
pub(crate) fn render_bird(peers: &[UnnumberedPeer], o: &mut Out) {
    if peers.is_empty() {
        return;
    }
    let c = |o: &mut Out, text: &str| o.comment("#", text);
    c(
        o,
        "Unnumbered BGPPeers: one session per link to a node over IPv6 link-local\n\
         addresses. The node finds this router from its Router Advertisements (radv\n\
         below) and connects; BIRD accepts any link-local address on that interface.",
    );
    let interfaces: BTreeSet<&str> = peers
        .iter()
        .flat_map(|p| p.links.iter().map(|(_, i)| i.as_str()))
        .collect();
    o.line("protocol radv oxlb_radv {");
    for interface in interfaces {
        o.line(format!(
            "\tinterface \"{interface}\" {{ max ra interval 10; min ra interval 3; default lifetime 0; }};"
        ));
    }
    o.line("}");
    o.line("");
    for peer in peers {
        let filter =
            |suffix: &str| format!("oxlb_{}_unnumbered_{suffix}", peer.ident.replace('-', "_"));
        for (suffix, max, prefixes) in [
            ("v4", 32, &peer.prefixes_v4),
            ("v6", 128, &peer.prefixes_v6),
        ] {
            o.line(format!("filter {} {{", filter(suffix)));
            if !prefixes.is_empty() {
                let set: Vec<String> = prefixes
                    .iter()
                    .map(|net| format!("{net}{{{},{max}}}", net.prefix_len()))
                    .collect();
                o.line(format!("\tif net ~ [ {} ] then accept;", set.join(", ")));
            }
            o.line("\treject;");
            o.line("}");
        }
        o.line("");
        for (node, interface) in &peer.links {
            let name = format!(
                "oxlb_{}_{}",
                peer.ident.replace('-', "_"),
                ident(interface).replace('-', "_")
            );
            c(
                o,
                &format!("BGPPeer {}: node {node} on {interface}.", peer.name),
            );
            o.line(format!("protocol bgp {name} {{"));
            o.line(format!("\tlocal as {};", peer.router_asn));
            o.line(format!("\tneighbor range fe80::/10 as {};", peer.node_asn));
            o.line(format!("\tinterface \"{interface}\";"));
            o.line(format!("\tdynamic name \"{name}_\";"));
            o.line("\tdirect;");
            if let Some(password) = &peer.password {
                o.line(format!("\tpassword \"{password}\";"));
            }
            o.line(format!(
                "\thold time {}; keepalive time {};",
                peer.hold_time_s.max(3),
                peer.keepalive_s.max(1)
            ));
            o.line(format!(
                "\tipv4 {{ import filter {}; export none; extended next hop on; }};",
                filter("v4")
            ));
            o.line(format!(
                "\tipv6 {{ import filter {}; export none; }};",
                filter("v6")
            ));
            o.line("}");
            o.line("");
        }
    }
}

/// VyOS and RouterOS: what to configure, as a comment.
pub(crate) fn note(peers: &[UnnumberedPeer]) -> Option<String> {
    (!peers.is_empty()).then(|| {
        let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
        format!(
            "unnumbered BGPPeers ({}) are not generated for this flavour: configure an \
             interface neighbour per link to a node (IPv6 link-local, extended next hop, \
             Router Advertisements on the link) by hand",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        let snapshot = oxlb_config::load_str(yaml, None, "metallb-system").unwrap();
        oxlb_config::build_config(&snapshot).config.unwrap()
    }

    const YAML: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n\
        metadata: {name: p, namespace: metallb-system}\n\
        spec: {addresses: [10.79.1.0/24, 'fd00:79:1::/120']}\n---\n\
        apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
        metadata: {name: uplink, namespace: metallb-system}\n\
        spec: {myASN: 64500, peerASN: 64501, interface: up0, holdTime: 9s}\n---\n\
        apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\n\
        metadata: {name: a, namespace: metallb-system}\nspec: {ipAddressPools: [p]}\n";

    fn links() -> Vec<(String, String)> {
        vec![
            ("node1".to_string(), "n1".to_string()),
            ("node2".to_string(), "n2".to_string()),
        ]
    }

    #[test]
    fn frr_gets_an_interface_neighbour_per_link() {
        let peers = plan_unnumbered(&config(YAML), &links(), None).unwrap();
        let mut o = Out::default();
        render_frr(&peers, &mut o);
        let text = o.finish();
        for line in [
            "interface n1\n",
            "interface n2\n",
            " ipv6 nd ra-interval 10\n no ipv6 nd suppress-ra\nexit",
            "router bgp 64501",
            " neighbor oxlb-uplink remote-as 64500",
            " neighbor n1 interface peer-group oxlb-uplink",
            " neighbor n2 interface peer-group oxlb-uplink",
            " neighbor oxlb-uplink timers 3 9",
            "ip prefix-list oxlb-uplink-v4 seq 10 permit 10.79.1.0/24 le 32",
            "ipv6 prefix-list oxlb-uplink-v6 seq 10 permit fd00:79:1::/120 le 128",
            "  maximum-paths 2",
            "  neighbor oxlb-uplink prefix-list oxlb-uplink-v4 in",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
    }

    #[test]
    fn bird_gets_radv_and_a_dynamic_protocol_per_link() {
        let peers = plan_unnumbered(&config(YAML), &links(), None).unwrap();
        let mut o = Out::default();
        render_bird(&peers, &mut o);
        let text = o.finish();
        for line in [
            "\tinterface \"n1\" { max ra interval 10; min ra interval 3; default lifetime 0; };",
            "protocol bgp oxlb_uplink_n2 {",
            "\tneighbor range fe80::/10 as 64500;",
            "\tinterface \"n2\";",
            "extended next hop on;",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
    }

    /// A numbered peer beside it: without --link the numbered router's configuration
    /// still comes out, with a note; with it, both.
    #[test]
    fn numbered_peers_beside_do_not_need_links() {
        let yaml = format!(
            "{YAML}---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
             metadata: {{name: tor, namespace: metallb-system}}\n\
             spec: {{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}}\n"
        );
        let config = config(&yaml);
        let nodes = [("node1".to_string(), "10.0.0.11".parse().unwrap())];
        let text = crate::generate_with_links(crate::Flavor::Frr, &config, &nodes, &[], None, None)
            .unwrap();
        assert!(
            text.contains("neighbor 10.0.0.11 peer-group oxlb-tor"),
            "{text}"
        );
        assert!(text.contains("--link NODE=ROUTER-IFNAME"), "{text}");
        assert!(!text.contains("interface peer-group"), "{text}");
        let text =
            crate::generate_with_links(crate::Flavor::Frr, &config, &nodes, &links(), None, None)
                .unwrap();
        assert!(
            text.contains("neighbor 10.0.0.11 peer-group oxlb-tor"),
            "{text}"
        );
        assert!(
            text.contains(" neighbor n1 interface peer-group oxlb-uplink"),
            "{text}"
        );
    }

    #[test]
    fn an_unnumbered_peer_without_links_says_what_to_give() {
        let error = plan_unnumbered(&config(YAML), &[], None).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("--link") && text.contains("uplink"), "{text}");
    }
}
