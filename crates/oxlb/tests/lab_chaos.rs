//! `oxlb lab chaos` holds oxlb to its invariants (issue 21): a lab of three nodes
//! running the real `oxlb run`, every fault kind injected once (the plan puts each
//! kind first once, in an order drawn from the seed), a steady request load to every
//! Service IP. The run must exit 0: no Service IP moved, never two nodes answering ARP
//! for one IP, every BGP session back after every fault, every Service served at the
//! end. The lab gets its own prefix and state directory, so it cannot collide with
//! another lab on the machine, and is removed on every path.
//!
//! Also the refusals: an unknown fault kind or node lists the valid choices; chaos on
//! a lab that is not up says how to start one.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed seeds CI runs (one lab, one run each; a run covers every kind).
const SEEDS: [u64; 1] = [2];
/// Long enough for the nine kinds at the plan's longest quiet + hold (5 s + 10 s)
/// plus recovery.
const DURATION: &str = "170s";

fn oxlb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(args)
        .output()
        .unwrap()
}

struct LabGuard {
    prefix: String,
    state_dir: PathBuf,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let state = self.state_dir.to_string_lossy().into_owned();
        let _ = oxlb(&[
            "lab",
            "--prefix",
            &self.prefix,
            "--state-dir",
            &state,
            "down",
        ]);
    }
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn chaos_on_a_lab_that_is_not_up_says_how_to_start_one() {
    let dir = format!("/tmp/chaos-notup-{}", std::process::id());
    let output = oxlb(&[
        "lab",
        "--prefix",
        "chnone",
        "--state-dir",
        &dir,
        "chaos",
        "--duration",
        "10s",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no lab is up")
            && stderr.contains(&format!("oxlb lab up --prefix chnone --state-dir {dir}")),
        "{}",
        text(&output)
    );
    assert!(!Path::new(&dir).exists(), "chaos created {dir}");
}

#[test]
fn a_chaos_session_with_every_fault_kind_breaks_no_invariant() {
    if !oxlb_netlab::netns_tests_enabled("lab_chaos").unwrap() {
        return;
    }
    let prefix = format!("chci{}", std::process::id());
    let guard = LabGuard {
        prefix: prefix.clone(),
        state_dir: PathBuf::from(format!("/tmp/{prefix}-lab")),
    };
    let state = guard.state_dir.to_string_lossy().into_owned();
    let out_dir = format!("/tmp/{prefix}-out");
    let lab = |args: &[&str]| {
        let mut all = vec![
            "lab",
            "--prefix",
            prefix.as_str(),
            "--state-dir",
            state.as_str(),
        ];
        all.extend_from_slice(args);
        oxlb(&all)
    };
    let up = lab(&["up"]);
    assert!(up.status.success(), "{}", text(&up));

    // Refusals first (they must not touch the lab).
    let bad_kind = lab(&["chaos", "--faults", "kill,meteor", "--duration", "10s"]);
    let stderr = String::from_utf8_lossy(&bad_kind.stderr);
    assert!(!bad_kind.status.success());
    assert!(
        stderr.contains("\"meteor\"") && stderr.contains("link-flap") && stderr.contains("lossy"),
        "{}",
        text(&bad_kind)
    );
    let bad_node = lab(&["chaos", "--nodes", "node7", "--duration", "10s"]);
    let stderr = String::from_utf8_lossy(&bad_node.stderr);
    assert!(!bad_node.status.success());
    assert!(
        stderr.contains("node7") && stderr.contains("node1, node2, node3"),
        "{}",
        text(&bad_node)
    );

    for seed in SEEDS {
        let seed_arg = seed.to_string();
        let run = lab(&[
            "chaos",
            "--seed",
            &seed_arg,
            "--duration",
            DURATION,
            "--faults",
            "all",
            "--out",
            &out_dir,
        ]);
        let report = text(&run);
        println!("{report}");
        assert!(run.status.success(), "seed {seed}: {report}");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains(&format!("chaos seed {seed}")), "{report}");
        assert!(stdout.contains("invariants: all held"), "{report}");
        // Every kind ran, and the relay's ping proved loss and delay.
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{out_dir}/chaos-{seed}.json")).unwrap(),
        )
        .unwrap();
        let kinds: std::collections::BTreeSet<&str> = json["faults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        for kind in [
            "kill",
            "term",
            "link-flap",
            "partition",
            "lossy",
            "bgpd-restart",
            "router-reload",
            "pool-edit",
            "service-change",
        ] {
            assert!(
                kinds.contains(kind),
                "seed {seed}: {kind} did not run: {report}"
            );
        }
        assert!(json["requests_total"].as_u64().unwrap() > 1000, "{report}");
        assert!(json["score"]["violations"].as_array().unwrap().is_empty());
        let svg = std::fs::read_to_string(format!("{out_dir}/chaos-{seed}.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("default/web-bgp"));
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    drop(guard);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&format!("{prefix}-")));
}
