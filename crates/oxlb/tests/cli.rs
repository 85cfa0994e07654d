//! The binary end to end: exit codes, summary, JSON, convert, crds.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn oxlb(args: &[&str]) -> (i32, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .current_dir(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_every_example() {
    for example in [
        "bgp-basic",
        "l2-basic",
        "legacy-configmap",
        "legacy-helm-values",
    ] {
        let (code, out, err) = oxlb(&["check", "-f", &format!("examples/{example}.yaml")]);
        assert_eq!(code, 0, "{example}: {out}{err}");
        assert!(out.contains("The configuration is valid"), "{out}");
    }
}

#[test]
fn check_summary_names_pools_peers_and_attributes() {
    let (_, out, _) = oxlb(&["check", "-f", "examples/bgp-basic.yaml"]);
    assert!(
        out.contains("first-pool: 192.168.10.0/24, fc00:f853:ccd:e799::/124 (256 IPv4 + 16 IPv6)"),
        "{out}"
    );
    assert!(out.contains("BGP by external to router"), "{out}");
    assert!(out.contains("communities 65535:65282"), "{out}");
    assert!(!out.contains("Warnings"), "{out}");
    assert!(out.contains("AS 64500 -> AS 64501 (eBGP)"), "{out}");
}

#[test]
fn check_rejects_with_every_error_and_exit_1() {
    let (code, out, _) = oxlb(&[
        "check",
        "-f",
        "crates/config/tests/fixtures/invalid/bfd-out-of-bounds.yaml",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("INVALID: 5 error(s)"), "{out}");
    assert!(out.contains("bfd-out-of-bounds.yaml"), "{out}");
    assert!(
        out.contains("BFDProfile \"b\" spec.receiveInterval = \"5\""),
        "{out}"
    );
}

#[test]
fn check_json_is_machine_readable() {
    let (code, out, _) = oxlb(&[
        "check",
        "-o",
        "json",
        "-f",
        "crates/config/tests/fixtures/invalid/overlap-across-pools.yaml",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["code"], "overlap");
    assert_eq!(v["errors"][0]["name"], "b");
    assert_eq!(v["errors"][0]["field"], "spec.addresses[0]");
    let (code, out, _) = oxlb(&["check", "-o", "json", "-f", "examples/l2-basic.yaml"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["pools"][0]["ipv4_addresses"], 11);
}

#[test]
fn namespace_flag_selects_the_configuration() {
    // The example lives in metallb-system: from another namespace nothing is configured.
    let (code, out, _) = oxlb(&["check", "-n", "lb", "-f", "examples/bgp-basic.yaml"]);
    assert_eq!(code, 0);
    assert!(out.contains("Address pools (0)"), "{out}");
    assert!(
        out.contains("ignored: oxlb reads its configuration only from namespace \"lb\""),
        "{out}"
    );
}

#[test]
fn convert_prints_resources() {
    let (code, out, err) = oxlb(&["convert", "-f", "examples/legacy-helm-values.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kind: IPAddressPool") && out.contains("kind: L2Advertisement"),
        "{out}"
    );
    let (code, _, err) = oxlb(&["convert", "-f", "examples/bgp-basic.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no legacy MetalLB configuration found"),
        "{err}"
    );
}

#[test]
fn crds_match_the_committed_file() {
    let (code, out, _) = oxlb(&["crds"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds.yaml"),
    )
    .unwrap();
    assert_eq!(
        out, committed,
        "run: cargo run -p oxlb -- crds > deploy/crds.yaml"
    );
    for kind in [
        "IPAddressPool",
        "L2Advertisement",
        "BGPAdvertisement",
        "BGPPeer",
        "BFDProfile",
        "Community",
        "ServiceL2Status",
        "ServiceBGPStatus",
        "ConfigurationState",
    ] {
        assert!(out.contains(&format!("kind: {kind}\n")), "{kind}");
    }
    assert!(out.contains("name: v1beta1") && out.contains("name: v1beta2"));
    assert!(out.contains("deprecationWarning: v1beta1 is deprecated, please use v1beta2"));
}

#[test]
fn check_shows_what_the_cluster_would_keep_and_leave_out() {
    let (code, out, _) = oxlb(&[
        "check",
        "-f",
        "crates/config/tests/fixtures/invalid/overlap-across-pools.yaml",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("INVALID: 1 error(s)"), "{out}");
    assert!(
        out.contains("The cluster would apply everything else"),
        "{out}"
    );
    assert!(out.contains("IPAddressPool \"b\": left out"), "{out}");
    assert!(out.contains("In force (namespace metallb-system"), "{out}");
    assert!(out.contains("Address pools (1):"), "{out}");
}

#[test]
fn check_warns_of_an_invalid_health_check_annotation() {
    let dir = std::env::temp_dir().join(format!("oxlb-cli-hc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("svc.yaml");
    std::fs::write(
        &file,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  namespace: metallb-system\n\
         spec:\n  addresses:\n    - 192.168.10.0/24\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  namespace: default\n  annotations:\n\
         \x20   oxlb.io/health-check: https://127.0.0.1:6443/livez\n\
         \x20   oxlb.io/health-check-interval: 50ms\n\
         spec:\n  type: LoadBalancer\n  ports:\n    - port: 443\n",
    )
    .unwrap();
    let (code, out, err) = oxlb(&["check", "-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "a warning, not an error: {out}{err}");
    assert!(out.contains("default/api"), "{out}");
    assert!(out.contains("oxlb.io/health-check-interval"), "{out}");
    assert!(out.contains("as if it had no health check"), "{out}");
}
