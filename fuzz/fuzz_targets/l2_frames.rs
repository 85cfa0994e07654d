//! Any bytes off the wire through the L2 responder's parsers and decision: no panic,
//! and a reply is always a well-formed frame the parsers accept again.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use oxlb_l2::{Interface, Mac, OwnedIp, OwnedSet, arp, decide, ethernet, ndp};

fuzz_target!(|data: &[u8]| {
    let _ = arp::Arp::parse(data);
    let _ = ndp::Solicitation::parse(data);
    let interface = Interface {
        name: "eth1".into(),
        mac: Mac([2, 0, 0, 0, 0, 1]),
        eligible: true,
    };
    // Own whatever address the frame asks for, so the reply path is exercised too.
    let mut owned = OwnedSet::new();
    if let Some(frame) = ethernet::Frame::parse(data) {
        if let Ok(a) = arp::Arp::parse(frame.payload) {
            owned.insert(IpAddr::V4(a.target_ip), OwnedIp::default());
        }
        if let Ok(ns) = ndp::Solicitation::parse(frame.payload) {
            owned.insert(IpAddr::V6(ns.target), OwnedIp::default());
        }
    }
    if let Ok(reply) = decide(data, &owned, &interface) {
        let frame = ethernet::Frame::parse(&reply.frame).expect("reply has an Ethernet header");
        assert_eq!(frame.source, interface.mac);
        assert!(owned.contains_key(&reply.ip));
    }
});
