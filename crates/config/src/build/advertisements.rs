//! `L2Advertisement` and `BGPAdvertisement` objects: pool and peer references resolved,
//! communities resolved from aliases, aggregation lengths checked against the pools,
//! and LOCAL_PREF conflicts between advertisements of one pool found.

use std::collections::{BTreeMap, BTreeSet};

use oxlb_api::{BGPAdvertisement, L2Advertisement, LabelSelector as ApiSelector};

use super::peers::Peers;
use super::pools::Pools;
use super::{Context, Subject, parse, unknown_reference};
use crate::diagnostic::{Code, Diagnostic, Origin};
use crate::model::{self, BgpAdvertisement, Community, Family};
use crate::selector::LabelSelector;
use crate::snapshot::Sourced;

fn selectors(
    cx: &mut Context,
    subject: &Subject<'_>,
    field: &str,
    list: Option<&Vec<ApiSelector>>,
) -> Vec<LabelSelector> {
    let mut out = Vec::new();
    for (i, s) in list.into_iter().flatten().enumerate() {
        match parse::parse_selector(s) {
            Ok(s) => out.push(s),
            Err(reason) => cx.errors.push(
                subject
                    .error(Code::InvalidSelector, format!("spec.{field}[{i}]"), reason)
                    .expected("a Kubernetes label selector (matchLabels / matchExpressions)"),
            ),
        }
    }
    out
}

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
    let parsed = selectors(cx, subject, "ipAddressPoolSelectors", pool_selectors);
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
            cx.errors.push(unknown_reference(
                subject,
                Code::UnknownPool,
                format!("spec.ipAddressPools[{i}]"),
                "IPAddressPool",
                name,
                pools.names.iter(),
            ));
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
        let node_selectors = selectors(cx, &subject, "nodeSelectors", spec.node_selectors.as_ref());
        let interfaces: Vec<String> = spec.interfaces.iter().flatten().cloned().collect();
        for (i, interface) in interfaces.iter().enumerate() {
            if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
                cx.errors.push(
                    subject
                        .error(
                            Code::InvalidName,
                            format!("spec.interfaces[{i}]"),
                            "not a Linux interface name",
                        )
                        .value(interface)
                        .expected("1 to 15 characters without '/' or spaces, such as eth0"),
                );
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
        let mut peer_names = BTreeSet::new();
        for (i, name) in spec.peers.iter().flatten().enumerate() {
            if peers.names.contains(name) {
                peer_names.insert(name.clone());
            } else {
                cx.errors.push(unknown_reference(
                    &subject,
                    Code::UnknownPeer,
                    format!("spec.peers[{i}]"),
                    "BGPPeer",
                    name,
                    peers.names.iter(),
                ));
            }
        }
        let selected = select_pools(
            cx,
            &subject,
            pools,
            spec.ip_address_pools.as_ref(),
            spec.ip_address_pool_selectors.as_ref(),
        );
        let node_selectors = selectors(cx, &subject, "nodeSelectors", spec.node_selectors.as_ref());
        if cx.errors.len() != before {
            continue;
        }
        // MetalLB: aggregating beyond a CIDR of the pool would announce addresses that
        // are not the pool's, so each CIDR must be at least as long as the aggregation.
        for pool_name in &selected {
            let Some(info) = pools.valid.get(pool_name) else {
                continue;
            };
            for cidr in &info.cidrs {
                let (length, field) = match cidr {
                    ipnet::IpNet::V4(_) => (v4, "spec.aggregationLength"),
                    ipnet::IpNet::V6(_) => (v6, "spec.aggregationLengthV6"),
                };
                if cidr.prefix_len() > length {
                    cx.errors.push(
                        subject
                            .error(
                                Code::AggregationLength,
                                field,
                                format!("IPAddressPool {pool_name:?} contains {cidr}, more specific than the aggregation length"),
                            )
                            .value(length)
                            .expected(format!("at least {} for this pool", cidr.prefix_len())),
                    );
                    break;
                }
            }
        }
        origins.insert(subject.name.to_string(), subject.origin.clone());
        out.insert(
            subject.name.to_string(),
            BgpAdvertisement {
                name: subject.name.to_string(),
                pools: selected,
                aggregation_length_v4: v4,
                aggregation_length_v6: v6,
                local_pref: spec.local_pref.filter(|p| *p != 0),
                communities,
                peers: peer_names,
                node_selectors,
            },
        );
    }
    local_pref_conflicts(cx, &out, &origins, pools);
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
/// aggregation length) to a common peer with different LOCAL_PREF: the router would get
/// two contradicting routes. Grouped by pool, so the work is linear in the references.
fn local_pref_conflicts(
    cx: &mut Context,
    advertisements: &BTreeMap<String, BgpAdvertisement>,
    origins: &BTreeMap<String, Origin>,
    pools: &Pools,
) {
    let mut by_pool: BTreeMap<&str, Vec<&BgpAdvertisement>> = BTreeMap::new();
    for adv in advertisements.values() {
        if adv.local_pref.is_some() {
            for pool in &adv.pools {
                by_pool.entry(pool).or_default().push(adv);
            }
        }
    }
    let mut reported = BTreeSet::new();
    for (pool, advs) in by_pool {
        let families: BTreeSet<Family> = pools
            .valid
            .get(pool)
            .map(|p| p.pool.ranges.iter().map(|r| r.family()).collect())
            .unwrap_or_default();
        for (i, a) in advs.iter().enumerate() {
            for b in &advs[i + 1..] {
                let same_prefix = (families.contains(&Family::V4)
                    && a.aggregation_length_v4 == b.aggregation_length_v4)
                    || (families.contains(&Family::V6)
                        && a.aggregation_length_v6 == b.aggregation_length_v6);
                let common_peer =
                    a.peers.is_empty() || b.peers.is_empty() || !a.peers.is_disjoint(&b.peers);
                if a.local_pref != b.local_pref
                    && same_prefix
                    && common_peer
                    && reported.insert((a.name.clone(), b.name.clone()))
                {
                    let origin = origins.get(&b.name).cloned().unwrap_or_default();
                    let subject = Subject {
                        kind: "BGPAdvertisement",
                        name: &b.name,
                        origin: &origin,
                    };
                    let d: Diagnostic = subject
                        .error(
                            Code::LocalPrefConflict,
                            "spec.localPref",
                            format!(
                                "BGPAdvertisement {:?} announces the same prefixes of IPAddressPool {pool:?} to the same peers with localPref {}",
                                a.name,
                                a.local_pref.unwrap_or_default()
                            ),
                        )
                        .value(b.local_pref.unwrap_or_default())
                        .expected(format!(
                            "the same localPref ({}), or a different aggregation length or peers",
                            a.local_pref.unwrap_or_default()
                        ));
                    cx.errors.push(d);
                }
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
            let origin = Origin::default();
            let subject = Subject {
                kind: "IPAddressPool",
                name,
                origin: &origin,
            };
            let _ = info;
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
