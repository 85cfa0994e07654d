//! MikroTik RouterOS 7 commands (`/routing/bgp/connection`, v7 routing filters).

use oxlb_config::Family;

use crate::out::Out;
use crate::plan::{Plan, RouterPeer, ident};

pub(crate) fn render(plan: &Plan) -> String {
    let mut o = Out::default();
    let c = |o: &mut Out, text: &str| o.comment("#", text);
    c(
        &mut o,
        "oxlb router-config --flavor mikrotik: the router's side of oxlb's BGP sessions.\n\
         RouterOS 7 commands: paste them into a terminal (RouterOS 6 syntax differs).",
    );
    for note in &plan.notes {
        c(&mut o, &format!("NOTE: {note}"));
    }
    if plan.weighted_ecmp {
        c(
            &mut o,
            "NOTE: weighted ECMP (oxlb.io/weighted-ecmp) cannot be honoured by RouterOS 7:\n\
             it does not weigh ECMP paths by the link bandwidth community. Traffic is split\n\
             equally between the nodes.",
        );
    }
    o.line("");
    c(
        &mut o,
        "Import policy: accept exactly the service addresses oxlb may announce.\n\
         `dst in P && dst-len in a-b` matches the pool's prefix and every longer prefix\n\
         inside it (the per-service /32 and /128 routes); the final rule rejects the rest.",
    );
    o.line("/routing/filter/rule");
    for peer in &plan.peers {
        let chain = chain_name(peer);
        for family in &peer.families {
            let max = match family {
                Family::V4 => 32,
                Family::V6 => 128,
            };
            for net in peer.prefixes(*family) {
                o.line(format!(
                    "add chain={chain} rule=\"if (dst in {net} && dst-len in {}-{max}) {{ accept; }}\"",
                    net.prefix_len()
                ));
            }
        }
        o.line(format!("add chain={chain} rule=\"reject;\""));
    }
    c(
        &mut o,
        "Send nothing to the nodes: oxlb ignores received routes.",
    );
    o.line("add chain=oxlb-deny-all rule=\"reject;\"");
    o.line("");

    if let Some(profile) = plan.bfd_profiles().values().next() {
        c(
            &mut o,
            &format!(
                "BFD notices a dead node in well under a second instead of waiting for the\n\
                 BGP hold timer. Timers of BFDProfile {}.",
                profile.name
            ),
        );
        o.line("/routing/bfd/configuration");
        o.line(format!(
            "add interfaces=all min-rx={}ms min-tx={}ms multiplier={}{}",
            profile.receive_interval_ms,
            profile.transmit_interval_ms,
            profile.detect_multiplier,
            if profile.passive_mode {
                " passive=yes"
            } else {
                ""
            }
        ));
        o.line("");
    }

    c(
        &mut o,
        &format!(
            "ECMP: RouterOS installs several equal BGP paths only where the BGP instance\n\
             has `multipath` (RouterOS 7.20 and later: /routing/bgp/instance set ... \
             multipath={}).\n\
             One connection per node. as= is this router's AS ({}); remote.as= the nodes'.",
            plan.max_paths, plan.router_asn
        ),
    );
    o.line("/routing/bgp/connection");
    for peer in &plan.peers {
        o.comment(
            "#",
            &format!(
                "BGPPeer {}: the nodes connect to this router at {} ({}).",
                peer.name,
                peer.router_address,
                if peer.ibgp { "iBGP" } else { "eBGP" }
            ),
        );
        if peer.ipv4_over_ipv6() {
            o.comment(
                "#",
                "IPv4 routes come over these IPv6 sessions with IPv6 next hops (RFC 8950\n\
                 extended next hop); not generated for RouterOS: check that your version\n\
                 supports it, or use an IPv4 BGPPeer for the IPv4 pools.",
            );
        }
        let families: Vec<&str> = peer
            .families
            .iter()
            .map(|f| match f {
                Family::V4 => "ip",
                Family::V6 => "ipv6",
            })
            .collect();
        for (node, address) in &peer.neighbors {
            let mut line = format!(
                "add name=oxlb-{}-{} as={} router-id={} local.address={} local.role={} \
                 remote.address={address} remote.as={} address-families={} \
                 hold-time={}s keepalive-time={}s input.filter={} output.filter-chain=oxlb-deny-all",
                peer.ident,
                ident(node),
                plan.router_asn,
                plan.router_id,
                peer.router_address,
                if peer.ibgp { "ibgp" } else { "ebgp" },
                peer.node_asn,
                families.join(","),
                peer.hold_time_s,
                peer.keepalive_s,
                chain_name(peer),
            );
            if let Some(password) = &peer.password {
                line.push_str(&format!(" tcp-md5-key=\"{password}\""));
            }
            if peer.multihop {
                line.push_str(" multihop=yes");
            }
            if peer.bfd.is_some() {
                line.push_str(" use-bfd=yes");
            }
            o.line(line);
        }
    }
    o.finish()
}

fn chain_name(peer: &RouterPeer) -> String {
    format!("oxlb-{}-in", peer.ident)
}
