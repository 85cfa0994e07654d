use super::*;
use crate::packet::{Message, decode};
use std::collections::BTreeSet;
use std::net::IpAddr;

const CTX: Context = Context {
    four_octet_as: true,
};

fn enc(ibgp: bool) -> Encoding {
    Encoding {
        local_asn: 64500,
        ibgp,
        ctx: CTX,
        next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, 2)),
        next_hop_v6: Some("fd00::2".parse().unwrap()),
        next_hop_v6_link_local: None,
        next_hop_v4_extended: None,
    }
}

fn attrs(local_pref: Option<u32>, communities: &[u32]) -> Arc<RouteAttributes> {
    Arc::new(RouteAttributes {
        local_pref,
        communities: communities.iter().copied().collect(),
        large_communities: BTreeSet::new(),
        link_bandwidth: None,
    })
}

fn hosts(n: u32, a: &Arc<RouteAttributes>) -> Routes {
    (0..n)
        .map(|i| {
            let ip = Ipv4Addr::from(0x0a00_0000 + i);
            (
                IpNet::V4(ipnet::Ipv4Net::new(ip, 32).unwrap()),
                Arc::clone(a),
            )
        })
        .collect()
}

fn updates(packed: &Packed) -> Vec<Update> {
    let mut rest = packed.bytes.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (message, used) = decode(rest, CTX).unwrap().unwrap();
        assert!(used <= MAX_MESSAGE_LEN);
        let Message::Update(u) = message else {
            panic!()
        };
        assert!(u.errors.is_empty());
        out.push(u);
        rest = &rest[used..];
    }
    assert_eq!(out.len() as u64, packed.messages);
    out
}

#[test]
fn ten_thousand_hosts_pack_into_the_fewest_full_updates() {
    let a = attrs(None, &[0xffff_ff02]);
    let desired = hosts(10_000, &a);
    let mut rib = AdjRibOut::default();
    let packed = rib.sync(&desired, &enc(false));
    let got = updates(&packed);
    let announced: usize = got.iter().map(|u| u.nlri.len()).sum();
    assert_eq!(announced, 10_000);
    // Fixed part: header 19 + 4 length octets + attributes; each /32 takes 5 octets.
    let fixed = 19 + 4 + 4 + 9 + 7 + 7;
    let per_message = (4096 - fixed) / 5;
    assert_eq!(packed.messages as usize, 10_000usize.div_ceil(per_message));
    assert_eq!(rib.len(), 10_000);
    // Nothing changed: nothing to send.
    assert_eq!(rib.sync(&desired, &enc(false)), Packed::default());
}

#[test]
fn diff_sends_only_changes_and_withdraws_removed() {
    let a = attrs(None, &[]);
    let b = attrs(None, &[1]);
    let mut desired = hosts(3, &a);
    let mut rib = AdjRibOut::default();
    rib.sync(&desired, &enc(false));
    let first: IpNet = "10.0.0.0/32".parse().unwrap();
    let second: IpNet = "10.0.0.1/32".parse().unwrap();
    desired.remove(&first);
    desired.insert(second, Arc::clone(&b));
    desired.insert("2001:db8::1/128".parse().unwrap(), Arc::clone(&a));
    let got = updates(&rib.sync(&desired, &enc(false)));
    assert_eq!(got[0].withdrawn, vec![first]);
    // Groups go out in attribute order: the plain IPv6 route first, then the changed one.
    assert_eq!(got[2].nlri, vec![second]);
    assert!(got[2].attributes.contains(&Attribute::Communities(vec![1])));
    assert!(matches!(
        &got[1].attributes[..],
        [Attribute::Origin(0), Attribute::AsPath(p), Attribute::MpReach { afi: 2, nlri, .. }]
            if p == &vec![64500] && nlri.len() == 1
    ));
    desired.clear();
    let got = updates(&rib.sync(&desired, &enc(false)));
    assert_eq!(got[0].withdrawn.len(), 2);
    assert!(
        matches!(&got[1].attributes[..], [Attribute::MpUnreach { withdrawn, .. }] if withdrawn.len() == 1)
    );
    assert!(rib.is_empty());
}

#[test]
fn local_pref_goes_to_ibgp_only_and_as_path_is_empty_there() {
    let a = attrs(Some(250), &[]);
    let desired = hosts(1, &a);
    let ebgp = updates(&AdjRibOut::default().sync(&desired, &enc(false)));
    assert!(
        !ebgp[0]
            .attributes
            .iter()
            .any(|x| matches!(x, Attribute::LocalPref(_)))
    );
    let ibgp = updates(&AdjRibOut::default().sync(&desired, &enc(true)));
    assert!(ibgp[0].attributes.contains(&Attribute::LocalPref(250)));
    assert!(ibgp[0].attributes.contains(&Attribute::AsPath(vec![])));
}

#[test]
fn families_without_a_next_hop_stay_pending() {
    let a = attrs(None, &[]);
    let mut desired = hosts(1, &a);
    desired.insert("2001:db8::1/128".parse().unwrap(), Arc::clone(&a));
    let mut e = enc(false);
    e.next_hop_v6 = None;
    let mut rib = AdjRibOut::default();
    rib.sync(&desired, &e);
    assert_eq!(rib.len(), 1);
}

/// RFC 2545 §3: on a shared subnet the IPv6 Next Hop is 32 octets, global then
/// link-local; without a link-local address it stays 16.
fn v6_next_hops(e: &Encoding) -> Vec<IpAddr> {
    let a = attrs(None, &[]);
    let desired: Routes = [("fd00:79::1/128".parse().unwrap(), a)].into();
    let packed = AdjRibOut::default().sync(&desired, e);
    let updates = updates(&packed);
    let [update] = updates.as_slice() else {
        panic!("{updates:?}")
    };
    update
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            Attribute::MpReach { next_hops, .. } => Some(next_hops.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn ipv6_next_hop_carries_the_link_local_address_when_known() {
    let mut e = enc(false);
    assert_eq!(v6_next_hops(&e), vec![ip("fd00::2")]);
    e.next_hop_v6_link_local = Some("fe80::2".parse().unwrap());
    assert_eq!(v6_next_hops(&e), vec![ip("fd00::2"), ip("fe80::2")]);
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn resend_repeats_the_whole_rib() {
    let a = attrs(None, &[]);
    let desired = hosts(5, &a);
    let mut rib = AdjRibOut::default();
    let first = rib.sync(&desired, &enc(false));
    assert_eq!(rib.resend(&enc(false)), first);
}

#[test]
fn end_of_rib_markers() {
    let v4 = end_of_rib(AFI_IPV4, CTX);
    assert_eq!(v4.len(), 23);
    let (Message::Update(u), _) = decode(&end_of_rib(AFI_IPV6, CTX), CTX).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib(), Some((AFI_IPV6, SAFI_UNICAST)));
}

/// RFC 8950 §4: on an IPv6 session with the extended next hop capability, IPv4 NLRI go
/// in MP_REACH_NLRI for AFI 1 / SAFI 1 with the 32-octet IPv6 next hop, and no NEXT_HOP
/// attribute. Byte-exact.
#[test]
fn ipv4_over_ipv6_next_hop_in_mp_reach() {
    let mut e = enc(false);
    e.next_hop_v4 = None;
    e.next_hop_v4_extended = Some(("fd00::2".parse().unwrap(), Some("fe80::2".parse().unwrap())));
    let desired: Routes = [("192.0.2.1/32".parse().unwrap(), attrs(None, &[]))].into();
    let mut rib = AdjRibOut::default();
    let packed = rib.sync(&desired, &e);
    #[rustfmt::skip]
    let mut expected = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0, 82, 2, // length, UPDATE
        0, 0, // no withdrawn routes
        0, 59, // path attributes length
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf4, // AS_PATH [64500]
        0x90, 14, 0, 42, // MP_REACH_NLRI, extended length 42
        0, 1, 1, // AFI 1, SAFI 1
        32, // next hop length: global + link-local
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    expected.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    expected.extend_from_slice(&[0, 32, 192, 0, 2, 1]); // reserved, 192.0.2.1/32
    assert_eq!(packed.bytes, expected);
    assert_eq!(packed.messages, 1);
    // Decodes back to the same route; the withdrawal is a plain IPv4 one.
    let sent = updates(&packed);
    assert!(sent[0].attributes.contains(&Attribute::MpReach {
        afi: AFI_IPV4,
        safi: SAFI_UNICAST,
        next_hops: vec![ip("fd00::2"), ip("fe80::2")],
        nlri: vec!["192.0.2.1/32".parse().unwrap()],
    }));
    let gone = rib.sync(&Routes::new(), &e);
    assert_eq!(
        updates(&gone)[0].withdrawn,
        vec!["192.0.2.1/32".parse::<IpNet>().unwrap()]
    );
}

/// Weighted ECMP: a new weight re-announces the prefix with the new link bandwidth
/// community (draft-ietf-idr-link-bandwidth §2), and no weight sends none.
#[test]
fn link_bandwidth_weight_rides_as_a_non_transitive_extended_community() {
    use crate::packet::link_bandwidth::LinkBandwidth;
    let weighted = |w: Option<u32>| {
        Arc::new(RouteAttributes {
            link_bandwidth: w,
            ..RouteAttributes::default()
        })
    };
    let communities = |packed: &Packed| -> Vec<Vec<[u8; 8]>> {
        updates(packed)
            .iter()
            .map(|u| {
                u.attributes
                    .iter()
                    .filter_map(|a| match a {
                        Attribute::ExtendedCommunities(cs) => Some(cs.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect()
            })
            .collect()
    };
    let prefix: IpNet = "10.79.0.1/32".parse().unwrap();
    let mut rib = AdjRibOut::default();
    let first = rib.sync(&[(prefix, weighted(Some(2)))].into(), &enc(false));
    let sent = communities(&first);
    assert_eq!(sent.len(), 1);
    let lb = LinkBandwidth::decode(&sent[0][0]).unwrap();
    assert_eq!(
        (lb.asn, lb.transitive, lb.weight()),
        (64500, false, Some(2))
    );
    let second = rib.sync(&[(prefix, weighted(Some(3)))].into(), &enc(false));
    let sent = communities(&second);
    assert_eq!(
        LinkBandwidth::decode(&sent[0][0]).unwrap().weight(),
        Some(3)
    );
    let unchanged = rib.sync(&[(prefix, weighted(Some(3)))].into(), &enc(false));
    assert_eq!(unchanged.messages, 0);
    let plain = rib.sync(&[(prefix, weighted(None))].into(), &enc(false));
    assert_eq!(communities(&plain), vec![Vec::<[u8; 8]>::new()]);
}
