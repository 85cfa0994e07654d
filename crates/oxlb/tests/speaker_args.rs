//! `oxlb speaker` accepts exactly what the DaemonSet in deploy/oxlb.yaml passes (args
//! and the NODE_NAME environment variable). Without a cluster the binary gets past
//! argument parsing (exit 2 would be a usage error) and stops at the missing client.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The speaker container's `args:` list, with the downward-API variables expanded as
/// the kubelet does.
fn daemonset_args() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy/oxlb.yaml")).unwrap();
    let daemonset = text
        .split("\n---")
        .find(|doc| doc.contains("\nkind: DaemonSet"))
        .expect("a DaemonSet in deploy/oxlb.yaml");
    let mut lines = daemonset.lines().skip_while(|l| l.trim() != "args:");
    lines.next().expect("args: in the speaker container");
    lines
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|a| {
            a.replace("$(POD_NAMESPACE)", "metallb-system")
                .replace("$(NODE_NAME)", "node-1")
        })
        .collect()
}

fn run(args: &[String], node_name: Option<&str>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oxlb"));
    command
        .args(args)
        // No cluster: no in-cluster variables, no kubeconfig anywhere.
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        // Not the default 0.0.0.0:7472 of a real node.
        .arg("--metrics-address=127.0.0.1:0");
    command.env_remove("NODE_NAME");
    if let Some(node) = node_name {
        command.env("NODE_NAME", node);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn daemonset_args_parse() {
    let args = daemonset_args();
    assert_eq!(
        args.first().map(String::as_str),
        Some("speaker"),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a.starts_with("--node-name=")),
        "{args:?}"
    );
    let (code, err) = run(&args, None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no Kubernetes client"), "{err}");
}

#[test]
fn node_name_defaults_to_the_environment() {
    let args = vec!["speaker".to_string()];
    let (code, err) = run(&args, Some("node-1"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no Kubernetes client"), "{err}");
    let (code, err) = run(&args, None);
    assert_eq!(code, 2, "a usage error without a node name: {err}");
    assert!(err.contains("--node-name"), "{err}");
}

/// The environment the DaemonSet gives the speaker (`OXLB_*` names) is what the
/// flags read, and each such flag says so in `--help`.
#[test]
fn daemonset_environment_is_read_by_the_flags() {
    let text = std::fs::read_to_string(root().join("deploy/oxlb.yaml")).unwrap();
    let daemonset = text
        .split("\n---")
        .find(|doc| doc.contains("\nkind: DaemonSet"))
        .unwrap();
    let names: Vec<&str> = daemonset
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: OXLB_"))
        .collect();
    assert!(
        names.contains(&"MEMBERLIST_BIND_ADDR") && names.contains(&"MEMBERLIST_KEY_PATH"),
        "{names:?}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["speaker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for name in &names {
        assert!(
            help.contains(&format!("[env: OXLB_{name}")),
            "OXLB_{name}: {help}"
        );
    }
    for flag in ["--ml-bindaddr", "--ml-bindport", "--ml-secret-key-path"] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    // Values as the kubelet fills them in parse; a bad address is a usage error.
    let mut command = Command::new(env!("CARGO_BIN_EXE_oxlb"));
    command
        .args([
            "speaker",
            "--node-name=node-1",
            "--metrics-address=127.0.0.1:0",
        ])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env("OXLB_MEMBERLIST_BIND_ADDR", "10.0.0.7")
        .env("OXLB_MEMBERLIST_BIND_PORT", "7946")
        .env("OXLB_MEMBERLIST_KEY_PATH", "/etc/oxlb/memberlist/secretkey");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = command
        .env("OXLB_MEMBERLIST_BIND_ADDR", "not-an-ip")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Logs written to a pipe (as `kubectl logs` reads them) carry no ANSI escape codes;
/// `--log-format json` gives one JSON object per line; the level comes from
/// `--log-level` or `OXLB_LOG_LEVEL`.
#[test]
fn logs_to_a_pipe_are_plain_text_or_json_at_the_chosen_level() {
    let stderr = |extra: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oxlb"));
        command
            .args([
                "speaker",
                "--node-name=node-1",
                "--metrics-address=127.0.0.1:0",
            ])
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("OXLB_LOG_LEVEL")
            .env_remove("OXLB_LOG_FORMAT")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env("HOME", "/nonexistent");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = stderr(&[], &[]);
    assert!(text.contains("oxlb speaker starting"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a pipe: {text:?}");
    let json = stderr(&["--log-format=json"], &[]);
    let line = json
        .lines()
        .find(|l| l.contains("oxlb speaker starting"))
        .unwrap_or_else(|| panic!("{json}"));
    let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(parsed["level"], "INFO", "{line}");
    assert_eq!(parsed["fields"]["node"], "node-1", "{line}");
    let quiet = stderr(&[], &[("OXLB_LOG_LEVEL", "warn")]);
    assert!(!quiet.contains("oxlb speaker starting"), "{quiet}");
    let quiet = stderr(&["--log-level=warn"], &[]);
    assert!(!quiet.contains("oxlb speaker starting"), "{quiet}");
    let loud = stderr(&["--log-level=warn"], &[("RUST_LOG", "info")]);
    assert!(loud.contains("oxlb speaker starting"), "{loud}");
}

/// The status API is unauthenticated: a non-loopback address for it is a usage error,
/// and `--help` says what each listener exposes.
#[test]
fn status_api_only_on_loopback_and_help_says_what_each_endpoint_exposes() {
    for command in ["speaker", "controller"] {
        let out = Command::new(env!("CARGO_BIN_EXE_oxlb"))
            .args([command, "--status-address=0.0.0.0:7474"])
            .env("NODE_NAME", "n")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("loopback"), "{err}");
        let help = Command::new(env!("CARGO_BIN_EXE_oxlb"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        let status = if command == "speaker" {
            "127.0.0.1:7474"
        } else {
            "127.0.0.1:7475"
        };
        for endpoint in ["/metrics", "/healthz", "/readyz", "/api/v1/status", status] {
            assert!(
                help.contains(endpoint),
                "{command} --help lacks {endpoint}: {help}"
            );
        }
    }
    let help = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for endpoint in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/status",
        "loopback",
    ] {
        assert!(
            help.contains(endpoint),
            "run --help lacks {endpoint}: {help}"
        );
    }
}
