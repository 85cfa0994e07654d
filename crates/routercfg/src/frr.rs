//! frr.conf for FRR 8+. pfSense's and OPNsense's FRR packages and VyOS run this same
//! FRR underneath, so the statements are the same there (GUI fields or raw config).

use oxlb_config::Family;

use crate::out::Out;
use crate::plan::{Plan, RouterPeer, family_name, ident};

pub(crate) fn render(plan: &Plan) -> String {
    let mut o = Out::default();
    let c = |o: &mut Out, text: &str| o.comment("!", text);
    c(
        &mut o,
        "oxlb router-config --flavor frr: the router's side of oxlb's BGP sessions.\n\
         This is FRR configuration (frr.conf / vtysh). pfSense's and OPNsense's FRR packages\n\
         and VyOS are built on FRR, so the same statements apply there.\n\
         Load it with `vtysh -f FILE`, or paste it after `configure terminal` in vtysh.\n\
         BGP runs in bgpd (and BFD, if used below, in bfdd): enable them in /etc/frr/daemons.",
    );
    for note in &plan.notes {
        c(&mut o, &format!("NOTE: {note}"));
    }
    o.line("!");
    c(
        &mut o,
        "FRR's classic defaults (timers, logging) rather than the datacenter profile.",
    );
    o.line("frr defaults traditional");
    o.line("!");

    render_policy(&mut o, plan);
    render_bfd(&mut o, plan);

    for vrf in plan.vrfs() {
        render_instance(&mut o, &plan.in_vrf(vrf), vrf);
    }
    o.finish()
}

/// One `router bgp` block: the default instance, or the one in `vrf` for BGPPeers
/// whose nodes peer from that VRF.
fn render_instance(o: &mut Out, plan: &Plan, vrf: Option<&str>) {
    let c = |o: &mut Out, text: &str| o.comment("!", text);
    c(
        o,
        &format!(
            "The BGP process. {} is this router's own AS number (the BGPPeers' peerASN).",
            plan.router_asn
        ),
    );
    match vrf {
        None => o.line(format!("router bgp {}", plan.router_asn)),
        Some(vrf) => {
            c(
                o,
                &format!(
                    "The nodes peer from their VRF {vrf} (the BGPPeer's vrf), so this side runs\n\
                     in a VRF too: FRR's `router bgp ASN vrf NAME` over a Linux VRF whose table\n\
                     holds the interface toward the nodes (ip link add {vrf} type vrf table N;\n\
                     ip link set IFACE master {vrf}). The name here is the nodes' VRF name:\n\
                     rename it if this router's VRF is called otherwise, or move these\n\
                     neighbors into the default instance if its interface is in no VRF."
                ),
            );
            o.line(format!("vrf {vrf}"));
            o.line("exit-vrf");
            o.line("!");
            o.line(format!("router bgp {} vrf {vrf}", plan.router_asn));
        }
    }
    o.comment(
        " !",
        "The router id names this router in BGP; it must be unique among the speakers.",
    );
    o.line(format!(" bgp router-id {}", plan.router_id));
    o.comment(
        " !",
        "Carry a family on a session only where it is activated below (IPv4 included),\n\
         so each session speaks exactly the families oxlb announces on it.",
    );
    o.line(" no bgp default ipv4-unicast");
    if plan.multipath_relax {
        o.comment(
            " !",
            "The nodes of different BGPPeers are in different ASes: let ECMP use paths\n\
             through different neighbour ASes (same AS path length).",
        );
        o.line(" bgp bestpath as-path multipath-relax");
    }
    if plan.weighted_ecmp {
        o.comment(
            " !",
            "Weighted ECMP (oxlb.io/weighted-ecmp): the nodes send each path's weight as the\n\
             link bandwidth extended community, which FRR uses for unequal-cost multipath.\n\
             FRR falls back to equal weights for all paths when one path lacks it (a node on\n\
             an older oxlb during an upgrade); give such a path the smallest weight instead.",
        );
        o.line(" bgp bestpath bandwidth default-weight-for-missing");
    }
    for peer in &plan.peers {
        render_peer(o, peer);
    }
    for family in [Family::V4, Family::V6] {
        if plan.any_family(family) {
            render_family(o, plan, family);
        }
    }
    o.line("exit");
    o.line("!");
}

fn afi(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

fn render_policy(o: &mut Out, plan: &Plan) {
    o.comment(
        "!",
        "Import policy: accept exactly the service addresses oxlb may announce.\n\
         A prefix-list is an ordered list of permit/deny lines matched against each route.\n\
         `le 32` (IPv4) / `le 128` (IPv6) also accepts every longer prefix inside the pool,\n\
         so the single-address (/32, /128) routes oxlb announces per service IP match.\n\
         Anything else hits the prefix-list's implicit deny at the end and is dropped.\n\
         A policy is used instead of `no bgp ebgp-requires-policy`, which would accept\n\
         anything the nodes send (RFC 8212).",
    );
    for peer in &plan.peers {
        for family in &peer.families {
            let prefixes = peer.prefixes(*family);
            if prefixes.is_empty() {
                continue;
            }
            let (keyword, max) = match family {
                Family::V4 => ("ip", 32),
                Family::V6 => ("ipv6", 128),
            };
            for (i, net) in prefixes.iter().enumerate() {
                let le = if net.prefix_len() < max {
                    format!(" le {max}")
                } else {
                    String::new()
                };
                o.line(format!(
                    "{keyword} prefix-list oxlb-{}-{} seq {} permit {net}{le}",
                    peer.ident,
                    suffix(*family),
                    (i + 1) * 10
                ));
            }
        }
    }
    o.line("!");
    o.comment(
        "!",
        "Route-maps apply the prefix-lists to sessions: `permit` entries whose `match`\n\
         succeeds accept the route; a route no entry matches is denied.",
    );
    for peer in &plan.peers {
        for family in &peer.families {
            if peer.prefixes(*family).is_empty() {
                continue;
            }
            let keyword = match family {
                Family::V4 => "ip",
                Family::V6 => "ipv6",
            };
            o.line(format!(
                "route-map oxlb-{}-in-{} permit 10",
                peer.ident,
                suffix(*family)
            ));
            o.line(format!(
                " match {keyword} address prefix-list oxlb-{}-{}",
                peer.ident,
                suffix(*family)
            ));
            o.line("exit");
        }
    }
    o.comment(
        "!",
        "Nothing is sent to the nodes: oxlb ignores received routes, and keeping this\n\
         router's table to itself is the safe default.",
    );
    o.line("route-map oxlb-deny-all deny 10");
    o.line("exit");
    o.line("!");
}

fn render_bfd(o: &mut Out, plan: &Plan) {
    let profiles = plan.bfd_profiles();
    if profiles.is_empty() {
        return;
    }
    o.comment(
        "!",
        "BFD (bfdd) notices a dead node in well under a second instead of waiting for the\n\
         BGP hold timer. These profiles carry the timers of the BFDProfiles the BGPPeers use.",
    );
    o.line("bfd");
    for profile in profiles.values() {
        o.line(format!(" profile {}", ident(&profile.name)));
        o.comment(
            "  !",
            "Declare the session down after this many missed packets.",
        );
        o.line(format!("  detect-multiplier {}", profile.detect_multiplier));
        o.comment(
            "  !",
            "Fastest rate (ms) we want to receive / send packets at.",
        );
        o.line(format!(
            "  receive-interval {}",
            profile.receive_interval_ms
        ));
        o.line(format!(
            "  transmit-interval {}",
            profile.transmit_interval_ms
        ));
        if profile.echo_mode {
            o.comment(
                "  !",
                "BFD echo (single-hop IPv4 and IPv6 sessions): the nodes send echo packets addressed\n\
                 to themselves that this router's forwarding plane loops back, so IP forwarding\n\
                 must be on here (as on any router). echo-mode makes FRR advertise the receive\n\
                 interval below; without it the nodes send no echo. While echo runs the nodes\n\
                 slow their control packets to 1 s (RFC 5880 6.8.3). FRR sends echoes of its\n\
                 own only to a node that advertises it loops them (IP forwarding on the node).",
            );
            o.line("  echo-mode");
            o.line(format!(
                "  echo transmit-interval {}",
                profile.echo_interval_ms
            ));
            o.line(format!(
                "  echo receive-interval {}",
                profile.echo_interval_ms
            ));
        }
        if profile.passive_mode {
            o.comment("  !", "Wait for the node to start the BFD session.");
            o.line("  passive-mode");
        }
        o.comment(
            "  !",
            "Multihop sessions only: drop packets that crossed more hops than expected.",
        );
        o.line(format!("  minimum-ttl {}", profile.minimum_ttl));
        o.line(" exit");
    }
    o.line("exit");
    o.line("!");
}

fn render_peer(o: &mut Out, peer: &RouterPeer) {
    let group = format!("oxlb-{}", peer.ident);
    o.comment(
        " !",
        &format!(
            "BGPPeer {}: the nodes connect to this router at {}.\n\
             A peer-group holds the settings every node's session shares.",
            peer.name, peer.router_address
        ),
    );
    o.line(format!(" neighbor {group} peer-group"));
    let kind = if peer.ibgp {
        "iBGP: the nodes are in this router's own AS"
    } else {
        "eBGP: the nodes are in another AS"
    };
    o.comment(
        " !",
        &format!("The nodes' AS (the BGPPeer's myASN); {kind}."),
    );
    o.line(format!(" neighbor {group} remote-as {}", peer.node_asn));
    if let Some(password) = &peer.password {
        o.comment(
            " !",
            "TCP MD5 signature (RFC 2385): both ends must use the same password.",
        );
        o.line(format!(" neighbor {group} password {password}"));
    }
    if peer.multihop {
        o.comment(
            " !",
            "The nodes are not on a directly connected network: allow up to 255 hops.",
        );
        o.line(format!(" neighbor {group} ebgp-multihop 255"));
    }
    o.comment(
        " !",
        "Keepalive and hold time in seconds, as in the BGPPeer (the lower hold time wins).",
    );
    o.line(format!(
        " neighbor {group} timers {} {}",
        peer.keepalive_s, peer.hold_time_s
    ));
    o.comment(
        " !",
        "Seconds between attempts to (re)connect, as the BGPPeer's connectTime.",
    );
    o.line(format!(
        " neighbor {group} timers connect {}",
        peer.connect_retry_s
    ));
    if let Some(bfd) = &peer.bfd {
        o.comment(" !", "Tie the sessions to BFD with the profile above.");
        o.line(format!(
            " neighbor {group} bfd profile {}",
            ident(&bfd.name)
        ));
    }
    if peer.ipv4_over_ipv6() {
        o.comment(
            " !",
            "IPv4 routes come over these IPv6 sessions with IPv6 next hops (RFC 8950):\n\
             offer the extended next hop capability or FRR ignores them. zebra installs\n\
             them as `via inet6 fe80::...`.",
        );
        o.line(format!(" neighbor {group} capability extended-nexthop"));
    }
    if peer.ipv6_over_ipv4() {
        o.comment(
            " !",
            "IPv6 routes come over these IPv4 sessions (IPv6 family activated below); their\n\
             next hop is each node's IPv6 address on this link, so nodes need one (oxlb\n\
             withholds IPv6 routes on a node without, and says so in its status).",
        );
    }
    if peer.graceful_restart {
        o.comment(
            " !",
            "Graceful restart (RFC 4724): keep forwarding to a restarting node's routes.",
        );
        o.line(format!(" neighbor {group} graceful-restart"));
    }
    o.comment(
        " !",
        "One neighbor per node, each a member of the peer-group.",
    );
    for (node, address) in &peer.neighbors {
        o.line(format!(" neighbor {address} peer-group {group}"));
        o.line(format!(" neighbor {address} description {node}"));
    }
}

fn render_family(o: &mut Out, plan: &Plan, family: Family) {
    o.comment(
        " !",
        &format!(
            "{} unicast routes (service addresses).",
            family_name(family)
        ),
    );
    o.line(format!(" address-family {} unicast", afi(family)));
    o.comment(
        "  !",
        "ECMP: install up to this many equal paths per service address, one per node,\n\
         so traffic is spread over every node announcing it.",
    );
    o.line(format!("  maximum-paths {}", plan.max_paths));
    if plan.any_ibgp() {
        o.comment("  !", "The same for paths learned over iBGP.");
        o.line(format!("  maximum-paths ibgp {}", plan.max_paths));
    }
    for peer in plan.peers.iter().filter(|p| p.families.contains(&family)) {
        let group = format!("oxlb-{}", peer.ident);
        o.line(format!("  neighbor {group} activate"));
        if peer.prefixes(family).is_empty() {
            o.comment(
                "  !",
                "No pool of this family is announced to this peer: accept nothing.",
            );
            o.line(format!("  neighbor {group} route-map oxlb-deny-all in"));
        } else {
            o.line(format!(
                "  neighbor {group} route-map oxlb-{}-in-{} in",
                peer.ident,
                suffix(family)
            ));
        }
        o.line(format!("  neighbor {group} route-map oxlb-deny-all out"));
    }
    o.line(" exit-address-family");
}
