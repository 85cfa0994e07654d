//! Service IPs land on (and leave) the dummy interface, inside a namespace of the test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use oxlb_netlab::{Netns, netns_tests_enabled};
use oxlb_standalone::vips::LocalVips;

#[tokio::test]
async fn vips_are_added_removed_and_cleaned_up() {
    if !netns_tests_enabled("vips").unwrap() {
        return;
    }
    let ns = Netns::new("vips").unwrap();
    let vips = LocalVips::new("oxlb0", Some(ns.name()));
    vips.ensure_interface().await.unwrap();
    vips.ensure_interface().await.unwrap(); // idempotent
    let first: BTreeSet<IpAddr> = [
        "192.0.2.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    ]
    .into();
    let change = vips.apply(&first).await.unwrap();
    assert_eq!(change.added, first);
    assert_eq!(vips.current().await.unwrap(), first);
    // The host now accepts traffic for the IP: it answers a ping from inside.
    ns.exec(&["ping", "-c1", "-W2", "192.0.2.10"]).unwrap();
    let second: BTreeSet<IpAddr> = ["192.0.2.11".parse().unwrap()].into();
    let change = vips.apply(&second).await.unwrap();
    assert_eq!(change.removed, first);
    assert_eq!(vips.current().await.unwrap(), second);
    vips.remove_interface().await.unwrap();
    assert!(vips.current().await.is_err());
}
