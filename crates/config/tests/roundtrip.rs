//! Legacy → `oxlb convert` → load gives the same Config as loading the legacy file.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::{Path, PathBuf};

use oxlb_config::{Config, build_config, legacy, load_paths, load_str};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn config_of(snapshot: &oxlb_config::Snapshot) -> Config {
    build_config(snapshot).config.unwrap()
}

fn round_trip(path: &Path) {
    let direct = config_of(&load_paths(&[path.to_path_buf()], "metallb-system").unwrap());
    let text = std::fs::read_to_string(path).unwrap();
    let (objects, warnings) = legacy::convert_text(&text, Some(path), "metallb-system").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let yaml = objects.to_yaml().unwrap();
    let converted = config_of(&load_str(&yaml, None, "metallb-system").unwrap());
    assert_eq!(
        direct,
        converted,
        "{}: converted YAML:\n{yaml}",
        path.display()
    );
    assert!(!direct.pools.is_empty());
}

#[test]
fn legacy_configmap_round_trips() {
    round_trip(&root().join("../../examples/legacy-configmap.yaml"));
}

#[test]
fn legacy_helm_values_round_trip() {
    round_trip(&root().join("../../examples/legacy-helm-values.yaml"));
}

#[test]
fn legacy_with_every_feature_round_trips() {
    round_trip(&root().join("tests/fixtures/valid/legacy-full.yaml"));
    round_trip(&root().join("tests/fixtures/valid/legacy-bare.yaml"));
}

#[test]
fn legacy_names_are_normalised_and_references_follow() {
    let path = root().join("tests/fixtures/valid/legacy-full.yaml");
    let config = config_of(&load_paths(&[path], "metallb-system").unwrap());
    assert!(config.pools.contains_key("production-pool"));
    let peer = &config.peers["peer-1"];
    assert_eq!(peer.bfd_profile.as_deref(), Some("full-profile"));
    assert_eq!(peer.port, 1179);
    assert_eq!(peer.hold_time.as_secs(), 120);
    assert_eq!(peer.keepalive_time.as_secs(), 40);
    let l2 = &config.l2_advertisements["l2-l2"];
    assert!(l2.pools.contains("l2"));
    assert!(!config.pools["l2"].auto_assign);
    let bgp: Vec<_> = config.bgp_advertisements.values().collect();
    assert_eq!(bgp.len(), 2);
    assert_eq!(bgp[0].local_pref, Some(100));
    assert!(
        bgp[0]
            .communities
            .contains(&oxlb_config::Community::Standard(0xFFFF_FF02))
    );
    assert_eq!(bgp[1].aggregation_length_v4, 24);
}

#[test]
fn normalised_names_are_kubernetes_names() {
    for raw in [
        "Production_Pool",
        "--x--",
        "",
        "ÄÖÜ",
        &"a".repeat(100),
        "a.b",
    ] {
        let name = legacy::normalize_name(raw);
        assert!(!name.is_empty() && name.len() <= 63, "{raw:?} -> {name:?}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
    }
}
