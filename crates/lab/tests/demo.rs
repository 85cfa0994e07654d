//! The whole demo sequence, with a fake `oxlb` whose `run` is a BIRD speaker announcing
//! the default BGP service IP from its node (the IP on the node's loopback). This checks
//! the lab's part of the demo (ECMP on the router, curl through it, withdrawal and
//! traffic still flowing after `fail`, clean removal); the Layer 2 checks need the real
//! `oxlb run` and are switched off here.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use oxlb_config::Config;
use oxlb_lab::{DemoOptions, LabOptions, RouterKind, demo, down};
use oxlb_netlab::netns_tests_enabled;

const FAKE_OXLB: &str = r#"#!/bin/sh
# run --node NODE --state-dir DIR --listen ADDR -f CONFIG... (flags read by name, not
# position: the lab may add or reorder them)
case "$1" in
run)
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --node) node="$2"; shift 2 ;;
      --state-dir) dir="$2"; shift 2 ;;
      *) shift ;;
    esac
  done
  i="${node#node}"
  me="172.31.0.$((10 + i))"
  ip address add 172.31.100.10/32 dev lo
  cat > "$dir/bird.conf" <<EOF
router id $me;
protocol device {}
protocol static oxlb_services { ipv4; route 172.31.100.10/32 blackhole; }
protocol bgp oxlb_router {
  local $me as 64500;
  neighbor 172.31.0.1 as 64501;
  hold time 9;
  keepalive time 3;
  connect retry time 2;
  error wait time 1, 5;
  ipv4 { import none; export where proto = "oxlb_services"; };
}
EOF
  exec bird -f -c "$dir/bird.conf" -s "$dir/bird.ctl"
  ;;
status) echo "fake oxlb status (a BIRD speaker)" ;;
esac
"#;

fn config_from_default_yaml() -> Config {
    // The same model as tests/lab.rs builds; here only the peer and the BGP pool matter.
    let mut config = Config::default();
    let pool = oxlb_config::Pool {
        name: "lab-bgp".into(),
        ranges: vec![oxlb_config::AddressRange::from_cidr(
            "172.31.100.0/24".parse().unwrap(),
        )],
        addresses_as_written: vec![],
        auto_assign: true,
        avoid_buggy_ips: true,
        service_allocation: None,
        labels: Default::default(),
    };
    config.pools.insert("lab-bgp".into(), pool);
    config.peers.insert(
        "lab-router".into(),
        oxlb_config::Peer {
            name: "lab-router".into(),
            my_asn: 64500,
            peer_asn: oxlb_config::PeerAsn::Fixed(64501),
            address: oxlb_config::PeerAddress::Ip("172.31.0.1".parse().unwrap()),
            source_address: None,
            port: 179,
            hold_time: std::time::Duration::from_secs(9),
            keepalive_time: std::time::Duration::from_secs(3),
            connect_time: std::time::Duration::from_secs(120),
            router_id: None,
            node_selectors: vec![],
            password: None,
            bfd_profile: None,
            graceful_restart: false,
            ebgp_multihop: false,
            vrf: None,
            dual_stack_address_family: false,
            local_asn: None,
        },
    );
    config.bgp_advertisements.insert(
        "lab-bgp".into(),
        oxlb_config::BgpAdvertisement {
            name: "lab-bgp".into(),
            pools: ["lab-bgp".to_string()].into(),
            aggregation_length_v4: 32,
            aggregation_length_v6: 128,
            local_pref: None,
            communities: Default::default(),
            peers: Default::default(),
            node_selectors: vec![],
            service_selectors: vec![],
            weighted_ecmp: false,
        },
    );
    config
}

fn run_demo(tag: &str, router: RouterKind) {
    let dir = std::env::temp_dir().join(format!("oxlb-demo-fake-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("oxlb");
    std::fs::write(&fake, FAKE_OXLB).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut options = LabOptions::new(fake, Box::new(|_| Ok(config_from_default_yaml())));
    options.backend_bin = PathBuf::from(env!("CARGO_BIN_EXE_oxlb-lab-backend"));
    options.router = router;
    options.nodes = 3;
    options.prefix = format!("oxlbd{}{tag}", std::process::id());
    options.state_dir = PathBuf::from(format!("/run/oxlb-demo-test-{}-{tag}", std::process::id()));
    let (prefix, state_dir) = (options.prefix.clone(), options.state_dir.clone());

    let mut out = Vec::new();
    let result = demo(
        options,
        DemoOptions {
            check_layer2: false,
        },
        &mut out,
    );
    let text = String::from_utf8_lossy(&out).into_owned();
    // The demo removes the lab itself; this is for a panic before that.
    let left = down(&prefix, &state_dir).unwrap();
    println!("{text}");
    assert!(result.is_ok(), "demo failed: {result:?}\n{text}");
    assert!(left.is_empty(), "demo left {left:?}");
    assert!(text.contains("via 3 of 3 nodes"), "{text}");
    assert!(text.contains("every check passed"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_passes_with_a_bgp_stand_in_on_frr() {
    if !netns_tests_enabled("lab demo (FRR)").unwrap() {
        return;
    }
    run_demo("f", RouterKind::Frr);
}

#[test]
fn demo_passes_with_a_bgp_stand_in_on_bird() {
    if !netns_tests_enabled("lab demo (BIRD)").unwrap() {
        return;
    }
    run_demo("b", RouterKind::Bird);
}
