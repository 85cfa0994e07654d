//! Runs one BFD session and prints every state change as a line, for interop tests and
//! the detection benchmark:
//!
//! ```text
//! oxlb-bfd-probe --peer 10.0.0.1 --local 10.0.0.2 [--multihop] [--interface IF]
//!                [--rx MS] [--tx MS]
//!                [--mult N] [--min-ttl N] [--passive] [--echo MS] [--retime TX:RX:MULT]
//! ```
//!
//! `--remove-after-up SECS` removes the session that long after it first comes Up
//! (the peer is told AdminDown) and prints `removed`.
//! `--retime` changes the session's timers one second after it first comes Up (to
//! exercise the Poll Sequence against a real peer) and prints `retimed`. Drop counters
//! are printed as `dropped <reason> <count>` whenever they change.
//!
//! Output: `ready <local discriminator>` once the session exists, then
//! `state <Up|Down|Init|AdminDown> <ms since start> <ms since the Unix epoch>` per
//! change (the benchmark compares the last with the time it cut the link); errors go to stderr
//! with exit status 1.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use oxlb_bfd::{Bfd, PeerKey, Profile, SessionState};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("oxlb-bfd-probe: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    key: PeerKey,
    profile: Profile,
    retime: Option<Profile>,
    remove_after_up: Option<Duration>,
}

fn parse() -> Result<Args, String> {
    let mut peer: Option<IpAddr> = None;
    let mut local: Option<IpAddr> = None;
    let mut multihop = false;
    let mut profile = Profile::with_defaults("probe");
    let mut retime = None;
    let mut interface = None;
    let mut remove_after_up = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| -> Result<Duration, String> {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--peer" => peer = Some(value()?.parse().map_err(|e| format!("--peer: {e}"))?),
            "--local" => local = Some(value()?.parse().map_err(|e| format!("--local: {e}"))?),
            "--multihop" => multihop = true,
            "--interface" => {
                let name = value()?;
                interface = Some(
                    oxlb_bfd::net::interface_index(&name)
                        .map_err(|e| format!("--interface {name}: {e}"))?,
                );
            }
            "--rx" => profile.receive_interval = ms(value()?)?,
            "--tx" => profile.transmit_interval = ms(value()?)?,
            "--mult" => {
                profile.detect_multiplier = value()?.parse().map_err(|e| format!("--mult: {e}"))?
            }
            "--min-ttl" => {
                profile.minimum_ttl = value()?.parse().map_err(|e| format!("--min-ttl: {e}"))?
            }
            "--passive" => profile.passive = true,
            "--echo" => {
                profile.echo = true;
                profile.echo_interval = ms(value()?)?;
            }
            "--retime" => retime = Some(value()?),
            "--remove-after-up" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--remove-after-up: {e}"))?;
                remove_after_up = Some(Duration::from_secs(secs));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let peer = peer.ok_or("--peer is required")?;
    let local = local.ok_or("--local is required")?;
    let retime = match retime {
        None => None,
        Some(spec) => {
            let parts: Vec<&str> = spec.split(':').collect();
            let [tx, rx, mult] = parts.as_slice() else {
                return Err(format!("--retime wants TX:RX:MULT, not {spec}"));
            };
            let number = |v: &str| v.parse::<u64>().map_err(|e| format!("--retime: {e}"));
            let mut new = profile.clone();
            new.transmit_interval = Duration::from_millis(number(tx)?);
            new.receive_interval = Duration::from_millis(number(rx)?);
            new.detect_multiplier =
                u8::try_from(number(mult)?).map_err(|e| format!("--retime: {e}"))?;
            Some(new)
        }
    };
    Ok(Args {
        key: PeerKey {
            peer,
            local,
            multihop,
            interface,
        },
        profile,
        retime,
        remove_after_up,
    })
}

fn run() -> Result<(), String> {
    let args = parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    runtime.block_on(async move {
        let start = Instant::now();
        let bfd = Bfd::start().map_err(|e| e.to_string())?;
        let mut state = bfd
            .add_peer(args.key, args.profile)
            .await
            .map_err(|e| e.to_string())?;
        let status = bfd.status().await.map_err(|e| e.to_string())?;
        let discriminator = status.sessions.first().map_or(0, |s| s.local_discriminator);
        say(&format!("ready {discriminator}"));
        let mut retime = args.retime;
        let mut retime_at: Option<tokio::time::Instant> = None;
        let mut remove_at: Option<tokio::time::Instant> = None;
        let mut removed = false;
        let mut dropped = std::collections::BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let retime_due = async {
                match retime_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let remove_due = async {
                match remove_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return Err("the BFD task stopped".to_string());
                    }
                    let now = state.borrow_and_update().state;
                    let epoch_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    say(&format!("state {now} {} {epoch_ms}", start.elapsed().as_millis()));
                    if now == SessionState::Up && retime.is_some() && retime_at.is_none() {
                        retime_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    }
                    if let Some(after) = args.remove_after_up.filter(|_| now == SessionState::Up && !removed && remove_at.is_none()) {
                        remove_at = Some(tokio::time::Instant::now() + after);
                    }
                }
                () = remove_due => {
                    remove_at = None;
                    removed = true;
                    bfd.remove_peer(args.key).await;
                    say("removed");
                }
                () = retime_due => {
                    retime_at = None;
                    if let Some(profile) = retime.take() {
                        bfd.update_peer(args.key, profile).await.map_err(|e| e.to_string())?;
                        say("retimed");
                    }
                }
                _ = tick.tick() => {
                    let status = bfd.status().await.map_err(|e| e.to_string())?;
                    if status.dropped != dropped {
                        for (reason, count) in &status.dropped {
                            say(&format!("dropped {reason} {count}"));
                        }
                        dropped = status.dropped;
                    }
                }
            }
        }
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
