//! The second-chance ruleset in a real kernel: programmed over netlink into a namespace
//! this test created (kernel defaults), read back with `nft` (its own decoder, so a
//! wrongly encoded expression shows as a difference), replaced, and removed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::path::PathBuf;

use oxlb_netlab::{Netns, netns_tests_enabled};
use oxlb_nft::netlink::Family;
use oxlb_nft::{Link, Plan, in_namespace, install, remove, send, table_exists};

fn path(ns: &Netns) -> PathBuf {
    PathBuf::from("/run/netns").join(ns.name())
}

fn program(ns: &Netns, plan: &Plan) {
    let (batch, steps) = install(plan, 1);
    in_namespace(Some(&path(ns)), move || send(batch, &steps))
        .unwrap()
        .unwrap();
}

fn remove_in(ns: &Netns) {
    let (batch, steps) = remove(1);
    in_namespace(Some(&path(ns)), move || send(batch, &steps))
        .unwrap()
        .unwrap();
}

fn table(ns: &Netns, family: &str) -> String {
    ns.exec_stdout(&["nft", "list", "table", family, "oxlb"])
        .unwrap_or_default()
}

fn golden(name: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("OXLB_BLESS").is_some() {
        return std::fs::read_to_string(&file).unwrap_or_default();
    }
    std::fs::read_to_string(&file).unwrap()
}

fn check(ns: &Netns, family: &str, name: &str) {
    let listed = table(ns, family);
    if std::env::var_os("OXLB_BLESS").is_some() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        std::fs::write(file, &listed).unwrap();
    }
    assert_eq!(listed, golden(name), "nft list table {family} oxlb");
}

#[test]
fn the_kernel_holds_the_ruleset_nft_reads_back() {
    if !netns_tests_enabled("nft_kernel").unwrap() {
        return;
    }
    let ns = Netns::new("nftk").unwrap();
    let plan = Plan::new(
        [
            "10.79.0.0/24".parse().unwrap(),
            "10.80.1.7/32".parse().unwrap(),
            "fd00:79::/64".parse().unwrap(),
        ],
        20_000,
    )
    .with_links(vec![Link {
        index: 7,
        broadcast: "10.77.0.255".parse().unwrap(),
    }]);
    program(&ns, &plan);
    check(&ns, "ip", "second_chance.ip.nft");
    check(&ns, "ip6", "second_chance.ip6.nft");

    // Programmed again (a restart), with other prefixes: replaced in one transaction.
    let fewer = Plan::new(["10.81.0.0/16".parse().unwrap()], 100);
    program(&ns, &fewer);
    let listed = table(&ns, "ip");
    assert!(
        listed.contains("ip daddr 10.81.0.0/16 jump second_chance"),
        "{listed}"
    );
    assert!(!listed.contains("10.79.0.0"), "{listed}");
    assert!(
        listed.contains("limit rate over 100/second burst 10 packets drop"),
        "{listed}"
    );
    assert_eq!(table(&ns, "ip6"), "", "no IPv6 prefix: no ip6 table");

    let exists =
        |ns: &Netns| in_namespace(Some(&path(ns)), || table_exists(Family::Ipv4, "oxlb")).unwrap();
    assert!(exists(&ns));
    remove_in(&ns);
    assert_eq!(ns.exec_stdout(&["nft", "list", "ruleset"]).unwrap(), "");
    assert!(!exists(&ns));
    // Removing what is not there is no error.
    remove_in(&ns);
}
