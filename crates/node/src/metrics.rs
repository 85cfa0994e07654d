//! `/metrics` in the Prometheus text format with MetalLB's exact names and labels, so
//! existing dashboards and alerts keep working (COMPAT.md). Rendered from the status
//! report: a pure function, nothing to keep in sync.
//!
//! Written by hand rather than with prometheus-client: that crate appends `_total` to
//! counters (OpenMetrics), which would rename `metallb_layer2_requests_received`.

use std::fmt::Write;

use crate::status::{
    BfdSessionStatus, BgpSessionStatus, BgpState, L2Status, PoolStatus, StatusReport, vrf_label,
};

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values escape backslash, double quote and newline (text format 0.0.4).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

type PoolGauge = (&'static str, &'static str, fn(&PoolStatus) -> u128);
type L2Counter = (&'static str, &'static str, fn(&L2Status) -> u64);
type BgpSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BgpSessionStatus) -> u64,
);

fn bool_value(value: bool) -> u8 {
    u8::from(value)
}

pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let pools = &report.pools;
    let pool_gauges: [PoolGauge; 6] = [
        (
            "metallb_allocator_addresses_total",
            "Number of usable IP addresses, per pool",
            |p| p.ipv4_total + p.ipv6_total,
        ),
        (
            "metallb_allocator_addresses_in_use_total",
            "Number of IP addresses in use, per pool",
            |p| p.ipv4_in_use + p.ipv6_in_use,
        ),
        (
            "metallb_allocator_ipv4_addresses_total",
            "Number of usable IPV4 addresses, per pool",
            |p| p.ipv4_total,
        ),
        (
            "metallb_allocator_ipv4_addresses_in_use_total",
            "Number of IPV4 addresses in use, per pool",
            |p| p.ipv4_in_use,
        ),
        (
            "metallb_allocator_ipv6_addresses_total",
            "Number of usable IPV6 addresses, per pool",
            |p| p.ipv6_total,
        ),
        (
            "metallb_allocator_ipv6_addresses_in_use_total",
            "Number of IPV6 addresses in use, per pool",
            |p| p.ipv6_in_use,
        ),
    ];
    for (name, help, value) in pool_gauges {
        let mut family = Family::start(&mut out, name, "gauge", help);
        for pool in pools {
            // Prometheus values are floats; a /64 is exact enough as f64.
            family.sample(name, &[("pool", &pool.name)], value(pool) as f64);
        }
    }
    let config = &report.config;
    Family::start(
        &mut out,
        "metallb_k8s_client_config_loaded_bool",
        "gauge",
        "1 if the configuration was ever loaded",
    )
    .sample(
        "metallb_k8s_client_config_loaded_bool",
        &[],
        bool_value(config.loaded),
    );
    Family::start(
        &mut out,
        "metallb_k8s_client_config_stale_bool",
        "gauge",
        "1 if running on a stale configuration, because the latest one could not be loaded",
    )
    .sample(
        "metallb_k8s_client_config_stale_bool",
        &[],
        bool_value(config.stale),
    );

    let client_counters: [(&str, &str, u64); 2] = [
        (
            "metallb_k8s_client_updates_total",
            "Number of k8s object updates that have been processed.",
            config.updates,
        ),
        (
            "metallb_k8s_client_update_errors_total",
            "Number of k8s object updates that failed for some reason.",
            config.update_errors,
        ),
    ];
    for (name, help, value) in client_counters {
        Family::start(&mut out, name, "counter", help).sample(name, &[], value);
    }

    let mut announced = Family::start(
        &mut out,
        "metallb_speaker_announced",
        "gauge",
        "Services being announced from this node. This is desired state, it does not guarantee that the routing protocols have converged.",
    );
    for service in &report.services {
        for ip in &service.announced {
            announced.sample(
                "metallb_speaker_announced",
                &[
                    ("ip", &ip.ip.to_string()),
                    ("node", &report.node),
                    ("protocol", ip.protocol.label()),
                    ("service", &service.service),
                ],
                1,
            );
        }
    }

    // Weighted ECMP: the weight each prefix carries (oxlb's own series, so MetalLB's
    // metallb_bgp_announced_prefixes_total keeps its labels).
    let mut weights = Family::start(
        &mut out,
        "oxlb_bgp_announced_prefix_weight",
        "gauge",
        "Weighted ECMP weight sent with the prefix (link bandwidth community, in Mbit/s units)",
    );
    for route in &report.bgp_routes {
        if let Some(weight) = route.weight {
            weights.sample(
                "oxlb_bgp_announced_prefix_weight",
                &[("peer", &route.peer), ("prefix", &route.prefix.to_string())],
                u64::from(weight),
            );
        }
    }

    // Weighted ECMP with mixed paths: per Service, the nodes that announce its
    // prefixes without the link-bandwidth community (older speakers); absent: none.
    let mut mixed = Family::start(
        &mut out,
        "oxlb_bgp_weighted_ecmp_paths_without_community",
        "gauge",
        "Nodes announcing a weighted ECMP Service's prefixes without the link bandwidth community while others attach it (older oxlb speakers); routers may then split traffic equally",
    );
    for m in &report.weighted_ecmp_mixed {
        mixed.sample(
            "oxlb_bgp_weighted_ecmp_paths_without_community",
            &[("service", &m.service)],
            m.without_community.len(),
        );
    }

    let l2_counters: [L2Counter; 3] = [
        (
            "metallb_layer2_requests_received",
            "Number of layer2 requests received for owned IPs",
            |l| l.requests_received,
        ),
        (
            "metallb_layer2_responses_sent",
            "Number of layer2 responses sent for owned IPs",
            |l| l.responses_sent,
        ),
        (
            "metallb_layer2_gratuitous_sent",
            "Number of gratuitous layer2 packets sent for owned IPs",
            |l| l.gratuitous_sent,
        ),
    ];
    for (name, help, value) in l2_counters {
        let mut family = Family::start(&mut out, name, "counter", help);
        for entry in &report.l2 {
            if let Some(ip) = entry.ip {
                family.sample(name, &[("ip", &ip.to_string())], value(entry));
            }
        }
    }

    let sessions = &report.bgp_sessions;
    // The message counters are those of MetalLB's FRR-mode speaker (its frr-metrics
    // collector reads them from FRR's per-neighbour messageStats), same names.
    let bgp: [BgpSeries; 13] = [
        (
            "metallb_bgp_session_up",
            "gauge",
            "BGP session state (1 is up, 0 is down)",
            |s| u64::from(s.state == BgpState::Established),
        ),
        (
            "metallb_bgp_updates_total",
            "counter",
            "Number of BGP UPDATE messages sent",
            |s| s.updates_sent,
        ),
        (
            "metallb_bgp_announced_prefixes_total",
            "gauge",
            "Number of prefixes currently being advertised on the BGP session",
            |s| s.prefixes_announced,
        ),
        (
            "metallb_bgp_pending_prefixes_total",
            "gauge",
            "Number of prefixes that should be advertised on the BGP session",
            |s| s.prefixes_pending,
        ),
        (
            "metallb_bgp_opens_sent",
            "counter",
            "Number of BGP open messages sent",
            |s| s.messages.opens_sent,
        ),
        (
            "metallb_bgp_opens_received",
            "counter",
            "Number of BGP open messages received",
            |s| s.messages.opens_received,
        ),
        (
            "metallb_bgp_notifications_sent",
            "counter",
            "Number of BGP notification messages sent",
            |s| s.messages.notifications_sent,
        ),
        (
            "metallb_bgp_updates_total_received",
            "counter",
            "Number of BGP UPDATE messages received",
            |s| s.messages.updates_received,
        ),
        (
            "metallb_bgp_keepalives_sent",
            "counter",
            "Number of BGP keepalive messages sent",
            |s| s.messages.keepalives_sent,
        ),
        (
            "metallb_bgp_keepalives_received",
            "counter",
            "Number of BGP keepalive messages received",
            |s| s.messages.keepalives_received,
        ),
        (
            "metallb_bgp_route_refresh_sent",
            "counter",
            "Number of BGP route refresh messages sent",
            |s| s.messages.route_refresh_sent,
        ),
        (
            "metallb_bgp_total_sent",
            "counter",
            "Number of total BGP messages sent",
            |s| s.messages.total_sent,
        ),
        (
            "metallb_bgp_total_received",
            "counter",
            "Number of total BGP messages received",
            |s| s.messages.total_received,
        ),
    ];
    for (name, kind, help, value) in bgp {
        let mut family = Family::start(&mut out, name, kind, help);
        for session in sessions {
            family.sample(
                name,
                &[
                    ("peer", &session.address),
                    ("vrf", vrf_label(session.vrf.as_deref())),
                ],
                value(session),
            );
        }
    }
    let mut bfd = Family::start(
        &mut out,
        "metallb_bfd_session_up",
        "gauge",
        "BFD session state (1 is up, 0 is down)",
    );
    for session in &report.bfd_sessions {
        bfd.sample(
            "metallb_bfd_session_up",
            &[
                ("peer", &session.peer),
                ("vrf", vrf_label(session.vrf.as_deref())),
            ],
            bool_value(session.up),
        );
    }
    // MetalLB's FRR-mode speaker exports these counters with the same names. Echo
    // packets: ours sent and ours looped back (0 for sessions without echo).
    type BfdCounter = (&'static str, &'static str, fn(&BfdSessionStatus) -> u64);
    let bfd_events: [BfdCounter; 6] = [
        (
            "metallb_bfd_control_packet_input",
            "Number of received BFD control packets",
            |s| s.control_packets_in,
        ),
        (
            "metallb_bfd_control_packet_output",
            "Number of sent BFD control packets",
            |s| s.control_packets_out,
        ),
        (
            "metallb_bfd_echo_packet_input",
            "Number of received BFD echo packets",
            |s| s.echo_packets_in,
        ),
        (
            "metallb_bfd_echo_packet_output",
            "Number of sent BFD echo packets",
            |s| s.echo_packets_out,
        ),
        (
            "metallb_bfd_session_down_events",
            "Number of BFD session down events",
            |s| s.down_transitions,
        ),
        (
            "metallb_bfd_session_up_events",
            "Number of BFD session up events",
            |s| s.up_transitions,
        ),
    ];
    for (name, help, value) in bfd_events {
        let mut family = Family::start(&mut out, name, "counter", help);
        for session in &report.bfd_sessions {
            family.sample(
                name,
                &[
                    ("peer", &session.peer),
                    ("vrf", vrf_label(session.vrf.as_deref())),
                ],
                value(session),
            );
        }
    }
    // oxlb's own (no MetalLB equivalent): 0 is the only healthy value.
    if let Some(count) = report.host.kernel_unowned_answers {
        let name = "oxlb_layer2_kernel_unowned_answers";
        Family::start(
            &mut out,
            name,
            "gauge",
            "Layer 2 IPs this node does not own whose ARP/NDP its kernel would answer \
             (a second MAC on the LAN); see oxlb explain",
        )
        .sample(name, &[], count);
    }
    out.push_str(&crate::health::metrics(report));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::*;

    #[test]
    fn renders_metallb_names_and_escapes_labels() {
        let report = StatusReport {
            node: "node1".into(),
            config: ConfigStatus {
                loaded: true,
                stale: true,
                updates: 12,
                update_errors: 3,
                ..Default::default()
            },
            pools: vec![PoolStatus {
                name: "lan".into(),
                ipv4_total: 254,
                ipv4_in_use: 2,
                ipv6_total: 256,
                ipv6_in_use: 1,
                ..Default::default()
            }],
            services: vec![ServiceStatus {
                service: "default/we\"b".into(),
                announced: vec![AnnouncedIp {
                    ip: "192.168.10.1".parse().unwrap(),
                    protocol: Protocol::Bgp,
                    via: vec![],
                }],
                ..Default::default()
            }],
            bgp_sessions: vec![
                BgpSessionStatus {
                    peer: "router".into(),
                    address: "10.0.0.1:179".into(),
                    state: BgpState::Established,
                    updates_sent: 7,
                    messages: BgpMessageCounts {
                        opens_sent: 1,
                        keepalives_received: 4,
                        updates_received: 2,
                        total_received: 7,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                BgpSessionStatus {
                    peer: "in-red".into(),
                    address: "10.1.0.1:179".into(),
                    state: BgpState::Active,
                    vrf: Some("red".into()),
                    ..Default::default()
                },
            ],
            l2: vec![L2Status {
                ip: Some("192.168.10.9".parse().unwrap()),
                requests_received: 3,
                ..Default::default()
            }],
            bfd_sessions: vec![
                BfdSessionStatus {
                    peer: "10.0.0.1".into(),
                    up: true,
                    up_transitions: 2,
                    down_transitions: 1,
                    control_packets_in: 30,
                    control_packets_out: 31,
                    vrf: None,
                    echo: "active: every 50 ms, detection 150 ms".into(),
                    echo_packets_in: 7,
                    echo_packets_out: 8,
                },
                BfdSessionStatus {
                    peer: "10.1.0.1".into(),
                    control_packets_in: 5,
                    vrf: Some("red".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let text = render(&report);
        for line in [
            "metallb_allocator_addresses_total{pool=\"lan\"} 510",
            "metallb_allocator_ipv4_addresses_in_use_total{pool=\"lan\"} 2",
            "metallb_allocator_ipv6_addresses_total{pool=\"lan\"} 256",
            "metallb_k8s_client_config_loaded_bool 1",
            "metallb_k8s_client_config_stale_bool 1",
            "metallb_k8s_client_updates_total 12",
            "metallb_k8s_client_update_errors_total 3",
            "# TYPE metallb_k8s_client_update_errors_total counter",
            "metallb_speaker_announced{ip=\"192.168.10.1\",node=\"node1\",protocol=\"bgp\",service=\"default/we\\\"b\"} 1",
            "metallb_layer2_requests_received{ip=\"192.168.10.9\"} 3",
            "metallb_bgp_session_up{peer=\"10.0.0.1:179\",vrf=\"default\"} 1",
            "metallb_bgp_updates_total{peer=\"10.0.0.1:179\",vrf=\"default\"} 7",
            "# TYPE metallb_bgp_updates_total counter",
            "metallb_bgp_opens_sent{peer=\"10.0.0.1:179\",vrf=\"default\"} 1",
            "metallb_bgp_keepalives_received{peer=\"10.0.0.1:179\",vrf=\"default\"} 4",
            "metallb_bgp_updates_total_received{peer=\"10.0.0.1:179\",vrf=\"default\"} 2",
            "metallb_bgp_total_received{peer=\"10.0.0.1:179\",vrf=\"default\"} 7",
            "metallb_bgp_notifications_sent{peer=\"10.0.0.1:179\",vrf=\"default\"} 0",
            "# TYPE metallb_bgp_total_sent counter",
            "metallb_bfd_control_packet_input{peer=\"10.0.0.1\",vrf=\"default\"} 30",
            "metallb_bfd_control_packet_output{peer=\"10.0.0.1\",vrf=\"default\"} 31",
            "metallb_bfd_echo_packet_input{peer=\"10.0.0.1\",vrf=\"default\"} 7",
            "metallb_bfd_echo_packet_output{peer=\"10.0.0.1\",vrf=\"default\"} 8",
            "metallb_bfd_session_up{peer=\"10.0.0.1\",vrf=\"default\"} 1",
            "metallb_bfd_session_up_events{peer=\"10.0.0.1\",vrf=\"default\"} 2",
            "metallb_bfd_session_down_events{peer=\"10.0.0.1\",vrf=\"default\"} 1",
            "# TYPE metallb_bfd_session_down_events counter",
            // A BGPPeer with `vrf: red` is labelled as MetalLB's FRR-mode collector
            // labels it (the VRF FRR lists the neighbour under).
            "metallb_bgp_session_up{peer=\"10.1.0.1:179\",vrf=\"red\"} 0",
            "metallb_bgp_opens_sent{peer=\"10.1.0.1:179\",vrf=\"red\"} 0",
            "metallb_bfd_session_up{peer=\"10.1.0.1\",vrf=\"red\"} 0",
            "metallb_bfd_control_packet_input{peer=\"10.1.0.1\",vrf=\"red\"} 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
