//! A workstation and three nodes on one bridge, each in its own namespace, with the
//! probe binary started in the nodes. Everything is removed when the Lab drops.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use oxlb_netlab::{Guarded, Netns, veth, wait_until};

pub const V4: &str = "10.9.0.200";
pub const V6: &str = "fd00:9::200";

pub struct Lab {
    pub nodes: Vec<Netns>,
    pub workstation: Netns,
    pub switch: Netns,
    pub dir: PathBuf,
    pub probes: Vec<Option<Guarded>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.probes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        oxlb_netlab::sweep_stale();
        let switch = Netns::new(&format!("{tag}sw")).unwrap();
        switch.add_bridge("br0").unwrap();
        let workstation = Netns::new(&format!("{tag}ws")).unwrap();
        let attach = |ns: &Netns, port: &str| {
            veth(&switch, port, ns, "eth1").unwrap();
            switch.attach_to_bridge(port, "br0").unwrap();
        };
        attach(&workstation, "p0");
        workstation.add_address("eth1", "10.9.0.100/24").unwrap();
        workstation.add_address("eth1", "fd00:9::100/64").unwrap();
        let mut nodes = Vec::new();
        for i in 1..=3 {
            let ns = Netns::new(&format!("{tag}n{i}")).unwrap();
            attach(&ns, &format!("p{i}"));
            ns.add_address("eth1", &format!("10.9.0.{i}/24")).unwrap();
            ns.add_address("eth1", &format!("fd00:9::{i}/64")).unwrap();
            nodes.push(ns);
        }
        let dir = std::env::temp_dir().join(format!("oxlb-l2-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "c2VjcmV0LWZvci10ZXN0cw==").unwrap();
        Lab {
            nodes,
            workstation,
            switch,
            dir,
            probes: vec![None, None, None],
        }
    }

    pub fn mac(&self, node: usize) -> String {
        self.nodes[node]
            .exec_stdout(&["cat", "/sys/class/net/eth1/address"])
            .unwrap()
            .trim()
            .to_string()
    }

    /// Starts the probe on node `i` (0-based) with extra arguments.
    pub fn start_probe(&mut self, i: usize, extra: &[&str]) {
        let name = format!("node{}", i + 1);
        let log = self.dir.join(format!("{name}.log"));
        let mut argv = vec![env!("CARGO_BIN_EXE_oxlb-l2-probe"), "--name", &name];
        argv.extend_from_slice(extra);
        self.probes[i] = Some(self.nodes[i].spawn(&argv, Some(&log)).unwrap());
    }

    /// Starts the probe with membership on node `i`, electing over V4 and V6.
    pub fn start_member(&mut self, i: usize) {
        let bind = format!("10.9.0.{}:7946", i + 1);
        let secret = self.dir.join("secret").display().to_string();
        self.start_probe(
            i,
            &[
                "--bind",
                &bind,
                "--members",
                "10.9.0.1:7946,10.9.0.2:7946,10.9.0.3:7946",
                "--secret-file",
                &secret,
                "--ips",
                &format!("{V4},{V6}"),
            ],
        );
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{}.log", i + 1))).unwrap_or_default()
    }

    /// The MACs that answer an ARP request for `ip` from the workstation (two
    /// requests, every reply collected).
    pub fn arping(&self, ip: &str) -> BTreeSet<String> {
        let out = self
            .workstation
            .command("arping")
            .args(["-r", "-c", "2", "-w", "1", "-i", "eth1", ip])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The MACs that answer a Neighbor Solicitation for `ip` from the workstation.
    pub fn ndisc6(&self, ip: &str) -> BTreeSet<String> {
        let out = self
            .workstation
            .command("ndisc6")
            .args(["-m", "-n", "-r", "1", "-w", "1000", ip, "eth1"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split("Target link-layer address:").nth(1))
            .map(|m| m.trim().to_lowercase())
            .collect()
    }

    /// The workstation's neighbour entry for `ip`: its MAC, if it has one.
    pub fn neighbour(&self, ip: &str) -> Option<String> {
        let out = self
            .workstation
            .exec_stdout(&["ip", "neigh", "show", ip, "dev", "eth1"])
            .ok()?;
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_lowercase)
    }

    /// Waits until `ip` is answered by exactly one MAC, twice in a row; returns it.
    pub fn single_owner(&self, ip: &str, timeout: Duration) -> Option<String> {
        let mut last = None;
        wait_until(timeout, Duration::from_millis(100), || {
            let macs = self.arping(ip);
            let seen = (macs.len() == 1).then(|| macs.into_iter().next()).flatten();
            if seen.is_some() && seen == last {
                return seen;
            }
            last = seen;
            None
        })
    }

    pub fn node_of(&self, mac: &str) -> Option<usize> {
        (0..3).find(|i| self.mac(*i) == mac)
    }

    /// When each node's responder answered for `ip`, from the probes' logs: every
    /// "TIME owned IPS" line is written right after the responder's set changed, with
    /// the wall clock all the namespaces share. `(node, from, until)`, `until` infinite
    /// while it still answers. Valid for probes that were never killed.
    pub fn answering_intervals(&self, ip: &str) -> Vec<(usize, f64, f64)> {
        let mut intervals = Vec::new();
        for node in 0..3 {
            let mut since = None;
            for line in self.log(node).lines() {
                let mut words = line.split_whitespace();
                let (Some(time), Some("owned")) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(time) = time.parse::<f64>() else {
                    continue;
                };
                let owns = words
                    .next()
                    .is_some_and(|ips| ips.split(',').any(|i| i == ip));
                match (owns, since) {
                    (true, None) => since = Some(time),
                    (false, Some(from)) => {
                        intervals.push((node, from, time));
                        since = None;
                    }
                    _ => {}
                }
            }
            if let Some(from) = since {
                intervals.push((node, from, f64::INFINITY));
            }
        }
        intervals
    }

    /// Asserts that no two nodes ever answered for `ip` at the same time (by the
    /// probes' logs, to the microsecond: far finer than sampling with arping) and
    /// returns the shortest hand-over gap between one node letting go and the next
    /// one answering, in milliseconds.
    pub fn assert_never_two_answerers(&self, ip: &str) -> f64 {
        let mut intervals = self.answering_intervals(ip);
        intervals.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut shortest = f64::INFINITY;
        for pair in intervals.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                b.1 >= a.2,
                "node{} answered for {ip} from {:.6} while node{} still did (until {:.6}): \
                 {intervals:?}",
                b.0 + 1,
                b.1,
                a.0 + 1,
                a.2
            );
            shortest = shortest.min((b.1 - a.2) * 1000.0);
        }
        shortest
    }
}

pub fn enabled(test: &str) -> bool {
    oxlb_netlab::netns_tests_enabled(test).unwrap()
}
