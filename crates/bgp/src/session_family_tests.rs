//! IPv6 routes over an IPv4 session (dual-stack address family): the next hop is the
//! node's IPv6 address on the link found by the shell, never IPv4-mapped.

use super::tests_support::{local, peer_open, sent, settings};
use super::*;
use crate::packet::Attribute;
use crate::settings::RouteAttributes;
use std::net::Ipv6Addr;
use std::sync::Arc;

fn v6_routes() -> Routes {
    let a = Arc::new(RouteAttributes::default());
    ["192.0.2.1/32", "2001:db8::1/128"]
        .iter()
        .map(|p| (p.parse().unwrap(), Arc::clone(&a)))
        .collect()
}

/// Established over IPv4 with both families negotiated, after the shell reported `link`.
fn established_with(link: LinkAddresses) -> (Session, Vec<Action>) {
    let t = Instant::now();
    let mut session = Session::new(settings());
    session.handle(t, Input::Routes(v6_routes()));
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    session.set_link_addresses(1, link);
    let open = peer_open(64501, [10, 0, 0, 1], 9, false);
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: open,
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    (session, a)
}

fn mp_reach_next_hops(actions: &[Action]) -> Vec<Vec<IpAddr>> {
    sent(actions, 1)
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .flat_map(|u| &u.attributes)
        .filter_map(|a| match a {
            Attribute::MpReach { next_hops, .. } => Some(next_hops.clone()),
            _ => None,
        })
        .collect()
}

fn ip6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

#[test]
fn ipv6_routes_over_ipv4_carry_the_links_global_and_link_local_address() {
    let (session, a) = established_with(LinkAddresses {
        global: Some(ip6("fd00:80::2")),
        link_local: Some(ip6("fe80::2")),
    });
    assert_eq!(
        mp_reach_next_hops(&a),
        vec![vec![
            IpAddr::V6(ip6("fd00:80::2")),
            IpAddr::V6(ip6("fe80::2"))
        ]]
    );
    assert_eq!(session.withheld, None);
    assert_eq!(session.prefixes_announced(), 2);
}

#[test]
fn without_ipv6_on_the_link_ipv6_routes_are_withheld_and_reported() {
    let (session, a) = established_with(LinkAddresses::default());
    assert!(mp_reach_next_hops(&a).is_empty(), "no IPv4-mapped next hop");
    assert_eq!(session.withheld, Some(Withheld::Ipv6NoAddressOnLink));
    assert_eq!(session.prefixes_announced(), 1);
    assert_eq!(session.prefixes_pending(), 1);
    let reported = a.iter().any(|a| {
        matches!(
            a,
            Action::Report(Report::Withheld {
                why: Withheld::Ipv6NoAddressOnLink,
                ..
            })
        )
    });
    assert!(reported, "{a:?}");
}

#[test]
fn an_explicit_ipv6_next_hop_goes_alone() {
    let t = Instant::now();
    let mut s = settings();
    s.ipv6_next_hop = Some(ip6("fd00::9"));
    let mut session = Session::new(s);
    session.handle(t, Input::Routes(v6_routes()));
    session.handle(t, Input::Start);
    session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: local(),
        },
    );
    session.set_link_addresses(
        1,
        LinkAddresses {
            global: Some(ip6("fd00:80::2")),
            link_local: Some(ip6("fe80::2")),
        },
    );
    let open = peer_open(64501, [10, 0, 0, 1], 9, false);
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: open,
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    assert_eq!(
        mp_reach_next_hops(&a),
        vec![vec![IpAddr::V6(ip6("fd00::9"))]]
    );
}

/// An IPv6 session carrying IPv4 routes; the peer sends the extended next hop
/// capability (RFC 8950) or not.
fn v6_session(peer_ext_nh: bool) -> (Session, Vec<Action>, Vec<Message>) {
    let t = Instant::now();
    let mut s = settings();
    s.peer_address = "fd00::1".parse().unwrap();
    let mut session = Session::new(s);
    session.handle(t, Input::Routes(v6_routes()));
    session.handle(t, Input::Start);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: "[fd00::2]:40000".parse().unwrap(),
        },
    );
    let ours = sent(&a, 1);
    session.set_link_addresses(
        1,
        LinkAddresses {
            global: None,
            link_local: Some(ip6("fe80::2")),
        },
    );
    let Message::Open(mut open) = peer_open(64501, [10, 0, 0, 1], 9, false) else {
        panic!()
    };
    if peer_ext_nh {
        open.capabilities
            .push(Capability::ExtendedNextHop(vec![IPV4_OVER_IPV6]));
    }
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Open(open),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    (session, a, ours)
}

#[test]
fn ipv4_routes_over_ipv6_use_the_extended_next_hop_when_both_sides_offer_it() {
    let (session, a, ours) = v6_session(true);
    let Message::Open(open) = &ours[0] else {
        panic!("{ours:?}")
    };
    assert!(
        open.capabilities
            .contains(&Capability::ExtendedNextHop(vec![IPV4_OVER_IPV6])),
        "{open:?}"
    );
    let reach: Vec<(u16, Vec<IpAddr>)> = sent(&a, 1)
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .flat_map(|u| &u.attributes)
        .filter_map(|a| match a {
            Attribute::MpReach { afi, next_hops, .. } => Some((*afi, next_hops.clone())),
            _ => None,
        })
        .collect();
    let hops = vec![IpAddr::V6(ip6("fd00::2")), IpAddr::V6(ip6("fe80::2"))];
    assert_eq!(reach, vec![(AFI_IPV4, hops.clone()), (AFI_IPV6, hops)]);
    assert_eq!(session.prefixes_announced(), 2);
    assert_eq!(session.withheld, None);
}

#[test]
fn without_the_peers_capability_ipv4_routes_stay_pending_on_an_ipv6_session() {
    let (session, a, _) = v6_session(false);
    let afis: Vec<u16> = sent(&a, 1)
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .flat_map(|u| &u.attributes)
        .filter_map(|a| match a {
            Attribute::MpReach { afi, .. } => Some(*afi),
            _ => None,
        })
        .collect();
    assert_eq!(afis, vec![AFI_IPV6]);
    assert_eq!(session.prefixes_announced(), 1);
    assert_eq!(session.prefixes_pending(), 1);
    assert_eq!(session.withheld, Some(Withheld::Ipv4NoExtendedNextHop));
    let reported = a.iter().any(|a| {
        matches!(
            a,
            Action::Report(Report::Withheld {
                why: Withheld::Ipv4NoExtendedNextHop,
                ..
            })
        )
    });
    assert!(reported, "{a:?}");
}

/// Unnumbered (`interface`): the peer address is `::` until the shell connects over
/// link-local, and our only address on the link is link-local. Both families go with
/// that link-local address alone as next hop (length 16): IPv4 through the extended
/// next hop capability (RFC 8950), which the OPEN offers; FRR accepts a link-local
/// global next hop from an interface neighbour and installs `via inet6 fe80::… dev`.
#[test]
fn an_unnumbered_session_sends_the_link_local_next_hop_alone() {
    let t = Instant::now();
    let mut s = settings();
    s.peer_address = "::".parse().unwrap();
    s.interface = Some("up0".into());
    let mut session = Session::new(s);
    session.handle(t, Input::Routes(v6_routes()));
    session.handle(t, Input::Start);
    let a = session.handle(
        t,
        Input::Connected {
            conn: 1,
            outbound: true,
            local: "[fe80::2]:40000".parse().unwrap(),
        },
    );
    let Message::Open(ours) = &sent(&a, 1)[0] else {
        panic!("{a:?}")
    };
    assert!(
        ours.capabilities
            .contains(&Capability::ExtendedNextHop(vec![IPV4_OVER_IPV6])),
        "{ours:?}"
    );
    // What the shell finds for a link-local session address: nothing to add.
    session.set_link_addresses(1, LinkAddresses::default());
    let Message::Open(mut open) = peer_open(64501, [10, 0, 0, 1], 9, false) else {
        panic!()
    };
    open.capabilities
        .push(Capability::ExtendedNextHop(vec![IPV4_OVER_IPV6]));
    session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Open(open),
        },
    );
    let a = session.handle(
        t,
        Input::Message {
            conn: 1,
            message: Message::Keepalive,
        },
    );
    assert_eq!(session.state(), State::Established);
    let hop = vec![IpAddr::V6(ip6("fe80::2"))];
    assert_eq!(mp_reach_next_hops(&a), vec![hop.clone(), hop]);
    assert_eq!(session.prefixes_announced(), 2);
    assert_eq!(session.withheld, None);
}
