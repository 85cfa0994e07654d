//! Replay tests for the BGP session state machine, in the style of holo's conformance
//! topologies: each case is a directory under `tests/replay/` holding
//!
//! - `config.json`: the peer's settings (see [`settings`]);
//! - `inputs`: timed inputs, one a line (`@<ms> <input>`, grammar in [`input`]);
//! - `expected`: the transcript the session must produce: every input echoed, then
//!   the actions it returned, the state and next deadline, and any new last error.
//!
//! A new RFC case is a new directory, not new code. `OXLB_BLESS=1` writes the
//! transcript to `expected` instead of comparing (for a new case: read it before
//! committing, it is the assertion).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_bgp::packet::{Capability, Context, Message, Notification, Open, RefreshSubtype, decode};
use oxlb_bgp::rib::Routes;
use oxlb_bgp::session::{Action, ConnectError, Input, Session, Stop};
use oxlb_bgp::{PeerAsn, PeerSettings, RouteAttributes};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CTX: Context = Context {
    four_octet_as: true,
};

/// `config.json`: local_asn, peer_asn, peer_address, router_id (required); hold_time,
/// keepalive_time, connect_retry_time (s), graceful_restart, ipv4, ipv6 (optional).
fn settings(config: &Value) -> PeerSettings {
    let text = |k: &str| config[k].as_str().unwrap_or_else(|| panic!("config: {k}"));
    let number = |k: &str| config[k].as_u64();
    let mut s = PeerSettings::new(
        "replay",
        number("local_asn").expect("local_asn") as u32,
        PeerAsn::Fixed(number("peer_asn").expect("peer_asn") as u32),
        text("peer_address").parse().unwrap(),
        text("router_id").parse().unwrap(),
    );
    if let Some(v) = number("hold_time") {
        s.hold_time = Duration::from_secs(v);
    }
    if let Some(v) = number("keepalive_time") {
        s.keepalive_time = Duration::from_secs(v);
    }
    if let Some(v) = number("connect_retry_time") {
        s.connect_retry_time = Duration::from_secs(v);
    }
    for (key, field) in [
        ("graceful_restart", &mut s.graceful_restart),
        ("ipv4", &mut s.ipv4),
        ("ipv6", &mut s.ipv6),
    ] {
        if let Some(v) = config[key].as_bool() {
            *field = v;
        }
    }
    s
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap() as u8)
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits: {text}"
    );
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// One input line (after `@<ms>`):
///
/// - `start`; `stop shutdown TEXT` | `stop restart` | `stop reset TEXT` | `stop deconfigured`
/// - `connected CONN out|in`; `connect-failed refused|timeout`; `closed CONN`
/// - `routes PREFIX,PREFIX...` (default attributes; `routes -` for none)
/// - `open CONN as=ASN id=IP hold=S [gr] [err] [role=N]` (IPv4+IPv6 unicast, route
///   refresh, 4-octet AS, graceful restart with `gr`, enhanced route refresh with `err`)
/// - `keepalive CONN`; `notification CONN CODE SUBCODE`;
///   `route-refresh CONN AFI SAFI [borr|eorr|SUBTYPE]` (a request without the last word)
/// - `confirm`: ask the peer to confirm what was sent (enhanced route refresh)
/// - `wire CONN HEX`: raw bytes through the decoder; a message or a decode error
/// - `update-raw CONN ATTRS-HEX PREFIX...`: an UPDATE framed around these path
///   attribute bytes (`_` may separate them) and IPv4 NLRI, then as `wire`
/// - `tick`: time passes to this moment
///
/// Deadlines that fall before an input's moment fire first (echoed as `@<ms> tick`),
/// as in the real shell. `timers` (not an input): ticks at every deadline up to this moment, each echoed.
fn input(words: &[&str]) -> Input {
    let conn = |i: usize| -> u64 { words[i].parse().expect("connection number") };
    let rest = |i: usize| words[i..].join(" ");
    match words {
        ["start"] => Input::Start,
        ["stop", "shutdown", ..] => Input::Stop(Stop::Shutdown { message: rest(2) }),
        ["stop", "restart"] => Input::Stop(Stop::Restart),
        ["stop", "reset", ..] => Input::Stop(Stop::Reset { reason: rest(2) }),
        ["stop", "deconfigured"] => Input::Stop(Stop::Deconfigured),
        ["connected", _, dir] => Input::Connected {
            conn: conn(1),
            outbound: *dir == "out",
            local: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                40000 + conn(1) as u16,
            ),
        },
        ["connect-failed", "refused"] => Input::ConnectFailed {
            error: ConnectError::Refused,
        },
        ["connect-failed", "timeout"] => Input::ConnectFailed {
            error: ConnectError::Timeout { secs: 30 },
        },
        ["closed", _] => Input::Closed {
            conn: conn(1),
            error: None,
        },
        ["routes", list] => {
            let attrs = Arc::new(RouteAttributes::default());
            let routes: Routes = list
                .split(',')
                .filter(|p| *p != "-")
                .map(|p| (p.parse().unwrap(), Arc::clone(&attrs)))
                .collect();
            Input::Routes(routes)
        }
        ["open", _, options @ ..] => {
            let option = |key: &str| {
                options
                    .iter()
                    .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            };
            let asn: u32 = option("as").expect("as=").parse().unwrap();
            let mut capabilities = vec![
                Capability::Multiprotocol { afi: 1, safi: 1 },
                Capability::Multiprotocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
                Capability::FourOctetAs(asn),
            ];
            if options.contains(&"gr") {
                capabilities.push(Capability::GracefulRestart {
                    restarting: false,
                    restart_time: 120,
                    families: vec![],
                });
            }
            if options.contains(&"err") {
                capabilities.push(Capability::EnhancedRouteRefresh);
            }
            if let Some(role) = option("role") {
                capabilities.push(Capability::Role(role.parse().unwrap()));
            }
            Input::Message {
                conn: conn(1),
                message: Message::Open(Open {
                    version: 4,
                    my_as: u16::try_from(asn).unwrap_or(23456),
                    hold_time: option("hold").expect("hold=").parse().unwrap(),
                    bgp_id: option("id").expect("id=").parse().unwrap(),
                    capabilities,
                }),
            }
        }
        ["keepalive", _] => Input::Message {
            conn: conn(1),
            message: Message::Keepalive,
        },
        ["notification", _, code, subcode] => Input::Message {
            conn: conn(1),
            message: Message::Notification(Notification::new(
                code.parse().unwrap(),
                subcode.parse().unwrap(),
                vec![],
            )),
        },
        ["route-refresh", _, afi, safi, subtype @ ..] => Input::Message {
            conn: conn(1),
            message: Message::RouteRefresh {
                afi: afi.parse().unwrap(),
                safi: safi.parse().unwrap(),
                subtype: match subtype {
                    [] => RefreshSubtype::Request,
                    ["borr"] => RefreshSubtype::Begin,
                    ["eorr"] => RefreshSubtype::End,
                    [code] => RefreshSubtype::from_code(code.parse().unwrap()),
                    other => panic!("route-refresh subtype: {other:?}"),
                },
            },
        },
        ["confirm"] => Input::Confirm,
        ["update-raw", _, attrs, nlri @ ..] => {
            let attrs = hex(attrs);
            let mut body = vec![0, 0];
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(&attrs);
            for prefix in nlri {
                let net: ipnet::Ipv4Net = prefix.parse().unwrap();
                body.push(net.prefix_len());
                let octets = usize::from(net.prefix_len()).div_ceil(8);
                body.extend_from_slice(&net.network().octets()[..octets]);
            }
            let mut wire = vec![0xff; 16];
            wire.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
            wire.push(2);
            wire.extend_from_slice(&body);
            wire_input(conn(1), &wire)
        }
        ["wire", _, ..] => wire_input(conn(1), &hex(&rest(2))),
        ["tick"] => Input::Tick,
        other => panic!("unknown input: {other:?}"),
    }
}

/// Raw bytes through the decoder, as the shell's reader does.
fn wire_input(conn: u64, bytes: &[u8]) -> Input {
    match decode(bytes, CTX) {
        Ok(Some((message, _))) => Input::Message { conn, message },
        Ok(None) => panic!("wire: incomplete message"),
        Err(error) => Input::DecodeError { conn, error },
    }
}

fn message_line(m: &Message) -> String {
    match m {
        Message::Open(o) => format!(
            "OPEN as={} hold={} id={} caps={:?}",
            o.asn(),
            o.hold_time,
            o.bgp_id,
            o.capabilities
        ),
        Message::Update(u) => {
            let mut line = "UPDATE".to_string();
            if !u.withdrawn.is_empty() {
                let _ = write!(line, " withdrawn={:?}", u.withdrawn);
            }
            if !u.nlri.is_empty() {
                let _ = write!(line, " nlri={:?}", u.nlri);
            }
            let _ = write!(line, " attrs={:?}", u.attributes);
            line
        }
        Message::Notification(n) => {
            let mut line = format!("NOTIFICATION {}/{} {n}", n.code, n.subcode);
            if !n.data.is_empty() {
                line.push_str(" data=");
                n.data.iter().for_each(|b| {
                    let _ = write!(line, "{b:02x}");
                });
            }
            line
        }
        Message::Keepalive => "KEEPALIVE".into(),
        Message::RouteRefresh { afi, safi, subtype } => match subtype {
            RefreshSubtype::Request => format!("ROUTE-REFRESH {afi}/{safi}"),
            RefreshSubtype::Begin => format!("ROUTE-REFRESH {afi}/{safi} BoRR"),
            RefreshSubtype::End => format!("ROUTE-REFRESH {afi}/{safi} EoRR"),
            RefreshSubtype::Other(code) => format!("ROUTE-REFRESH {afi}/{safi} subtype={code}"),
        },
    }
}

struct Replay {
    session: Session,
    t0: Instant,
    last_error: Option<String>,
    out: String,
}

impl Replay {
    fn step(&mut self, at: Instant, label: &str, input: Input) {
        let ms = (at - self.t0).as_millis();
        let _ = writeln!(self.out, "@{ms} {label}");
        let actions = self.session.handle(at, input);
        for action in actions {
            match action {
                Action::Connect => self.out.push_str("  connect\n"),
                Action::Close { conn } => {
                    let _ = writeln!(self.out, "  close {conn}");
                }
                Action::Report(r) => {
                    let _ = writeln!(self.out, "  report {r}");
                }
                Action::Send { conn, bytes } => {
                    let mut rest = bytes.as_slice();
                    while let Ok(Some((m, used))) = decode(rest, CTX) {
                        let _ = writeln!(self.out, "  send {conn} {}", message_line(&m));
                        rest = &rest[used..];
                    }
                    assert!(rest.is_empty(), "undecodable bytes sent: {rest:?}");
                }
            }
        }
        let deadline = self
            .session
            .next_deadline()
            .map_or("none".to_string(), |d| {
                format!("@{}", (d - self.t0).as_millis())
            });
        let _ = writeln!(
            self.out,
            "  state {} next={deadline}",
            self.session.state().name()
        );
        if self.session.last_error != self.last_error {
            self.last_error = self.session.last_error.clone();
            if let Some(e) = &self.last_error {
                let _ = writeln!(self.out, "  error {e}");
            }
        }
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let inputs = std::fs::read_to_string(dir.join("inputs")).unwrap();
    let t0 = Instant::now();
    let mut replay = Replay {
        session: Session::new(settings(&config)),
        t0,
        last_error: None,
        out: String::new(),
    };
    for line in inputs.lines().map(str::trim) {
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
            replay.step(due, "tick", Input::Tick);
        }
        if words == ["timers"] {
            while let Some(due) = replay.session.next_deadline().filter(|d| *d <= at) {
                replay.step(due, "tick", Input::Tick);
            }
            continue;
        }
        replay.step(at, rest, input(&words));
    }
    let expected_path = dir.join("expected");
    if std::env::var_os("OXLB_BLESS").is_some() {
        std::fs::write(&expected_path, &replay.out).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
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

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("inputs").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_replay_case_produces_its_expected_transcript() {
    let dirs = cases();
    assert!(dirs.len() >= 5, "replay cases missing: {dirs:?}");
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
