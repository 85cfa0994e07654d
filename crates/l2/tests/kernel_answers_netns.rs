//! What the Linux kernel answers, at its defaults, for an address that sits on a
//! dummy interface (where `oxlb run` puts service IPs) when the request arrives on the
//! LAN interface. This is the fact [`oxlb_l2::kernel_arp`] is designed on:
//!
//! - ARP (arp_ignore=0): answered. After `oxlb run` is killed its addresses stay, and
//!   the kernel keeps answering for them: a ghost, unless arp_ignore >= 1.
//! - arp_ignore=1 on the LAN interface: not answered (the end-to-end tests of `oxlb
//!   run`, where oxlb sets it by itself, show that; tests never set it).
//! - NDP: not answered, whatever the sysctls (the target must be an address of the
//!   receiving interface), while an address of the LAN interface itself is (the
//!   control that shows the probe would see an answer).
//!
//! Two namespaces of this test, a veth between them; nothing else.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use oxlb_netlab::{Netns, netns_tests_enabled, veth};

/// Sender MACs of the ARP replies to three requests for `ip` (Habets' arping).
fn arp_answers(ns: &Netns, ip: &str) -> Vec<String> {
    let out = ns
        .command("arping")
        .args(["-i", "lan0", "-c", "3", "-W", "0.1", "-w", "1", ip])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "arping failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut macs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "from")?;
            words.get(at + 1).map(|m| m.to_lowercase())
        })
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// Link-layer addresses in every Neighbor Advertisement for `ip` (ndisc6, all answers).
fn ndp_answers(ns: &Netns, ip: &str) -> Vec<String> {
    let out = ns
        .command("ndisc6")
        .args(["-m", "-n", "-q", "-r", "3", "-w", "400", ip, "lan0"])
        .output()
        .unwrap();
    let mut macs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.len() == 17 && w.matches(':').count() == 5)
        .map(str::to_lowercase)
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

#[test]
fn the_kernel_answers_arp_but_not_ndp_for_addresses_on_another_interface() {
    if !netns_tests_enabled("kernel_answers_netns").unwrap() {
        return;
    }
    let host = Netns::new("l2shost").unwrap();
    let lan = Netns::new("l2slan").unwrap();
    veth(&host, "lan0", &lan, "lan0").unwrap();
    host.add_address("lan0", "10.81.0.1/24").unwrap();
    host.add_address("lan0", "fd00:81::1/64").unwrap();
    lan.add_address("lan0", "10.81.0.2/24").unwrap();
    lan.add_address("lan0", "fd00:81::2/64").unwrap();
    // A dummy, or on kernels without the dummy driver a bridge without ports, as
    // `oxlb run` makes its interface.
    host.exec(&["ip", "link", "add", "svc0", "type", "dummy"])
        .or_else(|_| host.exec(&["ip", "link", "add", "svc0", "type", "bridge"]))
        .unwrap();
    host.link_up("svc0").unwrap();
    host.add_address("svc0", "10.81.0.100/32").unwrap();
    host.exec(&[
        "ip",
        "address",
        "add",
        "fd00:81::100/128",
        "dev",
        "svc0",
        "nodad",
    ])
    .unwrap();
    let host_mac = host
        .exec_stdout(&["cat", "/sys/class/net/lan0/address"])
        .unwrap()
        .trim()
        .to_lowercase();
    // Wait for IPv6 on the veth (link-local, then the global address) to be usable:
    // the namespaces keep the kernel defaults, duplicate address detection included.
    let reachable = oxlb_netlab::wait_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(100),
        || (!ndp_answers(&lan, "fd00:81::1").is_empty()).then_some(()),
    );
    assert!(
        reachable.is_some(),
        "the control: fd00:81::1 never answered NDP"
    );
    assert_eq!(ndp_answers(&lan, "fd00:81::1"), vec![host_mac.clone()]);

    // Kernel defaults: the ghost.
    assert_eq!(
        host.exec_stdout(&["cat", "/proc/sys/net/ipv4/conf/all/arp_ignore"])
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(arp_answers(&lan, "10.81.0.100"), vec![host_mac]);
    // NDP: silent for the dummy's address.
    assert_eq!(ndp_answers(&lan, "fd00:81::100"), Vec::<String>::new());
}
