//! `IPAddressPool` objects: addresses parsed into ranges, no overlap anywhere (checked in
//! O(n log n) by sorting every range of every pool once), service allocation checked.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use oxlb_api::IPAddressPool;

use super::parse::{self, AddressError};
use super::{Context, Subject};
use crate::diagnostic::{Code, Origin};
use crate::model::{AddressRange, Pool, ServiceAllocation};
use crate::snapshot::Sourced;

/// A valid pool and the CIDRs its addresses are made of, one group per `addresses`
/// entry (a range is several CIDRs; MetalLB's aggregation rule looks at each entry).
pub(super) struct PoolInfo {
    pub pool: Pool,
    pub cidrs: Vec<Vec<IpNet>>,
    pub origin: Origin,
}

pub(super) struct Pools {
    pub valid: BTreeMap<String, PoolInfo>,
    /// Every pool name, valid or not: a reference to an invalid pool is not "unknown".
    pub names: BTreeSet<String>,
}

/// One range, remembered for the overlap sweep.
struct Placed<'a> {
    range: AddressRange,
    pool: &'a str,
    index: usize,
    written: &'a str,
    origin: &'a Origin,
    /// Position in input order: the later of two overlapping entries gets the error.
    order: usize,
}

pub(super) fn build(cx: &mut Context, objects: &[Sourced<IPAddressPool>]) -> Pools {
    let mut seen = BTreeMap::new();
    let mut valid = BTreeMap::new();
    let mut placed = Vec::new();
    let mut broken = BTreeSet::new();
    for object in objects {
        let Some(subject) = cx.claim_name(
            "IPAddressPool",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        let spec = &object.object.spec;
        let errors_before = cx.errors.len();
        if spec.addresses.is_empty() {
            cx.errors.push(
                subject
                    .error(Code::NoAddresses, "spec.addresses", "the pool has no addresses")
                    .expected("at least one CIDR (192.168.10.0/24) or range (192.168.10.10-192.168.10.20)"),
            );
        }
        let mut ranges = Vec::new();
        let mut cidrs = Vec::new();
        for (index, written) in spec.addresses.iter().enumerate() {
            match parse::parse_addresses(written) {
                Ok(parsed) => {
                    ranges.push(parsed.range);
                    cidrs.push(parsed.cidrs);
                    let order = placed.len();
                    placed.push(Placed {
                        order,
                        range: parsed.range,
                        pool: subject.name,
                        index,
                        written,
                        origin: subject.origin,
                    });
                }
                Err(e) => cx.errors.push(address_error(&subject, index, written, e)),
            }
        }
        let service_allocation = service_allocation(cx, &subject, &object.object);
        if cx.errors.len() != errors_before {
            broken.insert(subject.name.to_string());
            continue;
        }
        ranges.sort();
        valid.insert(
            subject.name.to_string(),
            PoolInfo {
                pool: Pool {
                    name: subject.name.to_string(),
                    ranges,
                    addresses_as_written: spec.addresses.clone(),
                    auto_assign: spec.auto_assign.unwrap_or(true),
                    avoid_buggy_ips: spec.avoid_buggy_ips.unwrap_or(false),
                    service_allocation,
                    labels: object.object.metadata.labels.clone().unwrap_or_default(),
                },
                cidrs,
                origin: subject.origin.clone(),
            },
        );
    }
    // The pool that comes later (objects arrive oldest first) loses an overlap and is
    // left out; the older one keeps its addresses.
    for loser in check_overlaps(cx, &mut placed) {
        valid.remove(&loser);
    }
    Pools {
        valid,
        names: seen.into_keys().collect(),
    }
}

fn address_error(
    subject: &Subject<'_>,
    index: usize,
    written: &str,
    e: AddressError,
) -> crate::Diagnostic {
    let field = format!("spec.addresses[{index}]");
    let (code, message, expected) = match e {
        AddressError::StartAfterEnd => (
            Code::RangeStartAfterEnd,
            "the range starts after it ends".to_string(),
            "START-END with START not greater than END",
        ),
        AddressError::MixedFamily => (
            Code::MixedFamilyRange,
            "the range mixes an IPv4 and an IPv6 address".to_string(),
            "both ends IPv4 or both IPv6",
        ),
        AddressError::Syntax(reason) => (
            Code::InvalidAddress,
            reason,
            "a CIDR (192.168.10.0/24, fd00::/120) or a range (192.168.10.10-192.168.10.20)",
        ),
    };
    subject
        .error(code, field, message)
        .value(written)
        .expected(expected)
}

fn service_allocation(
    cx: &mut Context,
    subject: &Subject<'_>,
    object: &IPAddressPool,
) -> Option<ServiceAllocation> {
    let allocation = object.spec.service_allocation.as_ref()?;
    let written = allocation.priority.unwrap_or(0);
    // MetalLB accepts any int here; its allocator orders only positive priorities
    // (lower first) and puts 0 last, and leaves a negative one in no defined place.
    // oxlb gives a negative priority the place of "unset", the one MetalLB documents.
    let priority = match u32::try_from(written) {
        Ok(p) => p,
        Err(_) => {
            let d = subject
                .warning(
                    Code::InvalidPriority,
                    "spec.serviceAllocation.priority",
                    if written < 0 {
                        "a negative priority has no defined order in MetalLB; oxlb uses this pool last, as if unset"
                    } else {
                        "priority larger than 4294967295; oxlb uses this pool last, as if unset"
                    },
                )
                .value(written)
                .expected("0 (unset, used last) or a positive number; lower is preferred");
            cx.warnings.push(d);
            0
        }
    };
    let namespaces: Vec<String> = allocation.namespaces.iter().flatten().cloned().collect();
    cx.no_repeats(
        subject,
        "spec.serviceAllocation.namespaces",
        "namespace",
        &namespaces,
    );
    let namespace_selectors = cx.selectors(
        subject,
        "spec.serviceAllocation.namespaceSelectors",
        allocation.namespace_selectors.as_ref(),
    );
    let service_selectors = cx.selectors(
        subject,
        "spec.serviceAllocation.serviceSelectors",
        allocation.service_selectors.as_ref(),
    );
    Some(ServiceAllocation {
        priority,
        namespaces: namespaces.into_iter().collect(),
        namespace_selectors,
        service_selectors,
    })
}

/// Sorts every range by start and sweeps once, keeping the range reaching furthest so
/// far: any range starting at or before that end overlaps it.
fn check_overlaps(cx: &mut Context, placed: &mut [Placed<'_>]) -> BTreeSet<String> {
    let mut losers = BTreeSet::new();
    placed.sort_by_key(|p| p.range);
    let mut furthest: Option<usize> = None;
    for i in 0..placed.len() {
        if let Some(f) = furthest {
            let (mut earlier, mut current) = (&placed[f], &placed[i]);
            if earlier.order > current.order {
                std::mem::swap(&mut earlier, &mut current);
            }
            if earlier.range.overlaps(&current.range) {
                losers.insert(current.pool.to_string());
                let subject = Subject {
                    kind: "IPAddressPool",
                    name: current.pool,
                    origin: current.origin,
                };
                let place = if earlier.pool == current.pool {
                    format!("its own spec.addresses[{}]", earlier.index)
                } else {
                    format!(
                        "IPAddressPool {:?} spec.addresses[{}]{}",
                        earlier.pool,
                        earlier.index,
                        earlier.origin.at_suffix()
                    )
                };
                cx.errors.push(
                    subject
                        .error(
                            Code::Overlap,
                            format!("spec.addresses[{}]", current.index),
                            format!("overlaps {:?} in {place}", earlier.written),
                        )
                        .value(current.written)
                        .expected("addresses that no other range of any pool contains"),
                );
            }
        }
        let reaches_further = match furthest {
            Some(f) => {
                placed[f].range.family() != placed[i].range.family()
                    || placed[i].range.end() > placed[f].range.end()
            }
            None => true,
        };
        if reaches_further {
            furthest = Some(i);
        }
    }
    losers
}
