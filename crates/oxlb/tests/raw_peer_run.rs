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
use tokio::net::TcpListener;

const OURS: [u8; 4] = [127, 0, 0, 30];
const RAW: [u8; 4] = [127, 0, 0, 31];
const OTHER: [u8; 4] = [127, 0, 0, 32];
/// Generous bound for one step; only a hung test ever waits it out.
#[path = "../../bgp/tests/raw_peer/mod.rs"]
mod raw_peer;
use raw_peer::*;

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
        // The machine's own namespace: no second-chance rules here.
        .args([
            "run",
            "--node",
            "node1",
            "--no-local-ips",
            "--second-chance=false",
            "-f",
        ])
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
    for (name, when, bytes, expect) in cases(RAW) {
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
