//! Health-checked announcements in a node's loop, the same for `oxlb run` and
//! `oxlb speaker`: reads the `oxlb.io/health-check` annotations of the
//! Services this node holds IPs for, keeps one check running per Service, and gives the
//! planner the health view and the status report its rows. Invalid annotations are
//! reported (once per change) and the Service is announced as if unchecked.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use oxlb_announce::{Health, ServiceKey};
use oxlb_health::{CheckState, Checks};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::status::HealthCheckStatus;

/// Speaker → the checked Services that pass on it, as the speakers told.
pub type PeerHealth = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Default)]
pub struct HealthChecks {
    checks: Checks,
    /// Invalid annotations per Service, as reported.
    invalid: BTreeMap<ServiceKey, (String, Vec<String>)>,
    /// The states last seen, to log each change once as an event would be recorded.
    seen: BTreeMap<ServiceKey, CheckState>,
    /// Checked Services whose check fails on every live speaker (known only with the
    /// Layer 2 membership's news): withdrawn everywhere, by the rule in
    /// `oxlb_announce::health`, and said so.
    everywhere: BTreeSet<ServiceKey>,
}

/// A state change worth an event: (Service, reason, type is Warning, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    pub service: ServiceKey,
    pub state: CheckState,
    pub message: String,
}

impl HealthChecks {
    /// Runs the checks `services` ask for; returns the invalid annotations newly found
    /// (per Service, every error in words), each once until it changes.
    pub fn sync<'a>(
        &mut self,
        services: impl IntoIterator<Item = &'a Service>,
    ) -> Vec<(ServiceKey, String)> {
        self.sync_annotated(services.into_iter().filter_map(|service| {
            let annotations = service.metadata.annotations.as_ref()?;
            Some((
                crate::views::service_key(service),
                std::borrow::Cow::Borrowed(annotations),
            ))
        }))
    }

    /// [`Self::sync`] over each Service's key and annotations (a Service not listed
    /// has none: a cache that keeps no annotation map per Service lists only those
    /// with annotations of oxlb's).
    pub fn sync_annotated<'a>(
        &mut self,
        services: impl IntoIterator<Item = (ServiceKey, std::borrow::Cow<'a, BTreeMap<String, String>>)>,
    ) -> Vec<(ServiceKey, String)> {
        let mut specs = BTreeMap::new();
        let mut invalid = BTreeMap::new();
        for (key, annotations) in services {
            let annotations = annotations.as_ref();
            match oxlb_health::spec::parse(&key, annotations) {
                None => {}
                Some(Ok(spec)) => {
                    specs.insert(key, spec);
                }
                Some(Err(errors)) => {
                    let written = annotations
                        .get(oxlb_health::spec::CHECK)
                        .cloned()
                        .unwrap_or_default();
                    invalid.insert(
                        key,
                        (written, errors.iter().map(|e| e.to_string()).collect()),
                    );
                }
            }
        }
        let new_errors: Vec<(ServiceKey, String)> = invalid
            .iter()
            .filter(|(k, v)| self.invalid.get(*k) != Some(*v))
            .map(|(k, (_, errors))| (k.clone(), errors.join("; ")))
            .collect();
        for (service, e) in &new_errors {
            warn!(%service, "{e}");
        }
        self.invalid = invalid;
        self.checks.sync(&specs);
        self.seen.retain(|k, _| specs.contains_key(k));
        new_errors
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.checks.subscribe()
    }

    pub fn health(&self, node: &str) -> Health {
        self.checks.health(node)
    }

    /// The health view for the announcement decision: this node's own checks, and for
    /// Layer 2 the other speakers' as they told (`peers`, from the membership). A
    /// speaker not heard from yet counts as passing: each speaker claims only while
    /// its own check passes, so the worst case is a moment (until its news arrives,
    /// sent at once on a change) with no answerer, never two answerers. Without
    /// membership (`None`) nothing is known of the others: they count as passing.
    pub fn health_view(
        &self,
        node: &str,
        peers: Option<&PeerHealth>,
        candidates: Option<&BTreeSet<String>>,
    ) -> Health {
        let mut health = self.checks.health(node);
        let (Some(peers), Some(candidates)) = (peers, candidates) else {
            return health;
        };
        for (service, not_passing) in health.not_passing.iter_mut() {
            let key = service.to_string();
            not_passing.extend(
                candidates
                    .iter()
                    .filter(|n| n.as_str() != node)
                    .filter(|n| peers.get(*n).is_some_and(|passing| !passing.contains(&key)))
                    .cloned(),
            );
        }
        health
    }

    /// Records which checked Services fail on every one of `candidates` (this node
    /// included) from the same inputs as [`HealthChecks::health_view`], logging each
    /// new one once; `oxlb status` and `explain` then say it.
    pub fn note_everywhere(
        &mut self,
        node: &str,
        peers: Option<&PeerHealth>,
        candidates: Option<&BTreeSet<String>>,
    ) {
        let (Some(peers), Some(candidates)) = (peers, candidates) else {
            self.everywhere.clear();
            return;
        };
        let view = self.health_view(node, Some(peers), Some(candidates));
        let now: BTreeSet<ServiceKey> = view
            .not_passing
            .iter()
            .filter(|(_, nodes)| {
                !candidates.is_empty()
                    && candidates.iter().all(|c| nodes.contains(c))
                    && nodes.contains(node)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for service in now.difference(&self.everywhere) {
            warn!(%service, "health check fails on every live speaker: the Service is withdrawn everywhere (the rule: a node announces a checked Service only while its own check passes)");
        }
        self.everywhere = now;
    }

    /// This node's passing checked Services (`namespace/name`), to tell the others.
    pub fn passing(&self) -> BTreeSet<String> {
        self.checks
            .reports()
            .into_iter()
            .filter(|(_, r)| r.state.passes())
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// The state changes since the last call (for events and logs).
    pub fn changes(&mut self) -> Vec<CheckEvent> {
        let mut out = Vec::new();
        for (key, report) in self.checks.reports() {
            if self.seen.get(&key) == Some(&report.state) {
                continue;
            }
            self.seen.insert(key.clone(), report.state);
            let message = match report.state {
                CheckState::Pending => continue,
                CheckState::Up => format!(
                    "health check {} passes: this node announces the Service",
                    report.spec.target
                ),
                CheckState::Down => format!(
                    "health check {} fails ({}): this node withdraws the Service",
                    report.spec.target,
                    report
                        .last_failure
                        .as_ref()
                        .map(|f| f.to_string())
                        .unwrap_or_else(|| "no answer".into())
                ),
            };
            info!(service = %key, state = report.state.label(), "{message}");
            out.push(CheckEvent {
                service: key,
                state: report.state,
                message,
            });
        }
        out
    }

    /// Rows for the status report, checked and invalid Services alike.
    pub fn status(&self) -> Vec<HealthCheckStatus> {
        let mut rows: Vec<HealthCheckStatus> = self
            .checks
            .reports()
            .into_iter()
            .map(|(key, r)| HealthCheckStatus {
                failing_everywhere: self.everywhere.contains(&key),
                service: key.to_string(),
                check: r.spec.target.to_string(),
                state: r.state.label().to_string(),
                latency_ms: r.latency.map(|d| d.as_secs_f64() * 1000.0),
                error: r.last_failure.map(|f| f.to_string()),
                checks: r.checks,
                failures: r.failures,
            })
            .collect();
        rows.extend(
            self.invalid
                .iter()
                .map(|(key, (written, errors))| HealthCheckStatus {
                    service: key.to_string(),
                    check: written.clone(),
                    state: "invalid".into(),
                    error: Some(errors.join("; ")),
                    ..Default::default()
                }),
        );
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        rows
    }

    pub fn checked(&self) -> BTreeSet<ServiceKey> {
        self.checks.services()
    }
}

/// `oxlb_health_check_up`, `_latency_seconds`, `_checks_total`, `_failures_total`,
/// per Service and node (text format 0.0.4).
pub fn metrics(report: &crate::status::StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.health_checks.is_empty() {
        return out;
    }
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let node = escape(&report.node);
    let families: [(&str, &str, &str); 4] = [
        (
            "oxlb_health_check_up",
            "gauge",
            "1 while the Service's health check passes on this node (announced), 0 while it fails or has no result yet, -1 when its annotations are invalid (announced as if unchecked)",
        ),
        (
            "oxlb_health_check_latency_seconds",
            "gauge",
            "Latency of the last passing health check",
        ),
        (
            "oxlb_health_check_checks_total",
            "counter",
            "Health checks run",
        ),
        (
            "oxlb_health_check_failures_total",
            "counter",
            "Health checks that failed",
        ),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for h in &report.health_checks {
            let value = match i {
                0 => match h.state.as_str() {
                    "up" => "1".to_string(),
                    "invalid" => "-1".to_string(),
                    _ => "0".to_string(),
                },
                1 => match h.latency_ms {
                    Some(ms) => format!("{}", ms / 1000.0),
                    None => continue,
                },
                2 => h.checks.to_string(),
                _ => h.failures.to_string(),
            };
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\",node=\"{node}\"}} {value}",
                escape(&h.service)
            );
        }
    }
    out
}
