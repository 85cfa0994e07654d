//! One validation pass, from a [`Snapshot`] to the [`Config`] of its valid objects and
//! every error; [`crate::build_config`] (quarantine) runs it. No I/O, no clock: the controller, the speakers and
//! `oxlb check` all call it on the same objects and get the same answer.
//!
//! Each kind has its own module; they run in dependency order (communities and BFD
//! profiles before the peers and advertisements that name them) and every module keeps
//! going after an error so that one run reports everything.

mod advertisements;
mod bfd;
mod communities;
pub mod parse;
mod peers;
mod pools;
mod weighted_ecmp;

pub use weighted_ecmp::ANNOTATION as WEIGHTED_ECMP_ANNOTATION;

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Code, Diagnostic, Origin};
use crate::model::Config;
use crate::schema::nearest;
use crate::snapshot::{Snapshot, Sourced};

/// One pass over the objects as given: the config of the valid ones, every error (each
/// naming the object it is about) and the warnings. [`crate::build_config`] runs it
/// again after leaving out or rolling back the objects with errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pass {
    pub config: Config,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Validates every object of the snapshot and fills MetalLB's defaults. `left_out`:
/// BFDProfile names left out by quarantine (a peer naming one keeps its session,
/// without BFD, instead of falling with it).
pub(crate) fn build_pass(snapshot: &Snapshot, left_out_bfd: &BTreeSet<String>) -> Pass {
    let mut cx = Context {
        errors: Vec::new(),
        warnings: snapshot.warnings.clone(),
        left_out_bfd: left_out_bfd.clone(),
    };
    let aliases = communities::build(&mut cx, &snapshot.communities);
    let bfd_profiles = bfd::build(&mut cx, &snapshot.bfd_profiles);
    let pools = pools::build(&mut cx, &snapshot.ip_address_pools);
    let peers = peers::build(&mut cx, snapshot);
    let l2 = advertisements::build_l2(&mut cx, &snapshot.l2_advertisements, &pools);
    let node_labels: Vec<BTreeMap<String, String>> = snapshot
        .nodes
        .iter()
        .map(|n| n.object.metadata.labels.clone().unwrap_or_default())
        .collect();
    let bgp = advertisements::build_bgp(
        &mut cx,
        &snapshot.bgp_advertisements,
        &pools,
        &peers,
        &aliases,
        &bfd_profiles,
        &node_labels,
    );
    advertisements::warn_unannounced(&mut cx, &pools, &l2, &bgp, &peers);
    let config = Config {
        pools: pools
            .valid
            .into_iter()
            .map(|(name, p)| (name, p.pool))
            .collect(),
        peers: peers.valid,
        bfd_profiles,
        l2_advertisements: l2,
        bgp_advertisements: bgp,
    };
    Pass {
        config,
        errors: cx.errors,
        warnings: cx.warnings,
    }
}

/// Diagnostics collected while building.
pub(crate) struct Context {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub left_out_bfd: BTreeSet<String>,
}

/// Who a diagnostic is about: kind, name and origin of one object.
#[derive(Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub origin: &'a Origin,
}

impl Subject<'_> {
    pub fn error(
        &self,
        code: Code,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, message)
            .at(self.origin)
            .object(self.kind, self.name)
            .field(field)
    }

    pub fn warning(
        &self,
        code: Code,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::warning(code, message)
            .at(self.origin)
            .object(self.kind, self.name)
            .field(field)
    }
}

impl Context {
    /// Checks the object's name and that no earlier object of the kind has it; `None`
    /// when the object must be skipped (the error is recorded).
    pub fn claim_name<'a, T>(
        &mut self,
        kind: &'a str,
        object: &'a Sourced<T>,
        name: Option<&'a str>,
        seen: &mut BTreeMap<String, Origin>,
    ) -> Option<Subject<'a>> {
        let name = name.unwrap_or_default();
        let subject = Subject {
            kind,
            name,
            origin: &object.origin,
        };
        if let Err(message) = parse::check_object_name(name) {
            self.errors.push(
                subject
                    .error(Code::InvalidName, "metadata.name", message)
                    .value(name)
                    .expected("lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
            );
            return None;
        }
        if let Some(first) = seen.get(name) {
            self.errors.push(
                subject
                    .error(
                        Code::DuplicateName,
                        "metadata.name",
                        format!("another {kind} has this name{}", first.at_suffix()),
                    )
                    .value(name)
                    .expected(format!("a name no other {kind} uses")),
            );
            return None;
        }
        seen.insert(name.to_string(), object.origin.clone());
        Some(subject)
    }
}

/// "unknown X": names the nearest known name, or lists them when few.
pub(crate) fn unknown_reference<'a>(
    subject: &Subject<'_>,
    code: Code,
    field: String,
    what: &str,
    value: &str,
    known: impl Iterator<Item = &'a String>,
) -> Diagnostic {
    let known: Vec<String> = known.cloned().collect();
    let expected = match nearest(value, &known) {
        Some(near) => format!("the name of an existing {what}; did you mean {near:?}?"),
        None if known.is_empty() => format!("the name of an existing {what} (there are none)"),
        None if known.len() <= 10 => format!("one of {}", known.join(", ")),
        None => format!("the name of one of the {} {what}s", known.len()),
    };
    subject
        .error(code, field, format!("no {what} has this name"))
        .value(value)
        .expected(expected)
}

impl Context {
    /// A list of label selectors (`nodeSelectors`, `ipAddressPoolSelectors`...): each
    /// parsed, and, as MetalLB does, refused when one selector repeats another or an
    /// expression repeats a value or another expression (values compared as sets).
    pub fn selectors(
        &mut self,
        subject: &Subject<'_>,
        field: &str,
        list: Option<&Vec<oxlb_api::LabelSelector>>,
    ) -> Vec<crate::selector::LabelSelector> {
        let mut out: Vec<crate::selector::LabelSelector> = Vec::new();
        let mut canonical: Vec<crate::selector::LabelSelector> = Vec::new();
        for (i, s) in list.into_iter().flatten().enumerate() {
            let path = format!("{field}[{i}]");
            let parsed = match parse::parse_selector(s) {
                Ok(parsed) => parsed,
                Err(reason) => {
                    self.errors.push(
                        subject.error(Code::InvalidSelector, path, reason).expected(
                            "a Kubernetes label selector (matchLabels / matchExpressions)",
                        ),
                    );
                    continue;
                }
            };
            if let Err(reason) = parse::check_selector_repeats(&parsed) {
                self.errors.push(
                    subject
                        .error(Code::DuplicateEntry, path, reason)
                        .expected("each value and each expression once"),
                );
                continue;
            }
            let key = parse::canonical_selector(&parsed);
            if let Some(first) = canonical.iter().position(|c| *c == key) {
                self.errors.push(
                    subject
                        .error(
                            Code::DuplicateEntry,
                            path,
                            format!("the same selector as {field}[{first}]"),
                        )
                        .expected("each selector once"),
                );
                continue;
            }
            canonical.push(key);
            out.push(parsed);
        }
        out
    }

    /// MetalLB refuses a list naming the same thing twice (pools, peers, communities,
    /// namespaces). True when the list has no repeat.
    pub fn no_repeats<'s>(
        &mut self,
        subject: &Subject<'_>,
        field: &str,
        what: &str,
        list: impl IntoIterator<Item = &'s String>,
    ) -> bool {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ok = true;
        for (i, item) in list.into_iter().enumerate() {
            if let Some(first) = seen.get(item.as_str()) {
                self.errors.push(
                    subject
                        .error(
                            Code::DuplicateEntry,
                            format!("{field}[{i}]"),
                            format!("{what} already listed at {field}[{first}]"),
                        )
                        .value(item)
                        .expected(format!("each {what} once")),
                );
                ok = false;
            } else {
                seen.insert(item, i);
            }
        }
        ok
    }

    /// MetalLB (and FRR's configuration language) refuse a newline or carriage return
    /// in values that end up in a routing daemon's configuration.
    pub fn single_line(&mut self, subject: &Subject<'_>, field: &str, value: &str, secret: bool) {
        if value.contains(['\n', '\r']) {
            let mut d = subject
                .error(
                    Code::InvalidCharacters,
                    field,
                    "contains a newline or carriage return",
                )
                .expected("a value on one line");
            if !secret {
                d = d.value(value.escape_debug());
            }
            self.errors.push(d);
        }
    }
}
