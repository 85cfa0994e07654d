//! Per-object quarantine: the one pure function [`build_config`] the controller, the
//! speakers, `oxlb run` and `oxlb check` share.
//!
//! MetalLB keeps invalid objects out with an admission webhook; oxlb has none, so it
//! contains the damage itself, object by object:
//! - a new invalid object is left out and reported on itself; everything else applies;
//! - an edit that makes an existing object invalid keeps that object's last valid
//!   version in force (so no Service loses its IP or its announcement to a typo);
//! - a conflict between objects (overlapping pools, two peers for one session, two
//!   advertisements with different LOCAL_PREF for one prefix) is decided for the older
//!   object (creationTimestamp, then name) and reported on the newer one; an object in
//!   force and unchanged always beats a new or edited one, so an edit cannot take
//!   addresses away from an object that did not change.
//!
//! Where the last valid version comes from: the caller's memory of the previous build
//! ([`Built::in_force`], passed back as `previous`), else the annotation
//! [`LAST_VALID_ANNOTATION`] on the object itself, which the Kubernetes controller writes
//! whenever an object is in force as written. The annotation travels with the object, so
//! after a restart or a leader change every controller and speaker reads the same last
//! valid version and decides the same, with no state of their own.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxlb_api::{BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::build_pass;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::snapshot::{Snapshot, Sourced};

/// Annotation holding the JSON of the spec last in force (written by the controller).
pub const LAST_VALID_ANNOTATION: &str = "oxlb.io/last-valid-spec";

/// The metallb.io objects' metadata (they are kube custom resources; this crate does not
/// depend on kube).
pub trait HasMeta {
    fn meta(&self) -> &ObjectMeta;
}

macro_rules! has_meta {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
        }
    )*};
}
has_meta!(
    IPAddressPool,
    L2Advertisement,
    BGPAdvertisement,
    BGPPeer,
    BFDProfile,
    Community
);

/// The metallb.io kinds that quarantine applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ObjectKind {
    IPAddressPool,
    L2Advertisement,
    BGPAdvertisement,
    BGPPeer,
    BFDProfile,
    Community,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::IPAddressPool => "IPAddressPool",
            ObjectKind::L2Advertisement => "L2Advertisement",
            ObjectKind::BGPAdvertisement => "BGPAdvertisement",
            ObjectKind::BGPPeer => "BGPPeer",
            ObjectKind::BFDProfile => "BFDProfile",
            ObjectKind::Community => "Community",
        }
    }

    /// The kind named `kind` (as in a diagnostic), if quarantine applies to it.
    pub fn from_name(kind: &str) -> Option<ObjectKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == kind)
    }
}

const ALL_KINDS: [ObjectKind; 6] = [
    ObjectKind::IPAddressPool,
    ObjectKind::L2Advertisement,
    ObjectKind::BGPAdvertisement,
    ObjectKind::BGPPeer,
    ObjectKind::BFDProfile,
    ObjectKind::Community,
];

/// What quarantine did with an object that is not in force as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Left out: no valid version of it is known.
    LeftOut,
    /// Its last valid version stays in force.
    KeptLastValid,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Quarantined {
    pub kind: ObjectKind,
    pub name: String,
    pub decision: Decision,
}

/// The last valid version of each object, by kind and name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastValid {
    pub ip_address_pools: BTreeMap<String, IPAddressPool>,
    pub l2_advertisements: BTreeMap<String, L2Advertisement>,
    pub bgp_advertisements: BTreeMap<String, BGPAdvertisement>,
    pub bgp_peers: BTreeMap<String, BGPPeer>,
    pub bfd_profiles: BTreeMap<String, BFDProfile>,
    pub communities: BTreeMap<String, Community>,
}

/// The outcome of [`build_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Strict view, as before quarantine: the configuration when every object is valid,
    /// else every error. `oxlb check`'s exit status and tests use it.
    pub config: Result<Config, Vec<Diagnostic>>,
    /// The configuration in force: every valid object, the last valid version of each
    /// object whose current version is invalid, none of the objects left out.
    pub applied: Config,
    /// Every error, each naming the object it is about (kind, name, field).
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// The objects not in force as written, and what became of each.
    pub quarantined: Vec<Quarantined>,
    /// The objects in force (as applied): the `previous` of the next build.
    pub in_force: LastValid,
}

impl Built {
    /// The objects whose current version is in force as written: the ones whose last
    /// valid version the controller records on the object.
    pub fn valid_as_written(&self) -> impl Iterator<Item = (ObjectKind, &str)> {
        let quarantined: BTreeSet<(ObjectKind, &str)> = self
            .quarantined
            .iter()
            .map(|q| (q.kind, q.name.as_str()))
            .collect();
        self.in_force
            .names()
            .filter(move |(kind, name)| !quarantined.contains(&(*kind, *name)))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// [`build_config_with`] with no memory of a previous build: the last valid versions
/// come from the objects' annotations only.
pub fn build_config(snapshot: &Snapshot) -> Built {
    build_config_with(snapshot, &LastValid::default())
}

/// Builds the configuration in force from the objects, leaving out or rolling back the
/// invalid ones (see the module documentation). `previous`: the objects in force after
/// the previous build (its [`Built::in_force`]); missing entries fall back to the
/// objects' [`LAST_VALID_ANNOTATION`].
pub fn build_config_with(snapshot: &Snapshot, previous: &LastValid) -> Built {
    let fallback = previous.or_annotations(snapshot);
    let mut current = snapshot.clone();
    sort_for_conflicts(&mut current, &fallback);
    let mut left_out_bfd: BTreeSet<String> = BTreeSet::new();
    let mut pass = build_pass(&current, &left_out_bfd);
    let mut errors = pass.errors.clone();
    let mut decisions: BTreeMap<(ObjectKind, String), Decision> = BTreeMap::new();
    // Every round leaves out or rolls back at least one object, and an object is rolled
    // back at most once, so the rounds end.
    let limit = 2 * current.object_count() + 2;
    for _ in 0..limit {
        let bad = offenders(&pass.errors);
        if bad.is_empty() {
            break;
        }
        for (kind, name, duplicate) in bad {
            let key = (kind, name.clone());
            let decision = if duplicate {
                drop_later_duplicates(&mut current, kind, &name);
                Decision::LeftOut
            } else if decisions.get(&key) != Some(&Decision::KeptLastValid)
                && fallback.replace_in(&mut current, kind, &name)
            {
                Decision::KeptLastValid
            } else {
                remove(&mut current, kind, &name);
                if kind == ObjectKind::BFDProfile {
                    left_out_bfd.insert(name.clone());
                }
                Decision::LeftOut
            };
            decisions.insert(key, decision);
        }
        // A rolled-back object is in force unchanged again: it wins conflicts.
        sort_for_conflicts(&mut current, &fallback);
        pass = build_pass(&current, &left_out_bfd);
        for e in &pass.errors {
            if !errors.contains(e) {
                errors.push(e.clone());
            }
        }
    }
    let quarantined = decisions
        .into_iter()
        .map(|((kind, name), decision)| Quarantined {
            kind,
            name,
            decision,
        })
        .collect();
    let in_force = LastValid::of(&current);
    Built {
        config: if errors.is_empty() {
            Ok(pass.config.clone())
        } else {
            Err(errors.clone())
        },
        applied: pass.config,
        errors,
        warnings: pass.warnings,
        quarantined,
        in_force,
    }
}

/// The objects the errors are about. `true` marks a duplicate name (only the later
/// copies are at fault).
fn offenders(errors: &[Diagnostic]) -> BTreeSet<(ObjectKind, String, bool)> {
    errors
        .iter()
        .filter_map(|e| {
            let kind = ObjectKind::from_name(&e.kind)?;
            let duplicate = e.code == Code::DuplicateName && e.field == "metadata.name";
            Some((kind, e.name.clone(), duplicate))
        })
        .collect()
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The order in which conflicts are decided, winner first: objects in force unchanged
/// (their current spec is their last valid one) before new or edited ones, so an edit
/// can never take addresses or a session away from an object that did not change; then
/// oldest first: creationTimestamp, then name. Objects without a creationTimestamp
/// (written in files) keep file order, the stable sort preserving it: in a file the
/// earlier object is the one that was there first.
fn sort_for_conflicts(s: &mut Snapshot, last: &LastValid) {
    fn key<T: HasMeta + Serialize>(
        o: &Sourced<T>,
        last: &BTreeMap<String, T>,
    ) -> (bool, Option<(String, String)>) {
        let meta = o.object.meta();
        let unchanged = last
            .get(name_of(meta))
            .is_some_and(|l| same_spec(l, &o.object));
        let age = meta.creation_timestamp.as_ref().map(|t| {
            (
                serde_json::to_string(t).unwrap_or_default(),
                name_of(meta).to_string(),
            )
        });
        (!unchanged, age)
    }
    s.ip_address_pools
        .sort_by_key(|o| key(o, &last.ip_address_pools));
    s.l2_advertisements
        .sort_by_key(|o| key(o, &last.l2_advertisements));
    s.bgp_advertisements
        .sort_by_key(|o| key(o, &last.bgp_advertisements));
    s.bgp_peers.sort_by_key(|o| key(o, &last.bgp_peers));
    s.bfd_profiles.sort_by_key(|o| key(o, &last.bfd_profiles));
    s.communities.sort_by_key(|o| key(o, &last.communities));
}

fn retain_named<T: HasMeta>(list: &mut Vec<Sourced<T>>, name: &str, mut keep_first: bool) {
    list.retain(|o| {
        if name_of(o.object.meta()) != name {
            return true;
        }
        std::mem::replace(&mut keep_first, false)
    });
}

fn remove(s: &mut Snapshot, kind: ObjectKind, name: &str) {
    match kind {
        ObjectKind::IPAddressPool => retain_named(&mut s.ip_address_pools, name, false),
        ObjectKind::L2Advertisement => retain_named(&mut s.l2_advertisements, name, false),
        ObjectKind::BGPAdvertisement => retain_named(&mut s.bgp_advertisements, name, false),
        ObjectKind::BGPPeer => retain_named(&mut s.bgp_peers, name, false),
        ObjectKind::BFDProfile => retain_named(&mut s.bfd_profiles, name, false),
        ObjectKind::Community => retain_named(&mut s.communities, name, false),
    }
}

fn drop_later_duplicates(s: &mut Snapshot, kind: ObjectKind, name: &str) {
    match kind {
        ObjectKind::IPAddressPool => retain_named(&mut s.ip_address_pools, name, true),
        ObjectKind::L2Advertisement => retain_named(&mut s.l2_advertisements, name, true),
        ObjectKind::BGPAdvertisement => retain_named(&mut s.bgp_advertisements, name, true),
        ObjectKind::BGPPeer => retain_named(&mut s.bgp_peers, name, true),
        ObjectKind::BFDProfile => retain_named(&mut s.bfd_profiles, name, true),
        ObjectKind::Community => retain_named(&mut s.communities, name, true),
    }
}

/// Puts `last` in place of the object named `name`; false when there is no last valid
/// version or it is the very version that failed.
fn replace_one<T: HasMeta + Clone + PartialEq + Serialize>(
    list: &mut [Sourced<T>],
    last: &BTreeMap<String, T>,
    name: &str,
) -> bool {
    let Some(last) = last.get(name) else {
        return false;
    };
    let Some(slot) = list.iter_mut().find(|o| name_of(o.object.meta()) == name) else {
        return false;
    };
    if same_spec(&slot.object, last) {
        return false;
    }
    slot.object = last.clone();
    true
}

/// Compares everything but metadata (the spec), through JSON.
fn same_spec<T: Serialize>(a: &T, b: &T) -> bool {
    let strip = |o: &T| {
        let mut v = serde_json::to_value(o).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
        }
        v
    };
    strip(a) == strip(b)
}

impl LastValid {
    /// The objects of a snapshot, by kind and name (the first of each name).
    pub fn of(s: &Snapshot) -> LastValid {
        fn map<T: HasMeta + Clone>(list: &[Sourced<T>]) -> BTreeMap<String, T> {
            let mut out = BTreeMap::new();
            for o in list {
                out.entry(name_of(o.object.meta()).to_string())
                    .or_insert_with(|| o.object.clone());
            }
            out
        }
        LastValid {
            ip_address_pools: map(&s.ip_address_pools),
            l2_advertisements: map(&s.l2_advertisements),
            bgp_advertisements: map(&s.bgp_advertisements),
            bgp_peers: map(&s.bgp_peers),
            bfd_profiles: map(&s.bfd_profiles),
            communities: map(&s.communities),
        }
    }

    /// Every (kind, name) held.
    pub fn names(&self) -> impl Iterator<Item = (ObjectKind, &str)> {
        let mut all: Vec<(ObjectKind, &str)> = self
            .ip_address_pools
            .keys()
            .map(|n| (ObjectKind::IPAddressPool, n.as_str()))
            .collect();
        all.extend(
            self.l2_advertisements
                .keys()
                .map(|n| (ObjectKind::L2Advertisement, n.as_str())),
        );
        all.extend(
            self.bgp_advertisements
                .keys()
                .map(|n| (ObjectKind::BGPAdvertisement, n.as_str())),
        );
        all.extend(
            self.bgp_peers
                .keys()
                .map(|n| (ObjectKind::BGPPeer, n.as_str())),
        );
        all.extend(
            self.bfd_profiles
                .keys()
                .map(|n| (ObjectKind::BFDProfile, n.as_str())),
        );
        all.extend(
            self.communities
                .keys()
                .map(|n| (ObjectKind::Community, n.as_str())),
        );
        all.into_iter()
    }

    /// The JSON of the spec of an object held here: the value of
    /// [`LAST_VALID_ANNOTATION`] for it.
    pub fn annotation_value(&self, kind: ObjectKind, name: &str) -> Option<String> {
        fn spec<T: Serialize>(m: &BTreeMap<String, T>, name: &str) -> Option<String> {
            let v = serde_json::to_value(m.get(name)?).ok()?;
            serde_json::to_string(v.get("spec")?).ok()
        }
        match kind {
            ObjectKind::IPAddressPool => spec(&self.ip_address_pools, name),
            ObjectKind::L2Advertisement => spec(&self.l2_advertisements, name),
            ObjectKind::BGPAdvertisement => spec(&self.bgp_advertisements, name),
            ObjectKind::BGPPeer => spec(&self.bgp_peers, name),
            ObjectKind::BFDProfile => spec(&self.bfd_profiles, name),
            ObjectKind::Community => spec(&self.communities, name),
        }
    }

    /// `self`, completed by the versions the snapshot's objects carry in their
    /// [`LAST_VALID_ANNOTATION`] (an annotation that does not decode is ignored).
    pub fn or_annotations(&self, s: &Snapshot) -> LastValid {
        fn merge<T>(own: &BTreeMap<String, T>, list: &[Sourced<T>]) -> BTreeMap<String, T>
        where
            T: HasMeta + Clone + Serialize + DeserializeOwned,
        {
            let mut out = own.clone();
            for o in list {
                let name = name_of(o.object.meta()).to_string();
                if out.contains_key(&name) {
                    continue;
                }
                if let Some(last) = from_annotation(&o.object) {
                    out.insert(name, last);
                }
            }
            out
        }
        LastValid {
            ip_address_pools: merge(&self.ip_address_pools, &s.ip_address_pools),
            l2_advertisements: merge(&self.l2_advertisements, &s.l2_advertisements),
            bgp_advertisements: merge(&self.bgp_advertisements, &s.bgp_advertisements),
            bgp_peers: merge(&self.bgp_peers, &s.bgp_peers),
            bfd_profiles: merge(&self.bfd_profiles, &s.bfd_profiles),
            communities: merge(&self.communities, &s.communities),
        }
    }

    fn replace_in(&self, s: &mut Snapshot, kind: ObjectKind, name: &str) -> bool {
        match kind {
            ObjectKind::IPAddressPool => {
                replace_one(&mut s.ip_address_pools, &self.ip_address_pools, name)
            }
            ObjectKind::L2Advertisement => {
                replace_one(&mut s.l2_advertisements, &self.l2_advertisements, name)
            }
            ObjectKind::BGPAdvertisement => {
                replace_one(&mut s.bgp_advertisements, &self.bgp_advertisements, name)
            }
            ObjectKind::BGPPeer => replace_one(&mut s.bgp_peers, &self.bgp_peers, name),
            ObjectKind::BFDProfile => replace_one(&mut s.bfd_profiles, &self.bfd_profiles, name),
            ObjectKind::Community => replace_one(&mut s.communities, &self.communities, name),
        }
    }
}

/// The object with its spec replaced by the one in its annotation.
fn from_annotation<T>(object: &T) -> Option<T>
where
    T: HasMeta + Serialize + DeserializeOwned,
{
    let text = object
        .meta()
        .annotations
        .as_ref()?
        .get(LAST_VALID_ANNOTATION)?;
    let spec: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut value = serde_json::to_value(object).ok()?;
    value.as_object_mut()?.insert("spec".to_string(), spec);
    serde_json::from_value(value).ok()
}
