//! Replay tests for the BFD session state machine (RFC 5880 §6.8), in the style of
//! holo's conformance topologies: each case is a directory under `tests/replay/` with
//!
//! - `config.json`: local_discr, desired_min_tx_ms, required_min_rx_ms, detect_mult,
//!   passive, seed (the transmit jitter's, so timer times are reproducible);
//! - `inputs`: timed events, one a line (`@<ms> <event>`, grammar in [`event`]);
//! - `expected`: the transcript: every event echoed, then the actions it returned, the
//!   session state, the remote state and the next deadline.
//!
//! A new RFC case is a new directory, not new code. `OXLB_BLESS=1` writes the
//! transcript to `expected` instead of comparing (read it before committing).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_bfd::packet::{ControlPacket, Diag, State};
use oxlb_bfd::session::{Action, Event, Session, SessionConfig};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn config(v: &Value) -> SessionConfig {
    let ms = |k: &str| Duration::from_millis(v[k].as_u64().unwrap_or_else(|| panic!("{k}")));
    SessionConfig {
        desired_min_tx: ms("desired_min_tx_ms"),
        required_min_rx: ms("required_min_rx_ms"),
        detect_mult: v["detect_mult"].as_u64().unwrap_or(3) as u8,
        passive: v["passive"].as_bool().unwrap_or(false),
        echo: None,
    }
}

fn state(name: &str) -> State {
    match name {
        "AdminDown" => State::AdminDown,
        "Down" => State::Down,
        "Init" => State::Init,
        "Up" => State::Up,
        other => panic!("unknown state {other}"),
    }
}

/// One event line (after `@<ms>`):
///
/// - `timer`: Event::Timer at this moment
/// - `recv state=S [your=N] [my=N] [tx=US] [rx=US] [mult=N] [poll] [final] [diag=NeighborSignaledSessionDown]`
///   (defaults: your=0 my=77 tx=rx=100000 mult=3)
/// - `admin-down`; `admin-up`
/// - `configure tx=MS rx=MS mult=N [passive]`
///
/// Deadlines that fall before an input's moment fire first (echoed as `@<ms> timer`),
/// as in the real shell. `timers` (not an event): Timer at every deadline up to this moment, each echoed.
fn event(words: &[&str]) -> Event {
    let option = |key: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    };
    let number = |key: &str, default: u64| option(key).map_or(default, |v| v.parse().unwrap());
    match words.first().copied() {
        Some("timer") => Event::Timer,
        Some("admin-down") => Event::AdminDown,
        Some("admin-up") => Event::AdminUp,
        Some("configure") => Event::Configure(SessionConfig {
            desired_min_tx: Duration::from_millis(number("tx", 300)),
            required_min_rx: Duration::from_millis(number("rx", 300)),
            detect_mult: number("mult", 3) as u8,
            passive: words.contains(&"passive"),
            echo: None,
        }),
        Some("recv") => Event::Received(ControlPacket {
            diag: match option("diag") {
                Some("NeighborSignaledSessionDown") => Diag::NeighborSignaledSessionDown,
                Some("AdministrativelyDown") => Diag::AdministrativelyDown,
                Some("ControlDetectionTimeExpired") => Diag::ControlDetectionTimeExpired,
                None | Some("None") => Diag::None,
                Some(other) => panic!("diag {other} not in the replay grammar"),
            },
            state: state(option("state").expect("state=")),
            poll: words.contains(&"poll"),
            final_: words.contains(&"final"),
            control_plane_independent: false,
            authentication_present: false,
            demand: false,
            multipoint: false,
            detect_mult: number("mult", 3) as u8,
            my_discriminator: number("my", 77) as u32,
            your_discriminator: number("your", 0) as u32,
            desired_min_tx_us: number("tx", 100_000) as u32,
            required_min_rx_us: number("rx", 100_000) as u32,
            required_min_echo_rx_us: 0,
        }),
        _ => panic!("unknown event: {words:?}"),
    }
}

fn packet_line(p: &ControlPacket) -> String {
    let mut line = format!(
        "send state={:?} diag={:?} my={} your={} tx={} rx={} mult={}",
        p.state,
        p.diag,
        p.my_discriminator,
        p.your_discriminator,
        p.desired_min_tx_us,
        p.required_min_rx_us,
        p.detect_mult
    );
    if p.poll {
        line.push_str(" poll");
    }
    if p.final_ {
        line.push_str(" final");
    }
    line
}

struct Replay {
    session: Session,
    t0: Instant,
    out: String,
}

impl Replay {
    fn step(&mut self, at: Instant, label: &str, event: Event) {
        let _ = writeln!(self.out, "@{} {label}", (at - self.t0).as_millis());
        for action in self.session.handle(at, event) {
            let line = match action {
                Action::Send(p) => packet_line(&p),
                Action::StateChanged {
                    from,
                    to,
                    diag,
                    cause,
                } => match cause {
                    Some(cause) => format!("changed {from:?}->{to:?} diag={diag:?} cause={cause}"),
                    None => format!("changed {from:?}->{to:?} diag={diag:?}"),
                },
                Action::Dropped(reason) => format!("dropped {reason:?}"),
                Action::SendEcho(sequence) => format!("echo {sequence}"),
            };
            let _ = writeln!(self.out, "  {line}");
        }
        let next = self
            .session
            .next_deadline()
            .map_or("none".into(), |d| format!("@{}", (d - self.t0).as_millis()));
        let _ = writeln!(
            self.out,
            "  state {:?} remote={:?} next={next}",
            self.session.state(),
            self.session.remote_state()
        );
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let t0 = Instant::now();
    let mut replay = Replay {
        session: Session::new(
            v["local_discr"].as_u64().unwrap_or(1) as u32,
            config(&v),
            t0,
            v["seed"].as_u64().unwrap_or(1),
        ),
        t0,
        out: String::new(),
    };
    for line in std::fs::read_to_string(dir.join("inputs")).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (at, rest) = line.split_once(' ').unwrap_or((line, ""));
        let ms: u64 = at
            .strip_prefix('@')
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{}: line must start with @<ms>: {line}", dir.display()));
        let at = t0 + Duration::from_millis(ms);
        let words: Vec<&str> = rest.split_whitespace().collect();
        // As the shell would: every deadline before this moment fires first.
        while let Some(due) = replay.session.next_deadline().filter(|d| *d < at) {
            replay.step(due, "timer", Event::Timer);
        }
        if words == ["timers"] {
            while let Some(due) = replay.session.next_deadline().filter(|d| *d <= at) {
                replay.step(due, "timer", Event::Timer);
            }
            continue;
        }
        replay.step(at, rest, event(&words));
    }
    let path = dir.join("expected");
    if std::env::var_os("OXLB_BLESS").is_some() {
        std::fs::write(&path, &replay.out).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected == replay.out {
        return Ok(());
    }
    let first = expected
        .lines()
        .zip(replay.out.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.lines().count().min(replay.out.lines().count()));
    Err(format!(
        "{}: transcript differs from line {}:\n--- expected\n{}\n--- got\n{}",
        dir.display(),
        first + 1,
        expected
            .lines()
            .skip(first)
            .take(6)
            .collect::<Vec<_>>()
            .join("\n"),
        replay
            .out
            .lines()
            .skip(first)
            .take(6)
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

#[test]
fn every_replay_case_produces_its_expected_transcript() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("inputs").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 4, "replay cases missing: {dirs:?}");
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
