//! The kit itself works: two namespaces, a veth, FRR in one, reachable from the other.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_netlab::{Frr, Netns, netns_tests_enabled, veth, wait_until};
use std::time::Duration;

#[test]
fn frr_runs_in_a_namespace_and_namespaces_are_removed() {
    if !netns_tests_enabled("frr_smoke").unwrap() {
        return;
    }
    let name;
    {
        let router = Netns::new("router").unwrap();
        let node = Netns::new("node").unwrap();
        name = router.name().to_string();
        veth(&router, "r0", &node, "n0").unwrap();
        router.add_address("r0", "10.99.0.1/24").unwrap();
        node.add_address("n0", "10.99.0.2/24").unwrap();
        node.exec(&["ping", "-c1", "-W2", "10.99.0.1"]).unwrap();
        let config = "frr defaults traditional\nrouter bgp 64501\n bgp router-id 10.99.0.1\n no bgp ebgp-requires-policy\n neighbor 10.99.0.2 remote-as 64500\n";
        let frr = Frr::start(&router, config, &["zebra", "bgpd"]).unwrap();
        let summary = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            frr.vtysh("show bgp summary json")
                .ok()
                .filter(|s| s.contains("10.99.0.2"))
        });
        assert!(summary.is_some(), "FRR did not list its neighbor");
        assert!(frr.pid("bgpd").unwrap() > 1);
    }
    let list = String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!list.contains(&name), "namespace {name} was not removed");
}

/// A configuration in the form FRR 8 writes and `oxlb router-config` generates: a
/// `bfd` block closed by `exit` before `router bgp`. bgpd reading the file itself stops
/// at bfdd's `exit` and never configures BGP; loaded through vtysh, as FRR's init does,
/// every daemon gets its part.
#[test]
fn frr_config_with_exit_blocks_is_loaded_through_vtysh() {
    if !netns_tests_enabled("frr_vtysh").unwrap() {
        return;
    }
    let config = "frr defaults traditional\n\
                  bfd\n profile fast\n  receive-interval 100\n exit\nexit\n\
                  router bgp 64501\n bgp router-id 10.99.0.1\n no bgp ebgp-requires-policy\n \
                  neighbor 10.99.0.2 remote-as 64500\n neighbor 10.99.0.2 bfd profile fast\nexit\n";
    let daemons = ["zebra", "bgpd", "bfdd"];
    let bgp = |frr: &Frr| frr.vtysh("show bgp summary json").unwrap_or_default();
    {
        let router = Netns::new("router").unwrap();
        let frr = Frr::start(&router, config, &daemons).unwrap();
        assert!(
            !bgp(&frr).contains("10.99.0.2"),
            "bgpd now reads past bfdd's block itself: Frr::start_via_vtysh may be unneeded"
        );
    }
    let router = Netns::new("router").unwrap();
    let frr = Frr::start_via_vtysh(&router, config, &daemons).unwrap();
    let summary = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        Some(bgp(&frr)).filter(|s| s.contains("10.99.0.2"))
    });
    assert!(summary.is_some(), "{:?}", frr.vtysh("show running-config"));
    let running = frr.vtysh("show running-config").unwrap_or_default();
    assert!(running.contains("profile fast"), "{running}");
}
