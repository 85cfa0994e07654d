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
