//! Running commands inside the lab's namespaces by name (the lab outlives the process
//! that built it, so it holds names, not guards).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::Error;

/// Runs `argv` inside namespace `ns`; stdout on success, an error with stderr otherwise.
pub fn run_in(ns: &str, argv: &[&str]) -> Result<String, Error> {
    let output = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Setup(format!("cannot run ip netns exec: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Setup(format!(
            "`{}` in {ns} failed: {}{}",
            argv.join(" "),
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        )))
    }
}

/// Starts a long-running process inside `ns`, in its own process group (so a Ctrl-C
/// meant for `oxlb lab up` does not reach it) with output appended to `log`. It keeps
/// running after this process exits; `lab down` kills it with the namespace.
pub fn spawn_detached(ns: &str, argv: &[&str], log: &Path) -> Result<Child, Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::Setup(format!("cannot open {}: {e}", log.display())))?;
    let err = file
        .try_clone()
        .map_err(|e| Error::Setup(format!("cannot open {}: {e}", log.display())))?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot start {} in {ns}: {e}", argv.join(" "))))
}

/// The last `lines` lines of a log file (for error messages).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every network namespace on the machine.
pub fn namespaces() -> Vec<String> {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}
