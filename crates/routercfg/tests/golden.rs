//! Every flavour's output for a config using every feature, against files in
//! tests/golden/. After an intended change: `UPDATE_GOLDEN=1 cargo test -p oxlb-routercfg
//! --test golden`, then review the diff.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use oxlb_routercfg::{Flavor, generate};

fn check(flavor: Flavor, name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p oxlb-routercfg --test golden",
            path.display()
        )
    });
    assert!(
        expected == text,
        "{} output differs from {} (UPDATE_GOLDEN=1 to accept):\n{text}",
        flavor.name(),
        path.display()
    );
}

#[test]
fn every_flavour_matches_its_golden_file() {
    let config = common::full_config();
    let nodes = common::full_nodes();
    for flavor in Flavor::ALL {
        let text = generate(flavor, &config, &nodes, None).unwrap();
        check(flavor, &format!("full.{}", flavor.name()), &text);
    }
}

#[test]
fn simple_ebgp_matches_its_golden_files() {
    let config = common::ebgp_config("172.31.0.1", &["172.31.100.0/24"]);
    let nodes = vec![
        ("node1".to_string(), common::ip("172.31.0.11")),
        ("node2".to_string(), common::ip("172.31.0.12")),
        ("node3".to_string(), common::ip("172.31.0.13")),
    ];
    for flavor in Flavor::ALL {
        let text = generate(flavor, &config, &nodes, None).unwrap();
        check(flavor, &format!("simple.{}", flavor.name()), &text);
    }
}

#[test]
fn bfd_echo_profile_matches_its_golden_files() {
    let mut config = common::ebgp_config("172.31.0.1", &["172.31.100.0/24"]);
    let mut echo = common::bfd("echo");
    echo.echo_mode = true;
    echo.echo_interval_ms = 100;
    config.bfd_profiles.insert("echo".into(), echo);
    if let Some(peer) = config.peers.get_mut("router") {
        peer.bfd_profile = Some("echo".into());
    }
    let nodes = vec![("node1".to_string(), common::ip("172.31.0.11"))];
    for flavor in [oxlb_routercfg::Flavor::Frr, oxlb_routercfg::Flavor::Bird] {
        let text = generate(flavor, &config, &nodes, None).unwrap();
        check(flavor, &format!("bfd-echo.{}", flavor.name()), &text);
    }
}
