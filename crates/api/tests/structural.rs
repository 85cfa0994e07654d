//! The generated CRD schemas are *structural*, as apiextensions.k8s.io/v1 requires, and
//! use only what the API server accepts (checked here since no API server runs in CI):
//!
//! - every node has a non-empty `type` (or `x-kubernetes-int-or-string` /
//!   `x-kubernetes-preserve-unknown-fields`); arrays have one `items` schema; `properties`
//!   and a schema-valued `additionalProperties` never together; none at the root;
//! - no `$ref`, `definitions`, `patternProperties`, `dependencies`, `additionalItems`,
//!   `uniqueItems: true`, and no logical junctors (`allOf`/`anyOf`/`oneOf`/`not`: their
//!   structural rules are not modelled here, so a schema using them fails until they are);
//! - root `metadata` restricts at most `name` and `generateName`;
//! - `x-kubernetes-validations` only on typed nodes, each with a rule and a one-line
//!   message, transition rules (`oldSelf`) only where old values correlate (not under
//!   the items of a list that is not `x-kubernetes-list-type: map`);
//! - every `default` is pruned (no unknown field) and valid against its own node,
//!   including the node's CEL rules, as the API server checks at CRD creation;
//! - `required` names existing properties; `enum` values have the node's type; string
//!   `format`s are ones Kubernetes recognises (others are ignored, and warned about
//!   since 1.34); keywords fit the node's type.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use serde_json::Value;
use support::{stored_at, validate_at, version_schemas};

/// Every schema keyword the generated CRDs may use; anything else must be reviewed here.
const KNOWN: &[&str] = &[
    "type",
    "format",
    "description",
    "title",
    "nullable",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "default",
    "example",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

/// String formats the API server validates (frozen in Kubernetes 1.16,
/// apiextensions-apiserver `validation/formats.go`).
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

const RULE_KEYS: &[&str] = &[
    "rule",
    "message",
    "messageExpression",
    "reason",
    "fieldPath",
    "optionalOldSelf",
];

struct Walk<'a> {
    crd: &'a str,
    version: &'a str,
    problems: Vec<String>,
}

impl Walk<'_> {
    fn problem(&mut self, path: &str, what: impl std::fmt::Display) {
        self.problems.push(format!(
            "{} {} {}: {what}",
            self.crd,
            self.version,
            if path.is_empty() { "." } else { path }
        ));
    }

    fn node(&mut self, node: &Value, path: &str, root: bool, correlatable: bool) {
        let Some(map) = node.as_object() else {
            return self.problem(path, "schema is not an object");
        };
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                self.problem(path, format!("keyword {key:?} not allowed or not reviewed"));
            }
        }
        let flag = |k: &str| map.get(k) == Some(&Value::Bool(true));
        let ty = map.get("type").and_then(Value::as_str).unwrap_or_default();
        let untyped_ok =
            flag("x-kubernetes-int-or-string") || flag("x-kubernetes-preserve-unknown-fields");
        if !["object", "array", "string", "integer", "number", "boolean"].contains(&ty)
            && !untyped_ok
        {
            self.problem(path, format!("type {ty:?}: structural schemas need a type"));
        }
        if root && ty != "object" {
            self.problem(path, "root must be type object");
        }
        let props = map.get("properties").and_then(Value::as_object);
        let additional = map.get("additionalProperties");
        if root && additional.is_some() {
            self.problem(path, "additionalProperties at the root");
        }
        if props.is_some() && additional.is_some_and(Value::is_object) {
            self.problem(path, "properties and additionalProperties together");
        }
        if (props.is_some() || additional.is_some()) && ty != "object" {
            self.problem(path, "properties on a non-object");
        }
        match (ty, map.get("items")) {
            ("array", Some(items)) if items.is_object() => {}
            ("array", _) => self.problem(path, "an array needs exactly one items schema"),
            (_, Some(_)) => self.problem(path, "items on a non-array"),
            _ => {}
        }
        let numeric = [
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ];
        if numeric.iter().any(|k| map.contains_key(*k)) && !["integer", "number"].contains(&ty) {
            self.problem(path, "numeric bound on a non-number");
        }
        if ["minLength", "maxLength", "pattern"]
            .iter()
            .any(|k| map.contains_key(*k))
            && ty != "string"
        {
            self.problem(path, "string bound on a non-string");
        }
        if let Some(format) = map.get("format").and_then(Value::as_str)
            && ty == "string"
            && !STRING_FORMATS.contains(&format)
        {
            self.problem(
                path,
                format!("string format {format:?} unknown to Kubernetes"),
            );
        }
        for name in map
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !props.is_some_and(|p| p.contains_key(name)) {
                self.problem(path, format!("required {name:?} is not a property"));
            }
        }
        for value in map
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ok = match value {
                Value::Null => flag("nullable"),
                Value::String(_) => ty == "string",
                Value::Bool(_) => ty == "boolean",
                Value::Number(n) => ty == "number" || (ty == "integer" && n.is_i64()),
                _ => ty == "object" || ty == "array",
            };
            if !ok {
                self.problem(path, format!("enum value {value} does not fit type {ty}"));
            }
        }
        if let Some(default) = map.get("default") {
            self.default(node, path, default);
        }
        self.rules(map, path, ty, untyped_ok, correlatable);
        if root {
            self.root_metadata(props);
        }
        for (name, child) in props.into_iter().flatten() {
            self.node(child, &format!("{path}.{name}"), false, correlatable);
        }
        if let Some(child) = additional.filter(|a| a.is_object()) {
            self.node(child, &format!("{path}[*key]"), false, correlatable);
        }
        if let Some(child) = map.get("items").filter(|i| i.is_object()) {
            // Old items are matched to new ones only in list-type=map lists.
            let keyed = map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            self.node(child, &format!("{path}[*]"), false, correlatable && keyed);
        }
    }

    fn default(&mut self, node: &Value, path: &str, default: &Value) {
        if default.is_null() && node.get("nullable") != Some(&Value::Bool(true)) {
            self.problem(path, "default null on a non-nullable node");
        }
        let pruned = stored_at(node, default);
        // Pruning may only add nested defaults, never drop a field of the default.
        if !contains(&pruned, default) {
            self.problem(
                path,
                format!("default {default} has fields the schema prunes"),
            );
        }
        let refusals = validate_at(node, default);
        if !refusals.is_empty() {
            self.problem(path, format!("default {default} invalid: {refusals:?}"));
        }
    }

    fn rules(
        &mut self,
        map: &serde_json::Map<String, Value>,
        path: &str,
        ty: &str,
        untyped_ok: bool,
        correlatable: bool,
    ) {
        let Some(rules) = map.get("x-kubernetes-validations") else {
            return;
        };
        if ty.is_empty() && !untyped_ok {
            self.problem(path, "validation rules on an untyped node");
        }
        for rule in rules.as_array().into_iter().flatten() {
            let Some(rule) = rule.as_object() else {
                self.problem(path, "a validation rule that is not an object");
                continue;
            };
            for key in rule.keys().filter(|k| !RULE_KEYS.contains(&k.as_str())) {
                self.problem(path, format!("validation rule key {key:?}"));
            }
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
            if text.trim().is_empty() {
                self.problem(path, "empty rule");
            }
            let message = rule
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if message.trim().is_empty() || message.contains('\n') {
                self.problem(
                    path,
                    format!("rule {text:?}: message must be one non-empty line"),
                );
            }
            match cel::Program::compile(text) {
                Ok(p) if p.references().has_variable("oldSelf") && !correlatable => {
                    self.problem(
                        path,
                        format!("transition rule {text:?} where old values do not correlate"),
                    );
                }
                Ok(_) => {}
                Err(e) => self.problem(path, format!("rule {text:?} does not compile: {e}")),
            }
        }
    }

    fn root_metadata(&mut self, props: Option<&serde_json::Map<String, Value>>) {
        let Some(metadata) = props.and_then(|p| p.get("metadata")) else {
            return;
        };
        let allowed = ["name", "generateName"];
        let inner = metadata.get("properties").and_then(Value::as_object);
        if inner.is_some_and(|p| p.keys().any(|k| !allowed.contains(&k.as_str()))) {
            self.problem(
                ".metadata",
                "metadata may only restrict name and generateName",
            );
        }
    }
}

/// `big` has every field of `small` with the same value (it may have more).
fn contains(big: &Value, small: &Value) -> bool {
    match (big, small) {
        (Value::Object(b), Value::Object(s)) => s
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|bv| contains(bv, v))),
        (Value::Array(b), Value::Array(s)) => {
            b.len() == s.len() && b.iter().zip(s).all(|(b, s)| contains(b, s))
        }
        _ => big == small,
    }
}

#[test]
fn generated_schemas_are_structural() {
    let schemas = version_schemas();
    assert!(
        schemas.len() >= 10,
        "expected every kind and both BGPPeer versions"
    );
    let mut problems = Vec::new();
    for schema in &schemas {
        let mut walk = Walk {
            crd: &schema.crd,
            version: &schema.api_version,
            problems: Vec::new(),
        };
        walk.node(&schema.schema, "", true, true);
        problems.append(&mut walk.problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_what_it_should() {
    // A few broken schemas, so a check that silently stopped working shows up here.
    let broken = [
        (
            serde_json::json!({"type": "object", "properties": {"a": {}}}),
            "need a type",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "object",
            "properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
            "together",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            "items",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "integer", "minimum": 3, "default": 1}}}),
            "invalid",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "object", "default": {"x": 1},
            "properties": {"b": {"type": "string"}}}}}),
            "prunes",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object",
            "properties": {"b": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "m"}]}}}}}}),
            "correlate",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string", "default": "1s",
            "x-kubernetes-validations": [{"rule": "duration(self) >= duration('3s')", "message": "m"}]}}}),
            "invalid",
        ),
        (
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string", "allOf": []}}}),
            "not allowed",
        ),
        (
            serde_json::json!({"type": "object", "required": ["b"], "properties": {"a": {"type": "string"}}}),
            "not a property",
        ),
    ];
    for (schema, expected) in broken {
        let mut walk = Walk {
            crd: "test",
            version: "v1",
            problems: Vec::new(),
        };
        walk.node(&schema, "", true, true);
        assert!(
            walk.problems.iter().any(|p| p.contains(expected)),
            "{schema}: {:?}",
            walk.problems
        );
    }
}

/// What MetalLB's CRDs declare and a migration relies on, beyond structure.
#[test]
fn crds_declare_what_metallbs_do() {
    let crds: Vec<Value> = oxlb_api::crds::all()
        .unwrap()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    let mut problems = Vec::new();
    for crd in &crds {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        // Applied over MetalLB's BGPPeer CRD, this replaces its conversion webhook.
        if crd["spec"]["conversion"] != serde_json::json!({"strategy": "None"}) {
            problems.push(format!("{kind}: conversion {}", crd["spec"]["conversion"]));
        }
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let at = format!("{kind} {}", version["name"]);
            if version["subresources"]["status"].is_null() {
                problems.push(format!("{at}: no status subresource"));
            }
            let columns: Vec<&str> = version["additionalPrinterColumns"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            if ["L2Advertisement", "BGPAdvertisement"].contains(&kind.as_str())
                && !columns.contains(&"Node Selectors")
            {
                problems.push(format!("{at}: no Node Selectors column"));
            }
            walk_all(
                &version["schema"]["openAPIV3Schema"],
                &at,
                &mut |node, path| {
                    if node["type"] == "integer"
                        && let Some(format) = node["format"].as_str()
                        && !["int32", "int64"].contains(&format)
                    {
                        problems.push(format!("{path}: integer format {format}"));
                    }
                    // A CEL `matches` over a string without maxLength is estimated
                    // at the request size and the API server refuses the CRD.
                    let matched = node["x-kubernetes-validations"]
                        .as_array()
                        .is_some_and(|r| {
                            r.iter()
                                .any(|r| r["rule"].as_str().unwrap_or("").contains("self.matches("))
                        });
                    if matched && node["maxLength"].as_u64().is_none_or(|m| m > 256) {
                        problems.push(format!("{path}: matches() over an unbounded string"));
                    }
                    if let Some(props) = node["properties"].as_object() {
                        for rule in node["x-kubernetes-validations"]
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            let text = rule["rule"].as_str().unwrap_or("");
                            for (name, prop) in props {
                                if text.contains(&format!("self.{name}.matches("))
                                    && prop["maxLength"].as_u64().is_none_or(|m| m > 256)
                                {
                                    problems.push(format!(
                                        "{path}.{name}: matches() over an unbounded string"
                                    ));
                                }
                            }
                        }
                    }
                    if node["properties"].get("matchLabels").is_some()
                        && node["x-kubernetes-map-type"] != "atomic"
                    {
                        problems.push(format!("{path}: selector not atomic"));
                    }
                },
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn walk_all(node: &Value, path: &str, f: &mut dyn FnMut(&Value, &str)) {
    f(node, path);
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            walk_all(child, &format!("{path}.{name}"), f);
        }
    }
    if node.get("items").is_some() {
        walk_all(&node["items"], &format!("{path}[]"), f);
    }
    if node["additionalProperties"].is_object() {
        walk_all(&node["additionalProperties"], &format!("{path}{{}}"), f);
    }
}
