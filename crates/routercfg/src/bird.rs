//! bird.conf for BIRD 2. Identifiers get an `oxlb_` prefix: BIRD keywords (`s`, `bgp`,
//! `filter`...) are not valid names, and config names may contain `-` or `.`.

use oxlb_config::Family;

use crate::out::Out;
use crate::plan::{Plan, RouterPeer, ident};

pub(crate) fn render(plan: &Plan) -> String {
    let mut o = Out::default();
    let c = |o: &mut Out, text: &str| o.comment("#", text);
    c(
        &mut o,
        "oxlb router-config --flavor bird: the router's side of oxlb's BGP sessions.\n\
         BIRD 2 configuration (bird.conf). Check it with `bird -p -c FILE`,\n\
         apply it with `birdc configure`.",
    );
    for note in &plan.notes {
        c(&mut o, &format!("NOTE: {note}"));
    }
    if plan.weighted_ecmp {
        c(
            &mut o,
            "NOTE: weighted ECMP (oxlb.io/weighted-ecmp) cannot be honoured by BIRD 2: it\n\
             installs multipath routes with equal weights and does not read the link\n\
             bandwidth community (it keeps and shows it, BGP.ext_community). Traffic is\n\
             split equally between the nodes.",
        );
    }
    o.line("");
    c(
        &mut o,
        "The router id names this router in BGP; it must be unique among the speakers.",
    );
    o.line(format!("router id {};", plan.router_id));
    o.line("");
    c(
        &mut o,
        "Learn the interfaces and their state from the kernel.",
    );
    o.line("protocol device {");
    o.line("}");
    o.line("");
    c(
        &mut o,
        "Directly connected networks, so BGP next hops (the nodes) can be resolved.",
    );
    o.line("protocol direct {");
    o.line("\tipv4;");
    o.line("\tipv6;");
    o.line("}");
    o.line("");
    c(
        &mut o,
        &format!(
            "Install the BGP routes into the kernel's routing table. `merge paths` installs\n\
             equal routes from several nodes as one multipath route (ECMP), up to {} paths,\n\
             so traffic is spread over every node announcing a service address.",
            plan.max_paths
        ),
    );
    for (family, name) in [(Family::V4, "ipv4"), (Family::V6, "ipv6")] {
        if !plan.any_family(family) {
            continue;
        }
        o.line(format!("protocol kernel oxlb_kernel_{name} {{"));
        o.line(format!("\t{name} {{"));
        o.line("\t\texport where source = RTS_BGP;");
        o.line("\t};");
        o.line(format!("\tmerge paths on limit {};", plan.max_paths));
        o.line("}");
        o.line("");
    }

    c(
        &mut o,
        "Import policy: accept exactly the service addresses oxlb may announce.\n\
         `P{a,b}` matches prefixes inside P whose length is between a and b, so the pool's\n\
         prefix and every longer one inside it (the /32 and /128 routes oxlb announces per\n\
         service IP) match; anything else is rejected.",
    );
    for peer in &plan.peers {
        for family in &peer.families {
            render_filter(&mut o, peer, *family);
        }
    }
    c(
        &mut o,
        "Nothing is sent to the nodes: oxlb ignores received routes.",
    );
    o.line("");

    if let Some(profile) = plan.bfd_profiles().values().next() {
        c(
            &mut o,
            &format!(
                "BFD notices a dead node in well under a second instead of waiting for the\n\
                 BGP hold timer. Timers of BFDProfile {}{}.",
                profile.name,
                if plan.bfd_profiles().len() > 1 {
                    " (BIRD has one set of BFD timers per interface: the first profile is used)"
                } else {
                    ""
                }
            ),
        );
        o.line("protocol bfd oxlb_bfd {");
        for scope in ["interface \"*\"", "multihop"] {
            o.line(format!("\t{scope} {{"));
            o.line(format!(
                "\t\tmin rx interval {} ms;",
                profile.receive_interval_ms
            ));
            o.line(format!(
                "\t\tmin tx interval {} ms;",
                profile.transmit_interval_ms
            ));
            o.line(format!("\t\tmultiplier {};", profile.detect_multiplier));
            if profile.passive_mode {
                o.line("\t\tpassive yes;");
            }
            o.line("\t};");
        }
        o.line("}");
        if plan.bfd_profiles().values().any(|p| p.echo_mode) {
            c(
                &mut o,
                "BIRD's BFD has no echo mode: it neither asks for echo packets nor sends any, so\n\
                 the nodes' echoMode stays inactive (Required Min Echo RX 0) and detection is\n\
                 min rx interval x multiplier above. IP forwarding on this router is still what\n\
                 would loop a node's echo packets.",
            );
        }
        o.line("");
    }

    for peer in &plan.peers {
        render_peer(&mut o, plan, peer);
    }
    o.finish()
}

fn name(peer: &RouterPeer) -> String {
    format!("oxlb_{}", ident(&peer.ident).replace('-', "_"))
}

fn filter_name(peer: &RouterPeer, family: Family) -> String {
    match family {
        Family::V4 => format!("{}_in_v4", name(peer)),
        Family::V6 => format!("{}_in_v6", name(peer)),
    }
}

fn render_filter(o: &mut Out, peer: &RouterPeer, family: Family) {
    let max = match family {
        Family::V4 => 32,
        Family::V6 => 128,
    };
    let prefixes = peer.prefixes(family);
    o.line(format!("filter {} {{", filter_name(peer, family)));
    if prefixes.is_empty() {
        o.line("\t# No pool of this family is announced to this peer.");
    } else {
        let set: Vec<String> = prefixes
            .iter()
            .map(|net| format!("{net}{{{},{max}}}", net.prefix_len()))
            .collect();
        o.line(format!("\tif net ~ [ {} ] then accept;", set.join(", ")));
    }
    o.line("\treject;");
    o.line("}");
    o.line("");
}

fn render_peer(o: &mut Out, plan: &Plan, peer: &RouterPeer) {
    let template = name(peer);
    let kind = if peer.ibgp {
        "iBGP: the nodes are in this router's own AS"
    } else {
        "eBGP: the nodes are in another AS"
    };
    o.comment(
        "#",
        &format!(
            "BGPPeer {}: the nodes connect to this router at {}; {kind}.\n\
             A template holds the settings every node's session shares.",
            peer.name, peer.router_address
        ),
    );
    o.line(format!("template bgp {template} {{"));
    o.line(format!(
        "\tlocal {} as {};\t# this router's address and AS",
        peer.router_address, plan.router_asn
    ));
    if let Some(vrf) = &peer.vrf {
        o.comment(
            "\t#",
            &format!(
                "The nodes peer from their VRF {vrf} (the BGPPeer's vrf): these sessions run in\n\
                 this router's Linux VRF {vrf} (rename it if yours is called otherwise). The\n\
                 routes land in the channels' tables below; to forward in the VRF, give the\n\
                 channels a table that a `protocol kernel {{ vrf \"{vrf}\"; kernel table N; ... }}`\n\
                 exports."
            ),
        );
        o.line(format!("\tvrf \"{vrf}\";"));
    }
    for family in &peer.families {
        let channel = match family {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        };
        o.line(format!("\t{channel} {{"));
        o.line(format!(
            "\t\timport filter {};\t# accept only the pools' prefixes",
            filter_name(peer, *family)
        ));
        o.line("\t\texport none;\t# send nothing to the nodes");
        if *family == Family::V4 && peer.ipv4_over_ipv6() {
            o.line("\t\textended next hop on;\t# IPv4 routes with IPv6 next hops (RFC 8950)");
        }
        o.line("\t};");
    }
    o.line(format!(
        "\thold time {};\t# seconds without a message before the session is dropped",
        peer.hold_time_s
    ));
    if peer.keepalive_s > 0 {
        o.line(format!("\tkeepalive time {};", peer.keepalive_s));
    }
    o.line(format!(
        "\tconnect retry time {};\t# seconds between connection attempts",
        peer.connect_retry_s
    ));
    if let Some(password) = &peer.password {
        o.line(format!(
            "\tpassword \"{password}\";\t# TCP MD5 (RFC 2385), same on both ends"
        ));
    }
    if peer.multihop {
        o.line("\tmultihop;\t# the nodes are not on a directly connected network");
    }
    if peer.bfd.is_some() {
        o.line("\tbfd on;\t# tie the sessions to BFD (protocol oxlb_bfd above)");
    }
    if peer.graceful_restart {
        o.line("\tgraceful restart on;\t# RFC 4724: keep forwarding while a node restarts");
    }
    o.line("}");
    o.line("");
    o.comment("#", "One session per node.");
    for (node, address) in &peer.neighbors {
        let node_ident = ident(node).replace('-', "_");
        o.line(format!(
            "protocol bgp {template}_{node_ident} from {template} {{"
        ));
        o.line(format!("\tdescription \"{}\";", node_ident));
        o.line(format!("\tneighbor {address} as {};", peer.node_asn));
        o.line("}");
        o.line("");
    }
}
