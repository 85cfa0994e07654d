//! Allocation cost against a straightforward lowest-free linear-scan allocator measured
//! in the same run (`cargo bench -p oxlb-allocator`).
//!
//! 1. Fill a /16 with 65,536 services, then release 10,000 at random and re-allocate
//!    10,000: oxlb vs the scan; prints both times and the ratio.
//! 2. Per-operation time for /20, /16 and /12 pools side by side (fill, and release +
//!    re-allocate), to show the cost per allocation grows like log n, not n.
//!
//! Times are on-CPU time of the benchmark thread (`/proc/thread-self/schedstat`), so a
//! machine shared with other jobs does not inflate them; wall time is printed too.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use oxlb_allocator::{Allocator, Family, Scope, Usage, Want};
use oxlb_config::{AddressRange, Pool};

/// The baseline: one slot per address, allocation scans from the start for the first
/// free one (what MetalLB's allocator does, minus its per-address map lookups, so the
/// ratio is if anything generous to the baseline).
struct LinearScan {
    base: u32,
    owner: Vec<Option<u32>>,
    by_service: HashMap<String, u32>,
}

impl LinearScan {
    fn new(base: u32, size: u32) -> LinearScan {
        LinearScan {
            base,
            owner: vec![None; size as usize],
            by_service: HashMap::new(),
        }
    }

    fn allocate(&mut self, service: &str, id: u32) -> Option<Ipv4Addr> {
        let slot = self.owner.iter().position(Option::is_none)?;
        self.owner[slot] = Some(id);
        self.by_service.insert(service.to_string(), slot as u32);
        Some(Ipv4Addr::from(self.base + slot as u32))
    }

    fn release(&mut self, service: &str) {
        if let Some(slot) = self.by_service.remove(service) {
            self.owner[slot as usize] = None;
        }
    }
}

fn pool_of(prefix_len: u8) -> BTreeMap<String, Pool> {
    let net: ipnet::IpNet = format!("10.0.0.0/{prefix_len}").parse().unwrap();
    let pool = Pool {
        name: "p".to_string(),
        ranges: vec![AddressRange::from_cidr(net)],
        addresses_as_written: vec![net.to_string()],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
        labels: BTreeMap::new(),
    };
    [("p".to_string(), pool)].into()
}

/// Deterministic xorshift, so every run churns the same services.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `count` distinct indices below `n` (partial Fisher-Yates).
    fn pick(&mut self, n: usize, count: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = i + (self.next() as usize) % (n - i);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    }
}

struct Timing {
    fill: Duration,
    churn: Duration,
    churn_ops: usize,
    fill_wall: Duration,
    churn_wall: Duration,
}

/// A stopwatch over this thread's on-CPU time (Linux schedstat, nanoseconds), falling
/// back to wall time where that file does not exist.
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_ns(),
        }
    }

    /// (on-CPU, wall). The kernel updates the on-CPU sum at scheduler ticks, so it is
    /// only trusted for intervals well above a tick; short ones use wall time.
    fn stop(&self) -> (Duration, Duration) {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, cpu_ns()) {
            (Some(a), Some(b)) if wall >= Duration::from_millis(50) => {
                Duration::from_nanos(b.saturating_sub(a))
            }
            _ => wall,
        };
        (cpu, wall)
    }
}

fn run_oxlb(prefix_len: u8, names: &[String], churn: usize) -> Timing {
    let pools = pool_of(prefix_len);
    let mut allocator = Allocator::new(&pools);
    let usage = Usage::default();
    let scope = Scope::plain("bench");
    let want = Want::Single(Family::V4);
    let clock = Clock::start();
    for name in names {
        black_box(allocator.allocate(name, want, &usage, &scope).unwrap());
    }
    let (fill, fill_wall) = clock.stop();
    let picks = Rng(0x9e37_79b9_7f4a_7c15).pick(names.len(), churn);
    let clock = Clock::start();
    for &i in &picks {
        allocator.unassign(&names[i]);
    }
    for &i in &picks {
        black_box(allocator.allocate(&names[i], want, &usage, &scope).unwrap());
    }
    let (churn_time, churn_wall) = clock.stop();
    assert_eq!(
        allocator.counters("p").unwrap().assigned_ipv4,
        names.len() as u128
    );
    Timing {
        fill,
        churn: churn_time,
        churn_ops: 2 * churn,
        fill_wall,
        churn_wall,
    }
}

fn run_scan(prefix_len: u8, names: &[String], churn: usize, fill_by_scan: bool) -> Timing {
    let size = 1u32 << (32 - prefix_len);
    let mut scan = LinearScan::new(u32::from(Ipv4Addr::new(10, 0, 0, 0)), size);
    let clock = Clock::start();
    if fill_by_scan {
        for (i, name) in names.iter().enumerate() {
            black_box(scan.allocate(name, i as u32).unwrap());
        }
    } else {
        // Too slow to fill by scanning (n^2 / 2 steps): set the state up directly and
        // measure only the churn.
        for (i, name) in names.iter().enumerate() {
            scan.owner[i] = Some(i as u32);
            scan.by_service.insert(name.clone(), i as u32);
        }
    }
    let (fill, fill_wall) = clock.stop();
    let picks = Rng(0x9e37_79b9_7f4a_7c15).pick(names.len(), churn);
    let clock = Clock::start();
    for &i in &picks {
        scan.release(&names[i]);
    }
    for &i in &picks {
        black_box(scan.allocate(&names[i], i as u32).unwrap());
    }
    let (churn_time, churn_wall) = clock.stop();
    Timing {
        fill,
        churn: churn_time,
        churn_ops: 2 * churn,
        fill_wall,
        churn_wall,
    }
}

fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_secs_f64() * 1e9 / ops as f64
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bench/service-{i}")).collect()
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench` (and unoptimized):
    // a quick smoke run of both allocators instead of the measurement.
    if !std::env::args().any(|a| a == "--bench") {
        let list = names(1024);
        let ours = run_oxlb(22, &list, 100);
        let scan = run_scan(22, &list, 100, true);
        println!(
            "smoke run ok ({} + {} ops); use `cargo bench` to measure",
            ours.churn_ops, scan.churn_ops
        );
        return;
    }
    // Warm up allocator code paths and the page cache for the strings.
    let _ = run_oxlb(20, &names(4096), 1000);

    println!("== /16 pool: fill 65,536 services, then release 10,000 at random and re-allocate");
    println!("   (on-CPU time of the benchmark thread)");
    let n16 = names(65_536);
    let ours = run_oxlb(16, &n16, 10_000);
    let scan = run_scan(16, &n16, 10_000, true);
    println!(
        "fill      oxlb {:>10.2} ms   linear scan {:>10.2} ms   ratio scan/oxlb {:>8.1}x",
        ours.fill.as_secs_f64() * 1e3,
        scan.fill.as_secs_f64() * 1e3,
        scan.fill.as_secs_f64() / ours.fill.as_secs_f64()
    );
    println!(
        "churn     oxlb {:>10.2} ms   linear scan {:>10.2} ms   ratio scan/oxlb {:>8.1}x",
        ours.churn.as_secs_f64() * 1e3,
        scan.churn.as_secs_f64() * 1e3,
        scan.churn.as_secs_f64() / ours.churn.as_secs_f64()
    );
    let total_ours = ours.fill + ours.churn;
    let total_scan = scan.fill + scan.churn;
    println!(
        "total     oxlb {:>10.2} ms   linear scan {:>10.2} ms   ratio scan/oxlb {:>8.1}x",
        total_ours.as_secs_f64() * 1e3,
        total_scan.as_secs_f64() * 1e3,
        total_scan.as_secs_f64() / total_ours.as_secs_f64()
    );
    println!(
        "wall      oxlb fill {:.2} ms, churn {:.2} ms; linear scan fill {:.2} ms, churn {:.2} ms",
        ours.fill_wall.as_secs_f64() * 1e3,
        ours.churn_wall.as_secs_f64() * 1e3,
        scan.fill_wall.as_secs_f64() * 1e3,
        scan.churn_wall.as_secs_f64() * 1e3,
    );
    println!(
        "target: /16 fill under 100 ms (on-CPU) -> {}",
        if ours.fill < Duration::from_millis(100) {
            "met"
        } else {
            "NOT met"
        }
    );

    println!();
    println!(
        "== per operation: pool filled completely, then min(10,000, n/2) released + re-allocated"
    );
    println!(
        "{:>5} {:>10} {:>16} {:>16} {:>18} {:>18}",
        "pool",
        "services",
        "oxlb fill ns/op",
        "oxlb churn ns/op",
        "scan churn ns/op",
        "scan/oxlb (churn)"
    );
    for prefix_len in [20u8, 16, 12] {
        let n = 1usize << (32 - prefix_len);
        let list = if n == n16.len() {
            n16.clone()
        } else {
            names(n)
        };
        let churn = 10_000.min(n / 2);
        // Small pools are repeated so every figure covers a measurable interval.
        let reps = (65_536 / n).max(1);
        let (mut fill, mut ours_churn, mut scan_churn) = (0.0, 0.0, 0.0);
        for _ in 0..reps {
            let ours = run_oxlb(prefix_len, &list, churn);
            let scan = run_scan(prefix_len, &list, churn, false);
            fill += per_op(ours.fill, n) / reps as f64;
            ours_churn += per_op(ours.churn, ours.churn_ops) / reps as f64;
            scan_churn += per_op(scan.churn, scan.churn_ops) / reps as f64;
        }
        println!(
            "{:>5} {:>10} {:>16.0} {:>16.0} {:>18.0} {:>17.1}x",
            format!("/{prefix_len}"),
            n,
            fill,
            ours_churn,
            scan_churn,
            scan_churn / ours_churn
        );
    }
}
