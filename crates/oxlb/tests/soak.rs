//! Soak (issue 21): `oxlb run` with `OXLB_SOAK_SERVICES` Services (default 1,000) and 3
//! BGP peers, one Service churned per second (a Service removed and another added,
//! through the watched configuration files), for `OXLB_SOAK_SECS` seconds (default 300:
//! the 5-minute version, run in CI in a debug build). The hour of the issue with 10,000
//! Services: `OXLB_SOAK_SERVICES=10000 OXLB_SOAK_SECS=3600 cargo test -p oxlb --release
//! --test soak -- --nocapture` (a debug build takes about 13 s for one reload of 10,000
//! Services on the 2-core machine, so it falls behind one churn a second).
//! Takes the live heap at rest (the allocator's bytes in use, `GET /api/v1/memory`), the
//! resident set size and the open file descriptors after a warm-up (the first 20 % of
//! the run, at least 20 churns) and at the end, both at rest (once the churn written
//! last is in force). Fails when the live heap grew by more than 1 % (a leak), the
//! resident size by more than 5 % (it also counts free pages the allocator keeps, which
//! wander by about 1 % with nothing leaked: see the README's "Soak"), or a descriptor
//! leaked. The three peers are test peers on loopback that accept the session and read
//! every UPDATE.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The Service written at churn `k`: a new name every time, or with
/// `OXLB_SOAK_NAMES=2` two names in turn (to tell per-name state from the rest).
fn churn_name(k: u64) -> String {
    match std::env::var("OXLB_SOAK_NAMES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(names) if names > 0 => format!("churn-{}", k % names),
        _ => format!("churn-{k}"),
    }
}

/// 1,000 unless `OXLB_SOAK_SERVICES` says otherwise.
fn services_count() -> usize {
    std::env::var("OXLB_SOAK_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}

/// The live heap of `oxlb run` at rest: the least of 8 readings 250 ms apart. The churn
/// goes on while the warm-up figure is taken and a reload holds a few hundred KiB while
/// it runs: single readings of 1,000 Services moved by up to 3.5 % either way with
/// nothing kept (two names in turn), the least of them does not.
fn heap_at_rest(addr: &str) -> u64 {
    (0..8)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            heap_in_use(addr)
        })
        .min()
        .unwrap_or(0)
}

/// The live heap of `oxlb run` in bytes (`GET /api/v1/memory`, through curl).
fn heap_in_use(addr: &str) -> u64 {
    let output = Command::new("curl")
        .args(["-sf", "-m", "10", &format!("http://{addr}/api/v1/memory")])
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("/api/v1/memory: {e}: {output:?}"));
    value["in_use_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no live heap figure (not glibc?): {value}"))
}
const OURS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 40);

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

fn open(id: [u8; 4]) -> Vec<u8> {
    // Version 4, AS 64501, hold 90 s, the id, capabilities IPv4 unicast and 4-octet AS.
    let mut b = vec![4, 0xfb, 0xf5, 0, 90];
    b.extend_from_slice(&id);
    b.extend_from_slice(&[14, 2, 12, 1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0xfb, 0xf5]);
    frame(1, &b)
}

/// A peer that accepts the speaker, answers its OPEN, sends a KEEPALIVE every 10 s and
/// counts the UPDATEs it reads.
async fn peer(listener: TcpListener, id: [u8; 4], updates: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (mut rd, mut wr) = stream.into_split();
        if wr.write_all(&open(id)).await.is_err() || wr.write_all(&frame(4, &[])).await.is_err() {
            continue;
        }
        let keepalive = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                if wr.write_all(&frame(4, &[])).await.is_err() {
                    return;
                }
            }
        });
        let mut header = [0u8; 19];
        loop {
            if rd.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
            let mut body = vec![0u8; len.saturating_sub(19)];
            if rd.read_exact(&mut body).await.is_err() {
                break;
            }
            if header[18] == 2 {
                updates.fetch_add(1, Ordering::Relaxed);
            }
        }
        keepalive.abort();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn service(name: &str, ip: Ipv4Addr) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  \
         annotations:\n    metallb.io/loadBalancerIPs: {ip}\nspec:\n  type: LoadBalancer\n  \
         ports:\n    - port: 80\n      protocol: TCP\n"
    )
}

fn ip_of(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 80, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// Writes atomically (a temporary file outside the watched directory, renamed in).
fn write(dir: &Path, scratch: &Path, name: &str, text: &str) {
    let tmp = scratch.join(format!(".{name}"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

struct Run(Child, PathBuf);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn rss_kib(pid: u32) -> u64 {
    rss(pid).0
}

/// The resident set in KiB from one read of `/proc/PID/status`, and its split:
/// anonymous (the heap, stacks) and file-backed (the binary's pages, which come and go
/// with the page cache).
fn rss(pid: u32) -> (u64, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    (
        field("VmRSS:"),
        format!(
            "anon {} KiB, file {} KiB",
            field("RssAnon:"),
            field("RssFile:")
        ),
    )
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Polls the status until Service `name` has an IP (10 minutes at most).
fn in_force(addr: &str, name: &str) -> bool {
    for _ in 0..1200 {
        let found = status_json(addr).is_some_and(|value| {
            value["services"].as_array().is_some_and(|list| {
                list.iter().any(|s| {
                    s["service"] == name && s["ips"].as_array().is_some_and(|ips| !ips.is_empty())
                })
            })
        });
        if found {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

fn status_json(addr: &str) -> Option<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["status", "--addr", addr, "-o", "json"])
        .output()
        .ok()?;
    serde_json::from_slice(&output.stdout).ok()
}

// Before the live heap was measured this test was ignored: its only bound was 1 % of
// RSS, which the allocator's free pages move by about as much with nothing leaked
// (+0.65 %, +1.03 %, +0.47 %, +1.10 % in runs of 122 s; heaptrack showed the live heap
// flat: 7.45 MB after 15 new names, 7.46 MB after 90).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_churned_once_a_second_leak_nothing() {
    let services_n = services_count();
    let secs: u64 = std::env::var("OXLB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("chaos-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let counters: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
    let mut yaml = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool\n  \
         namespace: metallb-system\nspec:\n  addresses:\n    - 10.80.0.0/16\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: adv\n  \
         namespace: metallb-system\nspec:\n  ipAddressPools:\n    - pool\n",
    );
    for (i, counter) in counters.iter().enumerate() {
        let address = Ipv4Addr::new(127, 0, 0, 41 + i as u8);
        // MetalLB's `peerPort` must be below 16384: the first free one from a
        // per-process start.
        let first = 2000 + (std::process::id() % 10_000) as u16;
        let mut listener = None;
        for port in first..16_000 {
            if let Ok(l) = TcpListener::bind((IpAddr::V4(address), port)).await {
                listener = Some(l);
                break;
            }
        }
        let listener = listener.expect("a free port below 16384");
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(peer(listener, address.octets(), counter.clone()));
        yaml.push_str(&format!(
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: peer{i}\n  \
             namespace: metallb-system\nspec:\n  myASN: 64500\n  peerASN: 64501\n  \
             peerAddress: {address}\n  peerPort: {port}\n  sourceAddress: {OURS}\n  \
             routerID: {OURS}\n  holdTime: 90s\n"
        ));
    }
    write(&config, &dir, "base.yaml", &yaml);
    let services: String = (0..services_n)
        .map(|n| service(&format!("svc-{n}"), ip_of(n)))
        .collect();
    write(&config, &dir, "services.yaml", &services);
    write(
        &config,
        &dir,
        "churn.yaml",
        &service("churn-0", ip_of(services_n)),
    );
    let status = format!("127.0.0.1:{}", free_port());
    let gossip = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args([
            "run",
            "--node",
            "node1",
            "--no-local-ips",
            // The machine's own namespace: no second-chance rules here.
            "--second-chance=false",
            "--log-level",
            "warn",
            "-f",
        ])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--listen", &status, "--memberlist-bind", &gossip])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let run = Run(child, dir.clone());

    // Up: every session Established and the 10,001 prefixes announced to each peer.
    let started = Instant::now();
    let status_addr = status.clone();
    let up = tokio::task::spawn_blocking(move || {
        let services_n = services_count();
        for _ in 0..1200 {
            if let Some(value) = status_json(&status_addr) {
                let sessions = value["bgp_sessions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if sessions.len() == 3
                    && sessions.iter().all(|s| {
                        s["state"] == "Established"
                            && s["prefixes_announced"].as_u64() == Some(services_n as u64 + 1)
                    })
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    })
    .await
    .unwrap();
    let log_text = || std::fs::read_to_string(run.1.join("run.log")).unwrap_or_default();
    assert!(up, "not up with 10,000 Services: {}", log_text());
    println!(
        "soak: up with {} Services and 3 peers in {:.1} s, RSS {} KiB, {} fds",
        services_n + 1,
        started.elapsed().as_secs_f64(),
        rss_kib(pid),
        fds(pid)
    );

    let churns = secs.max(25);
    let warmup = (churns / 5).max(20);
    let mut baseline = (0, 0);
    let mut heap_baseline = 0;
    let churn_started = Instant::now();
    for k in 1..=churns {
        let next = churn_started + Duration::from_secs(k);
        write(
            &config,
            &dir,
            "churn.yaml",
            &service(&churn_name(k), ip_of(services_n + (k as usize % 2))),
        );
        if k == warmup {
            // Measured at rest: once this churn is in force.
            let (addr, name) = (status.clone(), format!("default/{}", churn_name(k)));
            let waited = Instant::now();
            let ok = tokio::task::spawn_blocking(move || in_force(&addr, &name))
                .await
                .unwrap();
            assert!(ok, "churn {k} never came into force: {}", log_text());
            let (total, split) = rss(pid);
            baseline = (total, fds(pid));
            let addr = status.clone();
            heap_baseline = tokio::task::spawn_blocking(move || heap_at_rest(&addr))
                .await
                .unwrap();
            println!(
                "soak: after {warmup} churns (warm-up; in force {:.1} s after its write): \
                 live heap {} KiB, RSS {} KiB ({}), {} fds",
                waited.elapsed().as_secs_f64(),
                heap_baseline / 1024,
                baseline.0,
                split,
                baseline.1
            );
        }
        tokio::time::sleep_until(next.into()).await;
    }
    let last = format!("default/{}", churn_name(churns));
    let (status_addr, name) = (status.clone(), last.clone());
    let waited = Instant::now();
    let churned_in = tokio::task::spawn_blocking(move || in_force(&status_addr, &name))
        .await
        .unwrap();
    let (end_rss, end_split) = rss(pid);
    let end = (end_rss, fds(pid));
    let growth = (end.0 as f64 - baseline.0 as f64) / baseline.0 as f64 * 100.0;
    let heap_status = status.clone();
    let heap_end = tokio::task::spawn_blocking(move || heap_at_rest(&heap_status))
        .await
        .unwrap();
    let heap_growth = (heap_end as f64 - heap_baseline as f64) / heap_baseline as f64 * 100.0;
    let value = status_json(&status).unwrap();
    let sessions = value["bgp_sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let updates: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!(
        "soak: {churns} churns in {:.0} s (the last in force {:.1} s after its write); end: \
         live heap {} KiB ({heap_growth:+.2} % since the warm-up), RSS {} KiB ({growth:+.2} %; \
         {}), {} fds ({:+}); UPDATEs read per peer {updates:?}",
        churn_started.elapsed().as_secs_f64(),
        waited.elapsed().as_secs_f64(),
        heap_end / 1024,
        end.0,
        end_split,
        end.1,
        end.1 as i64 - baseline.1 as i64
    );
    assert!(
        sessions.len() == 3 && sessions.iter().all(|s| s["state"] == "Established"),
        "a session went down: {sessions:?}"
    );
    assert!(
        churned_in,
        "the last churned Service {last} is not in force"
    );
    assert_eq!(end.1, baseline.1, "file descriptors leaked");
    assert!(
        heap_growth <= 1.0,
        "the live heap grew {heap_growth:.2} % (> 1 %): a leak"
    );
    assert!(growth <= 5.0, "RSS grew {growth:.2} % (> 5 %)");
    drop(run);
}
