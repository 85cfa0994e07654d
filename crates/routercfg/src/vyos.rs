//! VyOS 1.4 (sagitta) configuration-mode `set` commands. VyOS runs FRR underneath; these
//! are its own names for the statements of the FRR flavour.

use oxlb_config::Family;

use crate::out::Out;
use crate::plan::{Plan, RouterPeer, family_name, ident};

pub(crate) fn render(plan: &Plan) -> String {
    let mut o = Out::default();
    let c = |o: &mut Out, text: &str| o.comment("#", text);
    c(
        &mut o,
        "oxlb router-config --flavor vyos: the router's side of oxlb's BGP sessions.\n\
         VyOS 1.4 commands: run `configure`, paste these lines, then `commit` and `save`.\n\
         VyOS is built on FRR; `--flavor frr` shows the same configuration in FRR syntax.",
    );
    for note in &plan.notes {
        c(&mut o, &format!("NOTE: {note}"));
    }
    if plan.weighted_ecmp {
        c(
            &mut o,
            "NOTE: weighted ECMP (oxlb.io/weighted-ecmp): VyOS's FRR honours the link\n\
             bandwidth community with no setting while every path carries it. To keep the\n\
             weights while some node does not send it (mixed oxlb versions), add FRR's\n\
             `bgp bestpath bandwidth default-weight-for-missing` under `router bgp` in vtysh\n\
             (this generator knows no VyOS `set` command for it).",
        );
    }
    o.line("");
    c(
        &mut o,
        "Import policy: accept exactly the service addresses oxlb may announce. `le 32` /\n\
         `le 128` also accept every longer prefix inside a pool, so the single-address\n\
         routes oxlb announces per service IP match. Everything else is denied.",
    );
    for peer in &plan.peers {
        for family in &peer.families {
            let prefixes = peer.prefixes(*family);
            if prefixes.is_empty() {
                continue;
            }
            let (list, max) = match family {
                Family::V4 => ("prefix-list", 32),
                Family::V6 => ("prefix-list6", 128),
            };
            let name = list_name(peer, *family);
            for (i, net) in prefixes.iter().enumerate() {
                let rule = (i + 1) * 10;
                o.line(format!(
                    "set policy {list} {name} rule {rule} action 'permit'"
                ));
                o.line(format!(
                    "set policy {list} {name} rule {rule} prefix '{net}'"
                ));
                if net.prefix_len() < max {
                    o.line(format!("set policy {list} {name} rule {rule} le '{max}'"));
                }
            }
            let map = map_name(peer, *family);
            let keyword = match family {
                Family::V4 => "ip",
                Family::V6 => "ipv6",
            };
            o.line(format!(
                "set policy route-map {map} rule 10 action 'permit'"
            ));
            o.line(format!(
                "set policy route-map {map} rule 10 match {keyword} address prefix-list '{name}'"
            ));
        }
    }
    c(
        &mut o,
        "Send nothing to the nodes: oxlb ignores received routes.",
    );
    o.line("set policy route-map OXLB-DENY-ALL rule 10 action 'deny'");
    o.line("");

    let profiles = plan.bfd_profiles();
    if !profiles.is_empty() {
        c(
            &mut o,
            "BFD notices a dead node in well under a second instead of waiting for the BGP\n\
             hold timer; these profiles carry the BFDProfiles' timers (milliseconds).",
        );
        for profile in profiles.values() {
            let p = format!("set protocols bfd profile {}", ident(&profile.name));
            o.line(format!(
                "{p} interval multiplier '{}'",
                profile.detect_multiplier
            ));
            o.line(format!(
                "{p} interval receive '{}'",
                profile.receive_interval_ms
            ));
            o.line(format!(
                "{p} interval transmit '{}'",
                profile.transmit_interval_ms
            ));
            if profile.echo_mode {
                o.line(format!("{p} echo-mode"));
                o.line(format!(
                    "{p} interval echo-interval '{}'",
                    profile.echo_interval_ms
                ));
            }
            if profile.passive_mode {
                o.line(format!("{p} passive"));
            }
        }
        o.line("");
    }

    c(
        &mut o,
        &format!(
            "This router's AS ({}) and router id (unique among the BGP speakers).",
            plan.router_asn
        ),
    );
    o.line(format!("set protocols bgp system-as '{}'", plan.router_asn));
    o.line(format!(
        "set protocols bgp parameters router-id '{}'",
        plan.router_id
    ));
    for family in [Family::V4, Family::V6] {
        if !plan.any_family(family) {
            continue;
        }
        let af = af_name(family);
        c(
            &mut o,
            &format!(
                "ECMP for {}: install up to {} equal paths per service address, one per node.",
                family_name(family),
                plan.max_paths
            ),
        );
        o.line(format!(
            "set protocols bgp address-family {af} maximum-paths ebgp '{}'",
            plan.max_paths
        ));
        if plan.any_ibgp() {
            o.line(format!(
                "set protocols bgp address-family {af} maximum-paths ibgp '{}'",
                plan.max_paths
            ));
        }
    }
    if plan.multipath_relax {
        c(
            &mut o,
            "The nodes of different BGPPeers are in different ASes: let ECMP combine them.",
        );
        o.line("set protocols bgp parameters bestpath as-path multipath-relax");
    }
    o.line("");
    for peer in &plan.peers {
        render_peer(&mut o, peer);
    }
    o.finish()
}

fn af_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4-unicast",
        Family::V6 => "ipv6-unicast",
    }
}

fn list_name(peer: &RouterPeer, family: Family) -> String {
    let upper = peer.ident.to_ascii_uppercase();
    match family {
        Family::V4 => format!("OXLB-{upper}-V4"),
        Family::V6 => format!("OXLB-{upper}-V6"),
    }
}

fn map_name(peer: &RouterPeer, family: Family) -> String {
    let upper = peer.ident.to_ascii_uppercase();
    match family {
        Family::V4 => format!("OXLB-{upper}-IN-V4"),
        Family::V6 => format!("OXLB-{upper}-IN-V6"),
    }
}

fn render_peer(o: &mut Out, peer: &RouterPeer) {
    let kind = if peer.ibgp {
        "iBGP: the nodes are in this router's own AS"
    } else {
        "eBGP: the nodes are in another AS"
    };
    o.comment(
        "#",
        &format!(
            "BGPPeer {}: the nodes connect to this router at {}; {kind}.\n\
             One neighbor per node, remote-as = the nodes' AS (the BGPPeer's myASN).",
            peer.name, peer.router_address
        ),
    );
    for (node, address) in &peer.neighbors {
        let n = format!("set protocols bgp neighbor {address}");
        o.line(format!("{n} description '{}'", ident(node)));
        o.line(format!("{n} remote-as '{}'", peer.node_asn));
        if let Some(password) = &peer.password {
            o.line(format!("{n} password '{password}'"));
        }
        if peer.multihop {
            o.line(format!("{n} ebgp-multihop '255'"));
        }
        o.line(format!("{n} timers holdtime '{}'", peer.hold_time_s));
        o.line(format!("{n} timers keepalive '{}'", peer.keepalive_s));
        o.line(format!("{n} timers connect '{}'", peer.connect_retry_s));
        if let Some(bfd) = &peer.bfd {
            o.line(format!("{n} bfd profile '{}'", ident(&bfd.name)));
        }
        if peer.graceful_restart {
            o.line(format!("{n} graceful-restart 'enable'"));
        }
        if peer.ipv4_over_ipv6() {
            // IPv4 routes with IPv6 next hops over this IPv6 session (RFC 8950).
            o.line(format!("{n} capability extended-nexthop"));
        }
        for family in &peer.families {
            let af = af_name(*family);
            let import = if peer.prefixes(*family).is_empty() {
                "OXLB-DENY-ALL".to_string()
            } else {
                map_name(peer, *family)
            };
            o.line(format!(
                "{n} address-family {af} route-map import '{import}'"
            ));
            o.line(format!(
                "{n} address-family {af} route-map export 'OXLB-DENY-ALL'"
            ));
        }
    }
    o.line("");
}
