//! `oxlb check`: load files, build the config, print a summary or every error.

use std::fmt::Write as _;
use std::process::ExitCode;

use oxlb_config::{Config, Diagnostic, Family, PeerAddress, PeerAsn, Snapshot};
use serde::Serialize;

use crate::cli::{CheckArgs, OutputFormat};

pub fn run(args: &CheckArgs) -> ExitCode {
    let report = check(args);
    match args.output {
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => crate::out::println(&text),
            Err(e) => eprintln!("error: {e}"),
        },
        OutputFormat::Text => crate::out::print(&render_text(&report)),
    }
    if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What `check` found, as printed by `-o json`.
#[derive(Serialize)]
pub struct Report {
    pub valid: bool,
    pub namespace: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Objects not in force as written: left out, or held at the last valid version
    /// their `oxlb.io/last-valid-spec` annotation records (as the cluster would).
    pub quarantined: Vec<oxlb_config::Quarantined>,
    /// What would be in force: everything valid, even when some objects are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

#[derive(Serialize)]
pub struct Summary {
    pub objects: usize,
    pub pools: Vec<PoolSummary>,
    pub peers: Vec<PeerSummary>,
}

#[derive(Serialize)]
pub struct PoolSummary {
    pub name: String,
    pub addresses: Vec<String>,
    pub ipv4_addresses: u128,
    pub ipv6_addresses: u128,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    /// L2Advertisement names announcing this pool.
    pub l2: Vec<String>,
    pub bgp: Vec<BgpSummary>,
}

#[derive(Serialize)]
pub struct BgpSummary {
    pub advertisement: String,
    /// Peer names; every peer when the advertisement names none.
    pub peers: Vec<String>,
    pub aggregation_length_v4: u8,
    pub aggregation_length_v6: u8,
    pub local_pref: Option<u32>,
    pub communities: Vec<String>,
}

#[derive(Serialize)]
pub struct PeerSummary {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub my_asn: u32,
    pub peer_asn: String,
    pub ibgp: bool,
    pub hold_time_s: f64,
    pub keepalive_time_s: f64,
    pub bfd_profile: Option<String>,
    pub node_selectors: usize,
    /// The Linux VRF the session runs in (`None`: the default VRF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
}

fn check(args: &CheckArgs) -> Report {
    let empty = |errors| Report {
        valid: false,
        namespace: args.namespace.clone(),
        errors,
        warnings: Vec::new(),
        quarantined: Vec::new(),
        summary: None,
    };
    let snapshot = match oxlb_config::load_paths(&args.files, &args.namespace) {
        Ok(s) => s,
        Err(diagnostics) => {
            let (errors, warnings): (Vec<_>, Vec<_>) =
                diagnostics.into_iter().partition(Diagnostic::is_error);
            return Report {
                warnings,
                ..empty(errors)
            };
        }
    };
    // The same quarantine the controller and speakers apply: the summary shows what
    // the cluster would keep, `quarantined` what it would leave out or hold back.
    let built = oxlb_config::build_config(&snapshot);
    let mut warnings = built.warnings;
    warnings.extend(crate::control_plane::health_check_warnings(&snapshot));
    Report {
        valid: built.errors.is_empty(),
        namespace: args.namespace.clone(),
        summary: Some(summarize(&built.applied, &snapshot)),
        errors: built.errors,
        warnings,
        quarantined: built.quarantined,
    }
}

fn community_text(c: &oxlb_config::Community) -> String {
    match c {
        oxlb_config::Community::Standard(v) => format!("{}:{}", v >> 16, v & 0xFFFF),
        oxlb_config::Community::Large(a, b, c) => format!("large:{a}:{b}:{c}"),
    }
}

fn summarize(config: &Config, snapshot: &Snapshot) -> Summary {
    let all_peers: Vec<String> = config.peers.keys().cloned().collect();
    let pools = config
        .pools
        .values()
        .map(|pool| {
            let count = |family| {
                pool.ranges
                    .iter()
                    .filter(|r| r.family() == family)
                    .fold(0u128, |n, r| n.saturating_add(r.len()))
            };
            PoolSummary {
                name: pool.name.clone(),
                addresses: pool.addresses_as_written.clone(),
                ipv4_addresses: count(Family::V4),
                ipv6_addresses: count(Family::V6),
                auto_assign: pool.auto_assign,
                avoid_buggy_ips: pool.avoid_buggy_ips,
                l2: config
                    .l2_advertisements
                    .values()
                    .filter(|a| a.pools.contains(&pool.name))
                    .map(|a| a.name.clone())
                    .collect(),
                bgp: config
                    .bgp_advertisements
                    .values()
                    .filter(|a| a.pools.contains(&pool.name))
                    .map(|a| BgpSummary {
                        advertisement: a.name.clone(),
                        peers: if a.peers.is_empty() {
                            all_peers.clone()
                        } else {
                            a.peers.iter().cloned().collect()
                        },
                        aggregation_length_v4: a.aggregation_length_v4,
                        aggregation_length_v6: a.aggregation_length_v6,
                        local_pref: a.local_pref,
                        communities: a.communities.iter().map(community_text).collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let peers = config
        .peers
        .values()
        .map(|p| PeerSummary {
            name: p.name.clone(),
            address: match &p.address {
                PeerAddress::Ip(ip) => ip.to_string(),
                PeerAddress::Interface(i) => format!("interface {i}"),
            },
            port: p.port,
            my_asn: p.my_asn,
            peer_asn: match p.peer_asn {
                PeerAsn::Fixed(a) => a.to_string(),
                PeerAsn::DynamicInternal => "dynamic (internal)".into(),
                PeerAsn::DynamicExternal => "dynamic (external)".into(),
            },
            ibgp: p.is_ibgp(),
            hold_time_s: p.hold_time.as_secs_f64(),
            keepalive_time_s: p.keepalive_time.as_secs_f64(),
            bfd_profile: p.bfd_profile.clone(),
            node_selectors: p.node_selectors.len(),
            vrf: p.vrf.clone(),
        })
        .collect();
    Summary {
        objects: snapshot.object_count(),
        pools,
        peers,
    }
}

fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = render_into(report, &mut out);
    out
}

fn render_into(report: &Report, out: &mut String) -> std::fmt::Result {
    if !report.valid {
        writeln!(
            out,
            "The configuration is INVALID: {} error(s).\n",
            report.errors.len()
        )?;
        for e in &report.errors {
            writeln!(out, "{e}")?;
        }
        if !report.quarantined.is_empty() {
            writeln!(
                out,
                "\nThe cluster would apply everything else, and for these objects:"
            )?;
            for q in &report.quarantined {
                let what = match q.decision {
                    oxlb_config::Decision::LeftOut => "left out",
                    oxlb_config::Decision::KeptLastValid => "kept at its last valid version",
                };
                writeln!(out, "  {} {:?}: {what}", q.kind.as_str(), q.name)?;
            }
        }
        writeln!(out)?;
    }
    if let Some(summary) = &report.summary {
        if report.valid {
            writeln!(
                out,
                "The configuration is valid (namespace {}, {} objects read).",
                report.namespace, summary.objects
            )?;
        } else {
            writeln!(
                out,
                "In force (namespace {}, {} objects read):",
                report.namespace, summary.objects
            )?;
        }
        writeln!(out, "\nAddress pools ({}):", summary.pools.len())?;
        for p in &summary.pools {
            let mut counts = Vec::new();
            if p.ipv4_addresses > 0 {
                counts.push(format!("{} IPv4", p.ipv4_addresses));
            }
            if p.ipv6_addresses > 0 {
                counts.push(format!("{} IPv6", p.ipv6_addresses));
            }
            let mut flags = Vec::new();
            if !p.auto_assign {
                flags.push("autoAssign off: only on request");
            }
            if p.avoid_buggy_ips {
                flags.push("avoids .0/.255");
            }
            writeln!(
                out,
                "  {}: {} ({}){}",
                p.name,
                p.addresses.join(", "),
                counts.join(" + "),
                suffix(&flags)
            )?;
            if !p.l2.is_empty() {
                writeln!(out, "      layer 2 (ARP/NDP) by {}", p.l2.join(", "))?;
            }
            for b in &p.bgp {
                let mut attrs = vec![format!(
                    "prefix /{} (IPv4) /{} (IPv6)",
                    b.aggregation_length_v4, b.aggregation_length_v6
                )];
                if let Some(lp) = b.local_pref {
                    attrs.push(format!("localPref {lp}"));
                }
                if !b.communities.is_empty() {
                    attrs.push(format!("communities {}", b.communities.join(" ")));
                }
                let peers = if b.peers.is_empty() {
                    "(no peers defined)".to_string()
                } else {
                    b.peers.join(", ")
                };
                writeln!(
                    out,
                    "      BGP by {} to {}: {}",
                    b.advertisement,
                    peers,
                    attrs.join(", ")
                )?;
            }
            if p.l2.is_empty() && p.bgp.is_empty() {
                writeln!(out, "      not announced")?;
            }
        }
        writeln!(out, "\nBGP peers ({}):", summary.peers.len())?;
        for p in &summary.peers {
            let kind = if p.ibgp { "iBGP" } else { "eBGP" };
            let bfd = p
                .bfd_profile
                .as_ref()
                .map(|b| format!(", BFD {b}"))
                .unwrap_or_default();
            let nodes = if p.node_selectors == 0 {
                "all nodes".to_string()
            } else {
                format!("{} node selector(s)", p.node_selectors)
            };
            let vrf = p
                .vrf
                .as_ref()
                .map(|v| format!(" in VRF {v}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {}: {}{vrf} port {}, AS {} -> AS {} ({kind}), hold {}s keepalive {}s{bfd}, from {nodes}",
                p.name, p.address, p.port, p.my_asn, p.peer_asn, p.hold_time_s, p.keepalive_time_s
            )?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out, "\nWarnings ({}):", report.warnings.len())?;
        for w in &report.warnings {
            writeln!(out, "{w}")?;
        }
    }
    Ok(())
}

fn suffix(flags: &[&str]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join("; "))
    }
}
