//! `lab down`: removes everything the lab made, found by name, so it also works after a
//! crash, with a damaged or missing state file, or twice.

use std::path::Path;

use oxlb_netlab::Netns;

use crate::exec::namespaces;
use crate::plan::Names;
use crate::state::State;

/// Removes every namespace `<prefix>-*` (killing every process inside), the lab router's
/// FRR instance directories and the state directory. Returns what was removed.
pub fn down(prefix: &str, state_dir: &Path) -> std::io::Result<Vec<String>> {
    let names = Names {
        prefix: prefix.to_string(),
    };
    let mut removed = Vec::new();
    // Processes whose namespace is already gone (a crash in the middle of an earlier
    // `down`) are found through the state file; a recorded pid is killed only if it
    // still runs a lab command line, never a recycled pid.
    if let Ok(state) = State::read(state_dir) {
        for node in &state.nodes {
            for pid in &node.pids {
                if is_lab_process(*pid, state_dir, &node.name) {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    removed.push(format!("process {pid} ({})", node.name));
                }
            }
        }
    }
    for ns in namespaces().into_iter().filter(|n| names.owns(n)) {
        // Dropping the adopted guard kills every process inside and deletes it.
        drop(Netns::adopt(&ns));
        removed.push(format!("namespace {ns}"));
    }
    for dir in [
        format!("/etc/frr/{}", names.router()),
        format!("/var/run/frr/{}", names.router()),
    ] {
        if Path::new(&dir).exists() {
            std::fs::remove_dir_all(&dir)?;
            removed.push(dir);
        }
    }
    if state_dir.exists() {
        std::fs::remove_dir_all(state_dir)?;
        removed.push(state_dir.display().to_string());
    }
    Ok(removed)
}

fn is_lab_process(pid: u32, state_dir: &Path, node: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let state = state_dir.to_string_lossy();
    let runs_oxlb = args.iter().any(|a| a.starts_with(state.as_ref()));
    let runs_backend = args
        .windows(2)
        .any(|w| w[0] == "lab-backend" && w[1] == node);
    runs_oxlb || runs_backend
}
