//! The check runner: one tokio task per checked Service, each on its own interval,
//! and a shared view of every check's state and latest latency. A state change bumps a
//! watch counter, which the shell waits on to recompute its announcements at once
//! (withdrawal latency is the check's, not a polling period's).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use oxlb_announce::{Health, ServiceKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::probe::{self, Failure};
use crate::spec::CheckSpec;
use crate::state::{CheckState, Machine};

/// What `oxlb status`, `explain` and the metrics show of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub spec: CheckSpec,
    pub state: CheckState,
    /// The latency of the last passing check.
    pub latency: Option<Duration>,
    /// Why the last check failed, if it did.
    pub last_failure: Option<Failure>,
    pub checks: u64,
    pub failures: u64,
    /// When the state last changed.
    pub since: Option<SystemTime>,
}

type Reports = Arc<Mutex<BTreeMap<ServiceKey, CheckReport>>>;

/// The running checks of this node. Dropping it stops them.
#[derive(Debug)]
pub struct Checks {
    tasks: BTreeMap<ServiceKey, (CheckSpec, JoinHandle<()>)>,
    reports: Reports,
    changes: watch::Sender<u64>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks::new()
    }
}

impl Checks {
    pub fn new() -> Checks {
        Checks {
            tasks: BTreeMap::new(),
            reports: Arc::default(),
            changes: watch::channel(0).0,
        }
    }

    /// Runs exactly these checks: starts new ones, restarts changed ones (their state
    /// starts over at pending), stops the others. Must be called inside a tokio runtime.
    pub fn sync(&mut self, specs: &BTreeMap<ServiceKey, CheckSpec>) {
        let mut changed = false;
        self.tasks.retain(|key, (spec, task)| {
            let keep = specs.get(key) == Some(spec);
            if !keep {
                task.abort();
                lock(&self.reports).remove(key);
                changed = true;
            }
            keep
        });
        for (key, spec) in specs {
            if self.tasks.contains_key(key) {
                continue;
            }
            info!(service = %key, check = %spec.target, interval = ?spec.interval, timeout = ?spec.timeout, rise = spec.rise, fall = spec.fall, "health check started; not announced until it passes");
            lock(&self.reports).insert(
                key.clone(),
                CheckReport {
                    spec: spec.clone(),
                    state: CheckState::Pending,
                    latency: None,
                    last_failure: None,
                    checks: 0,
                    failures: 0,
                    since: None,
                },
            );
            let task = tokio::spawn(run_one(
                key.clone(),
                spec.clone(),
                self.reports.clone(),
                self.changes.clone(),
            ));
            self.tasks.insert(key.clone(), (spec.clone(), task));
            changed = true;
        }
        if changed {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Bumped on every state change (and when the set of checks changes).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn reports(&self) -> BTreeMap<ServiceKey, CheckReport> {
        lock(&self.reports).clone()
    }

    pub fn state(&self, service: &ServiceKey) -> Option<CheckState> {
        lock(&self.reports).get(service).map(|r| r.state)
    }

    /// This node's checks as the announcement decision takes them: every checked
    /// Service whose check does not pass here lists `node`.
    pub fn health(&self, node: &str) -> Health {
        let mut health = Health::default();
        for (key, report) in lock(&self.reports).iter() {
            let nodes = health.not_passing.entry(key.clone()).or_default();
            if !report.state.passes() {
                nodes.insert(node.to_string());
            }
        }
        health
    }

    /// The checked Services.
    pub fn services(&self) -> BTreeSet<ServiceKey> {
        self.tasks.keys().cloned().collect()
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        for (_, task) in self.tasks.values() {
            task.abort();
        }
    }
}

fn lock(reports: &Reports) -> std::sync::MutexGuard<'_, BTreeMap<ServiceKey, CheckReport>> {
    reports.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_one(key: ServiceKey, spec: CheckSpec, reports: Reports, changes: watch::Sender<u64>) {
    let mut machine = Machine::new(spec.rise, spec.fall);
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = probe::check(&spec.target, spec.timeout).await;
        let transition = machine.observe(result.is_ok());
        {
            let mut reports = lock(&reports);
            let Some(report) = reports.get_mut(&key) else {
                return;
            };
            report.checks += 1;
            match &result {
                Ok(latency) => {
                    report.latency = Some(*latency);
                    report.last_failure = None;
                }
                Err(failure) => {
                    report.failures += 1;
                    report.last_failure = Some(failure.clone());
                }
            }
            if let Some(state) = transition {
                report.state = state;
                report.since = Some(SystemTime::now());
            }
        }
        if let Some(state) = transition {
            match (&result, state) {
                (_, CheckState::Up) => {
                    info!(service = %key, check = %spec.target, state = state.label(), "health check passes: announced")
                }
                (Err(failure), _) => {
                    warn!(service = %key, check = %spec.target, state = state.label(), reason = failure.label(), "health check fails ({failure}): withdrawn")
                }
                (Ok(_), _) => {}
            }
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
