//! Text for people: `oxlb status` tables and `oxlb explain` answers, from a status
//! report (fetched from a running instance, or computed offline from files).

use std::fmt::Write;

use oxlb_node::status::{Protocol, ServiceStatus, StatusReport};

/// Column-aligned rows; the first row is the header.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let width = widths.get(c).copied().unwrap_or(0);
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

pub fn status(report: &StatusReport) -> String {
    let mut out = String::new();
    let config = &report.config;
    let state = match (config.loaded, config.stale) {
        (false, _) => "NOT LOADED",
        (true, true) => "STALE (last change rejected; previous configuration in force)",
        (true, false) => "ok",
    };
    let _ = writeln!(out, "node {}   configuration: {state}", report.node);
    for error in &config.errors {
        let _ = writeln!(out, "  error: {error}");
    }
    for warning in &config.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }

    out.push_str("\nBGP sessions\n");
    if report.bgp_sessions.is_empty() {
        out.push_str("  (none for this node)\n");
    } else {
        let mut rows = vec![
            [
                "PEER",
                "ADDRESS",
                "STATE",
                "UP FOR",
                "PREFIXES",
                "UPDATES",
                "LAST ERROR",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for s in &report.bgp_sessions {
            rows.push(vec![
                s.peer.clone(),
                s.address.clone(),
                s.state.to_string(),
                s.established_seconds
                    .map(duration)
                    .unwrap_or_else(|| "-".into()),
                s.prefixes_announced.to_string(),
                s.updates_sent.to_string(),
                s.last_error.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }

    if report.second_chance != oxlb_node::second_chance::State::Pending {
        out.push_str(&format!("\nSecond chance: {}\n", report.second_chance));
    }

    if !report.bfd_sessions.is_empty() {
        out.push_str("\nBFD sessions\n");
        let mut rows = vec![
            ["PEER", "STATE", "UP/DOWN EVENTS", "ECHO", "ECHO OUT/BACK"]
                .map(String::from)
                .to_vec(),
        ];
        for b in &report.bfd_sessions {
            rows.push(vec![
                b.peer.clone(),
                if b.up { "Up" } else { "not Up" }.to_string(),
                format!("{}/{}", b.up_transitions, b.down_transitions),
                if b.echo.is_empty() {
                    "off".to_string()
                } else {
                    b.echo.clone()
                },
                format!("{}/{}", b.echo_packets_out, b.echo_packets_in),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }

    if report.drain.drained {
        let state = match report.drain.converged_after_ms {
            Some(ms) if report.drain.converged => format!("converged after {ms} ms"),
            _ => "in progress".to_string(),
        };
        let _ = writeln!(out, "\nDrained (oxlb drain): {state}");
        for p in &report.drain.peers {
            let _ = writeln!(out, "  {}: {p}", p.peer);
        }
    }

    out.push_str("\nAnnounced BGP prefixes\n");
    if report.bgp_routes.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows = vec![
            ["PEER", "PREFIX", "LOCAL_PREF", "COMMUNITIES", "WEIGHT"]
                .map(String::from)
                .to_vec(),
        ];
        for r in &report.bgp_routes {
            rows.push(vec![
                r.peer.to_string(),
                r.prefix.to_string(),
                r.local_pref.map_or_else(|| "-".into(), |l| l.to_string()),
                if r.communities.is_empty() {
                    "-".into()
                } else {
                    r.communities.join(" ")
                },
                r.weight.map_or_else(|| "-".into(), |w| w.to_string()),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }

    for mixed in &report.weighted_ecmp_mixed {
        let _ = writeln!(out, "  WARNING: Weighted ECMP: {mixed}.");
    }

    out.push_str("\nLayer 2 (IPs this node answers ARP/NDP for)\n");
    if let Some(note) = &report.host.kernel_note {
        let _ = writeln!(out, "  WARNING: {note}");
    }
    if report.l2.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows = vec![
            [
                "IP",
                "INTERFACES",
                "SERVICES",
                "REQUESTS",
                "REPLIES",
                "GRATUITOUS",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for l in &report.l2 {
            rows.push(vec![
                l.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                if l.interfaces.is_empty() {
                    "all".into()
                } else {
                    l.interfaces.join(",")
                },
                l.services.join(","),
                l.requests_received.to_string(),
                l.responses_sent.to_string(),
                l.gratuitous_sent.to_string(),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }

    out.push_str("\nServices\n");
    if report.services.is_empty() {
        out.push_str("  (no LoadBalancer services)\n");
    } else {
        let mut rows = vec![
            ["SERVICE", "IPS", "POOL", "ANNOUNCED HERE"]
                .map(String::from)
                .to_vec(),
        ];
        for s in &report.services {
            rows.push(vec![
                s.service.clone(),
                if s.ips.is_empty() {
                    "<pending>".into()
                } else {
                    s.ips
                        .iter()
                        .map(|ip| ip.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                },
                s.pool.clone().unwrap_or_else(|| "-".into()),
                announced_summary(s),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }

    out.push_str(&crate::health_render::status_table(report));
    out.push_str("\nPools\n");
    let mut rows = vec![
        ["POOL", "ADDRESSES", "IPV4 IN USE", "IPV6 IN USE"]
            .map(String::from)
            .to_vec(),
    ];
    for p in &report.pools {
        rows.push(vec![
            p.name.clone(),
            p.addresses.join(","),
            format!("{}/{}", p.ipv4_in_use, p.ipv4_total),
            format!("{}/{}", p.ipv6_in_use, p.ipv6_total),
        ]);
    }
    out.push_str(&indent(&table(&rows)));
    out
}

fn announced_summary(service: &ServiceStatus) -> String {
    if service.announced.is_empty() {
        return match service.not_announced.first() {
            Some(n) => format!("no ({})", n.reason),
            None if service.ips.is_empty() => "-".into(),
            None => "no".into(),
        };
    }
    service
        .announced
        .iter()
        .map(|a| format!("{} {}", a.protocol, a.ip))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Why `service` (`namespace/name`) has the IP it has, or none, and whether and how
/// this node announces it. `None` when the report has no such LoadBalancer service.
pub fn explain(report: &StatusReport, service: &str) -> Option<String> {
    let s = report.services.iter().find(|s| s.service == service)?;
    let mut out = String::new();
    if s.ips.is_empty() {
        let _ = writeln!(out, "{service} has no IP.");
    } else {
        let ips: Vec<String> = s.ips.iter().map(|ip| ip.to_string()).collect();
        let _ = writeln!(
            out,
            "{service} has {} from pool {}.",
            ips.join(" and "),
            s.pool.as_deref().unwrap_or("?")
        );
    }
    if let Some(reason) = &s.allocation_reason {
        let _ = writeln!(out, "  {reason}");
    }
    if let Some(error) = &s.allocation_error {
        let _ = writeln!(out, "  The last allocation attempt failed: {error}");
        if error.contains("not allowed in config") || error.contains("no available IPs") {
            let pools: Vec<String> = report
                .pools
                .iter()
                .map(|p| {
                    format!(
                        "{} {} ({} of {} in use)",
                        p.name,
                        p.addresses.join(","),
                        p.ipv4_in_use + p.ipv6_in_use,
                        p.ipv4_total + p.ipv6_total
                    )
                })
                .collect();
            let _ = writeln!(out, "  Pools are: {}", pools.join("; "));
        }
        if !s.ips.is_empty() {
            let _ = writeln!(out, "  It keeps the IP it had until a request can be met.");
        }
    }
    if !s.ips.is_empty() {
        let _ = writeln!(out, "On node {}:", report.node);
        for a in &s.announced {
            let via = if a.via.is_empty() {
                if a.protocol == Protocol::Layer2 {
                    "every eligible interface".to_string()
                } else {
                    "-".into()
                }
            } else {
                a.via.join(", ")
            };
            let what = if a.protocol == Protocol::Bgp {
                "announced by BGP to"
            } else {
                "answered for by Layer 2 on"
            };
            let _ = writeln!(out, "  {} is {what} {via}.", a.ip);
        }
        // Peers in a VRF: what the host needs so the replies go back through it.
        let vrf_peers: std::collections::BTreeSet<(&str, &str)> = report
            .bgp_sessions
            .iter()
            .filter(|b| {
                s.announced
                    .iter()
                    .any(|a| a.via.iter().any(|via| **via == *b.peer))
            })
            .filter_map(|b| Some((b.peer.as_str(), b.vrf.as_deref()?)))
            .collect();
        for (peer, vrf) in vrf_peers {
            let _ = writeln!(
                out,
                "  BGPPeer {peer}: {}.",
                oxlb_config::vrf_return_traffic_note(vrf)
            );
        }
        for n in &s.not_announced {
            let protocol = n.protocol.map(|p| format!(" by {p}")).unwrap_or_default();
            let _ = writeln!(out, "  {} is not announced{protocol}: {}.", n.ip, n.detail);
        }
        if let Some(w) = &s.weight {
            let _ = writeln!(
                out,
                "  Weighted ECMP: this node's weight is {} ({} ready local endpoints, {} terminating{}).",
                w.weight,
                w.ready_local_endpoints,
                w.terminating_local_endpoints,
                if w.clamped {
                    ", clamped to the largest weight sent"
                } else {
                    ""
                }
            );
        }
        for mixed in report
            .weighted_ecmp_mixed
            .iter()
            .filter(|m| m.service == s.service)
        {
            let _ = writeln!(out, "  WARNING: Weighted ECMP: {mixed}.");
        }
        if s.announced.is_empty() && s.not_announced.is_empty() {
            let _ = writeln!(out, "  nothing is announced from this node.");
        }
        if s.announced.iter().any(|a| a.protocol == Protocol::Bgp) {
            for b in &report.bfd_sessions {
                let state = if b.up { "Up" } else { "not Up" };
                let echo = if b.echo.is_empty() { "off" } else { &b.echo };
                let _ = writeln!(out, "  BFD to {}: {state}, echo {echo}.", b.peer);
            }
        }
        out.push_str(&crate::health_render::explain(report, service));
        if let Some(note) = &report.host.kernel_note {
            let _ = writeln!(out, "  Host warning: {note}");
        } else if report.host.kernel_unowned_answers == Some(0)
            && !report.host.arp_sysctls.is_empty()
        {
            let sysctls: Vec<String> = report
                .host
                .arp_sysctls
                .iter()
                .map(|(name, values)| format!("{name}: {values}"))
                .collect();
            let _ = writeln!(
                out,
                "  This node's kernel answers ARP/NDP for no Layer 2 IP it does not own ({}).",
                sysctls.join("; ")
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxlb_node::status::*;

    fn report() -> StatusReport {
        StatusReport {
            node: "node1".into(),
            config: ConfigStatus { loaded: true, ..Default::default() },
            pools: vec![PoolStatus {
                name: "metallb-pool".into(),
                addresses: vec!["192.168.32.0/24".into()],
                ipv4_total: 256,
                ipv4_in_use: 1,
                ..Default::default()
            }],
            services: vec![ServiceStatus {
                service: "default/web".into(),
                ips: vec!["192.168.32.1".parse().unwrap()],
                pool: Some("metallb-pool".into()),
                allocation_error: Some(
                    "Failed to allocate IP for \"default/web\": [\"192.168.3.2\"] is not allowed in config".into(),
                ),
                announced: vec![AnnouncedIp {
                    ip: "192.168.32.1".parse().unwrap(),
                    protocol: Protocol::Bgp,
                    via: vec!["router".into()],
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn explain_names_the_pools_when_a_request_is_outside_them() {
        let text = explain(&report(), "default/web").unwrap();
        assert!(
            text.contains("has 192.168.32.1 from pool metallb-pool"),
            "{text}"
        );
        assert!(
            text.contains("[\"192.168.3.2\"] is not allowed in config"),
            "{text}"
        );
        assert!(
            text.contains("Pools are: metallb-pool 192.168.32.0/24 (1 of 256 in use)"),
            "{text}"
        );
        assert!(
            text.contains("192.168.32.1 is announced by BGP to router."),
            "{text}"
        );
        assert!(explain(&report(), "default/none").is_none());
    }

    /// A Service announced to a BGPPeer in a VRF: explain says what the return path
    /// through that VRF needs; one announced only in the default VRF says nothing of it.
    #[test]
    fn explain_says_what_return_traffic_through_a_vrf_needs() {
        let plain = explain(&report(), "default/web").unwrap();
        assert!(!plain.contains("VRF"), "{plain}");
        let mut r = report();
        r.bgp_sessions = vec![BgpSessionStatus {
            peer: "router".into(),
            vrf: Some("red".into()),
            ..Default::default()
        }];
        let text = explain(&r, "default/web").unwrap();
        assert!(
            text.contains("BGPPeer router: the session runs inside VRF red"),
            "{text}"
        );
        assert!(text.contains("ip vrf exec red"), "{text}");
        assert!(text.contains("docs/vrf.md"), "{text}");
    }

    #[test]
    fn status_shows_every_section() {
        let text = status(&report());
        for part in [
            "BGP sessions",
            "Layer 2",
            "default/web",
            "metallb-pool",
            "1/256",
        ] {
            assert!(text.contains(part), "{part} missing in\n{text}");
        }
    }

    #[test]
    fn status_and_explain_say_whether_bfd_echo_runs_and_why_not() {
        let mut r = report();
        assert!(!status(&r).contains("BFD sessions"));
        r.bfd_sessions = vec![
            BfdSessionStatus {
                peer: "10.0.0.1".into(),
                up: true,
                echo: "active: every 50 ms, detection 150 ms".into(),
                echo_packets_out: 12,
                echo_packets_in: 11,
                ..Default::default()
            },
            BfdSessionStatus {
                peer: "10.0.0.9".into(),
                up: true,
                echo: "inactive: multihop session (RFC 5883 §3: no echo)".into(),
                ..Default::default()
            },
        ];
        let text = status(&r);
        assert!(text.contains("BFD sessions"), "{text}");
        assert!(
            text.contains("active: every 50 ms, detection 150 ms"),
            "{text}"
        );
        assert!(text.contains("12/11"), "{text}");
        let text = explain(&r, "default/web").unwrap();
        assert!(
            text.contains("BFD to 10.0.0.1: Up, echo active: every 50 ms, detection 150 ms."),
            "{text}"
        );
        assert!(
            text.contains("BFD to 10.0.0.9: Up, echo inactive: multihop session"),
            "{text}"
        );
    }

    #[test]
    fn status_and_explain_warn_of_weighted_ecmp_mixed_paths() {
        let mut r = report();
        assert!(!status(&r).contains("Weighted ECMP"));
        r.weighted_ecmp_mixed = vec![MixedPathsStatus {
            service: "default/web".into(),
            prefixes: vec!["192.168.32.1/32".parse().unwrap()],
            without_community: vec!["node2".into()],
            with_community: vec!["node1".into()],
        }];
        let want = "WARNING: Weighted ECMP: node2 announces 192.168.32.1/32 (default/web) \
                    without the link-bandwidth community (an older oxlb)";
        let text = status(&r);
        assert!(text.contains(want), "{text}");
        let text = explain(&r, "default/web").unwrap();
        assert!(text.contains(want), "{text}");
        assert!(text.contains("default-weight-for-missing"), "{text}");
    }

    #[test]
    fn status_shows_each_peer_of_a_drain() {
        let mut r = report();
        assert!(!status(&r).contains("Drained"));
        r.drain = DrainStatus {
            drained: true,
            converged: true,
            converged_after_ms: Some(2720),
            peers: vec![
                DrainPeerStatus {
                    peer: "frr".into(),
                    outcome: DrainOutcome::Confirmed,
                    written_after_ms: Some(1),
                    confirmed_after_ms: Some(2720),
                },
                DrainPeerStatus {
                    peer: "gobgp".into(),
                    outcome: DrainOutcome::WrittenUnconfirmable,
                    written_after_ms: Some(2),
                    confirmed_after_ms: None,
                },
            ],
        };
        let text = status(&r);
        for line in [
            "Drained (oxlb drain): converged after 2720 ms",
            "  frr: confirmed after 2720 ms (written after 1 ms; End-of-Route-Refresh received)",
            "  gobgp: written after 2 ms, peer cannot confirm (no enhanced route refresh)",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        // The JSON names the outcome, not a sentence.
        let json = serde_json::to_value(&r.drain).unwrap();
        assert_eq!(json["peers"][1]["outcome"], "written_unconfirmable");
    }
}

#[cfg(test)]
mod host_tests {
    use super::*;
    use oxlb_node::status::*;

    #[test]
    fn explain_and_status_carry_the_host_check() {
        let mut report = StatusReport {
            node: "node1".into(),
            services: vec![ServiceStatus {
                service: "default/web".into(),
                ips: vec!["10.0.0.5".parse().unwrap()],
                ..Default::default()
            }],
            ..Default::default()
        };
        report.host = HostStatus {
            kernel_unowned_answers: Some(0),
            kernel_note: None,
            arp_sysctls: [(
                "eth0".to_string(),
                "arp_announce=2 arp_ignore=1".to_string(),
            )]
            .into(),
        };
        let text = explain(&report, "default/web").unwrap();
        assert!(text.contains("answers ARP/NDP for no Layer 2 IP"), "{text}");
        assert!(text.contains("eth0: arp_announce=2 arp_ignore=1"), "{text}");
        report.host.kernel_unowned_answers = Some(1);
        report.host.kernel_note = Some("this node's kernel would answer ... strictARP".into());
        let text = explain(&report, "default/web").unwrap();
        assert!(
            text.contains("Host warning: this node's kernel would answer"),
            "{text}"
        );
        assert!(status(&report).contains("WARNING: this node's kernel would answer"));
        let metrics = oxlb_node::metrics::render(&report);
        assert!(
            metrics.contains("# TYPE oxlb_layer2_kernel_unowned_answers gauge\noxlb_layer2_kernel_unowned_answers 1\n"),
            "{metrics}"
        );
        report.host = HostStatus::default();
        assert!(!oxlb_node::metrics::render(&report).contains("oxlb_layer2_kernel"));
    }
}
