//! `L2Advertisement` and `BGPAdvertisement` objects: pool and peer references resolved,
//! communities resolved from aliases, aggregation lengths checked against the pools,
//! and LOCAL_PREF conflicts between advertisements of one pool found.

use std::collections::{BTreeMap, BTreeSet};

use oxlb_api::{BGPAdvertisement, L2Advertisement, LabelSelector as ApiSelector};

use super::peers::Peers;
use super::pools::Pools;
use super::{Context, Subject, parse, unknown_reference};
use crate::diagnostic::{Code, Diagnostic, Origin, Severity};
use crate::model::{self, BgpAdvertisement, Community, Family};
use crate::selector::{LabelSelector, any_matches};

/// An unknown reference MetalLB ignores: the same text, as a warning saying so.
fn missing_reference(mut d: Diagnostic) -> Diagnostic {
    d.severity = Severity::Warning;
    d.message = format!("{}; ignored, as MetalLB does", d.message);
    d
}
use crate::snapshot::Sourced;

/// The pools an advertisement applies to: both lists empty = every pool; otherwise
/// the named ones plus those the selectors match.
fn select_pools(
    cx: &mut Context,
    subject: &Subject<'_>,
    pools: &Pools,
    names: Option<&Vec<String>>,
    pool_selectors: Option<&Vec<ApiSelector>>,
) -> BTreeSet<String> {
    let names: Vec<&String> = names.into_iter().flatten().collect();
    cx.no_repeats(
        subject,
        "spec.ipAddressPools",
        "pool",
        names.iter().copied(),
    );
    let parsed = cx.selectors(subject, "spec.ipAddressPoolSelectors", pool_selectors);
    let has_selectors = pool_selectors.is_some_and(|s| !s.is_empty());
    if names.is_empty() && !has_selectors {
        return pools.valid.keys().cloned().collect();
    }
    let mut selected = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if pools.names.contains(*name) {
            if pools.valid.contains_key(*name) {
                selected.insert((*name).clone());
            }
        } else {
            // MetalLB skips a name no pool has (the pool may be created later, or was
            // deleted while advertisements still name it): a warning, not an error.
            cx.warnings.push(missing_reference(unknown_reference(
                subject,
                Code::UnknownPool,
                format!("spec.ipAddressPools[{i}]"),
                "IPAddressPool",
                name,
                pools.names.iter(),
            )));
        }
    }
    for selector in &parsed {
        for (name, info) in &pools.valid {
            if selector.matches(&info.pool.labels) {
                selected.insert(name.clone());
            }
        }
    }
    if selected.is_empty() && names.is_empty() {
        cx.warnings.push(subject.warning(
            Code::SelectsNothing,
            "spec.ipAddressPoolSelectors",
            "the selectors match no IPAddressPool, so this advertisement announces nothing",
        ));
    }
    selected
}

pub(super) fn build_l2(
    cx: &mut Context,
    objects: &[Sourced<L2Advertisement>],
    pools: &Pools,
) -> BTreeMap<String, model::L2Advertisement> {
    let mut seen = BTreeMap::new();
    let mut out = BTreeMap::new();
    for object in objects {
        let Some(subject) = cx.claim_name(
            "L2Advertisement",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        let spec = &object.object.spec;
        let before = cx.errors.len();
        let selected = select_pools(
            cx,
            &subject,
            pools,
            spec.ip_address_pools.as_ref(),
            spec.ip_address_pool_selectors.as_ref(),
        );
        let node_selectors =
            cx.selectors(&subject, "spec.nodeSelectors", spec.node_selectors.as_ref());
        let interfaces: Vec<String> = spec.interfaces.iter().flatten().cloned().collect();
        for (i, interface) in interfaces.iter().enumerate() {
            // MetalLB accepts any string here; a name Linux cannot have (IFNAMSIZ is 16
            // with the NUL) simply matches no interface. Accepted, with a warning.
            if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
                cx.warnings.push(
                    subject
                        .warning(
                            Code::InvalidName,
                            format!("spec.interfaces[{i}]"),
                            "not a Linux interface name: no interface will match it",
                        )
                        .value(interface)
                        .expected("1 to 15 characters without '/' or spaces, such as eth0"),
                );
            }
        }
        let service_selectors = cx.selectors(
            &subject,
            "spec.serviceSelectors",
            spec.service_selectors.as_ref(),
        );
        let mut preferred_nodes = Vec::new();
        for (i, p) in spec.preferred_node_selectors.iter().flatten().enumerate() {
            match parse::parse_selector(&p.preference) {
                Ok(selector) => preferred_nodes.push(model::PreferredNode {
                    weight: p.weight,
                    selector,
                }),
                Err(reason) => cx.errors.push(
                    subject
                        .error(
                            Code::InvalidSelector,
                            format!("spec.preferredNodeSelectors[{i}].preference"),
                            reason,
                        )
                        .expected("a Kubernetes label selector (matchLabels / matchExpressions)"),
                ),
            }
        }
        if cx.errors.len() == before {
            out.insert(
                subject.name.to_string(),
                model::L2Advertisement {
                    name: subject.name.to_string(),
                    pools: selected,
                    node_selectors,
                    interfaces,
                    service_selectors,
                    preferred_nodes,
                },
            );
        }
    }
    out
}

pub(super) fn build_bgp(
    cx: &mut Context,
    objects: &[Sourced<BGPAdvertisement>],
    pools: &Pools,
    peers: &Peers,
    aliases: &BTreeMap<String, Community>,
    bfd_profiles: &BTreeMap<String, model::BfdProfile>,
    nodes: &[BTreeMap<String, String>],
) -> BTreeMap<String, BgpAdvertisement> {
    let mut seen = BTreeMap::new();
    let mut out = BTreeMap::new();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    let alias_names: Vec<String> = aliases.keys().cloned().collect();
    for object in objects {
        let Some(subject) = cx.claim_name(
            "BGPAdvertisement",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        let spec = &object.object.spec;
        let before = cx.errors.len();
        let v4 = bounded_length(
            cx,
            &subject,
            "aggregationLength",
            spec.aggregation_length,
            32,
        );
        let v6 = bounded_length(
            cx,
            &subject,
            "aggregationLengthV6",
            spec.aggregation_length_v6,
            128,
        );
        cx.no_repeats(
            &subject,
            "spec.communities",
            "community",
            spec.communities.iter().flatten(),
        );
        cx.no_repeats(&subject, "spec.peers", "peer", spec.peers.iter().flatten());
        let mut communities = BTreeSet::new();
        for (i, text) in spec.communities.iter().flatten().enumerate() {
            let field = format!("spec.communities[{i}]");
            if let Some(c) = aliases.get(text) {
                communities.insert(*c);
            } else if text.contains(':') {
                match parse::parse_community(text) {
                    Ok(c) => {
                        communities.insert(c);
                    }
                    Err(reason) => cx.errors.push(
                        subject
                            .error(Code::InvalidCommunity, field, format!("invalid community: {reason}"))
                            .value(text)
                            .expected("A:B with 16-bit numbers (65535:65282), large:A:B:C, or a Community alias name"),
                    ),
                }
            } else {
                cx.errors.push(unknown_reference(
                    &subject,
                    Code::UnknownCommunity,
                    field,
                    "Community alias",
                    text,
                    alias_names.iter(),
                ));
            }
        }
        // A name no BGPPeer has is kept (it matches no session, so an advertisement
        // naming only missing peers announces to none, as in MetalLB) and warned about.
        let mut peer_names = BTreeSet::new();
        for (i, name) in spec.peers.iter().flatten().enumerate() {
            if !peers.names.contains(name) {
                cx.warnings.push(missing_reference(unknown_reference(
                    &subject,
                    Code::UnknownPeer,
                    format!("spec.peers[{i}]"),
                    "BGPPeer",
                    name,
                    peers.names.iter(),
                )));
            }
            peer_names.insert(name.clone());
        }
        let selected = select_pools(
            cx,
            &subject,
            pools,
            spec.ip_address_pools.as_ref(),
            spec.ip_address_pool_selectors.as_ref(),
        );
        let node_selectors =
            cx.selectors(&subject, "spec.nodeSelectors", spec.node_selectors.as_ref());
        let service_selectors = cx.selectors(
            &subject,
            "spec.serviceSelectors",
            spec.service_selectors.as_ref(),
        );
        // MetalLB: an advertisement for some Services announces their IPs, not an
        // aggregate that would carry other Services' addresses too.
        if !service_selectors.is_empty() {
            for (field, written, default) in [
                ("spec.aggregationLength", spec.aggregation_length, 32),
                ("spec.aggregationLengthV6", spec.aggregation_length_v6, 128),
            ] {
                if written.is_some_and(|w| w != default) {
                    cx.errors.push(
                        subject
                            .error(
                                Code::AggregationLength,
                                field,
                                "serviceSelectors and a non-default aggregation length are mutually exclusive",
                            )
                            .value(written.unwrap_or(default))
                            .expected(format!("{default} (or leave it out), or no serviceSelectors")),
                    );
                }
            }
        }
        if cx.errors.len() != before {
            continue;
        }
        // MetalLB: an aggregation length shorter than an `addresses` entry's widest CIDR
        // would announce addresses outside the pool. A range is several CIDRs; only
        // the widest of them (the shortest prefix) bounds the length, as MetalLB's
        // test "aggregation length by range" fixes (3.3.3.2-3.3.3.254 with /26 is valid).
        'pools: for pool_name in &selected {
            let Some(info) = pools.valid.get(pool_name) else {
                continue;
            };
            for (entry, cidrs) in info.cidrs.iter().enumerate() {
                let Some(widest) = cidrs.iter().min_by_key(|c| c.prefix_len()) else {
                    continue;
                };
                let (length, field) = match widest {
                    ipnet::IpNet::V4(_) => (v4, "spec.aggregationLength"),
                    ipnet::IpNet::V6(_) => (v6, "spec.aggregationLengthV6"),
                };
                if widest.prefix_len() > length {
                    let written = info
                        .pool
                        .addresses_as_written
                        .get(entry)
                        .map(String::as_str)
                        .unwrap_or_default();
                    cx.errors.push(
                        subject
                            .error(
                                Code::AggregationLength,
                                field,
                                format!("IPAddressPool {pool_name:?} entry {written:?} is no wider than {widest}, more specific than the aggregation length"),
                            )
                            .value(length)
                            .expected(format!("at least {} for this pool", widest.prefix_len())),
                    );
                    break 'pools;
                }
            }
        }
        // MetalLB (validateConfig): BFD echo mode cannot run on IPv6 sessions, so an
        // advertisement may not bring IPv6 prefixes to a peer whose profile has echo.
        let has_v6 = selected.iter().any(|p| {
            pools
                .valid
                .get(p)
                .is_some_and(|i| i.pool.ranges.iter().any(|r| r.family() == Family::V6))
        });
        if has_v6 {
            let echo_peer = peers.valid.values().find(|p| {
                (peer_names.is_empty() || peer_names.contains(&p.name))
                    && p.bfd_profile
                        .as_ref()
                        .and_then(|b| bfd_profiles.get(b))
                        .is_some_and(|b| b.echo_mode)
            });
            if let Some(peer) = echo_peer {
                cx.errors.push(
                    subject
                        .error(
                            Code::BfdEchoIpv6,
                            "spec.peers",
                            format!("announces IPv6 prefixes to BGPPeer {:?}, whose BFDProfile {:?} has echoMode", peer.name, peer.bfd_profile.clone().unwrap_or_default()),
                        )
                        .expected("a BFDProfile without echoMode for that peer, or only IPv4 pools in this advertisement"),
                );
                continue;
            }
        }
        // RFC 4271 §5.1.5: LOCAL_PREF goes to internal peers only.
        if let Some(pref) = spec.local_pref.filter(|p| *p != 0) {
            let mut targets = peers
                .valid
                .values()
                .filter(|p| peer_names.is_empty() || peer_names.contains(&p.name))
                .peekable();
            if targets.peek().is_some() && targets.all(|p| !p.is_ibgp()) {
                cx.warnings.push(
                    subject
                        .warning(
                            Code::Ignored,
                            "spec.localPref",
                            "every peer of this advertisement is eBGP, and LOCAL_PREF is only sent to iBGP peers (RFC 4271 §5.1.5)",
                        )
                        .value(pref),
                );
            }
        }
        let weighted_ecmp = super::weighted_ecmp::weighted_ecmp(
            cx,
            &subject,
            object.object.metadata.annotations.as_ref(),
        );
        origins.insert(subject.name.to_string(), subject.origin.clone());
        out.insert(
            subject.name.to_string(),
            BgpAdvertisement {
                weighted_ecmp,
                name: subject.name.to_string(),
                pools: selected,
                aggregation_length_v4: v4,
                aggregation_length_v6: v6,
                local_pref: spec.local_pref.filter(|p| *p != 0),
                communities,
                peers: peer_names,
                node_selectors,
                service_selectors,
            },
        );
    }
    let order: Vec<String> = objects
        .iter()
        .filter_map(|o| o.object.metadata.name.clone())
        .collect();
    local_pref_conflicts(cx, &mut out, &order, &origins, pools, nodes);
    out
}

fn bounded_length(
    cx: &mut Context,
    subject: &Subject<'_>,
    field: &str,
    value: Option<i32>,
    max: u8,
) -> u8 {
    let v = value.unwrap_or(i32::from(max));
    match u8::try_from(v) {
        Ok(length) if (1..=max).contains(&length) => length,
        _ => {
            cx.errors.push(
                subject
                    .error(
                        Code::AggregationLength,
                        format!("spec.{field}"),
                        "aggregation length out of range",
                    )
                    .value(v)
                    .expected(format!("1..{max}")),
            );
            max
        }
    }
}

/// MetalLB refuses two advertisements that would send the same prefix (same pool, same
/// aggregation length) to a common peer from a common node with different LOCAL_PREF
/// (an advertisement without localPref counts as 0): the router would get two
/// contradicting routes. The later advertisement (in `advertisements`' order, oldest
/// first) loses and is left out. Nodes: MetalLB intersects the Node objects each
/// advertisement's nodeSelectors match; without Node objects (files) two advertisements
/// share a node when their nodeSelectors are the same.
fn local_pref_conflicts(
    cx: &mut Context,
    advertisements: &mut BTreeMap<String, BgpAdvertisement>,
    order: &[String],
    origins: &BTreeMap<String, Origin>,
    pools: &Pools,
    nodes: &[BTreeMap<String, String>],
) {
    let node_set = |a: &BgpAdvertisement| -> Vec<usize> {
        (0..nodes.len())
            .filter(|i| any_matches(&a.node_selectors, &nodes[*i]))
            .collect()
    };
    let share_node = |a: &BgpAdvertisement, b: &BgpAdvertisement| -> bool {
        if nodes.is_empty() {
            let canon = |x: &BgpAdvertisement| -> Vec<LabelSelector> {
                let mut v: Vec<LabelSelector> = x
                    .node_selectors
                    .iter()
                    .map(parse::canonical_selector)
                    .collect();
                v.sort();
                v
            };
            canon(a) == canon(b)
        } else {
            let sa = node_set(a);
            node_set(b).iter().any(|n| sa.contains(n))
        }
    };
    let mut kept: Vec<String> = Vec::new();
    for name in order {
        let Some(b) = advertisements.get(name) else {
            continue;
        };
        let conflict = kept
            .iter()
            .filter_map(|k| advertisements.get(k))
            .find_map(|a| {
                // MetalLB skips advertisements limited by serviceSelectors: which
                // Services they carry is not known from the configuration.
                if a.local_pref == b.local_pref
                    || !a.service_selectors.is_empty()
                    || !b.service_selectors.is_empty()
                {
                    return None;
                }
                let common_peer =
                    a.peers.is_empty() || b.peers.is_empty() || !a.peers.is_disjoint(&b.peers);
                if !common_peer || !share_node(a, b) {
                    return None;
                }
                a.pools
                    .intersection(&b.pools)
                    .find(|pool| {
                        let families: BTreeSet<Family> = pools
                            .valid
                            .get(*pool)
                            .map(|p| p.pool.ranges.iter().map(|r| r.family()).collect())
                            .unwrap_or_default();
                        let v4_same = a.aggregation_length_v4 == b.aggregation_length_v4;
                        let v6_same = a.aggregation_length_v6 == b.aggregation_length_v6;
                        (families.contains(&Family::V4) && v4_same)
                            || (families.contains(&Family::V6) && v6_same)
                    })
                    .map(|pool| (a.name.clone(), a.local_pref.unwrap_or(0), pool.clone()))
            });
        match conflict {
            None => kept.push(name.clone()),
            Some((winner, winner_pref, pool)) => {
                let origin = origins.get(name).cloned().unwrap_or_default();
                let subject = Subject {
                    kind: "BGPAdvertisement",
                    name,
                    origin: &origin,
                };
                let d: Diagnostic = subject
                    .error(
                        Code::LocalPrefConflict,
                        "spec.localPref",
                        format!(
                            "BGPAdvertisement {winner:?} (older) announces the same prefixes of IPAddressPool {pool:?} to the same peers from the same nodes with localPref {winner_pref}"
                        ),
                    )
                    .value(b.local_pref.unwrap_or(0))
                    .expected(format!(
                        "the same localPref ({winner_pref}), or a different aggregation length, peers or nodes"
                    ));
                cx.errors.push(d);
                advertisements.remove(name);
            }
        }
    }
}

/// Advice: a pool nobody announces hands out IPs that no one can reach.
pub(super) fn warn_unannounced(
    cx: &mut Context,
    pools: &Pools,
    l2: &BTreeMap<String, model::L2Advertisement>,
    bgp: &BTreeMap<String, BgpAdvertisement>,
    peers: &Peers,
) {
    let announced: BTreeSet<&String> = l2
        .values()
        .flat_map(|a| &a.pools)
        .chain(bgp.values().flat_map(|a| &a.pools))
        .collect();
    for (name, info) in &pools.valid {
        if !announced.contains(name) {
            let subject = Subject {
                kind: "IPAddressPool",
                name,
                origin: &info.origin,
            };
            cx.warnings.push(subject.warning(
                Code::NotAnnounced,
                "",
                "no L2Advertisement or BGPAdvertisement selects this pool: services get IPs from it that nobody announces",
            ));
        }
    }
    if !bgp.is_empty() && peers.valid.is_empty() && peers.names.is_empty() {
        let origin = Origin::default();
        let first = bgp.keys().next().cloned().unwrap_or_default();
        let subject = Subject {
            kind: "BGPAdvertisement",
            name: &first,
            origin: &origin,
        };
        cx.warnings.push(subject.warning(
            Code::NotAnnounced,
            "",
            "there are BGPAdvertisements but no BGPPeer to announce to",
        ));
    }
}
