//! A tiny process around [`Speaker`] for interop tests and benchmarks: runs inside a
//! network namespace, reads peers and routes from a JSON file, re-reads it on SIGHUP,
//! prints status as JSON lines (periodically and on SIGUSR1), asks every peer to confirm
//! what was sent on SIGUSR2 (RFC 7313 route refresh request, answered by EoRR), and stops
//! cleanly on SIGTERM (Cease, or graceful-restart close when the file says so).
//!
//! Usage: oxlb-bgp-probe CONFIG.json

use ipnet::IpNet;
use oxlb_bgp::{
    Desired, PeerAsn, PeerSettings, RouteAttributes, ShutdownMode, Speaker, SpeakerOptions,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    status_interval_ms: Option<u64>,
    /// "withdraw" (default) or "graceful".
    #[serde(default)]
    on_term: Option<String>,
    peers: Vec<PeerFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerFile {
    name: String,
    local_asn: u32,
    /// A number, "internal" or "external".
    peer_asn: serde_json::Value,
    peer_address: IpAddr,
    #[serde(default = "default_port")]
    peer_port: u16,
    #[serde(default)]
    source_address: Option<IpAddr>,
    #[serde(default = "default_hold")]
    hold_time: u64,
    #[serde(default)]
    keepalive_time: Option<u64>,
    #[serde(default = "default_retry")]
    connect_retry_time: u64,
    router_id: Ipv4Addr,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    ebgp_multihop: bool,
    #[serde(default)]
    graceful_restart: bool,
    #[serde(default = "yes")]
    ipv4: bool,
    #[serde(default = "yes")]
    ipv6: bool,
    #[serde(default)]
    ipv6_next_hop: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    routes: Vec<RouteFile>,
    /// `count` consecutive host routes from `first` (benchmarks).
    #[serde(default)]
    generate: Option<Generate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    #[serde(default)]
    local_pref: Option<u32>,
    /// "A:B" 16-bit pairs.
    #[serde(default)]
    communities: Vec<String>,
    /// "A:B:C".
    #[serde(default)]
    large_communities: Vec<String>,
    /// Weighted ECMP units, sent as the link bandwidth extended community.
    #[serde(default)]
    link_bandwidth: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generate {
    first: Ipv4Addr,
    count: u32,
    #[serde(default)]
    communities: Vec<String>,
}

fn default_port() -> u16 {
    179
}
fn default_hold() -> u64 {
    90
}
fn default_retry() -> u64 {
    5
}
fn yes() -> bool {
    true
}

fn community(text: &str) -> Result<u32, String> {
    let (a, b) = text
        .split_once(':')
        .ok_or(format!("bad community {text}"))?;
    let a: u16 = a.parse().map_err(|_| format!("bad community {text}"))?;
    let b: u16 = b.parse().map_err(|_| format!("bad community {text}"))?;
    Ok((u32::from(a) << 16) | u32::from(b))
}

fn large(text: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<u32> = text
        .split(':')
        .map(|p| p.parse().map_err(|_| format!("bad large community {text}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [a, b, c] => Ok((a, b, c)),
        _ => Err(format!("bad large community {text}")),
    }
}

fn load(path: &str) -> Result<(File, Desired), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let file: File = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let mut desired = Desired::new();
    for p in &file.peers {
        let peer_asn = match &p.peer_asn {
            serde_json::Value::Number(n) => PeerAsn::Fixed(
                n.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("bad peer_asn")?,
            ),
            serde_json::Value::String(s) if s == "internal" => PeerAsn::DynamicInternal,
            serde_json::Value::String(s) if s == "external" => PeerAsn::DynamicExternal,
            other => return Err(format!("bad peer_asn {other}")),
        };
        let mut settings =
            PeerSettings::new(&p.name, p.local_asn, peer_asn, p.peer_address, p.router_id);
        settings.peer_port = p.peer_port;
        settings.source_address = p.source_address;
        settings.hold_time = Duration::from_secs(p.hold_time);
        settings.keepalive_time = Duration::from_secs(p.keepalive_time.unwrap_or(p.hold_time / 3));
        settings.connect_retry_time = Duration::from_secs(p.connect_retry_time);
        settings.password = p.password.clone();
        settings.ebgp_multihop = p.ebgp_multihop;
        settings.graceful_restart = p.graceful_restart;
        settings.ipv4 = p.ipv4;
        settings.ipv6 = p.ipv6;
        settings.ipv6_next_hop = p.ipv6_next_hop;
        let mut routes = BTreeMap::new();
        for r in &p.routes {
            let prefix: IpNet = r
                .prefix
                .parse()
                .map_err(|_| format!("bad prefix {}", r.prefix))?;
            routes.insert(
                prefix,
                RouteAttributes {
                    local_pref: r.local_pref,
                    communities: r
                        .communities
                        .iter()
                        .map(|c| community(c))
                        .collect::<Result<BTreeSet<_>, _>>()?,
                    large_communities: r
                        .large_communities
                        .iter()
                        .map(|c| large(c))
                        .collect::<Result<BTreeSet<_>, _>>()?,
                    link_bandwidth: r.link_bandwidth,
                },
            );
        }
        if let Some(g) = &p.generate {
            let attrs = RouteAttributes {
                communities: g
                    .communities
                    .iter()
                    .map(|c| community(c))
                    .collect::<Result<BTreeSet<_>, _>>()?,
                ..RouteAttributes::default()
            };
            let base = u32::from(g.first);
            for i in 0..g.count {
                let ip = Ipv4Addr::from(base.wrapping_add(i));
                let prefix = IpNet::new(IpAddr::V4(ip), 32).map_err(|e| e.to_string())?;
                routes.insert(prefix, attrs.clone());
            }
        }
        desired.insert(p.name.clone(), (settings, routes));
    }
    Ok((file, desired))
}

fn print_line(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn print_status(speaker: &Speaker) {
    let peers: Vec<serde_json::Value> = speaker
        .status()
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "address": s.address.to_string(),
                "state": s.state.name(),
                "established_since": s.established_since
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs_f64()),
                "prefixes_announced": s.prefixes_announced,
                "prefixes_pending": s.prefixes_pending,
                "updates_sent": s.updates_sent,
                "last_error": s.last_error,
                "withheld": s.withheld.map(|w| w.to_string()),
                "enhanced_route_refresh": s.enhanced_route_refresh,
                "confirm_requested": s.confirm_requested,
                "confirmed": s.confirmed,
            })
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    print_line(serde_json::json!({ "time": now, "peers": peers }));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: oxlb-bgp-probe CONFIG.json");
        std::process::exit(2);
    };
    let (file, desired) = match load(&path) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("oxlb-bgp-probe: {e}");
            std::process::exit(2);
        }
    };
    let options = SpeakerOptions {
        listen: file.listen,
        on_event: Some(Arc::new(|peer: &str, message: &str| {
            print_line(serde_json::json!({ "event": message, "peer": peer }));
        })),
    };
    let mut speaker = match Speaker::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("oxlb-bgp-probe: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    speaker.set_desired(desired);
    let mut on_term = file.on_term.clone();
    let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("oxlb-bgp-probe: cannot install signal handlers");
        std::process::exit(1);
    };
    let interval = Duration::from_millis(file.status_interval_ms.unwrap_or(3_600_000).max(10));
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = hup.recv() => match load(&path) {
                Ok((file, desired)) => {
                    on_term = file.on_term;
                    speaker.set_desired(desired);
                    print_line(serde_json::json!({ "event": "reloaded" }));
                }
                Err(e) => print_line(serde_json::json!({ "event": format!("reload failed: {e}") })),
            },
            _ = usr1.recv() => print_status(&speaker),
            _ = usr2.recv() => {
                for s in speaker.status() {
                    speaker.confirm(&s.name);
                }
            }
            _ = ticker.tick() => if file.status_interval_ms.is_some() { print_status(&speaker) },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let mode = match on_term.as_deref() {
        Some("graceful") => ShutdownMode::GracefulRestart,
        _ => ShutdownMode::Withdraw {
            message: "oxlb-bgp-probe stopped".into(),
        },
    };
    speaker.shutdown(mode).await;
    print_line(serde_json::json!({ "event": "stopped" }));
}
