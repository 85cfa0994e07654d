//! `oxlb lab chaos`: seeded random faults on a lab that is up, under a steady request
//! load from the workstation, with the lab sampled all along; a score per fault kind,
//! the timeline as JSON and SVG, and a failed result when an invariant broke.
//!
//! Pure parts ([`plan`], [`score`], [`svg`], the parsers) are unit-tested; the shell
//! ([`inject`], [`sample`], the load and the relay processes) only drives the lab's own
//! namespaces.

pub mod inject;
pub mod kinds;
pub mod load;
pub mod plan;
pub mod relay;
pub mod sample;
pub mod score;
pub mod svg;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::Lab;
use crate::error::Error;
use crate::exec::{namespaces, spawn_detached};
use inject::Injector;
use kinds::FaultKind;
use plan::PlannedFault;
use score::Score;
use timeline::{FaultRecord, Sample};

/// After a fault is healed, how long the lab gets to look whole again before its
/// sessions count as not come back.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub duration: Duration,
    /// `None`: drawn from the clock (and printed).
    pub seed: Option<u64>,
    /// Comma-separated kinds, `all` for every one.
    pub faults: String,
    /// Node names (or numbers) node faults may hit; empty: every node.
    pub nodes: Vec<String>,
    /// Where `chaos-<seed>.json` and `chaos-<seed>.svg` go.
    pub out_dir: PathBuf,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub duration_ms: u64,
    pub nodes: Vec<String>,
    pub kinds: Vec<FaultKind>,
    pub plan: Vec<PlannedFault>,
    pub faults: Vec<FaultRecord>,
    pub score: Score,
    pub requests_total: u64,
    pub samples: Vec<Sample>,
    /// Where the JSON and SVG were written.
    pub json: PathBuf,
    pub svg: PathBuf,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.score.passed()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses `90`, `90s`, `3m`, `1h` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| Error::Config(format!("bad duration {text:?}: use 90s, 3m or 1h")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(Error::Config(format!(
                "bad duration {text:?}: use 90s, 3m or 1h"
            )));
        }
    };
    Ok(Duration::from_secs(secs))
}

/// Checks the lab is really up (the state file can outlive the namespaces).
fn check_up(lab: &Lab) -> Result<(), Error> {
    let state = lab.state();
    let present = namespaces();
    let mut wanted = vec![
        state.ws_namespace.clone(),
        state.router_namespace.clone(),
        state.lan_namespace.clone(),
    ];
    wanted.extend(state.nodes.iter().map(|n| n.namespace.clone()));
    let missing: Vec<String> = wanted
        .into_iter()
        .filter(|n| !present.contains(n))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotUp(format!(
            "the lab's state file is there but namespaces {} are gone: run `oxlb lab down`, then `oxlb lab up`",
            missing.join(", ")
        )))
    }
}

/// Shared between the sampler thread and the run.
#[derive(Default)]
struct Shared {
    samples: Vec<Sample>,
    /// Layer 2 IPs seen so far.
    l2: BTreeSet<IpAddr>,
    /// IPs the load is sent to: each Service IP once it has been served, minus the
    /// Service being removed.
    targets: BTreeSet<IpAddr>,
    retiring: Option<String>,
}

/// Runs chaos on `lab`. Progress goes to `out`. Errors are refusals (bad input, lab not
/// up) or a lab that could not be driven; broken invariants are in the report.
pub fn run(lab: &Lab, options: &ChaosOptions, out: &mut dyn Write) -> Result<Report, Error> {
    check_up(lab)?;
    let state = lab.state().clone();
    let kinds = FaultKind::parse_list(&options.faults)?;
    let nodes: Vec<String> = if options.nodes.is_empty() {
        state.nodes.iter().map(|n| n.name.clone()).collect()
    } else {
        options
            .nodes
            .iter()
            .map(|n| lab.node(n).map(|found| found.name.clone()))
            .collect::<Result<_, _>>()?
    };
    let config_kinds: Vec<&str> = kinds
        .iter()
        .filter(|k| matches!(k, FaultKind::PoolEdit | FaultKind::ServiceChange))
        .map(|k| k.name())
        .collect();
    if !config_kinds.is_empty() && Injector::builtin_config_dir(&state).is_none() {
        return Err(Error::Config(format!(
            "{} edit the lab's built-in configuration; this lab runs your own (-f): leave them out of --faults",
            config_kinds.join(" and ")
        )));
    }
    crate::preflight::check_arping()?;
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // Enough faults for the duration at the shortest quiet+hold; the run stops early.
    let count = usize::try_from(
        options.duration.as_millis() as u64 / (plan::QUIET_MS.0 + plan::HOLD_MS.0) + 1,
    )
    .unwrap_or(1)
    .max(kinds.len());
    let planned = plan::plan(seed, &kinds, &nodes, count);
    let _ = writeln!(
        out,
        "chaos seed {seed} (replay: oxlb lab chaos --seed {seed} --duration {}s --faults {}{})",
        options.duration.as_secs(),
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        if options.nodes.is_empty() {
            String::new()
        } else {
            format!(" --nodes {}", nodes.join(","))
        }
    );

    let chaos_dir = state.state_dir.join("chaos");
    std::fs::create_dir_all(&chaos_dir)?;
    let targets_file = chaos_dir.join("targets.txt");
    let requests_file = chaos_dir.join("requests.log");
    std::fs::write(&targets_file, "")?;
    let _ = std::fs::remove_file(&requests_file);
    let start = Instant::now();
    let start_unix = unix_ms();
    let oxlb = state.oxlb_bin.to_string_lossy().into_owned();
    let targets_arg = targets_file.to_string_lossy().into_owned();
    let mut loader = spawn_detached(
        &state.ws_namespace,
        &[&oxlb, "lab-load", "--targets", &targets_arg],
        &requests_file,
    )?;
    let loader_guard = KillOnDrop(&mut loader);

    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (shared, stop, state, targets_file) = (
            shared.clone(),
            stop.clone(),
            state.clone(),
            targets_file.clone(),
        );
        std::thread::spawn(move || sampler(&state, start, &shared, &stop, &targets_file))
    };
    let result = drive(
        &state,
        &planned,
        seed,
        options.duration,
        start,
        &shared,
        out,
    );
    // Let the load see the end state, then stop everything.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    drop(loader_guard);
    let faults = result?;

    let text = std::fs::read_to_string(&requests_file).unwrap_or_default();
    let requests = load::parse(&text, start_unix);
    let shared = shared
        .lock()
        .map_err(|_| Error::Setup("sampler crashed".into()))?;
    let end_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    // Each Service IP answered at the end if one of its last requests (the final 3 s)
    // succeeded.
    let mut final_check: BTreeMap<IpAddr, bool> = BTreeMap::new();
    for ip in &shared.targets {
        let ok = requests
            .iter()
            .any(|r| r.ip == *ip && r.ok && r.t_ms + 3_000 >= end_ms);
        final_check.insert(*ip, ok);
    }
    let score = score::score(&faults, &requests, &shared.samples, &final_check);
    let services: BTreeSet<String> = score
        .outages
        .iter()
        .map(|o| o.service.clone())
        .chain(
            shared
                .samples
                .iter()
                .flat_map(|s| s.services.keys().cloned()),
        )
        .collect();
    std::fs::create_dir_all(&options.out_dir)?;
    let json = options.out_dir.join(format!("chaos-{seed}.json"));
    let svg_path = options.out_dir.join(format!("chaos-{seed}.svg"));
    let report = Report {
        seed,
        duration_ms: end_ms,
        nodes,
        kinds,
        plan: planned[..faults.len()].to_vec(),
        faults,
        requests_total: requests.len() as u64,
        samples: shared.samples.clone(),
        score,
        json: json.clone(),
        svg: svg_path.clone(),
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::Setup(format!("cannot encode the timeline: {e}")))?;
    std::fs::write(&json, text)?;
    let picture = svg::render(
        &format!(
            "oxlb lab chaos, seed {seed}: {} faults in {:.0} s, {}",
            report.faults.len(),
            end_ms as f64 / 1000.0,
            if report.passed() {
                "invariants held"
            } else {
                "INVARIANTS BROKEN"
            }
        ),
        end_ms,
        &report.faults,
        &report.score.outages,
        &report.score.violations,
        &services,
    );
    std::fs::write(&svg_path, picture)?;
    let _ = write!(out, "{}", score::render(&report.score));
    let _ = writeln!(
        out,
        "{} requests in {:.0} s; timeline: {} and {}",
        report.requests_total,
        end_ms as f64 / 1000.0,
        json.display(),
        svg_path.display()
    );
    if !report.passed() {
        let _ = writeln!(
            out,
            "replay with: oxlb lab chaos --seed {seed} --duration {}s",
            options.duration.as_secs()
        );
    }
    Ok(report)
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Samples until `stop`, keeping the load's target list current.
fn sampler(
    state: &crate::state::State,
    start: Instant,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    targets_file: &std::path::Path,
) {
    let mut l2 = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let sample = sample::take(state, elapsed_ms(start), &mut l2);
        let Ok(mut shared) = shared.lock() else {
            return;
        };
        shared.l2 = l2.clone();
        // A Service gets load once it is served: routed or answered.
        let retiring = shared.retiring.clone();
        let mut targets = shared.targets.clone();
        for (service, by_node) in &sample.services {
            for ip in by_node.values().flatten() {
                let served = sample.router_paths.contains_key(ip)
                    || sample.answerers.get(ip).is_some_and(|a| !a.is_empty());
                if served && retiring.as_deref() != Some(service.as_str()) {
                    targets.insert(*ip);
                }
            }
        }
        // Services gone (or going) lose their load.
        let live: BTreeSet<IpAddr> = sample
            .services
            .iter()
            .filter(|(service, _)| retiring.as_deref() != Some(service.as_str()))
            .flat_map(|(_, by_node)| by_node.values().flatten().copied())
            .collect();
        if !sample.services.is_empty() {
            targets.retain(|ip| live.contains(ip));
        }
        if targets != shared.targets {
            let text: String = targets.iter().map(|ip| format!("{ip}\n")).collect();
            let tmp = targets_file.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, targets_file);
            }
            shared.targets = targets;
        }
        shared.samples.push(sample);
        drop(shared);
        std::thread::sleep(Duration::from_millis(500).saturating_sub(began.elapsed()));
    }
}

/// Waits until a sample taken after `after_ms` shows the lab whole; that sample's time.
fn wait_whole(
    shared: &Mutex<Shared>,
    nodes: usize,
    after_ms: u64,
    deadline: Instant,
) -> Result<u64, Vec<String>> {
    loop {
        let last = shared.lock().ok().and_then(|s| {
            let sample = s.samples.last()?.clone();
            Some((sample, s.l2.clone()))
        });
        if let Some((sample, l2)) = &last
            && sample.t_ms > after_ms
            && sample::whole(sample, nodes, l2)
        {
            return Ok(sample.t_ms);
        }
        if Instant::now() >= deadline {
            let missing = last
                .map(|(s, _)| {
                    s.sessions
                        .iter()
                        .filter(|(_, up)| !**up)
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            return Err(missing);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fault loop.
fn drive(
    state: &crate::state::State,
    planned: &[PlannedFault],
    seed: u64,
    duration: Duration,
    start: Instant,
    shared: &Mutex<Shared>,
    out: &mut dyn Write,
) -> Result<Vec<FaultRecord>, Error> {
    let nodes = state.nodes.len();
    // The lab must be whole (and the load running) before the first fault.
    let _ = writeln!(
        out,
        "waiting for the lab to look whole (every session, every Service served)..."
    );
    wait_whole(shared, nodes, 0, Instant::now() + RECOVERY_DEADLINE).map_err(|missing| {
        Error::Setup(format!(
            "the lab is not whole before any fault (sessions down: {}): see `oxlb lab status`",
            if missing.is_empty() {
                "none".to_string()
            } else {
                missing.join(", ")
            }
        ))
    })?;
    let mut injector = Injector::new(state.clone());
    let mut records = Vec::new();
    for (i, fault) in planned.iter().enumerate() {
        let needed = Duration::from_millis(fault.quiet_ms + fault.hold_ms);
        if start.elapsed() + needed > duration {
            break;
        }
        std::thread::sleep(Duration::from_millis(fault.quiet_ms));
        let start_ms = elapsed_ms(start);
        let _ = write!(
            out,
            "[{:>6.1}s] #{} {}{}: ",
            start_ms as f64 / 1000.0,
            i + 1,
            fault.kind.name(),
            fault
                .node
                .as_ref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default()
        );
        let detail = injector.inject(fault, seed.wrapping_add(i as u64))?;
        let _ = write!(out, "{detail}; ");
        let _ = out.flush();
        std::thread::sleep(Duration::from_millis(fault.hold_ms));
        if fault.kind == FaultKind::ServiceChange {
            if let Ok(mut s) = shared.lock() {
                s.retiring = injector.added_service.clone();
            }
            // The load stops before the Service goes (the sampler drops its IP).
            std::thread::sleep(Duration::from_millis(1500));
        }
        injector.heal()?;
        let healed_ms = elapsed_ms(start);
        let recovered = wait_whole(shared, nodes, healed_ms, Instant::now() + RECOVERY_DEADLINE);
        if let Ok(mut s) = shared.lock() {
            s.retiring = None;
        }
        let end_ms = elapsed_ms(start);
        let sessions_missing = match &recovered {
            Ok(_) => Vec::new(),
            Err(missing) => missing.clone(),
        };
        let _ = writeln!(
            out,
            "healed at {:.1}s, {}",
            healed_ms as f64 / 1000.0,
            match &recovered {
                Ok(t) => format!("whole again at {:.1}s", *t as f64 / 1000.0),
                Err(_) => format!(
                    "NOT whole {} s after healing (sessions down: {})",
                    RECOVERY_DEADLINE.as_secs(),
                    sessions_missing.join(", ")
                ),
            }
        );
        records.push(FaultRecord {
            kind: fault.kind,
            node: fault.node.clone(),
            start_ms,
            healed_ms,
            end_ms: recovered.unwrap_or(end_ms),
            // Whole means sessions and Services; the session part is what we record.
            sessions_back: sessions_missing.is_empty(),
            sessions_missing,
            detail,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
