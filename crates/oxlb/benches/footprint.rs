//! Footprint and convergence at scale (issue 22), three speakers in the same run, each
//! announcing the same 10,000 /32s to three BGP sessions on one FRR router:
//!
//! - `oxlb run` with 10,000 Services (one /16 pool, one BGPAdvertisement, three
//!   BGPPeers), the product as users run it;
//! - BIRD 2 with 10,000 static /32s exported to three neighbours;
//! - GoBGP (kube-vip's speaker), which learns the 10,000 from a feeding BIRD (its CLI
//!   adds one route per process start), so it also holds that Adj-RIB-In.
//!
//! Each speaker sits in its own namespace linked to the router's; FRR (bgpd only, so
//! nothing goes to a kernel table) is passive toward all of them. Printed: the RSS of
//! each 30 s after FRR holds all 3 x 10,000 of its routes, as a table with the ratios
//! against oxlb; oxlb's live heap (`GET /api/v1/memory`); and the time from `oxlb run`'s
//! start to FRR holding every route, for 3 Services and for 10,000, as a ratio.
//! Run: `cargo bench -p oxlb --bench footprint` (root; a few minutes).
//!
//! `OXLB_BENCH_SMAPS=/tmp/run.smaps` keeps oxlb's `/proc/PID/smaps` at the measuring point.
//! The shipped binary: `scripts/build-static.sh /tmp/oxlb-static && OXLB_BENCH_BINARY=/tmp/oxlb-static
//! cargo bench -p oxlb --bench footprint` (the image's and the releases' static musl build).
//! Where the memory goes: `OXLB_BENCH_HEAPTRACK=/tmp/run` runs the 10,000-Service
//! `oxlb run` under heaptrack instead, leaves BIRD and GoBGP out (the RSS would be
//! heaptrack's anyway) and kills oxlb after the settle, so `heaptrack_print
//! --print-leaks 1` lists what was live then.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxlb_netlab::{Bird, Frr, Guarded, Netns, netns_tests_enabled, veth, wait_until};

const N: usize = 10_000;
const SETTLE: Duration = Duration::from_secs(30);
const STATUS: &str = "127.0.0.1:7472";

fn route(n: usize) -> String {
    format!("10.100.{}.{}", n / 250, n % 250 + 1)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn received(frr: &Frr, neighbours: &[String]) -> Vec<u64> {
    let text = frr
        .vtysh("show bgp ipv4 unicast summary json")
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    neighbours
        .iter()
        .map(|n| json["peers"][n]["pfxRcd"].as_u64().unwrap_or(0))
        .collect()
}

fn wait_received(what: &str, frr: &Frr, neighbours: &[String], count: usize) -> Duration {
    let started = Instant::now();
    let done = wait_until(Duration::from_secs(300), Duration::from_millis(50), || {
        received(frr, neighbours)
            .iter()
            .all(|r| *r == count as u64)
            .then_some(())
    });
    assert!(
        done.is_some(),
        "{what}: FRR holds {:?} of {count}",
        received(frr, neighbours)
    );
    started.elapsed()
}

/// A speaker namespace: linked to the router by `r{link}`, router side 10.0.{link}.1 and
/// .11/.12 (one router address per session), speaker side .2/.3/.4.
fn speaker_ns(router: &Netns, tag: &str, link: u8) -> (Netns, Vec<String>) {
    let ns = Netns::new(tag).unwrap();
    veth(router, &format!("r{link}"), &ns, "n0").unwrap();
    for host in [1, 11, 12] {
        router
            .add_address(&format!("r{link}"), &format!("10.0.{link}.{host}/24"))
            .unwrap();
    }
    let speakers: Vec<String> = (2..=4).map(|h| format!("10.0.{link}.{h}")).collect();
    for s in &speakers {
        ns.add_address("n0", &format!("{s}/24")).unwrap();
    }
    (ns, speakers)
}

fn router_addresses(link: u8) -> [String; 3] {
    [1, 11, 12].map(|h| format!("10.0.{link}.{h}"))
}

/// The files of `oxlb run`: the pool, the advertisement, three peers, `services`
/// Services.
fn write_oxlb_files(dir: &Path, services: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut base = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool\n  \
         namespace: metallb-system\nspec:\n  addresses:\n    - 10.100.0.0/16\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: adv\n  \
         namespace: metallb-system\nspec:\n  ipAddressPools:\n    - pool\n",
    );
    for (i, (peer, source)) in router_addresses(1)
        .iter()
        .zip((2..=4).map(|h| format!("10.0.1.{h}")))
        .enumerate()
    {
        write!(
            base,
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: peer{i}\n  \
             namespace: metallb-system\nspec:\n  myASN: 64500\n  peerASN: 64501\n  \
             peerAddress: {peer}\n  sourceAddress: {source}\n"
        )
        .unwrap();
    }
    std::fs::write(dir.join("base.yaml"), base).unwrap();
    let mut yaml = String::new();
    for n in 0..services {
        write!(
            yaml,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{n}\n  namespace: default\n  \
             annotations:\n    metallb.io/loadBalancerIPs: {}\nspec:\n  type: LoadBalancer\n  \
             ports:\n    - port: 80\n      protocol: TCP\n",
            route(n)
        )
        .unwrap();
    }
    std::fs::write(dir.join("services.yaml"), yaml).unwrap();
}

fn start_oxlb(
    ns: &Netns,
    files: &Path,
    state: &Path,
    log: &Path,
    heaptrack: Option<&str>,
) -> Guarded {
    let _ = std::fs::remove_dir_all(state);
    let preload = std::env::var("OXLB_BENCH_PRELOAD")
        .ok()
        .map(|library| format!("LD_PRELOAD={library}"));
    let mut prefix: Vec<&str> = match heaptrack {
        Some(output) => vec!["heaptrack", "-o", output],
        None => vec![],
    };
    if let Some(preload) = &preload {
        prefix.splice(0..0, ["env", preload.as_str()]);
    }
    let binary = common::bench_binary();
    let argv: Vec<&str> = prefix
        .into_iter()
        .chain([
            binary.as_str(),
            "run",
            "--node",
            "node1",
            "--no-local-ips",
            "--log-level",
            "warn",
            "-f",
            files.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            STATUS,
        ])
        .collect();
    ns.spawn(&argv, Some(log)).unwrap()
}

/// The oxlb process under `pid` (itself, or heaptrack's child), by its executable.
fn oxlb_pid(pid: u32) -> Option<u32> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if exe == Path::new(&common::bench_binary()) {
        return Some(pid);
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .find_map(oxlb_pid)
}

fn static_routes(count: usize) -> String {
    (0..count)
        .map(|n| format!("  route {}/32 blackhole;\n", route(n)))
        .collect()
}

/// BIRD with the 10,000 static routes, exported to `sessions` (local, neighbour, local
/// AS, peer AS). `multihop`: the neighbour is an address of the same host (the feeder
/// beside GoBGP), which BIRD does not take as a directly connected neighbour.
fn bird_conf(router_id: &str, sessions: &[(String, String, u32, u32)], multihop: bool) -> String {
    let multihop = if multihop { "  multihop;\n" } else { "" };
    let mut conf = format!(
        "router id {router_id};\nprotocol device {{}}\nprotocol static {{\n  ipv4;\n{}}}\n",
        static_routes(N)
    );
    for (i, (local, neighbour, local_as, peer_as)) in sessions.iter().enumerate() {
        write!(
            conf,
            "protocol bgp s{i} {{\n  local {local} as {local_as};\n  neighbor {neighbour} as {peer_as};\n  \
             strict bind;\n{multihop}  ipv4 {{ import none; export all; next hop self; }};\n}}\n"
        )
        .unwrap();
    }
    conf
}

fn heap_of(ns: &Netns) -> String {
    ns.exec_stdout(&[
        "curl",
        "-s",
        "--max-time",
        "5",
        &format!("http://{STATUS}/api/v1/memory"),
    ])
    .ok()
    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    .and_then(|v| Some((v["in_use_bytes"].as_u64()?, v["blocks"].as_u64()?)))
    // The block count tells the allocator's own overhead apart (glibc: at least 8 bytes
    // a block, and a block at least 32).
    .map_or("-".into(), |(bytes, blocks)| {
        format!("{:.1} MiB in {blocks} blocks", bytes as f64 / 1048576.0)
    })
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: run with `cargo bench -p oxlb --bench footprint` (root)");
        return;
    }
    if !netns_tests_enabled("bench footprint").unwrap() {
        return;
    }
    oxlb_netlab::sweep_stale();
    let scratch =
        Scratch(std::env::temp_dir().join(format!("oxlb-footprint-{}", std::process::id())));
    let dir: PathBuf = scratch.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let router = Netns::new("fpr").unwrap();
    let (oxlb_ns, oxlb_sources) = speaker_ns(&router, "fpo", 1);
    let (bird_ns, bird_sources) = speaker_ns(&router, "fpb", 2);
    let (gobgp_ns, gobgp_sources) = speaker_ns(&router, "fpg", 3);
    gobgp_ns.add_address("n0", "10.0.3.5/24").unwrap();
    let mut conf = String::from(
        "frr defaults traditional\nhostname router\nrouter bgp 64501\n bgp router-id 10.0.1.1\n \
         no bgp ebgp-requires-policy\n",
    );
    for n in oxlb_sources
        .iter()
        .chain(&bird_sources)
        .chain(&gobgp_sources)
    {
        writeln!(conf, " neighbor {n} remote-as 64500\n neighbor {n} passive").unwrap();
    }
    let frr = Frr::start(&router, &conf, &["bgpd"]).unwrap();

    // oxlb run: 3 Services, then 10,000, from a fresh state each time.
    let files = dir.join("files");
    let state = dir.join("state");
    write_oxlb_files(&files, 3);
    let started = Instant::now();
    let heaptrack = std::env::var("OXLB_BENCH_HEAPTRACK").ok();
    let small = start_oxlb(&oxlb_ns, &files, &state, &dir.join("oxlb-3.log"), None);
    wait_received("oxlb, 3 Services", &frr, &oxlb_sources, 3);
    let converge_3 = started.elapsed();
    drop(small);
    wait_received("oxlb stopped", &frr, &oxlb_sources, 0);
    write_oxlb_files(&files, N);
    let started = Instant::now();
    let oxlb = start_oxlb(
        &oxlb_ns,
        &files,
        &state,
        &dir.join("oxlb.log"),
        heaptrack.as_deref(),
    );
    wait_received("oxlb, 10,000 Services", &frr, &oxlb_sources, N);
    let converge_n = started.elapsed();
    if heaptrack.is_some() {
        std::thread::sleep(SETTLE);
        let pid = oxlb_pid(oxlb.id()).expect("oxlb under heaptrack");
        println!(
            "under heaptrack: oxlb RSS {:.1} MiB ({}), live heap {}, converged in {} ms",
            rss_kib(pid) as f64 / 1024.0,
            common::rss_by_mapping(pid),
            heap_of(&oxlb_ns),
            converge_n.as_millis()
        );
        // By its id: only the oxlb this bench started.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        // heaptrack's own processes write the profile out.
        std::thread::sleep(Duration::from_secs(20));
        drop((oxlb, frr));
        return;
    }

    // BIRD: 10,000 static routes to three sessions.
    let sessions: Vec<_> = bird_sources
        .iter()
        .zip(router_addresses(2))
        .map(|(local, router)| (local.clone(), router, 64500, 64501))
        .collect();
    let bird = Bird::start(&bird_ns, &bird_conf("10.0.2.2", &sessions, false)).unwrap();
    wait_received("BIRD", &frr, &bird_sources, N);

    // GoBGP: fed by a BIRD beside it (10.0.3.5, AS 64502), three sessions to FRR; it
    // does not listen (port -1), so the feeder's port 179 is free.
    let feeder = Bird::start(
        &gobgp_ns,
        &bird_conf(
            "10.0.3.5",
            &[("10.0.3.5".into(), "10.0.3.2".into(), 64502, 64500)],
            true,
        ),
    )
    .unwrap();
    let mut gobgp_conf = String::from(
        "[global.config]\n  as = 64500\n  router-id = \"10.0.3.2\"\n  port = -1\n\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"10.0.3.5\"\n    peer-as = 64502\n  \
         [neighbors.transport.config]\n    local-address = \"10.0.3.2\"\n",
    );
    for (router_address, local) in router_addresses(3).iter().zip(&gobgp_sources) {
        write!(
            gobgp_conf,
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{router_address}\"\n    \
             peer-as = 64501\n  [neighbors.transport.config]\n    local-address = \"{local}\"\n"
        )
        .unwrap();
    }
    let gobgp_path = dir.join("gobgpd.toml");
    std::fs::write(&gobgp_path, gobgp_conf).unwrap();
    let gobgpd = gobgp_ns
        .spawn(
            &[
                "gobgpd",
                "-f",
                gobgp_path.to_str().unwrap(),
                "--api-hosts",
                "127.0.0.1:50063",
                "--pprof-disable",
                "-l",
                "warn",
            ],
            Some(&dir.join("gobgpd.log")),
        )
        .unwrap();
    wait_received("GoBGP", &frr, &gobgp_sources, N);

    std::thread::sleep(SETTLE);
    let oxlb_rss = rss_kib(oxlb.id());
    let bird_rss = rss_kib(bird.pid().unwrap());
    let gobgp_rss = rss_kib(gobgpd.id());
    let heap = heap_of(&oxlb_ns);
    let oxlb_mappings = common::rss_by_mapping(oxlb.id());
    // Every mapping, to look at by hand: `OXLB_BENCH_SMAPS=/tmp/run.smaps`.
    if let Ok(path) = std::env::var("OXLB_BENCH_SMAPS") {
        let _ = std::fs::copy(format!("/proc/{}/smaps", oxlb.id()), path);
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "RSS, {N} /32s to 3 BGP sessions each, {} s after FRR held them all:",
        SETTLE.as_secs()
    );
    println!("| speaker | RSS | oxlb / it |");
    println!("|---|---|---|");
    println!(
        "| oxlb run, {N} Services (live heap {heap}) | {:.1} MiB | 1.00 |",
        mib(oxlb_rss)
    );
    println!(
        "| BIRD 2, {N} static routes | {:.1} MiB | {:.2} |",
        mib(bird_rss),
        oxlb_rss as f64 / bird_rss as f64
    );
    println!(
        "| GoBGP, {N} routes (+ the feeder's Adj-RIB-In) | {:.1} MiB | {:.2} |",
        mib(gobgp_rss),
        oxlb_rss as f64 / gobgp_rss as f64
    );
    println!("oxlb RSS by mapping: {oxlb_mappings}");
    // The report's rows are derived when read (issue 22): what a reader costs, after
    // a Prometheus scrape and an `oxlb status` (both derive every row).
    for path in ["/metrics", "/api/v1/status"] {
        oxlb_ns
            .exec_stdout(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                &format!("http://{STATUS}{path}"),
            ])
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "oxlb run RSS after one /metrics scrape and one /api/v1/status read: {:.1} MiB ({:.2}x the figure above)",
        mib(rss_kib(oxlb.id())),
        rss_kib(oxlb.id()) as f64 / oxlb_rss as f64
    );
    println!(
        "oxlb run start -> FRR holds every route from 3 sessions: 3 Services {} ms, {N} Services {} ms: ratio {:.1}",
        converge_3.as_millis(),
        converge_n.as_millis(),
        converge_n.as_secs_f64() / converge_3.as_secs_f64()
    );
    drop((oxlb, gobgpd, feeder, bird, frr));
}

/// The bench's files, removed when it ends, also by a panic.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
