//! The one pure function: [`build_config`], from a [`Snapshot`] to a validated
//! [`Config`] or every error. No I/O, no clock: the controller, the speakers and
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

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, Origin};
use crate::model::Config;
use crate::schema::nearest;
use crate::snapshot::{Snapshot, Sourced};

/// The outcome: the config or every error, and the warnings either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub config: Result<Config, Vec<Diagnostic>>,
    pub warnings: Vec<Diagnostic>,
}

/// Validates every object of the snapshot and fills MetalLB's defaults.
pub fn build_config(snapshot: &Snapshot) -> Built {
    let mut cx = Context {
        errors: Vec::new(),
        warnings: snapshot.warnings.clone(),
    };
    let aliases = communities::build(&mut cx, &snapshot.communities);
    let bfd_profiles = bfd::build(&mut cx, &snapshot.bfd_profiles);
    let pools = pools::build(&mut cx, &snapshot.ip_address_pools);
    let peers = peers::build(&mut cx, snapshot);
    let l2 = advertisements::build_l2(&mut cx, &snapshot.l2_advertisements, &pools);
    let bgp = advertisements::build_bgp(
        &mut cx,
        &snapshot.bgp_advertisements,
        &pools,
        &peers,
        &aliases,
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
    Built {
        config: if cx.errors.is_empty() {
            Ok(config)
        } else {
            Err(cx.errors)
        },
        warnings: cx.warnings,
    }
}

/// Diagnostics collected while building.
pub(crate) struct Context {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
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
