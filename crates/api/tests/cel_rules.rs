//! The CRDs' `x-kubernetes-validations` CEL rules, taken from the generated CRDs (not a
//! hand copy) and evaluated with a real CEL implementation the way the API server does
//! (see tests/support/mod.rs for the binding rules).
//!
//! Every rule must compile, pass on every valid fixture of oxlb-config, and have at least
//! one object it refuses (with its message, and only it) and one borderline object it
//! accepts in the table below: a new rule fails `every_rule_has_cases` until it has both.
//!
//! Kubernetes versions: every rule uses only the standard CEL macros (`has`) and standard
//! functions (`duration(string)`, `getSeconds`, `getMilliseconds`, comparison) plus
//! `oldSelf`, all available since CRD validation rules went beta and on by default in
//! Kubernetes 1.25 (kubernetes.io "Common Expression Language in Kubernetes": standard
//! macros and functions are in "all Kubernetes versions"; KEP-2876: beta 1.25, GA 1.29).
//! None needs 1.29+ features (optional types, cross-type numeric comparison, quantity).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use serde_json::{Value, json};
use support::{Refusal, admit, fixture_objects, rule_sites, schema_for, version_schemas};

const PEER_V2: &str = "metallb.io/v1beta2";
const HOLD: &str = "holdTime must be 0 or at least 3s";
const HOLD_MAX: &str = "holdTime must be at most 65535s";
const KEEPALIVE_DURATION: &str = "keepaliveTime must be a duration of 0s or more";
const KEEPALIVE: &str = "keepaliveTime must not be greater than holdTime";
const ASN: &str = "exactly one of peerASN and dynamicASN must be set";
const ADDRESS: &str = "exactly one of peerAddress and interface must be set";
const PASSWORD: &str = "password and passwordSecret are mutually exclusive";
const MULTIHOP: &str = "ebgpMultiHop is only for eBGP sessions (peerASN different from myASN)";
const CONNECT_RANGE: &str = "connect time should be between 1 seconds to 65535";
const CONNECT_WHOLE: &str = "connect time should contain a whole number of seconds";
const GRACEFUL: &str = "EnableGracefulRestart cannot be changed after creation";
const HOLD_SYNTAX: &str = "holdTime must be a duration with a unit, such as 90s, 1m30s or 500ms";
const KEEPALIVE_SYNTAX: &str =
    "keepaliveTime must be a duration with a unit, such as 90s, 1m30s or 500ms";
const CONNECT_SYNTAX: &str =
    "connectTime must be a duration with a unit, such as 90s, 1m30s or 500ms";
const IMMUTABLE: &str = "Value is immutable";
const PEER_V1: &str = "metallb.io/v1beta1";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Refused by exactly this rule (its message), and by nothing else.
    Refused,
    /// Accepted: no refusal at all.
    Accepted,
}

struct Case {
    /// The message of the rule the case is about.
    rule: &'static str,
    expect: Expect,
    object: Value,
    /// On an update, the stored object.
    old: Option<Value>,
}

/// A v1beta2 BGPPeer with this spec, created.
fn case(rule: &'static str, expect: Expect, spec: Value) -> Case {
    Case {
        rule,
        expect,
        object: object(&spec),
        old: None,
    }
}

/// A v1beta2 BGPPeer updated from `old_spec` to `spec`.
fn update(rule: &'static str, expect: Expect, old_spec: Value, spec: Value) -> Case {
    Case {
        rule,
        expect,
        object: object(&spec),
        old: Some(object(&old_spec)),
    }
}

/// A v1beta1 BGPPeer with this spec, created.
fn case_v1(rule: &'static str, expect: Expect, spec: Value) -> Case {
    let mut object = object(&spec);
    object["apiVersion"] = json!(PEER_V1);
    Case {
        rule,
        expect,
        object,
        old: None,
    }
}

/// A status kind's status updated from `old` to `new`.
fn status_update(kind: &str, expect: Expect, old: Value, new: Value) -> Case {
    let object = |status: Value| {
        json!({
            "apiVersion": "metallb.io/v1beta1", "kind": kind,
            "metadata": {"name": "s", "namespace": "metallb-system"},
            "spec": {}, "status": status,
        })
    };
    Case {
        rule: IMMUTABLE,
        expect,
        object: object(new),
        old: Some(object(old)),
    }
}

/// A valid eBGP peer spec with `extra` merged over it (a null removes a field).
fn peer(extra: Value) -> Value {
    let mut spec = json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
    spec
}

fn object(spec: &Value) -> Value {
    json!({
        "apiVersion": PEER_V2, "kind": "BGPPeer",
        "metadata": {"name": "t", "namespace": "metallb-system"},
        "spec": spec,
    })
}

fn cases() -> Vec<Case> {
    use Expect::{Accepted, Refused};
    let mut cases = vec![
        // Durations need a unit (Go's ParseDuration): one readable message instead of
        // "type conversion error from 'string' to 'google.protobuf.Duration'".
        case(HOLD_SYNTAX, Refused, peer(json!({"holdTime": "90"}))),
        case(HOLD_SYNTAX, Refused, peer(json!({"holdTime": "abc"}))),
        case(HOLD_SYNTAX, Refused, peer(json!({"holdTime": "90 s"}))),
        case(
            HOLD_SYNTAX,
            Refused,
            peer(json!({"holdTime": "90", "keepaliveTime": "30s"})),
        ),
        case(HOLD_SYNTAX, Accepted, peer(json!({"holdTime": "1m30s"}))),
        case(HOLD_SYNTAX, Accepted, peer(json!({"holdTime": "90.5s"}))),
        case(HOLD_SYNTAX, Accepted, peer(json!({"holdTime": "0"}))),
        case(
            KEEPALIVE_SYNTAX,
            Refused,
            peer(json!({"keepaliveTime": "30"})),
        ),
        case(
            KEEPALIVE_SYNTAX,
            Refused,
            peer(json!({"holdTime": "90s", "keepaliveTime": "30"})),
        ),
        case(
            KEEPALIVE_SYNTAX,
            Accepted,
            peer(json!({"keepaliveTime": "500ms"})),
        ),
        case(CONNECT_SYNTAX, Refused, peer(json!({"connectTime": "5"}))),
        case(CONNECT_SYNTAX, Accepted, peer(json!({"connectTime": "5s"}))),
        case_v1(HOLD_SYNTAX, Refused, peer(json!({"holdTime": "90"}))),
        case_v1(HOLD_SYNTAX, Accepted, peer(json!({"holdTime": "90s"}))),
        case_v1(
            KEEPALIVE_SYNTAX,
            Refused,
            peer(json!({"keepaliveTime": "1"})),
        ),
        case_v1(
            KEEPALIVE_SYNTAX,
            Accepted,
            peer(json!({"keepaliveTime": "1h"})),
        ),
        // holdTime: 0 (keepalives off) or at least 3s, RFC 4271 §4.2.
        case(HOLD, Refused, peer(json!({"holdTime": "2s"}))),
        case(HOLD, Refused, peer(json!({"holdTime": "2999ms"}))),
        case(HOLD, Refused, peer(json!({"holdTime": "-3s"}))),
        case(HOLD, Accepted, peer(json!({"holdTime": "3s"}))),
        case(HOLD, Accepted, peer(json!({"holdTime": "3000ms"}))),
        case(HOLD, Accepted, peer(json!({"holdTime": "0s"}))),
        case(HOLD, Accepted, peer(json!({"holdTime": "0"}))),
        // holdTime fits the OPEN message's 16 bits of seconds (RFC 4271 §4.2).
        case(HOLD_MAX, Refused, peer(json!({"holdTime": "65536s"}))),
        case(HOLD_MAX, Refused, peer(json!({"holdTime": "20h"}))),
        case(HOLD_MAX, Accepted, peer(json!({"holdTime": "65535s"}))),
        case(HOLD_MAX, Accepted, peer(json!({"holdTime": "18h12m15s"}))),
        // keepaliveTime alone is a duration, not negative.
        case(
            KEEPALIVE_DURATION,
            Refused,
            peer(json!({"keepaliveTime": "-1s"})),
        ),
        case(
            KEEPALIVE_DURATION,
            Accepted,
            peer(json!({"keepaliveTime": "0s"})),
        ),
        case(
            KEEPALIVE_DURATION,
            Accepted,
            peer(json!({"keepaliveTime": "1s"})),
        ),
        // keepaliveTime <= holdTime, compared as durations, not strings.
        case(
            KEEPALIVE,
            Refused,
            peer(json!({"holdTime": "30s", "keepaliveTime": "31s"})),
        ),
        case(
            KEEPALIVE,
            Refused,
            peer(json!({"holdTime": "1m", "keepaliveTime": "61s"})),
        ),
        case(
            KEEPALIVE,
            Accepted,
            peer(json!({"holdTime": "30s", "keepaliveTime": "30s"})),
        ),
        case(
            KEEPALIVE,
            Accepted,
            peer(json!({"holdTime": "1m", "keepaliveTime": "60000ms"})),
        ),
        case(
            KEEPALIVE,
            Refused,
            peer(json!({"holdTime": "9s", "keepaliveTime": "10s"})),
        ),
        case(KEEPALIVE, Accepted, peer(json!({"keepaliveTime": "100s"}))),
        // Exactly one of peerASN / dynamicASN.
        case(ASN, Refused, peer(json!({"dynamicASN": "external"}))),
        case(ASN, Refused, peer(json!({"peerASN": null}))),
        // Neither ASN but ebgpMultiHop: only the ASN rule may refuse it, the multihop
        // rule must not fail to evaluate (it used to read the absent dynamicASN).
        case(
            ASN,
            Refused,
            peer(json!({"peerASN": null, "ebgpMultiHop": true})),
        ),
        case(
            ASN,
            Accepted,
            peer(json!({"peerASN": null, "dynamicASN": "external"})),
        ),
        // Exactly one of peerAddress / interface.
        case(ADDRESS, Refused, peer(json!({"interface": "eth0"}))),
        case(ADDRESS, Refused, peer(json!({"peerAddress": null}))),
        case(
            ADDRESS,
            Accepted,
            peer(json!({"peerAddress": null, "interface": "eth0"})),
        ),
        // password and a passwordSecret naming a Secret exclude each other.
        case(
            PASSWORD,
            Refused,
            peer(json!({"password": "x", "passwordSecret": {"name": "s"}})),
        ),
        case(
            PASSWORD,
            Accepted,
            peer(json!({"password": "x", "passwordSecret": {"namespace": "metallb-system"}})),
        ),
        case(
            PASSWORD,
            Accepted,
            peer(json!({"passwordSecret": {"name": "s"}})),
        ),
        // ebgpMultiHop only for eBGP.
        case(
            MULTIHOP,
            Refused,
            peer(json!({"peerASN": 64500, "ebgpMultiHop": true})),
        ),
        // MetalLB accepts ebgpMultiHop with dynamicASN: internal (its check compares
        // peerASN with myASN only); oxlb warns instead.
        case(
            MULTIHOP,
            Accepted,
            peer(json!({"peerASN": null, "dynamicASN": "internal", "ebgpMultiHop": true})),
        ),
        case(
            MULTIHOP,
            Accepted,
            peer(json!({"peerASN": 64500, "ebgpMultiHop": false})),
        ),
        case(
            MULTIHOP,
            Accepted,
            peer(json!({"peerASN": 64501, "ebgpMultiHop": true})),
        ),
        case(
            MULTIHOP,
            Accepted,
            peer(json!({"peerASN": null, "dynamicASN": "external", "ebgpMultiHop": true})),
        ),
        // connectTime: whole seconds in 1..65535.
        case(CONNECT_RANGE, Refused, peer(json!({"connectTime": "0s"}))),
        case(
            CONNECT_RANGE,
            Refused,
            peer(json!({"connectTime": "65536s"})),
        ),
        case(CONNECT_RANGE, Refused, peer(json!({"connectTime": "-1s"}))),
        case(CONNECT_RANGE, Accepted, peer(json!({"connectTime": "1s"}))),
        case(
            CONNECT_RANGE,
            Accepted,
            peer(json!({"connectTime": "65535s"})),
        ),
        case(
            CONNECT_RANGE,
            Accepted,
            peer(json!({"connectTime": "18h12m15s"})),
        ),
        case(
            CONNECT_WHOLE,
            Refused,
            peer(json!({"connectTime": "1500ms"})),
        ),
        case(
            CONNECT_WHOLE,
            Refused,
            peer(json!({"connectTime": "65535.5s"})),
        ),
        case(
            CONNECT_WHOLE,
            Accepted,
            peer(json!({"connectTime": "2000ms"})),
        ),
        case(CONNECT_WHOLE, Accepted, peer(json!({"connectTime": "1m"}))),
        // enableGracefulRestart is immutable once set (a transition rule: updates only).
        update(
            GRACEFUL,
            Refused,
            peer(json!({"enableGracefulRestart": true})),
            peer(json!({"enableGracefulRestart": false})),
        ),
        update(
            GRACEFUL,
            Refused,
            peer(json!({"enableGracefulRestart": false})),
            peer(json!({"enableGracefulRestart": true})),
        ),
        update(
            GRACEFUL,
            Accepted,
            peer(json!({"enableGracefulRestart": true})),
            peer(json!({"enableGracefulRestart": true})),
        ),
        case(
            GRACEFUL,
            Accepted,
            peer(json!({"enableGracefulRestart": false})),
        ),
        // No old value at that path: Kubernetes does not evaluate the rule.
        update(
            GRACEFUL,
            Accepted,
            peer(json!({})),
            peer(json!({"enableGracefulRestart": true})),
        ),
    ];
    // Status kinds: which node announces which Service never changes on an object.
    for kind in ["ServiceL2Status", "ServiceBGPStatus"] {
        let status = json!({"node": "n1", "serviceName": "web", "serviceNamespace": "default"});
        for field in ["node", "serviceName", "serviceNamespace"] {
            let mut changed = status.clone();
            changed[field] = json!("other");
            cases.push(status_update(kind, Refused, status.clone(), changed));
        }
        cases.push(status_update(
            kind,
            Accepted,
            status.clone(),
            status.clone(),
        ));
        // The first write of a field (no old value) is not a change.
        cases.push(status_update(kind, Accepted, json!({}), status));
    }
    cases
}

/// Creates (or, with `old_spec`, updates) a v1beta2 BGPPeer with this spec.
fn admit_peer(spec: &Value, old_spec: Option<&Value>) -> Vec<Refusal> {
    let old = old_spec.map(object);
    admit_object(&object(spec), old.as_ref())
}

/// Creates (or, with `old`, updates) any object through its CRD's schema.
fn admit_object(new: &Value, old: Option<&Value>) -> Vec<Refusal> {
    let schemas = version_schemas();
    let schema = &schema_for(&schemas, new)
        .unwrap_or_else(|| panic!("no schema for {new}"))
        .schema;
    admit(schema, new, old)
}

#[test]
fn every_rule_compiles_and_has_a_message() {
    let (sites, errors) = rule_sites();
    assert!(errors.is_empty(), "{errors:#?}");
    for site in &sites {
        println!(
            "{} {} {}{}: {} [{}]",
            site.crd,
            site.api_version,
            site.path,
            if site.transition { " (transition)" } else { "" },
            site.rule,
            site.message
        );
    }
    // Guards the walker itself: these rules exist today (a removed rule shows here).
    assert_eq!(sites.len(), 22, "rule count changed: update the cases");
    assert!(
        sites
            .iter()
            .any(|s| s.transition && s.path == ".spec.enableGracefulRestart")
    );
}

#[test]
fn every_rule_has_cases() {
    let (sites, _) = rule_sites();
    let cases = cases();
    for site in &sites {
        let about: Vec<&Case> = cases.iter().filter(|c| c.rule == site.message).collect();
        for expect in [Expect::Refused, Expect::Accepted] {
            assert!(
                about.iter().any(|c| c.expect == expect),
                "rule {:?} at {} {}{} has no {expect:?} case",
                site.rule,
                site.kind,
                site.api_version,
                site.path
            );
        }
        // And a case of the site's own kind and version.
        assert!(
            about.iter().any(|c| c.object["kind"] == site.kind.as_str()
                && c.object["apiVersion"] == site.api_version.as_str()),
            "rule {:?} at {} {} has no case of that kind and version",
            site.rule,
            site.kind,
            site.api_version
        );
    }
}

#[test]
fn cases_refuse_and_accept_as_expected() {
    let mut failures = Vec::new();
    for case in cases() {
        let refusals = admit_object(&case.object, case.old.as_ref());
        let ok = match case.expect {
            Expect::Accepted => refusals.is_empty(),
            Expect::Refused => {
                !refusals.is_empty() && refusals.iter().all(|r| r.message() == Some(case.rule))
            }
        };
        if !ok {
            failures.push(format!(
                "{:?} {:?}: {} (old {:?}) gave {refusals:?}",
                case.expect, case.rule, case.object, case.old
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unparseable_durations_get_one_readable_message() {
    // Go's time.ParseDuration grammar needs a unit. Refused by the syntax rule alone,
    // with its message: no rule may fail to evaluate (that is what the API server
    // reports as "type conversion error from 'string' to 'google.protobuf.Duration'").
    for (field, text, message) in [
        ("holdTime", "90", HOLD_SYNTAX),
        ("holdTime", "abc", HOLD_SYNTAX),
        ("keepaliveTime", "3", KEEPALIVE_SYNTAX),
        ("connectTime", "5", CONNECT_SYNTAX),
    ] {
        let refusals = admit_peer(
            &peer(json!({field: text, "holdTime": if field == "holdTime" { text } else { "90s" }})),
            None,
        );
        assert!(
            !refusals.is_empty() && refusals.iter().all(|r| r.message() == Some(message)),
            "{field}: {text:?} gave {refusals:?}"
        );
    }
}

#[test]
fn asns_fit_32_bits() {
    // RFC 6793: a 4-octet AS number. MetalLB's schema: 0..4294967295.
    for asn in [1u64, 4_294_967_295] {
        for field in ["myASN", "peerASN"] {
            let refusals = admit_peer(&peer(json!({field: asn})), None);
            assert!(
                refusals.is_empty()
                    || field == "peerASN" && refusals.iter().all(|r| r.message() == Some(MULTIHOP)),
                "{field} {asn}: {refusals:?}"
            );
        }
    }
    for field in ["myASN", "peerASN"] {
        let refusals = admit_peer(&peer(json!({field: 4_294_967_296u64})), None);
        assert!(
            matches!(refusals.as_slice(), [Refusal::Schema { path, .. }] if path == &format!(".spec.{field}")),
            "{field}: {refusals:?}"
        );
    }
}

#[test]
fn pool_addresses_are_cidrs_or_ranges() {
    let pool = |address: &str| {
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
               "metadata": {"name": "p", "namespace": "metallb-system"},
               "spec": {"addresses": [address]}})
    };
    for good in [
        "192.168.10.0/24",
        "10.0.0.1/32",
        "0.0.0.0/0",
        "192.168.10.10-192.168.10.20",
        "192.168.10.10 - 192.168.10.20",
        "fd00::/64",
        "2001:db8::1/128",
        "fd00::1-fd00::ff",
        "::ffff:10.0.0.0/120",
    ] {
        assert_eq!(admit_object(&pool(good), None), vec![], "{good}");
    }
    for bad in [
        "10.0.0.300/24",
        "hello",
        "10.0.0.1",
        "10.0.0.0/33",
        "fd00::/129",
        "10.0.0.1-",
        "10.0.0.0/24,10.1.0.0/24",
        "",
    ] {
        let refusals = admit_object(&pool(bad), None);
        assert!(
            matches!(refusals.as_slice(), [Refusal::Schema { .. }]),
            "{bad:?}: {refusals:?}"
        );
    }
}

#[test]
fn duration_getters_follow_cel_go() {
    // The connectTime rules rely on cel-go's semantics (common/types/duration.go):
    // getSeconds() is the whole duration in seconds truncated toward zero
    // (Int(dur.Seconds())), getMilliseconds() the whole duration in milliseconds
    // (Int(dur.Milliseconds())), not the sub-second component. Check the crate agrees.
    for (expr, want) in [
        ("duration('1s500ms').getMilliseconds()", 1500),
        ("duration('1.5s').getSeconds()", 1),
        ("duration('-1.5s').getSeconds()", -1),
        ("duration('2h').getSeconds()", 7200),
        ("duration('65535.5s').getMilliseconds() % 1000", 500),
    ] {
        let got = cel::Program::compile(expr)
            .unwrap()
            .execute(&cel::Context::default());
        assert_eq!(got, Ok(cel::Value::Int(want)), "{expr}");
    }
}

#[test]
fn every_valid_fixture_passes_every_rule() {
    let schemas = version_schemas();
    let objects = fixture_objects();
    assert!(
        objects.len() > 50,
        "only {} metallb.io objects found",
        objects.len()
    );
    let mut failures = Vec::new();
    for (file, object) in &objects {
        let Some(schema) = schema_for(&schemas, object) else {
            failures.push(format!(
                "{}: no CRD for {} {}",
                file.display(),
                object["apiVersion"],
                object["kind"]
            ));
            continue;
        };
        // Created, then updated to itself (transition rules run on the update).
        for old in [None, Some(object)] {
            let refusals = admit(&schema.schema, object, old);
            if !refusals.is_empty() {
                failures.push(format!(
                    "{} {}: {refusals:?}",
                    file.display(),
                    object["metadata"]["name"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn peer_port_ranges_are_metallbs() {
    // MetalLB v0.15.3: v1beta2 peerPort 1..16384 (0 refused), v1beta1 0..16384 (0 read
    // as 179 by oxlb-config).
    for port in [1, 179, 16384] {
        let refusals = admit_peer(&peer(json!({"peerPort": port})), None);
        assert!(refusals.is_empty(), "peerPort {port}: {refusals:?}");
    }
    for port in [0, 16385] {
        let refusals = admit_peer(&peer(json!({"peerPort": port})), None);
        assert!(
            matches!(refusals.as_slice(), [Refusal::Schema { .. }]),
            "peerPort {port}: {refusals:?}"
        );
    }
    let mut v1 = object(&peer(json!({"peerPort": 0})));
    v1["apiVersion"] = json!(PEER_V1);
    assert_eq!(admit_object(&v1, None), vec![]);
}

#[test]
fn objects_without_spec_are_stored_with_an_empty_spec() {
    // MetalLB's kinds have `spec,omitempty`, and its documented L2Advertisement has no
    // spec. The API server must accept such an object and store `spec: {}` (the
    // schema's default), which the typed watchers (non-optional `spec`) deserialize.
    let schemas = version_schemas();
    let bare = |kind: &str| {
        json!({"apiVersion": "metallb.io/v1beta1", "kind": kind,
               "metadata": {"name": "x", "namespace": "metallb-system"}})
    };
    for kind in [
        "L2Advertisement",
        "BGPAdvertisement",
        "BFDProfile",
        "Community",
    ] {
        let object = bare(kind);
        let schema = &schema_for(&schemas, &object).unwrap().schema;
        assert_eq!(admit(schema, &object, None), vec![], "{kind}");
        let stored = support::stored(schema, &object);
        assert!(stored["spec"].is_object(), "{kind}: {stored}");
        let typed = match kind {
            "L2Advertisement" => serde_json::from_value::<oxlb_api::L2Advertisement>(stored).err(),
            "BGPAdvertisement" => {
                serde_json::from_value::<oxlb_api::BGPAdvertisement>(stored).err()
            }
            "BFDProfile" => serde_json::from_value::<oxlb_api::BFDProfile>(stored).err(),
            _ => serde_json::from_value::<oxlb_api::Community>(stored).err(),
        };
        assert!(typed.is_none(), "{kind}: {typed:?}");
    }
    // A spec with required fields stays required: such an object is invalid anyway.
    let object = bare("IPAddressPool");
    let schema = &schema_for(&schemas, &object).unwrap().schema;
    let refusals = admit(schema, &object, None);
    assert!(matches!(refusals.as_slice(), [Refusal::Schema { path, .. }] if path == ".spec"));
}

/// The invalid fixtures of oxlb-config that the API server already refuses (every other
/// one needs other objects, or a rule only oxlb-config has: the controller reports it).
const REFUSED_INVALID_FIXTURES: &[&str] = &[
    "address-both.yaml",
    "address-garbage.yaml",
    "address-neither.yaml",
    "aggregation-out-of-bounds.yaml",
    "asn-both.yaml",
    "asn-neither.yaml",
    "asn-too-large.yaml",
    "bfd-out-of-bounds.yaml",
    "connect-time.yaml",
    "duration-garbage.yaml",
    "duration-no-unit.yaml",
    "dynamic-asn-bad-value.yaml",
    "hold-too-long.yaml",
    "hold-too-short.yaml",
    "keepalive-greater-than-hold.yaml",
    "multihop-ibgp.yaml",
    "my-asn-missing.yaml",
    "password-both.yaml",
    "pool-typo-adresses.yaml",
    "port-out-of-range.yaml",
    "range-mixed-family.yaml",
    "wrong-type.yaml",
];

#[test]
fn the_api_server_refuses_the_single_object_mistakes() {
    // Each refused fixture must also be invalid for oxlb-config (it is: they are its
    // invalid fixtures); the list pins which mistakes kubectl already stops.
    let schemas = version_schemas();
    let mut refused = std::collections::BTreeSet::new();
    for (file, object) in support::fixtures_in("invalid") {
        let Some(schema) = schema_for(&schemas, &object) else {
            continue;
        };
        if !admit(&schema.schema, &object, None).is_empty() {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            refused.insert(name);
        }
    }
    let expected: std::collections::BTreeSet<String> = REFUSED_INVALID_FIXTURES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(refused, expected);
}
