//! The second chance follows the host's links: a node whose LAN address comes after
//! the config (DHCP at boot, an interface re-created) gets its copies on that link at
//! the next re-check, without a new config. In a namespace of its own, kernel defaults.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;

use oxlb_netlab::{Netns, netns_tests_enabled, veth};
use oxlb_node::second_chance::{Options, SecondChance, State};

const POOLS: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n\
    metadata: {name: a, namespace: metallb-system}\nspec: {addresses: [10.79.0.0/24]}\n";

#[test]
fn a_link_address_that_comes_later_is_picked_up_by_the_recheck() {
    if !netns_tests_enabled("second_chance_links").unwrap() {
        return;
    }
    let node = Netns::new("sclinks").unwrap();
    let peer = Netns::new("sclinkp").unwrap();
    veth(&node, "lan0", &peer, "lan0").unwrap();
    let path = PathBuf::from("/run/netns").join(node.name());
    let snapshot = oxlb_config::load_str(POOLS, None, "metallb-system").unwrap();
    let config = oxlb_config::build_config(&snapshot).config.unwrap();

    let chance = oxlb_nft::in_namespace(Some(&path), move || {
        let mut chance = SecondChance::new(Options::default());
        chance.apply(&config);
        Ok(chance)
    })
    .unwrap();
    assert!(
        matches!(chance.state(), State::Active { ipv4_links: 0, .. }),
        "{:?}",
        chance.state()
    );
    let table = || {
        node.exec_stdout(&["nft", "list", "chain", "ip", "oxlb", "rescue"])
            .unwrap_or_default()
    };
    assert!(!table().contains("dup to"), "{}", table());

    node.add_address("lan0", "10.77.0.11/24").unwrap();
    let chance = oxlb_nft::in_namespace(Some(&path), move || {
        let mut chance = chance;
        chance.recheck();
        Ok(chance)
    })
    .unwrap();
    assert!(
        matches!(chance.state(), State::Active { ipv4_links: 1, .. }),
        "{:?}",
        chance.state()
    );
    assert!(
        table().contains("iif \"lan0\" dup to 10.77.0.255 device \"lan0\""),
        "{}",
        table()
    );
}
