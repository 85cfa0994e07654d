//! The malformed-message cases of crates/bgp/tests/raw_peer_malformed.rs, against a
//! running `oxlb run` process instead of an in-process speaker (issue 21): `oxlb run`
//! on loopback with two BGPPeers, each a raw test peer here. Each malformed OPEN,
//! header, UPDATE and attribute that RFC 4271 §6 and RFC 7606 prescribe an answer for
//! is sent by the first peer and the answer checked: the NOTIFICATION code/subcode, a
//! silent close (RFC 4271 §6.4), or for treat-as-withdraw / attribute discard no
//! NOTIFICATION, the session kept (it still answers) and the error in the process's
//! log. Meanwhile the second peer's session must not blink (same OPEN count, still
//! Established, its two routes still announced) and hear nothing but KEEPALIVEs.
//! Loopback only; no namespace, no root needed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{IpAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OURS: [u8; 4] = [127, 0, 0, 30];
const RAW: [u8; 4] = [127, 0, 0, 31];
const OTHER: [u8; 4] = [127, 0, 0, 32];
/// Generous bound for one step; only a hung test ever waits it out.
const STEP: Duration = Duration::from_secs(20);

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// OPEN body: version, AS, hold, id, then the optional parameters as given.
fn open_body(version: u8, asn: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&asn.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

/// Capabilities: IPv4 unicast, 4-octet AS 64501.
const CAPS: [u8; 14] = [2, 12, 1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0xfb, 0xf5];

fn good_open(id: [u8; 4]) -> Vec<u8> {
    frame(1, &open_body(4, 64501, 90, id, &CAPS))
}

/// UPDATE with valid ORIGIN, AS_PATH, NEXT_HOP (minus `skip`), then `extra`, one NLRI.
fn update(extra: &[u8], skip: Option<u8>) -> Vec<u8> {
    let mut attrs: Vec<u8> = Vec::new();
    for (t, a) in [
        (1u8, &[0x40, 1, 1, 0][..]),
        (2, &[0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf5][..]),
        (3, &[0x40, 3, 4, 127, 0, 0, 21][..]),
    ] {
        if skip != Some(t) {
            attrs.extend_from_slice(a);
        }
    }
    attrs.extend_from_slice(extra);
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(&[24, 198, 51, 100]);
    frame(2, &b)
}

#[derive(Debug)]
enum When {
    /// Sent instead of the peer's OPEN.
    InsteadOfOpen,
    /// Sent once the session is Established.
    Established,
}

#[derive(Debug)]
enum Expect {
    Notification(u8, u8),
    /// The connection is closed with no NOTIFICATION (RFC 4271 §6.4).
    ClosedSilently,
    /// No NOTIFICATION, session kept, and this logged (e.g. "treat-as-withdraw").
    Logged(&'static str),
}

fn cases() -> Vec<(&'static str, When, Vec<u8>, Expect)> {
    use Expect::*;
    use When::*;
    let mut bad_marker = good_open(RAW);
    bad_marker[3] = 0;
    let mut long_keepalive = frame(4, &[0]);
    long_keepalive.truncate(20);
    vec![
        // RFC 4271 §6.1 message header errors.
        (
            "header: marker not all ones",
            InsteadOfOpen,
            bad_marker,
            Notification(1, 1),
        ),
        (
            "header: KEEPALIVE of 20 octets",
            Established,
            long_keepalive,
            Notification(1, 2),
        ),
        (
            "header: message type 9",
            Established,
            frame(9, &[]),
            Notification(1, 3),
        ),
        // RFC 4271 §6.2 OPEN errors.
        (
            "OPEN: version 3",
            InsteadOfOpen,
            frame(1, &open_body(3, 64501, 90, RAW, &CAPS)),
            Notification(2, 1),
        ),
        (
            "OPEN: wrong peer AS",
            InsteadOfOpen,
            frame(1, &open_body(4, 64999, 90, RAW, &[])),
            Notification(2, 2),
        ),
        (
            "OPEN: BGP identifier 0.0.0.0",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 90, [0; 4], &CAPS)),
            Notification(2, 3),
        ),
        (
            "OPEN: unsupported optional parameter",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 90, RAW, &[7, 0])),
            Notification(2, 4),
        ),
        (
            "OPEN: hold time 2",
            InsteadOfOpen,
            frame(1, &open_body(4, 64501, 2, RAW, &CAPS)),
            Notification(2, 6),
        ),
        // RFC 4271 §6.4: an error in a NOTIFICATION is not answered with one.
        (
            "NOTIFICATION of 20 octets",
            Established,
            frame(3, &[6]),
            ClosedSilently,
        ),
        // RFC 6608: an OPEN once Established is an FSM error.
        (
            "FSM: OPEN while Established",
            Established,
            good_open(RAW),
            Notification(5, 3),
        ),
        // RFC 4271 §6.3 / RFC 7606 UPDATE errors that reset the session.
        (
            "UPDATE: withdrawn length past the end",
            Established,
            frame(2, &[0, 9, 0, 0]),
            Notification(3, 1),
        ),
        (
            "UPDATE: NLRI /33",
            Established,
            frame(2, &[0, 0, 0, 0, 33, 1, 2, 3, 4, 5]),
            Notification(3, 10),
        ),
        (
            "UPDATE: unrecognised well-known attribute",
            Established,
            update(&[0x40, 99, 1, 0], None),
            Notification(3, 2),
        ),
        (
            "UPDATE: MP_REACH_NLRI truncated",
            Established,
            update(&[0x80, 14, 1, 0], None),
            Notification(3, 1),
        ),
        (
            "UPDATE: MP_UNREACH_NLRI twice",
            Established,
            update(&[0x80, 15, 3, 0, 1, 1, 0x80, 15, 3, 0, 1, 1], None),
            Notification(3, 1),
        ),
        // RFC 7606 treat-as-withdraw.
        (
            "ORIGIN with the Optional bit",
            Established,
            update(&[0xc0, 1, 1, 0], Some(1)),
            Logged(
                "ORIGIN (type 1) with flags 0xc0 that conflict with its type: treat-as-withdraw",
            ),
        ),
        (
            "ORIGIN value 3",
            Established,
            update(&[0x40, 1, 1, 3], Some(1)),
            Logged("ORIGIN (type 1) malformed: treat-as-withdraw"),
        ),
        (
            "AS_PATH segment overrun",
            Established,
            update(&[0x40, 2, 4, 2, 5, 0, 1], Some(2)),
            Logged("AS_PATH (type 2) malformed: treat-as-withdraw"),
        ),
        (
            "NEXT_HOP of 3 octets",
            Established,
            update(&[0x40, 3, 3, 1, 2, 3], Some(3)),
            Logged("NEXT_HOP (type 3) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "NEXT_HOP missing",
            Established,
            update(&[], Some(3)),
            Logged("NEXT_HOP (type 3) missing: treat-as-withdraw"),
        ),
        (
            "MED of 3 octets",
            Established,
            update(&[0x80, 4, 3, 0, 0, 1], None),
            Logged("MULTI_EXIT_DISC (type 4) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "COMMUNITIES of 3 octets",
            Established,
            update(&[0xc0, 8, 3, 1, 2, 3], None),
            Logged("COMMUNITIES (type 8) with a wrong length (3): treat-as-withdraw"),
        ),
        (
            "attribute overrunning the field",
            Established,
            update(&[0xc0, 8, 9, 0, 0], None),
            Logged("COMMUNITIES (type 8) overruns the attribute field: treat-as-withdraw"),
        ),
        // RFC 7606 attribute discard.
        (
            "ATOMIC_AGGREGATE with a value",
            Established,
            update(&[0x40, 6, 1, 0], None),
            Logged("ATOMIC_AGGREGATE (type 6) with a wrong length (1): attribute discard"),
        ),
        (
            "AGGREGATOR of 5 octets",
            Established,
            update(&[0xc0, 7, 5, 0, 0, 0, 0, 1], None),
            Logged("AGGREGATOR (type 7) with a wrong length (5): attribute discard"),
        ),
        (
            "ORIGIN twice",
            Established,
            update(&[0x40, 1, 1, 1], None),
            Logged("ORIGIN (type 1) repeated: attribute discard"),
        ),
    ]
}

/// Reads one framed message; None when the connection ends or `STEP` passes.
async fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 19];
    tokio::time::timeout(STEP, stream.read_exact(&mut header))
        .await
        .ok()?
        .ok()?;
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let mut body = vec![0u8; len.saturating_sub(19)];
    tokio::time::timeout(STEP, stream.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    Some((header[18], body))
}

/// Accepts the speaker's connection and answers its OPEN with `open` (and a KEEPALIVE
/// when the OPEN is the good one). Returns the stream.
async fn accept(listener: &TcpListener, open: &[u8], keepalive: bool) -> TcpStream {
    let (mut stream, _) = tokio::time::timeout(STEP, listener.accept())
        .await
        .expect("the speaker connects")
        .unwrap();
    let (kind, _) = read_message(&mut stream).await.expect("its OPEN");
    assert_eq!(kind, 1);
    stream.write_all(open).await.unwrap();
    if keepalive {
        stream.write_all(&frame(4, &[])).await.unwrap();
    }
    stream
}

/// The first NOTIFICATION on the stream (UPDATEs and KEEPALIVEs before it skipped).
async fn notification(stream: &mut TcpStream) -> Option<(u8, u8)> {
    while let Some((kind, body)) = read_message(stream).await {
        if kind == 3 {
            return Some((body[0], body[1]));
        }
    }
    None
}

struct Run {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    status: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A listener for a test peer: MetalLB's `peerPort` must be below 16384, so not an
/// ephemeral port; the first free one from a per-process start.
async fn bind_peer(ip: [u8; 4]) -> TcpListener {
    let first = 2000 + (std::process::id() % 10_000) as u16;
    for port in first..16_000 {
        if let Ok(listener) = TcpListener::bind((IpAddr::from(ip), port)).await {
            return listener;
        }
    }
    panic!("no free port below 16384 on {ip:?}");
}

fn free_port(ip: [u8; 4]) -> u16 {
    StdListener::bind((IpAddr::from(ip), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peer_yaml(name: &str, address: [u8; 4], port: u16) -> String {
    format!(
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: {name}
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: {}
  peerPort: {port}
  sourceAddress: {}
  routerID: {}
  connectTime: 1s
---
",
        IpAddr::from(address),
        IpAddr::from(OURS),
        IpAddr::from(OURS)
    )
}

/// `oxlb run` with one pool, the two peers and two Services with fixed IPs.
fn start_run(raw_port: u16, other_port: u16) -> Run {
    let dir = std::env::temp_dir().join(format!("chaos-rawrun-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let mut yaml = peer_yaml("raw", RAW, raw_port);
    yaml.push_str(&peer_yaml("other", OTHER, other_port));
    yaml.push_str(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: pool
  namespace: metallb-system
spec:
  addresses:
    - 192.0.2.0/24
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: adv
  namespace: metallb-system
spec:
  ipAddressPools:
    - pool
",
    );
    for (name, ip) in [("a", "192.0.2.2"), ("b", "192.0.2.3")] {
        yaml.push_str(&format!(
            "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations:
    metallb.io/loadBalancerIPs: {ip}
spec:
  type: LoadBalancer
  ports:
    - port: 80
      protocol: TCP
"
        ));
    }
    std::fs::write(dir.join("config/all.yaml"), yaml).unwrap();
    let status = format!("127.0.0.1:{}", free_port([127, 0, 0, 1]));
    let gossip = format!("127.0.0.1:{}", free_port([127, 0, 0, 1]));
    let log = dir.join("run.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["run", "--node", "node1", "--no-local-ips", "-f"])
        .arg(dir.join("config"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--listen", &status, "--memberlist-bind", &gossip])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Run {
        child,
        dir,
        log,
        status,
    }
}

/// The session named `name` in the process's status (`oxlb status -o json`).
fn session(run: &Run, name: &str) -> Option<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["status", "--addr", &run.status, "-o", "json"])
        .output()
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    value["bgp_sessions"]
        .as_array()?
        .iter()
        .find(|s| s["peer"].as_str().is_some_and(|p| p.ends_with(name)))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_to_oxlb_run_get_the_rfc_answer_and_leave_the_other_session_alone() {
    let raw = bind_peer(RAW).await;
    let other = bind_peer(OTHER).await;
    let run = start_run(
        raw.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );

    // The bystander: established once, both routes received; it must hear nothing more.
    let mut bystander = accept(&other, &good_open(OTHER), true).await;
    let mut prefixes = 0;
    while prefixes < 2 {
        let (kind, body) = read_message(&mut bystander).await.expect("routes");
        if kind == 2 && body.len() > 4 {
            let withdrawn = usize::from(u16::from_be_bytes([body[0], body[1]]));
            let attrs = usize::from(u16::from_be_bytes([
                body[2 + withdrawn],
                body[3 + withdrawn],
            ]));
            // Each /32 NLRI is 5 octets.
            prefixes += (body.len() - 4 - withdrawn - attrs) / 5;
        }
    }
    let before = tokio::task::block_in_place(|| {
        let mut found = None;
        for _ in 0..100 {
            found = session(&run, "other").filter(|s| s["state"] == "Established");
            if found.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        found
    })
    .unwrap_or_else(|| {
        panic!(
            "the bystander never showed Established: {}",
            std::fs::read_to_string(&run.log).unwrap_or_default()
        )
    });

    let mut failures = Vec::new();
    for (name, when, bytes, expect) in cases() {
        let log_len = std::fs::metadata(&run.log).map(|m| m.len()).unwrap_or(0) as usize;
        let updates_before = tokio::task::block_in_place(|| session(&run, "raw"))
            .and_then(|s| s["messages"]["updates_received"].as_u64());
        let mut stream = match when {
            When::InsteadOfOpen => accept(&raw, &bytes, false).await,
            When::Established => {
                let mut s = accept(&raw, &good_open(RAW), true).await;
                // Up once our routes arrive (the first UPDATE follows Established).
                loop {
                    let (kind, _) = read_message(&mut s).await.expect("routes to raw");
                    if kind == 2 {
                        break;
                    }
                }
                s.write_all(&bytes).await.unwrap();
                s
            }
        };
        let outcome = match expect {
            Expect::Notification(code, subcode) => {
                let got = notification(&mut stream).await;
                (got != Some((code, subcode)))
                    .then(|| format!("{name}: expected NOTIFICATION {code}/{subcode}, got {got:?}"))
            }
            Expect::ClosedSilently => match notification(&mut stream).await {
                Some(n) => Some(format!(
                    "{name}: expected a silent close, got NOTIFICATION {n:?}"
                )),
                None => {
                    let mut byte = [0u8; 1];
                    let eof =
                        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await;
                    (!matches!(eof, Ok(Ok(0)) | Ok(Err(_))))
                        .then(|| format!("{name}: the connection was not closed"))
                }
            },
            Expect::Logged(text) => {
                // A KEEPALIVE after the UPDATE: still answered by a live session.
                stream.write_all(&frame(4, &[])).await.unwrap();
                let mut seen = false;
                for _ in 0..(STEP.as_millis() / 50) {
                    let log = std::fs::read(&run.log).unwrap_or_default();
                    seen = String::from_utf8_lossy(&log[log_len.min(log.len())..])
                        .lines()
                        .any(|l| l.contains(text) && l.contains("raw"));
                    if seen {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let mut problems = Vec::new();
                if !seen {
                    problems.push(format!("not in the log: {text:?}"));
                }
                let quiet =
                    tokio::time::timeout(Duration::from_millis(300), notification(&mut stream))
                        .await;
                match quiet {
                    Ok(Some(n)) => problems.push(format!("got NOTIFICATION {n:?}")),
                    Ok(None) => problems.push("the connection was closed".into()),
                    Err(_) => {} // still open and silent: the session lives
                }
                // The status API is a snapshot refreshed now and then: polled until it
                // shows this connection's session (it counts our UPDATE).
                let state = tokio::task::block_in_place(|| {
                    let mut last = None;
                    for _ in 0..100 {
                        last = session(&run, "raw");
                        if last.as_ref().is_some_and(|s| {
                            s["state"] == "Established"
                                && s["messages"]["updates_received"].as_u64() > updates_before
                        }) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    last
                });
                if state.as_ref().map(|s| s["state"].clone()) != Some("Established".into()) {
                    problems.push(format!("session not Established: {state:?}"));
                }
                (!problems.is_empty()).then(|| format!("{name}: {}", problems.join(", ")))
            }
        };
        println!("{name}: {}", if outcome.is_none() { "ok" } else { "WRONG" });
        failures.extend(outcome);
        drop(stream);
    }

    // The bystander's session never blinked and it heard nothing but KEEPALIVEs.
    let after = tokio::task::block_in_place(|| session(&run, "other")).unwrap();
    assert_eq!(after["state"], "Established", "{after}");
    assert_eq!(
        after["messages"]["opens_received"], before["messages"]["opens_received"],
        "the bystander's session was reset: {after}"
    );
    assert_eq!(after["prefixes_announced"], 2, "{after}");
    while let Ok(Some((kind, _))) =
        tokio::time::timeout(Duration::from_millis(100), read_message(&mut bystander)).await
    {
        assert_eq!(
            kind, 4,
            "the bystander got something other than a KEEPALIVE"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
