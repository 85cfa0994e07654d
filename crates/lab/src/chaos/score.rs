//! Scoring a chaos run: requests sent and failed, the longest outage per Service and
//! the invariants (no Service IP moves, never two Layer 2 answerers, every session
//! back, every Service served at the end), per fault kind. Pure: records in, score out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::kinds::FaultKind;
use super::timeline::{FaultRecord, Request, Sample};

/// Where an event falls: during a fault (from injection to recovery) or in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Quiet,
    Fault(FaultKind),
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet",
            Phase::Fault(kind) => kind.name(),
        }
    }
}

/// By name (`quiet`, `kill`, ...): phases are keys of the JSON score.
impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Phase, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name == "quiet" {
            return Ok(Phase::Quiet);
        }
        FaultKind::ALL
            .iter()
            .find(|k| k.name() == name)
            .map(|k| Phase::Fault(*k))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown phase {name:?}")))
    }
}

/// A span of consecutive failed requests to one IP: from the first failure to the
/// next success (or the last failure when none followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub ip: IpAddr,
    pub service: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub failed: u64,
    pub phase: Phase,
}

impl Outage {
    pub fn length_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "violation", rename_all = "kebab-case")]
pub enum Violation {
    /// A Service's IP changed while it existed.
    IpMoved {
        t_ms: u64,
        service: String,
        from: BTreeSet<IpAddr>,
        to: BTreeSet<IpAddr>,
    },
    /// More than one node answered ARP for a Layer 2 IP.
    TwoAnswerers {
        t_ms: u64,
        ip: IpAddr,
        nodes: BTreeSet<String>,
    },
    /// BGP sessions not Established by the recovery deadline after a fault.
    SessionNotBack {
        fault: usize,
        kind: FaultKind,
        nodes: Vec<String>,
    },
    /// A Service IP that did not answer at the end of the run.
    LostService { service: String, ip: IpAddr },
}

impl Violation {
    pub fn describe(&self) -> String {
        let ips = |set: &BTreeSet<IpAddr>| {
            set.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Violation::IpMoved {
                t_ms,
                service,
                from,
                to,
            } => format!(
                "t={:.1}s Service {service} moved from {} to {}",
                secs(*t_ms),
                ips(from),
                ips(to)
            ),
            Violation::TwoAnswerers { t_ms, ip, nodes } => format!(
                "t={:.1}s {} nodes answered ARP for {ip}: {}",
                secs(*t_ms),
                nodes.len(),
                nodes.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Violation::SessionNotBack { fault, kind, nodes } => format!(
                "after fault #{fault} ({}) the BGP session of {} did not come back",
                kind.name(),
                nodes.join(", ")
            ),
            Violation::LostService { service, ip } => {
                format!("Service {service} ({ip}) did not answer at the end")
            }
        }
    }
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The figures of one phase (a fault kind, or the quiet time in between).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindScore {
    pub faults: usize,
    pub requests_sent: u64,
    pub requests_failed: u64,
    /// Service -> its longest outage in this phase.
    pub longest_outage_ms: BTreeMap<String, u64>,
    pub ip_moves: usize,
    pub two_answerers: usize,
    pub sessions_not_back: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub phases: BTreeMap<Phase, KindScore>,
    pub outages: Vec<Outage>,
    pub violations: Vec<Violation>,
}

impl Score {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The phase at `t_ms`: the fault whose window (injection to recovery) holds it.
fn phase_at(faults: &[FaultRecord], t_ms: u64) -> Phase {
    faults
        .iter()
        .find(|f| (f.start_ms..=f.end_ms).contains(&t_ms))
        .map_or(Phase::Quiet, |f| Phase::Fault(f.kind))
}

/// IP -> Service name, from every sample (the last name seen wins).
fn service_names(samples: &[Sample]) -> BTreeMap<IpAddr, String> {
    let mut out = BTreeMap::new();
    for sample in samples {
        for (service, by_node) in &sample.services {
            for ip in by_node.values().flatten() {
                out.insert(*ip, service.clone());
            }
        }
    }
    out
}

/// Failed-request spans per IP. `requests` need not be sorted.
/// Requests to an IP further apart than this mean nobody aimed at it in between (its
/// Service was removed, and the IP later given to another): an outage open at the gap
/// ends at its last failure instead of spanning the time the IP was not in use. The
/// load sends every 100 ms, a request waits 1 s at most.
const NOT_TARGETED_MS: u64 = 3_000;

pub fn outages(
    requests: &[Request],
    faults: &[FaultRecord],
    names: &BTreeMap<IpAddr, String>,
) -> Vec<Outage> {
    let mut by_ip: BTreeMap<IpAddr, Vec<&Request>> = BTreeMap::new();
    for request in requests {
        by_ip.entry(request.ip).or_default().push(request);
    }
    let mut out = Vec::new();
    for (ip, mut list) in by_ip {
        list.sort_by_key(|r| r.t_ms);
        let mut open: Option<(u64, u64, u64)> = None; // start, last failure, count
        for request in list {
            if let Some((start, last, n)) = open
                && request.t_ms.saturating_sub(last) > NOT_TARGETED_MS
            {
                out.push(outage(ip, start, last, n, faults, names));
                open = None;
            }
            match (request.ok, open) {
                (false, None) => open = Some((request.t_ms, request.t_ms, 1)),
                (false, Some((start, _, n))) => open = Some((start, request.t_ms, n + 1)),
                (true, Some((start, _, n))) => {
                    out.push(outage(ip, start, request.t_ms, n, faults, names));
                    open = None;
                }
                (true, None) => {}
            }
        }
        if let Some((start, last, n)) = open {
            out.push(outage(ip, start, last, n, faults, names));
        }
    }
    out.sort_by_key(|o| (o.start_ms, o.ip));
    out
}

fn outage(
    ip: IpAddr,
    start_ms: u64,
    end_ms: u64,
    failed: u64,
    faults: &[FaultRecord],
    names: &BTreeMap<IpAddr, String>,
) -> Outage {
    Outage {
        ip,
        service: names.get(&ip).cloned().unwrap_or_else(|| ip.to_string()),
        start_ms,
        end_ms,
        failed,
        phase: phase_at(faults, start_ms),
    }
}

/// Service IP changes: a Service's IPs (the union of what every answering node says)
/// that differ from the last non-empty set seen, while the Service exists. A Service
/// absent from a sample (removed) starts afresh.
pub fn ip_moves(samples: &[Sample]) -> Vec<Violation> {
    let mut last: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut out = Vec::new();
    for sample in samples {
        // A sample no node answered says nothing about Services.
        if sample.services.is_empty() {
            continue;
        }
        last.retain(|service, _| sample.services.contains_key(*service));
        for (service, by_node) in &sample.services {
            let now: BTreeSet<IpAddr> = by_node.values().flatten().copied().collect();
            if now.is_empty() {
                continue;
            }
            match last.get(service.as_str()) {
                Some(before) if *before != now => {
                    out.push(Violation::IpMoved {
                        t_ms: sample.t_ms,
                        service: service.clone(),
                        from: before.clone(),
                        to: now.clone(),
                    });
                }
                _ => {}
            }
            last.insert(service, now);
        }
    }
    out
}

/// Samples where more than one node answered one ARP request for one IP (answers to
/// different requests of one sample from different nodes are a hand-over).
pub fn two_answerers(samples: &[Sample]) -> Vec<Violation> {
    samples
        .iter()
        .flat_map(|sample| {
            sample
                .answered_together
                .iter()
                .filter(|(_, nodes)| nodes.len() > 1)
                .map(|(ip, nodes)| Violation::TwoAnswerers {
                    t_ms: sample.t_ms,
                    ip: *ip,
                    nodes: nodes.clone(),
                })
        })
        .collect()
}

/// The whole score. `final_check`: each Service IP and whether it answered at the end.
pub fn score(
    faults: &[FaultRecord],
    requests: &[Request],
    samples: &[Sample],
    final_check: &BTreeMap<IpAddr, bool>,
) -> Score {
    let names = service_names(samples);
    let mut phases: BTreeMap<Phase, KindScore> = BTreeMap::new();
    for fault in faults {
        phases.entry(Phase::Fault(fault.kind)).or_default().faults += 1;
    }
    for request in requests {
        let entry = phases.entry(phase_at(faults, request.t_ms)).or_default();
        entry.requests_sent += 1;
        if !request.ok {
            entry.requests_failed += 1;
        }
    }
    let outages = outages(requests, faults, &names);
    for outage in &outages {
        let longest = phases
            .entry(outage.phase)
            .or_default()
            .longest_outage_ms
            .entry(outage.service.clone())
            .or_default();
        *longest = (*longest).max(outage.length_ms());
    }
    let mut violations = ip_moves(samples);
    violations.extend(two_answerers(samples));
    for violation in &violations {
        let t = match violation {
            Violation::IpMoved { t_ms, .. } | Violation::TwoAnswerers { t_ms, .. } => *t_ms,
            _ => continue,
        };
        let entry = phases.entry(phase_at(faults, t)).or_default();
        match violation {
            Violation::IpMoved { .. } => entry.ip_moves += 1,
            _ => entry.two_answerers += 1,
        }
    }
    for (index, fault) in faults.iter().enumerate() {
        if !fault.sessions_back {
            phases
                .entry(Phase::Fault(fault.kind))
                .or_default()
                .sessions_not_back += 1;
            violations.push(Violation::SessionNotBack {
                fault: index + 1,
                kind: fault.kind,
                nodes: fault.sessions_missing.clone(),
            });
        }
    }
    for (ip, ok) in final_check {
        if !ok {
            violations.push(Violation::LostService {
                service: names.get(ip).cloned().unwrap_or_else(|| ip.to_string()),
                ip: *ip,
            });
        }
    }
    Score {
        phases,
        outages,
        violations,
    }
}

/// The score as a table, then every violation.
pub fn render(score: &Score) -> String {
    let mut out = format!(
        "{:<15} {:>6} {:>9} {:>7} {:>8} {:>7} {:>9}  longest outage per Service\n",
        "phase", "faults", "requests", "failed", "ip moves", "two ARP", "sess lost"
    );
    for (phase, s) in &score.phases {
        let longest: Vec<String> = s
            .longest_outage_ms
            .iter()
            .map(|(service, ms)| format!("{service} {:.1}s", secs(*ms)))
            .collect();
        out.push_str(&format!(
            "{:<15} {:>6} {:>9} {:>7} {:>8} {:>7} {:>9}  {}\n",
            phase.name(),
            s.faults,
            s.requests_sent,
            s.requests_failed,
            s.ip_moves,
            s.two_answerers,
            s.sessions_not_back,
            if longest.is_empty() {
                "none".to_string()
            } else {
                longest.join(", ")
            }
        ));
    }
    if score.violations.is_empty() {
        out.push_str("invariants: all held (no IP moved, never two ARP answerers, every session back, every Service served at the end)\n");
    } else {
        out.push_str(&format!(
            "INVARIANTS BROKEN ({}):\n",
            score.violations.len()
        ));
        for violation in &score.violations {
            out.push_str(&format!("  - {}\n", violation.describe()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn fault(kind: FaultKind, start: u64, end: u64) -> FaultRecord {
        FaultRecord {
            kind,
            node: Some("node1".into()),
            start_ms: start,
            healed_ms: start + 100,
            end_ms: end,
            sessions_back: true,
            sessions_missing: vec![],
            detail: String::new(),
        }
    }

    fn req(t: u64, ip_text: &str, ok: bool) -> Request {
        Request {
            t_ms: t,
            ip: ip(ip_text),
            ok,
        }
    }

    fn sample(t: u64, services: &[(&str, &str, &str)]) -> Sample {
        let mut s = Sample {
            t_ms: t,
            ..Sample::default()
        };
        for (service, node, ip_text) in services {
            s.services
                .entry(service.to_string())
                .or_default()
                .entry(node.to_string())
                .or_default()
                .insert(ip(ip_text));
        }
        s
    }

    #[test]
    fn outages_span_first_failure_to_next_success_and_are_attributed() {
        let faults = [fault(FaultKind::Kill, 1_000, 5_000)];
        let requests = [
            req(900, "10.0.0.1", true),
            req(1_200, "10.0.0.1", false),
            req(1_300, "10.0.0.1", false),
            req(2_000, "10.0.0.1", true),
            req(6_000, "10.0.0.1", false),
            req(6_500, "10.0.0.1", false),
            req(1_500, "10.0.0.2", true),
        ];
        let names = BTreeMap::from([(ip("10.0.0.1"), "web".to_string())]);
        let found = outages(&requests, &faults, &names);
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].start_ms, found[0].end_ms, found[0].failed),
            (1_200, 2_000, 2)
        );
        assert_eq!(found[0].phase, Phase::Fault(FaultKind::Kill));
        assert_eq!(found[0].service, "web");
        // Never followed by a success: ends at the last failure, in the quiet phase.
        assert_eq!((found[1].start_ms, found[1].end_ms), (6_000, 6_500));
        assert_eq!(found[1].phase, Phase::Quiet);
    }

    /// A Service removed right after a failed request, its IP given to another Service
    /// two minutes later: the outage is that one request, not the two minutes.
    #[test]
    fn an_outage_ends_where_nobody_aimed_at_the_ip_any_more() {
        let requests = [
            req(1_000, "10.0.0.1", true),
            req(1_100, "10.0.0.1", false),
            req(120_000, "10.0.0.1", true),
        ];
        let found = outages(&requests, &[], &BTreeMap::new());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].start_ms, found[0].end_ms, found[0].failed),
            (1_100, 1_100, 1)
        );
    }

    #[test]
    fn a_changed_ip_is_a_move_but_a_removed_and_readded_service_is_not() {
        let samples = [
            sample(
                0,
                &[("web", "node1", "10.0.0.1"), ("x", "node1", "10.0.0.9")],
            ),
            sample(
                1,
                &[("web", "node1", "10.0.0.1"), ("web", "node2", "10.0.0.1")],
            ),
            // x removed, then back with another IP: no move.
            sample(
                2,
                &[("web", "node2", "10.0.0.1"), ("x", "node2", "10.0.0.8")],
            ),
            // A sample nobody answered changes nothing.
            Sample {
                t_ms: 3,
                ..Sample::default()
            },
            // node3 disagrees: a move.
            sample(
                4,
                &[("web", "node3", "10.0.0.2"), ("x", "node2", "10.0.0.8")],
            ),
        ];
        let moves = ip_moves(&samples);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert!(
            matches!(&moves[0], Violation::IpMoved { t_ms: 4, service, .. } if service == "web")
        );
    }

    #[test]
    fn two_answerers_are_found_and_the_score_fails() {
        let both = BTreeSet::from(["node1".to_string(), "node2".to_string()]);
        let mut s = sample(10, &[("l2", "node1", "10.0.0.200")]);
        s.answerers.insert(ip("10.0.0.200"), both.clone());
        s.answered_together.insert(ip("10.0.0.200"), both.clone());
        let mut one = s.clone();
        one.t_ms = 20;
        one.answerers
            .insert(ip("10.0.0.200"), BTreeSet::from(["node1".to_string()]));
        one.answered_together.clear();
        // A hand-over inside one sample: both nodes seen, never on one request.
        let mut handover = one.clone();
        handover.t_ms = 30;
        handover.answerers.insert(ip("10.0.0.200"), both);
        let faults = [fault(FaultKind::Partition, 5, 15)];
        let score = score(&faults, &[], &[s, one, handover], &BTreeMap::new());
        assert!(!score.passed());
        assert_eq!(score.violations.len(), 1);
        assert_eq!(
            score.phases[&Phase::Fault(FaultKind::Partition)].two_answerers,
            1
        );
        assert!(render(&score).contains("INVARIANTS BROKEN (1)"));
    }

    #[test]
    fn scores_encode_as_json_with_phase_names_as_keys() {
        let faults = [fault(FaultKind::LinkFlap, 0, 50)];
        let requests = [req(10, "10.0.0.1", false), req(60, "10.0.0.1", true)];
        let score = score(&faults, &requests, &[], &BTreeMap::new());
        let json = serde_json::to_string(&score).unwrap();
        assert!(json.contains("\"link-flap\":{"), "{json}");
        let back: Score = serde_json::from_str(&json).unwrap();
        assert_eq!(back, score);
    }

    #[test]
    fn counts_per_phase_sessions_and_lost_services() {
        let mut not_back = fault(FaultKind::BgpdRestart, 100, 200);
        not_back.sessions_back = false;
        not_back.sessions_missing = vec!["node2".into()];
        let faults = [fault(FaultKind::Kill, 0, 50), not_back];
        let requests = [
            req(10, "10.0.0.1", false),
            req(20, "10.0.0.1", true),
            req(60, "10.0.0.1", true),
            req(150, "10.0.0.1", true),
        ];
        let samples = [sample(0, &[("web", "node1", "10.0.0.1")])];
        let final_check = BTreeMap::from([(ip("10.0.0.1"), true), (ip("10.0.0.2"), false)]);
        let score = score(&faults, &requests, &samples, &final_check);
        let kill = &score.phases[&Phase::Fault(FaultKind::Kill)];
        assert_eq!(
            (kill.faults, kill.requests_sent, kill.requests_failed),
            (1, 2, 1)
        );
        assert_eq!(kill.longest_outage_ms["web"], 10);
        assert_eq!(score.phases[&Phase::Quiet].requests_sent, 1);
        let restart = &score.phases[&Phase::Fault(FaultKind::BgpdRestart)];
        assert_eq!(restart.sessions_not_back, 1);
        assert_eq!(score.violations.len(), 2, "{:?}", score.violations);
        let text = render(&score);
        assert!(text.contains("node2 did not come back"), "{text}");
        assert!(text.contains("10.0.0.2"), "{text}");
        // All good: passes.
        let ok = super::score(&faults[..1], &requests, &samples, &BTreeMap::new());
        assert!(ok.passed());
        assert!(render(&ok).contains("all held"));
    }
}
