//! `BGPPeer` objects (v1beta2; v1beta1 already converted by the loader).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use oxlb_api::{BGPPeer, DynamicASNMode};

use super::{Context, Subject, parse, unknown_reference};
use crate::diagnostic::Code;
use crate::model::{Peer, PeerAddress, PeerAsn};
use crate::snapshot::{Snapshot, Sourced};

/// MetalLB's (and RFC 4271's suggested) hold time when none is given.
const DEFAULT_HOLD: Duration = Duration::from_secs(90);
/// RFC 4271 §10 suggests 120 s for ConnectRetryTime.
const DEFAULT_CONNECT: Duration = Duration::from_secs(120);
/// RFC 4271 §4.2: the hold time is 0 or at least 3 seconds, and fits 16 bits.
const MIN_HOLD: Duration = Duration::from_secs(3);
const MAX_HOLD: Duration = Duration::from_secs(65_535);
/// MetalLB's CRD bound on peerPort.
const MAX_PORT: u16 = 16_384;

pub(super) struct Peers {
    pub valid: BTreeMap<String, Peer>,
    pub names: BTreeSet<String>,
}

pub(super) fn build(cx: &mut Context, snapshot: &Snapshot) -> Peers {
    let bfd_names: BTreeSet<String> = snapshot
        .bfd_profiles
        .iter()
        .filter_map(|p| p.object.metadata.name.clone())
        .collect();
    let mut seen = BTreeMap::new();
    let mut valid = BTreeMap::new();
    // (address, port, vrf, node selectors) of each accepted peer, for duplicates.
    let mut sessions: BTreeMap<String, String> = BTreeMap::new();
    for object in &snapshot.bgp_peers {
        let Some(subject) = cx.claim_name(
            "BGPPeer",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        let before = cx.errors.len();
        let peer = build_one(cx, &subject, object, snapshot, &bfd_names);
        if cx.errors.len() != before {
            continue;
        }
        let Some(peer) = peer else { continue };
        let key = format!(
            "{:?}|{}|{:?}|{:?}",
            peer.address, peer.port, peer.vrf, peer.node_selectors
        );
        if let Some(first) = sessions.get(&key) {
            cx.errors.push(
                subject
                    .error(
                        Code::DuplicatePeer,
                        "spec.peerAddress",
                        format!("BGPPeer {first:?} already connects to this address and port from the same nodes and VRF"),
                    )
                    .expected("one BGPPeer per session (different address, port, vrf or nodeSelectors)"),
            );
            continue;
        }
        sessions.insert(key, peer.name.clone());
        if object.object.spec.disable_mp == Some(true) {
            cx.warnings.push(subject.warning(
                Code::Deprecated,
                "spec.disableMP",
                "disableMP is deprecated and has no effect in oxlb; use dualStackAddressFamily",
            ));
        }
        valid.insert(peer.name.clone(), peer);
    }
    Peers {
        valid,
        names: seen.into_keys().collect(),
    }
}

fn build_one(
    cx: &mut Context,
    subject: &Subject<'_>,
    object: &Sourced<BGPPeer>,
    snapshot: &Snapshot,
    bfd_names: &BTreeSet<String>,
) -> Option<Peer> {
    let spec = &object.object.spec;
    if spec.my_asn == 0 {
        cx.errors.push(
            subject
                .error(Code::InvalidAsn, "spec.myASN", "myASN must not be 0")
                .value(0)
                .expected("an AS number in 1..4294967295"),
        );
    }
    // MetalLB's Go types treat 0 / "" as "not set".
    let peer_asn = match (spec.peer_asn.filter(|a| *a != 0), spec.dynamic_asn) {
        (Some(asn), None) => Some(PeerAsn::Fixed(asn)),
        (None, Some(DynamicASNMode::Internal)) => Some(PeerAsn::DynamicInternal),
        (None, Some(DynamicASNMode::External)) => Some(PeerAsn::DynamicExternal),
        (Some(_), Some(_)) => {
            cx.errors.push(
                subject
                    .error(
                        Code::AsnChoice,
                        "spec.peerASN",
                        "peerASN and dynamicASN are both set",
                    )
                    .expected("exactly one of peerASN and dynamicASN"),
            );
            None
        }
        (None, None) => {
            cx.errors.push(
                subject
                    .error(
                        Code::AsnChoice,
                        "spec.peerASN",
                        "neither peerASN nor dynamicASN is set",
                    )
                    .expected(
                        "peerASN: <the router's AS number>, or dynamicASN: internal|external",
                    ),
            );
            None
        }
    };
    let address = match (
        spec.peer_address.as_deref().filter(|a| !a.is_empty()),
        spec.interface.as_deref().filter(|i| !i.is_empty()),
    ) {
        (Some(text), None) => match text.trim().parse::<IpAddr>() {
            Ok(ip) => Some(PeerAddress::Ip(ip)),
            Err(_) => {
                cx.errors.push(
                    subject
                        .error(
                            Code::InvalidAddress,
                            "spec.peerAddress",
                            "not an IP address",
                        )
                        .value(text)
                        .expected("an IPv4 or IPv6 address such as 192.168.1.1"),
                );
                None
            }
        },
        (None, Some(interface)) => Some(PeerAddress::Interface(interface.to_string())),
        (Some(_), Some(_)) => {
            cx.errors.push(
                subject
                    .error(
                        Code::AddressChoice,
                        "spec.peerAddress",
                        "peerAddress and interface are both set",
                    )
                    .expected("exactly one of peerAddress and interface (unnumbered BGP)"),
            );
            None
        }
        (None, None) => {
            cx.errors.push(
                subject
                    .error(Code::AddressChoice, "spec.peerAddress", "neither peerAddress nor interface is set")
                    .expected("peerAddress: <the router's IP>, or interface: <node interface> for unnumbered BGP"),
            );
            None
        }
    };
    let source_address = spec
        .source_address
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|text| {
            let parsed = text.trim().parse::<IpAddr>().ok();
            if parsed.is_none() {
                cx.errors.push(
                    subject
                        .error(
                            Code::InvalidAddress,
                            "spec.sourceAddress",
                            "not an IP address",
                        )
                        .value(text)
                        .expected("an address of this node"),
                );
            }
            parsed
        });
    let port = match spec.peer_port {
        None | Some(0) => 179,
        Some(p) if p > MAX_PORT => {
            cx.errors.push(
                subject
                    .error(Code::InvalidPort, "spec.peerPort", "port out of range")
                    .value(p)
                    .expected(format!("1..{MAX_PORT}")),
            );
            179
        }
        Some(p) => p,
    };
    let (hold_time, keepalive_time) = timers(
        cx,
        subject,
        spec.hold_time.as_deref(),
        spec.keepalive_time.as_deref(),
    );
    let connect_time = match spec.connect_time.as_deref() {
        None => DEFAULT_CONNECT,
        Some(text) => match parse::parse_duration(text) {
            Ok(d) if d.subsec_nanos() == 0 && (1..=65_535).contains(&d.as_secs()) => d,
            Ok(_) => {
                cx.errors.push(
                    subject
                        .error(
                            Code::ConnectTime,
                            "spec.connectTime",
                            "connect time out of range",
                        )
                        .value(text)
                        .expected("a whole number of seconds between 1s and 65535s"),
                );
                DEFAULT_CONNECT
            }
            Err(reason) => {
                cx.errors
                    .push(duration_error(subject, "spec.connectTime", text, &reason));
                DEFAULT_CONNECT
            }
        },
    };
    let router_id = spec
        .router_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|text| {
            let parsed = text.trim().parse::<Ipv4Addr>().ok();
            if parsed.is_none() {
                cx.errors.push(
                    subject
                        .error(Code::InvalidAddress, "spec.routerID", "not an IPv4 address")
                        .value(text)
                        .expected("an IPv4 address such as 10.0.0.1 (BGP identifiers are 32-bit)"),
                );
            }
            parsed
        });
    let node_selectors = cx.selectors(subject, "spec.nodeSelectors", spec.node_selectors.as_ref());
    if let Some(interface) = spec.interface.as_deref() {
        cx.single_line(subject, "spec.interface", interface, false);
    }
    if let Some(vrf) = spec.vrf.as_deref() {
        cx.single_line(subject, "spec.vrf", vrf, false);
    }
    // The session runs inside the VRF (bound to its device). What the check cannot see
    // from here is whether replies to clients that came in through the VRF leave
    // through it: say what the host needs (MetalLB #1983, #2326).
    if let Some(vrf) = spec.vrf.as_deref().filter(|v| !v.is_empty()) {
        cx.warnings.push(
            subject
                .warning(
                    Code::VrfReturnTraffic,
                    "spec.vrf",
                    crate::vrf_return_traffic_note(vrf),
                )
                .value(vrf),
        );
    }
    if let Some(password) = spec.password.as_deref() {
        cx.single_line(subject, "spec.password", password, true);
    }
    let password = password(cx, subject, object, snapshot);
    if spec.password.as_deref().is_none_or(str::is_empty)
        && let Some(secret) = password.as_deref()
    {
        cx.single_line(subject, "spec.passwordSecret.name", secret, true);
    }
    if let Some(profile) = spec.bfd_profile.as_deref().filter(|p| !p.is_empty())
        && cx.left_out_bfd.contains(profile)
    {
        cx.warnings.push(
            subject
                .warning(
                    Code::UnknownBfdProfile,
                    "spec.bfdProfile",
                    format!("BFDProfile {profile:?} is invalid and left out: this session runs without BFD until it is fixed"),
                )
                .value(profile),
        );
    } else if let Some(profile) = spec.bfd_profile.as_deref().filter(|p| !p.is_empty())
        && !bfd_names.contains(profile)
    {
        cx.errors.push(unknown_reference(
            subject,
            Code::UnknownBfdProfile,
            "spec.bfdProfile".into(),
            "BFDProfile",
            profile,
            bfd_names.iter(),
        ));
    }
    let peer = Peer {
        name: subject.name.to_string(),
        my_asn: spec.my_asn,
        peer_asn: peer_asn?,
        address: address?,
        source_address,
        port,
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors,
        password,
        bfd_profile: spec.bfd_profile.clone().filter(|p| !p.is_empty()),
        graceful_restart: spec.enable_graceful_restart.unwrap_or(false),
        ebgp_multihop: spec.ebgp_multi_hop.unwrap_or(false),
        vrf: spec.vrf.clone().filter(|v| !v.is_empty()),
        dual_stack_address_family: spec.dual_stack_address_family.unwrap_or(false),
        local_asn: spec.local_asn.filter(|a| *a != 0),
    };
    echo_checks(cx, subject, &peer, snapshot);
    // MetalLB refuses ebgpMultiHop when peerASN equals myASN; with dynamicASN: internal
    // it accepts it (the session is iBGP, which needs no multihop): a warning here.
    if peer.ebgp_multihop && peer.peer_asn == PeerAsn::DynamicInternal {
        cx.warnings.push(
            subject
                .warning(
                    Code::MultiHopIbgp,
                    "spec.ebgpMultiHop",
                    "ebgpMultiHop has no effect on an iBGP session (dynamicASN: internal)",
                )
                .value(true)
                .expected("leave ebgpMultiHop out for iBGP peers"),
        );
    } else if peer.ebgp_multihop && peer.is_ibgp() {
        cx.errors.push(
            subject
                .error(Code::MultiHopIbgp, "spec.ebgpMultiHop", "ebgpMultiHop is set on an iBGP session (peer AS = my AS)")
                .value(true)
                .expected("ebgpMultiHop only with a peerASN different from myASN (or dynamicASN: external)"),
        );
    }
    Some(peer)
}

/// BFD echo mode where the Echo function cannot run (RFC 5883 §3: not on multihop
/// sessions; oxlb: IPv4 single hop only). MetalLB accepts these, so they are warnings
/// naming the peer and the fix; the session runs asynchronous BFD.
fn echo_checks(cx: &mut Context, subject: &Subject<'_>, peer: &Peer, snapshot: &Snapshot) {
    let Some(profile) = peer.bfd_profile.as_deref() else {
        return;
    };
    let echo = snapshot.bfd_profiles.iter().any(|p| {
        p.object.metadata.name.as_deref() == Some(profile) && p.object.spec.echo_mode == Some(true)
    });
    if !echo {
        return;
    }
    if peer.ebgp_multihop {
        cx.warnings.push(
            subject
                .warning(
                    Code::BfdEchoMultihop,
                    "spec.bfdProfile",
                    format!("BGPPeer {:?} is ebgpMultiHop but its BFDProfile {profile:?} has echoMode: BFD echo runs only on single-hop sessions (RFC 5883 §3), so this session runs asynchronous BFD without echo", peer.name),
                )
                .value(profile)
                .expected("a BFDProfile without echoMode for this peer, or no ebgpMultiHop if the router is on a directly connected subnet"),
        );
    } else if !matches!(peer.address, PeerAddress::Ip(IpAddr::V4(_)))
        && !matches!(peer.address, PeerAddress::Ip(IpAddr::V6(v6)) if !v6.is_unicast_link_local())
    {
        cx.warnings.push(
            subject
                .warning(
                    Code::BfdEchoUnsupported,
                    "spec.bfdProfile",
                    format!("BGPPeer {:?} peers over IPv6 link-local addresses but its BFDProfile {profile:?} has echoMode: routers do not forward packets with a link-local source (RFC 4291 §2.5.6), so echo packets cannot come back and this session runs asynchronous BFD without echo", peer.name),
                )
                .value(profile)
                .expected("a BFDProfile without echoMode for this peer, or a peer address that is IPv4 or IPv6 global/unique-local"),
        );
    }
}

fn duration_error(
    subject: &Subject<'_>,
    field: &str,
    text: &str,
    reason: &str,
) -> crate::Diagnostic {
    subject
        .error(
            Code::InvalidDuration,
            field,
            format!("not a duration: {reason}"),
        )
        .value(text)
        .expected("a duration such as 90s, 1m30s or 500ms")
}

/// RFC 4271 §4.2 / §10 and MetalLB: when one of hold and keepalive is given the other is
/// derived (×3 or ÷3); hold is 0 or ≥ 3 s; keepalive ≤ hold. Defaults 90 s / 30 s.
fn timers(
    cx: &mut Context,
    subject: &Subject<'_>,
    hold_written: Option<&str>,
    keepalive_written: Option<&str>,
) -> (Duration, Duration) {
    let mut parse = |field: &str, text: Option<&str>| -> Option<Option<Duration>> {
        match text {
            None => Some(None),
            Some(t) => match parse::parse_duration(t) {
                Ok(d) => Some(Some(d)),
                Err(reason) => {
                    cx.errors.push(duration_error(subject, field, t, &reason));
                    None
                }
            },
        }
    };
    let (Some(hold_given), Some(keepalive_given)) = (
        parse("spec.holdTime", hold_written),
        parse("spec.keepaliveTime", keepalive_written),
    ) else {
        return (DEFAULT_HOLD, DEFAULT_HOLD / 3);
    };
    let (hold, keepalive) = match (hold_given, keepalive_given) {
        (None, None) => (DEFAULT_HOLD, DEFAULT_HOLD / 3),
        (Some(h), None) => (h, h / 3),
        (None, Some(k)) => (k.saturating_mul(3), k),
        (Some(h), Some(k)) => (h, k),
    };
    let hold_field = if hold_given.is_some() {
        "spec.holdTime"
    } else {
        "spec.keepaliveTime"
    };
    let hold_text = match hold_written {
        Some(text) => text.to_string(),
        None => format!("keepaliveTime {keepalive:?} × 3 = {hold:?}"),
    };
    if hold != Duration::ZERO && hold < MIN_HOLD {
        cx.errors.push(
            subject
                .error(
                    Code::HoldTime,
                    hold_field,
                    "hold time must be 0 or at least 3s (RFC 4271 §4.2)",
                )
                .value(hold_text.clone())
                .expected(
                    "0s (no keepalives) or 3s and more; with only keepaliveTime set, at least 1s",
                ),
        );
    } else if hold > MAX_HOLD {
        cx.errors.push(
            subject
                .error(
                    Code::HoldTime,
                    hold_field,
                    "hold time does not fit BGP's 16-bit field",
                )
                .value(hold_text)
                .expected("at most 65535s"),
        );
    }
    if keepalive > hold {
        cx.errors.push(
            subject
                .error(
                    Code::KeepaliveTime,
                    "spec.keepaliveTime",
                    format!("keepalive time is greater than the hold time {hold:?}"),
                )
                .value(format!("{keepalive:?}"))
                .expected(format!(
                    "at most the hold time ({hold:?}); usually a third of it"
                )),
        );
    }
    (hold, keepalive)
}

/// `password` or the `password` key of the basic-auth Secret `passwordSecret` names.
fn password(
    cx: &mut Context,
    subject: &Subject<'_>,
    object: &Sourced<BGPPeer>,
    snapshot: &Snapshot,
) -> Option<String> {
    let spec = &object.object.spec;
    let inline = spec.password.clone().filter(|p| !p.is_empty());
    let secret_ref = spec
        .password_secret
        .as_ref()
        .filter(|r| r.name.as_deref().is_some_and(|n| !n.is_empty()));
    let Some(reference) = secret_ref else {
        return inline;
    };
    if inline.is_some() {
        cx.errors.push(
            subject
                .error(
                    Code::PasswordBoth,
                    "spec.password",
                    "password and passwordSecret are both set",
                )
                .expected("only one of them (passwordSecret is preferred)"),
        );
        return None;
    }
    let name = reference.name.clone().unwrap_or_default();
    let namespace = reference
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| snapshot.namespace.clone());
    let found: Option<&Secret> = snapshot.secrets.iter().map(|s| &s.object).find(|s| {
        s.metadata.name.as_deref() == Some(name.as_str())
            && s.metadata
                .namespace
                .as_deref()
                .unwrap_or(&snapshot.namespace)
                == namespace
    });
    let Some(secret) = found else {
        let known: Vec<String> = snapshot
            .secrets
            .iter()
            .filter(|s| {
                s.object
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or(&snapshot.namespace)
                    == namespace
            })
            .filter_map(|s| s.object.metadata.name.clone())
            .collect();
        cx.errors.push(unknown_reference(
            subject,
            Code::UnknownSecret,
            "spec.passwordSecret.name".into(),
            &format!("Secret in namespace {namespace}"),
            &name,
            known.iter(),
        ));
        return None;
    };
    if let Some(kind) = secret.type_.as_deref()
        && kind != "kubernetes.io/basic-auth"
    {
        cx.errors.push(
            subject
                .error(
                    Code::SecretType,
                    "spec.passwordSecret.name",
                    format!("Secret {name:?} has type {kind:?}"),
                )
                .value(&name)
                .expected("a Secret of type kubernetes.io/basic-auth"),
        );
        return None;
    }
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let from_string_data = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get("password"))
        .cloned();
    match from_string_data.or(from_data) {
        Some(p) => Some(p),
        None => {
            cx.errors.push(
                subject
                    .error(
                        Code::SecretKeyMissing,
                        "spec.passwordSecret.name",
                        format!("Secret {name:?} has no key \"password\""),
                    )
                    .value(&name)
                    .expected("a basic-auth Secret with data.password (or stringData.password)"),
            );
            None
        }
    }
}
