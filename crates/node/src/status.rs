//! What a running `oxlb run` or `oxlb speaker` reports: the JSON of `/api/v1/status`,
//! the source of `/metrics`, and what `oxlb status` and `oxlb explain` print. One value, rebuilt
//! after every change, so all views agree.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The decisions a report carries as enums (serialized as MetalLB's / the RFC's words).
pub use oxlb_announce::Protocol;
pub use oxlb_bgp::State as BgpState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub node: String,
    pub config: ConfigStatus,
    pub services: Vec<ServiceStatus>,
    pub pools: Vec<PoolStatus>,
    pub bgp_sessions: Vec<BgpSessionStatus>,
    pub bgp_routes: Vec<BgpRouteStatus>,
    pub l2: Vec<L2Status>,
    pub bfd_sessions: Vec<BfdSessionStatus>,
    /// What the host's kernel would answer for (no ghost ARP/NDP answers).
    #[serde(default)]
    pub host: HostStatus,
    /// `oxlb drain`: whether this node is drained and whether the peers were told.
    #[serde(default)]
    pub drain: DrainStatus,
    /// Health-checked Services on this node.
    #[serde(default)]
    pub health_checks: Vec<HealthCheckStatus>,
    /// Weighted ECMP: Services whose prefixes a router receives both with and without
    /// the link-bandwidth community (older speakers beside this version).
    #[serde(default)]
    pub weighted_ecmp_mixed: Vec<MixedPathsStatus>,
    /// Whether connections the router re-hashes to another node are handed over.
    #[serde(default)]
    pub second_chance: crate::second_chance::State,
    /// Where `services` and `bgp_routes` come from when the report does not hold them
    /// ([`StatusReport::materialized`]); never serialized.
    #[serde(skip)]
    pub derived_rows: DerivedRows,
}

/// What a report's per-Service and per-route rows are derived from when they are asked
/// for, instead of being held in every report (issue 22): with 10,000 Services and 3
/// peers the rows of `oxlb run` held about 6 MB (40,000 rows of Strings and lists) for
/// readers that come once a scrape or an `oxlb status`.
pub trait RowSource: Send + Sync + std::fmt::Debug {
    fn services(&self) -> Vec<ServiceStatus>;
    fn bgp_routes(&self) -> Vec<BgpRouteStatus>;
}

/// A report's [`RowSource`], if it has one. Two reports agree on it when they share
/// the same source (the rows themselves are not compared).
#[derive(Clone, Default)]
pub struct DerivedRows(Option<std::sync::Arc<dyn RowSource>>);

impl DerivedRows {
    pub fn from_source(source: std::sync::Arc<dyn RowSource>) -> DerivedRows {
        DerivedRows(Some(source))
    }
}

impl PartialEq for DerivedRows {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for DerivedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "DerivedRows(when asked)"
        } else {
            "DerivedRows(none)"
        })
    }
}

impl StatusReport {
    /// The report with its rows: derived now from its [`RowSource`] if it has one
    /// (what the status API serves and the metrics read), else as held.
    pub fn materialized(mut self) -> StatusReport {
        if let Some(source) = self.derived_rows.0.take() {
            self.services = source.services();
            self.bgp_routes = source.bgp_routes();
        }
        self
    }
}

/// One weighted Service with mixed paths ([`oxlb_announce::mixed_paths`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedPathsStatus {
    /// `namespace/name`.
    pub service: String,
    pub prefixes: Vec<ipnet::IpNet>,
    /// The nodes that announce them without the community (older oxlb speakers).
    pub without_community: Vec<String>,
    /// The nodes that announce them with it.
    pub with_community: Vec<String>,
}

impl std::fmt::Display for MixedPathsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |items: &[String]| items.join(", ");
        let prefixes: Vec<String> = self.prefixes.iter().map(ToString::to_string).collect();
        let verb = if self.without_community.len() == 1 {
            "announces"
        } else {
            "announce"
        };
        write!(
            f,
            "{} {verb} {} ({}) without the link-bandwidth community (an older oxlb); FRR \
             then splits traffic equally over every path unless the router has `bgp bestpath \
             bandwidth default-weight-for-missing` (oxlb router-config emits it)",
            list(&self.without_community),
            list(&prefixes),
            self.service,
        )
    }
}

/// The drain of this node (`oxlb drain` / `oxlb undrain`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub drained: bool,
    /// Every BGP session is done: its peer confirmed the withdrawals (RFC 7313 EoRR
    /// after our ROUTE-REFRESH request), or they were written where the peer cannot
    /// confirm, or the session is down.
    pub converged: bool,
    /// From the drain request to `converged`, in milliseconds.
    pub converged_after_ms: Option<u64>,
    /// Each BGP session's part, by peer.
    #[serde(default)]
    pub peers: Vec<DrainPeerStatus>,
}

/// One BGP session in a drain; times count from the drain request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainPeerStatus {
    pub peer: String,
    pub outcome: DrainOutcome,
    /// When every withdrawal had been written to the session.
    #[serde(default)]
    pub written_after_ms: Option<u64>,
    /// When the peer confirmed it processed them.
    #[serde(default)]
    pub confirmed_after_ms: Option<u64>,
}

/// Where one session is in a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainOutcome {
    /// Withdrawals not all written yet.
    Withdrawing,
    /// Written; waiting for the peer's End-of-Route-Refresh.
    Confirming,
    /// The peer confirmed: it has no path from this node any more.
    Confirmed,
    /// Written; the peer lacks enhanced route refresh (RFC 7313), so it cannot confirm.
    WrittenUnconfirmable,
    /// Written and asked, but the peer did not answer in time.
    WrittenUnanswered,
    /// The session is down (the peer dropped our routes with it).
    SessionDown,
}

impl std::fmt::Display for DrainPeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
        match self.outcome {
            DrainOutcome::Withdrawing => f.write_str("withdrawing"),
            DrainOutcome::Confirming => write!(
                f,
                "written after {} ms, waiting for the peer to confirm",
                ms(self.written_after_ms)
            ),
            DrainOutcome::Confirmed => write!(
                f,
                "confirmed after {} ms (written after {} ms; End-of-Route-Refresh received)",
                ms(self.confirmed_after_ms),
                ms(self.written_after_ms)
            ),
            DrainOutcome::WrittenUnconfirmable => write!(
                f,
                "written after {} ms, peer cannot confirm (no enhanced route refresh)",
                ms(self.written_after_ms)
            ),
            DrainOutcome::WrittenUnanswered => write!(
                f,
                "written after {} ms, peer did not confirm (no End-of-Route-Refresh in time)",
                ms(self.written_after_ms)
            ),
            DrainOutcome::SessionDown => f.write_str("session down (no route at the peer)"),
        }
    }
}

/// The Layer 2 host check ([`crate::host_check`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Layer 2 IPs this node does not own whose ARP/NDP its kernel would answer
    /// (`oxlb_layer2_kernel_unowned_answers`); `None`: not checked (no Layer 2).
    #[serde(default)]
    pub kernel_unowned_answers: Option<u64>,
    /// Which, why and the fix, in words; `None` when there are none.
    #[serde(default)]
    pub kernel_note: Option<String>,
    /// Served interface -> its ARP sysctls as found or set.
    #[serde(default)]
    pub arp_sysctls: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// A valid configuration is in force.
    pub loaded: bool,
    /// The last change was rejected; the previous valid configuration stays in force.
    pub stale: bool,
    /// Why the last change was rejected (every error).
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Seconds since the Unix epoch of the last successful load.
    pub loaded_at: Option<u64>,
    /// Kubernetes object updates processed / failed (MetalLB's
    /// `metallb_k8s_client_updates_total` / `_update_errors_total`); 0 outside a cluster.
    #[serde(default)]
    pub updates: u64,
    #[serde(default)]
    pub update_errors: u64,
}

impl ConfigStatus {
    /// Records the errors of one pass over the configuration and returns whether they
    /// differ from the previous pass. With quarantine an invalid object no longer
    /// refuses the whole configuration, but MetalLB counts a configuration it refused
    /// as a failed update: so a new, non-empty error set counts once in
    /// `update_errors` (not on every pass that still sees it), whether one object was
    /// left out or nothing could be read. Controller and speaker both count this way.
    pub fn record_errors(&mut self, errors: Vec<String>) -> bool {
        let changed = errors != self.errors;
        if changed && !errors.is_empty() {
            self.update_errors += 1;
        }
        self.errors = errors;
        changed
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `namespace/name`.
    pub service: String,
    pub ips: Vec<IpAddr>,
    pub pool: Option<String>,
    /// Why the service has no IP (or not the one it asked for), in words.
    pub allocation_error: Option<String>,
    /// How the allocation came about, in words (for `oxlb explain`).
    pub allocation_reason: Option<String>,
    pub announced: Vec<AnnouncedIp>,
    pub not_announced: Vec<NotAnnouncedIp>,
    /// Weighted ECMP: this node's weight for the service (absent: equal paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WeightStatus>,
}

/// This node's weighted-ECMP weight for one service, and what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightStatus {
    pub weight: u32,
    pub ready_local_endpoints: usize,
    pub terminating_local_endpoints: usize,
    /// The ready count exceeded the largest weight sent and was clamped.
    pub clamped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedIp {
    pub ip: IpAddr,
    /// Serialized as `layer2` or `bgp`.
    pub protocol: Protocol,
    /// BGP: the peers; Layer 2: the interfaces. Shared names: a report of 10,000
    /// Services names the same few peers 10,000 times (issue 22).
    pub via: Vec<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAnnouncedIp {
    pub ip: IpAddr,
    pub protocol: Option<Protocol>,
    /// Why, as a stable label in JSON (`not_elected`, `no_local_endpoint`, ...).
    pub reason: SkipReason,
    /// The same in words.
    pub detail: String,
}

/// Why an IP is not announced: the announce core's decision ([`oxlb_announce::Skip`])
/// without its details (those are in [`NotAnnouncedIp::detail`]). Serialized as the
/// labels the report always had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    UnknownPool,
    NoAdvertisement,
    NodeNotSelected,
    NodeExcluded,
    NoServingEndpoint,
    NoLocalEndpoint,
    NotElected,
    NotLive,
    NoPeer,
    NodeCordoned,
    LocalEndpointsTerminating,
    HealthCheckFailing,
    NodeDrained,
}

impl From<&oxlb_announce::Skip> for SkipReason {
    fn from(skip: &oxlb_announce::Skip) -> SkipReason {
        use oxlb_announce::Skip;
        match skip {
            Skip::UnknownPool => SkipReason::UnknownPool,
            Skip::NoAdvertisement => SkipReason::NoAdvertisement,
            Skip::NodeNotSelected => SkipReason::NodeNotSelected,
            Skip::NodeExcluded => SkipReason::NodeExcluded,
            Skip::NoServingEndpoint => SkipReason::NoServingEndpoint,
            Skip::NoLocalEndpoint => SkipReason::NoLocalEndpoint,
            Skip::NotElected { .. } => SkipReason::NotElected,
            Skip::NotLive => SkipReason::NotLive,
            Skip::NoPeer => SkipReason::NoPeer,
            Skip::NodeCordoned => SkipReason::NodeCordoned,
            Skip::LocalEndpointsTerminating => SkipReason::LocalEndpointsTerminating,
            Skip::HealthCheckFailing => SkipReason::HealthCheckFailing,
            Skip::NodeDrained => SkipReason::NodeDrained,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The serde label, one spelling for JSON and text.
        let label = match self {
            SkipReason::UnknownPool => "unknown_pool",
            SkipReason::NoAdvertisement => "no_advertisement",
            SkipReason::NodeNotSelected => "node_not_selected",
            SkipReason::NodeExcluded => "node_excluded",
            SkipReason::NoServingEndpoint => "no_serving_endpoint",
            SkipReason::NoLocalEndpoint => "no_local_endpoint",
            SkipReason::NotElected => "not_elected",
            SkipReason::NotLive => "not_live",
            SkipReason::NoPeer => "no_peer",
            SkipReason::NodeCordoned => "node_cordoned",
            SkipReason::LocalEndpointsTerminating => "local_endpoints_terminating",
            SkipReason::HealthCheckFailing => "health_check_failing",
            SkipReason::NodeDrained => "node_drained",
        };
        f.write_str(label)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    /// The pool's `addresses` as written.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub auto_assign: bool,
    pub ipv4_total: u128,
    pub ipv4_in_use: u128,
    pub ipv6_total: u128,
    pub ipv6_in_use: u128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSessionStatus {
    /// The BGPPeer name.
    pub peer: String,
    /// `ip:port` (`[ip]:port` for IPv6), MetalLB's `peer` metric label.
    pub address: String,
    /// Serialized as the RFC 4271 state name: Idle, Connect, Active, OpenSent,
    /// OpenConfirm, Established.
    pub state: BgpState,
    pub established_seconds: Option<u64>,
    pub prefixes_announced: u64,
    pub prefixes_pending: u64,
    pub updates_sent: u64,
    /// By type and direction (MetalLB's FRR-mode `metallb_bgp_*_sent/_received`).
    #[serde(default)]
    pub messages: BgpMessageCounts,
    pub last_error: Option<String>,
    /// The BGPPeer's `vrf`; `None`: the default VRF.
    #[serde(default)]
    pub vrf: Option<String>,
    /// Enhanced Route Refresh (RFC 7313) negotiated: the peer can confirm a drain.
    #[serde(default)]
    pub enhanced_route_refresh: bool,
    /// Confirmation requests (ROUTE-REFRESH, answered by EoRR) sent on the session.
    #[serde(default)]
    pub confirm_requested: u64,
    /// The highest of them the peer answered.
    #[serde(default)]
    pub confirmed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpMessageCounts {
    pub opens_sent: u64,
    pub opens_received: u64,
    pub notifications_sent: u64,
    pub updates_received: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    pub route_refresh_sent: u64,
    pub total_sent: u64,
    pub total_received: u64,
}

impl From<&oxlb_bgp::session::MessageCounts> for BgpMessageCounts {
    fn from(m: &oxlb_bgp::session::MessageCounts) -> BgpMessageCounts {
        BgpMessageCounts {
            opens_sent: m.opens_sent,
            opens_received: m.opens_received,
            notifications_sent: m.notifications_sent,
            updates_received: m.updates_received,
            keepalives_sent: m.keepalives_sent,
            keepalives_received: m.keepalives_received,
            route_refresh_sent: m.route_refresh_sent,
            total_sent: m.total_sent,
            total_received: m.total_received,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpRouteStatus {
    /// Shared by every row of the peer (one name, not one String a route).
    pub peer: Arc<str>,
    pub prefix: ipnet::IpNet,
    pub local_pref: Option<u32>,
    /// `65535:65282` or `large:64500:1:2`.
    pub communities: Vec<String>,
    /// Weighted ECMP: the link bandwidth weight sent with the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Status {
    pub ip: Option<IpAddr>,
    /// Empty: every eligible interface.
    pub interfaces: Vec<String>,
    pub services: Vec<String>,
    pub requests_received: u64,
    pub responses_sent: u64,
    pub gratuitous_sent: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdSessionStatus {
    pub peer: String,
    pub up: bool,
    pub up_transitions: u64,
    pub down_transitions: u64,
    #[serde(default)]
    pub control_packets_in: u64,
    #[serde(default)]
    pub control_packets_out: u64,
    /// The BGPPeer's `vrf`; `None`: the default VRF.
    #[serde(default)]
    pub vrf: Option<String>,
    /// The Echo function: "off", "inactive: WHY" or "active: every N ms, detection
    /// M ms" ([`oxlb_bfd::EchoStatus`]'s text).
    #[serde(default)]
    pub echo: String,
    /// Our Echo packets that came back / that were sent.
    #[serde(default)]
    pub echo_packets_in: u64,
    #[serde(default)]
    pub echo_packets_out: u64,
}

/// MetalLB's `vrf` metric label: its FRR-mode collector labels each BGP neighbour and
/// BFD peer with the VRF FRR lists it under (`show bgp vrf all json`), whose default
/// VRF is called `default`; a BGPPeer without `vrf` sits there.
pub fn vrf_label(vrf: Option<&str>) -> &str {
    match vrf {
        Some(v) if !v.is_empty() => v,
        _ => "default",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_error_set_counts_once() {
        let mut s = ConfigStatus::default();
        assert!(!s.record_errors(vec![]));
        assert_eq!(s.update_errors, 0);
        assert!(s.record_errors(vec!["pool a overlaps b".into()]));
        assert!(!s.record_errors(vec!["pool a overlaps b".into()]));
        assert_eq!(s.update_errors, 1, "the same rejection seen again");
        assert!(s.record_errors(vec!["pool a overlaps b".into(), "peer x".into()]));
        assert_eq!(s.update_errors, 2, "a different rejection");
        assert!(s.record_errors(vec![]));
        assert_eq!(s.update_errors, 2, "recovery is not a failure");
        assert!(s.errors.is_empty());
    }

    /// The skip reason keeps the announce core's labels, in JSON and in text.
    #[test]
    fn skip_reasons_are_the_cores_labels() -> Result<(), serde_json::Error> {
        let skips = [
            oxlb_announce::Skip::UnknownPool,
            oxlb_announce::Skip::NoAdvertisement,
            oxlb_announce::Skip::NodeNotSelected,
            oxlb_announce::Skip::NodeExcluded,
            oxlb_announce::Skip::NoServingEndpoint,
            oxlb_announce::Skip::NoLocalEndpoint,
            oxlb_announce::Skip::NotElected { owner: "n2".into() },
            oxlb_announce::Skip::NotLive,
            oxlb_announce::Skip::NoPeer,
            oxlb_announce::Skip::NodeCordoned,
            oxlb_announce::Skip::LocalEndpointsTerminating,
            oxlb_announce::Skip::NodeDrained,
        ];
        for skip in &skips {
            let reason = SkipReason::from(skip);
            assert_eq!(reason.to_string(), skip.label());
            let json = serde_json::to_value(reason)?;
            assert_eq!(json, skip.label());
            assert_eq!(serde_json::from_value::<SkipReason>(json)?, reason);
        }
        Ok(())
    }

    /// The enums keep the JSON that `/api/v1/status` served when these were strings.
    #[test]
    fn enums_serialize_as_the_words_they_replaced() -> Result<(), serde_json::Error> {
        let announced = AnnouncedIp {
            ip: IpAddr::from([192, 0, 2, 1]),
            protocol: Protocol::Layer2,
            via: vec![],
        };
        let json = serde_json::to_value(&announced)?;
        assert_eq!(json["protocol"], "layer2");
        assert_eq!(serde_json::from_value::<AnnouncedIp>(json)?, announced);
        let skipped = NotAnnouncedIp {
            ip: IpAddr::from([192, 0, 2, 1]),
            protocol: Some(Protocol::Bgp),
            reason: SkipReason::NotElected,
            detail: "x".into(),
        };
        assert_eq!(serde_json::to_value(&skipped)?["protocol"], "bgp");
        let names = [
            (BgpState::Idle, "Idle"),
            (BgpState::Connect, "Connect"),
            (BgpState::Active, "Active"),
            (BgpState::OpenSent, "OpenSent"),
            (BgpState::OpenConfirm, "OpenConfirm"),
            (BgpState::Established, "Established"),
        ];
        for (state, name) in names {
            let session = BgpSessionStatus {
                state,
                ..BgpSessionStatus::default()
            };
            let json = serde_json::to_value(&session)?;
            assert_eq!(json["state"], name);
            assert_eq!(state.to_string(), name);
            assert_eq!(
                serde_json::from_value::<BgpSessionStatus>(json)?.state,
                state
            );
        }
        assert_eq!(Protocol::Layer2.to_string(), "layer2");
        assert_eq!(Protocol::Bgp.to_string(), "bgp");
        Ok(())
    }
}

/// One Service's health check on this node (`oxlb.io/health-check`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckStatus {
    /// `namespace/name`.
    pub service: String,
    /// The check as parsed (`http://127.0.0.1:8080/healthz`), or the annotation as
    /// written when it is invalid.
    pub check: String,
    /// `pending`, `up`, `down`, or `invalid` (announced as if unchecked).
    pub state: String,
    /// The last passing check's latency.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Why the last check failed, or why the annotations are invalid.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub checks: u64,
    #[serde(default)]
    pub failures: u64,
    /// The check fails on every live speaker (Layer 2 membership news): withdrawn
    /// everywhere. Unknown (false) without membership.
    #[serde(default)]
    pub failing_everywhere: bool,
}
