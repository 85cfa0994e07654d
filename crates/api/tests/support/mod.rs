//! What the API server does with a metallb.io object before it is stored, modelled
//! closely enough to test the generated CRDs without an API server:
//!
//! 1. prune unknown fields and apply schema `default`s (apiextensions structural
//!    defaulting, done before validation);
//! 2. OpenAPI value validation (`type`, `nullable`, `enum`, `minimum`, `maximum`,
//!    `required`);
//! 3. every `x-kubernetes-validations` rule, evaluated by a real CEL implementation (the
//!    `cel` crate) at the schema node it is attached to, with `self` bound to the value
//!    there and `oldSelf` to the old value on an update.
//!
//! Kubernetes' own rules for step 3 (apiextensions-apiserver, `schema/cel/validation.go`
//! and the CRD docs, "Validation rules"): rules are not evaluated on an absent or null
//! value (presence is checked from the enclosing object with `has()`); a rule that uses
//! `oldSelf` is a *transition rule*, evaluated only on update and only where an old value
//! exists at the same path; a rule that evaluates to an error rejects the object with
//! that error rather than the rule's message. Values get the CEL type of their schema:
//! `integer` → int (whatever its `format`), `number` → double, `string` → string (only
//! the formats `byte`, `duration`, `date`, `date-time` change the type, and these
//! schemas must not use them: see `to_cel`), objects → maps keyed by field name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// One served version of one CRD: its name, `group/version`, kind and schema.
pub struct VersionSchema {
    pub crd: String,
    pub api_version: String,
    pub kind: String,
    pub schema: Value,
}

/// Every version schema of every generated CRD (what `oxlb crds` prints).
pub fn version_schemas() -> Vec<VersionSchema> {
    let mut out = Vec::new();
    for crd in oxlb_api::crds::all().expect("CRDs generate") {
        let crd = serde_json::to_value(&crd).expect("CRD serializes");
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let schema = version["schema"]["openAPIV3Schema"].clone();
            assert!(schema.is_object(), "{name}: a version without a schema");
            out.push(VersionSchema {
                crd: name.clone(),
                api_version: format!("{group}/{}", version["name"].as_str().unwrap_or_default()),
                kind: kind.to_string(),
                schema,
            });
        }
    }
    out
}

/// The schema for an object's apiVersion and kind.
pub fn schema_for<'a>(schemas: &'a [VersionSchema], object: &Value) -> Option<&'a VersionSchema> {
    schemas.iter().find(|s| {
        object["apiVersion"].as_str() == Some(&s.api_version)
            && object["kind"].as_str() == Some(&s.kind)
    })
}

/// A child step from a schema node: a property, every list item, or every map value.
fn children(schema: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        out.extend(props.iter().map(|(k, v)| (format!(".{k}"), v)));
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        out.push(("[*]".to_string(), items));
    }
    if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        out.push(("[*key]".to_string(), values));
    }
    out
}

/// A rule found in a generated schema.
pub struct RuleSite {
    pub crd: String,
    pub api_version: String,
    pub kind: String,
    /// Schema path of the node carrying the rule, such as `.spec.holdTime`.
    pub path: String,
    pub rule: String,
    pub message: String,
    /// Uses `oldSelf`: evaluated on update only.
    pub transition: bool,
}

/// Every `x-kubernetes-validations` rule of every generated CRD, compiled. Errors name
/// each rule that does not compile or lacks a message.
pub fn rule_sites() -> (Vec<RuleSite>, Vec<String>) {
    let mut sites = Vec::new();
    let mut errors = Vec::new();
    for v in version_schemas() {
        let mut stack = vec![(String::new(), &v.schema)];
        while let Some((path, node)) = stack.pop() {
            for rule in node
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = rule["rule"].as_str().unwrap_or_default().to_string();
                let message = rule["message"].as_str().unwrap_or_default().to_string();
                let at = format!("{} {}{}: {text:?}", v.crd, v.api_version, path);
                if message.is_empty() {
                    errors.push(format!("{at}: no message"));
                }
                match cel::Program::compile(&text) {
                    Ok(program) => sites.push(RuleSite {
                        crd: v.crd.clone(),
                        api_version: v.api_version.clone(),
                        kind: v.kind.clone(),
                        path: if path.is_empty() {
                            ".".into()
                        } else {
                            path.clone()
                        },
                        transition: program.references().has_variable("oldSelf"),
                        rule: text,
                        message,
                    }),
                    Err(e) => errors.push(format!("{at}: does not compile: {e}")),
                }
            }
            for (step, child) in children(node) {
                stack.push((format!("{path}{step}"), child));
            }
        }
    }
    sites.sort_by(|a, b| (&a.crd, &a.api_version, &a.path).cmp(&(&b.crd, &b.api_version, &b.path)));
    (sites, errors)
}

/// Why the API server would refuse an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A CEL rule evaluated to false: its message.
    Rule { path: String, message: String },
    /// A CEL rule failed to evaluate (Kubernetes reports the error instead).
    RuleError {
        path: String,
        rule: String,
        error: String,
    },
    /// OpenAPI value validation.
    Schema { path: String, reason: String },
}

impl Refusal {
    pub fn message(&self) -> Option<&str> {
        match self {
            Refusal::Rule { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Creates (`old` = None) or updates `object` through `schema`, as the API server would:
/// prune, default, validate. Returns every refusal.
pub fn admit(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<Refusal> {
    let object = stored(schema, object);
    let old = old.map(|o| stored(schema, o));
    let mut out = Vec::new();
    validate(schema, "", &object, old.as_ref(), true, &mut out);
    out
}

/// `object` as the API server would store it: unknown fields pruned, defaults applied.
pub fn stored(schema: &Value, object: &Value) -> Value {
    let mut object = object.clone();
    normalize(schema, &mut object, true);
    object
}

/// Validates `value` against a non-root schema node (for defaults): OpenAPI value
/// validation and the CEL rules of the node and everything under it.
pub fn validate_at(schema: &Value, value: &Value) -> Vec<Refusal> {
    let mut out = Vec::new();
    validate(schema, "", value, None, false, &mut out);
    out
}

/// `value` pruned and defaulted by a non-root schema node.
pub fn stored_at(schema: &Value, value: &Value) -> Value {
    let mut value = value.clone();
    normalize(schema, &mut value, false);
    value
}

/// Fields at the root that every kind has and no generated schema lists.
const IMPLICIT_ROOT: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Pruning of unknown fields, then defaulting of absent ones.
fn normalize(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true)) {
                    map.retain(|k, _| {
                        props.contains_key(k) || (root && IMPLICIT_ROOT.contains(&k.as_str()))
                    });
                }
                for (name, prop) in props {
                    if let (false, Some(default)) = (map.contains_key(name), prop.get("default")) {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(name) {
                        normalize(prop, child, false);
                    }
                }
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for child in map.values_mut() {
                    normalize(values, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for child in items {
                    normalize(item, child, false);
                }
            }
        }
        _ => {}
    }
}

fn validate(
    schema: &Value,
    path: &str,
    value: &Value,
    old: Option<&Value>,
    root: bool,
    out: &mut Vec<Refusal>,
) {
    let here = if path.is_empty() { "." } else { path };
    if value.is_null() {
        // Null only where nullable; rules never see a null value.
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(Refusal::Schema {
                path: here.into(),
                reason: "must not be null".into(),
            });
        }
        return;
    }
    if let Some(reason) = value_error(schema, value) {
        out.push(Refusal::Schema {
            path: here.into(),
            reason,
        });
        return;
    }
    evaluate_rules(schema, here, value, old.filter(|o| !o.is_null()), out);
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap_or_default();
                if !map.contains_key(name) {
                    out.push(Refusal::Schema {
                        path: format!("{path}.{name}"),
                        reason: "required".into(),
                    });
                }
            }
            let values = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                if root && IMPLICIT_ROOT.contains(&key.as_str()) {
                    continue;
                }
                let Some(sub) = props.and_then(|p| p.get(key)).or(values) else {
                    continue;
                };
                let old_child = old.and_then(|o| o.get(key));
                validate(sub, &format!("{path}.{key}"), child, old_child, false, out);
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    // Atomic lists do not correlate old items: transition rules inside
                    // them are not evaluated (none of our lists is a listType=map/set).
                    validate(item, &format!("{path}[{i}]"), child, None, false, out);
                }
            }
        }
        _ => {}
    }
}

/// OpenAPI value validation of one node (not its children).
fn value_error(schema: &Value, value: &Value) -> Option<String> {
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    };
    if !type_ok {
        return Some(format!("expected {ty}, got {value}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Some(format!("{value} not in enum {allowed:?}"));
    }
    // OpenAPI `pattern`: the API server matches with Go's RE2, unanchored (our patterns
    // anchor themselves); the regex crate's syntax is the same for what we use.
    if let (Some(pattern), Some(text)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        let re = regex::Regex::new(pattern).expect("schema pattern compiles");
        if !re.is_match(text) {
            return Some(format!("{text:?} does not match the pattern"));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Some(format!("{n} below minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Some(format!("{n} above maximum {max}"));
        }
    }
    None
}

fn evaluate_rules(
    schema: &Value,
    path: &str,
    value: &Value,
    old: Option<&Value>,
    out: &mut Vec<Refusal>,
) {
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = rule["rule"].as_str().unwrap_or_default();
        let refuse_error = |error: String| Refusal::RuleError {
            path: path.into(),
            rule: text.into(),
            error,
        };
        let program = match cel::Program::compile(text) {
            Ok(p) => p,
            Err(e) => {
                out.push(refuse_error(format!("compile: {e}")));
                continue;
            }
        };
        let transition = program.references().has_variable("oldSelf");
        let old = match (transition, old) {
            (true, None) => continue, // create, or no old value here: not evaluated
            (true, Some(old)) => Some(old),
            (false, _) => None,
        };
        let mut context = cel::Context::default();
        let bound = to_cel(schema, value).and_then(|v| {
            context.add_variable_from_value("self", v);
            if let Some(old) = old {
                context.add_variable_from_value("oldSelf", to_cel(schema, old)?);
            }
            Ok(())
        });
        if let Err(e) = bound {
            out.push(refuse_error(e));
            continue;
        }
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => out.push(Refusal::Rule {
                path: path.into(),
                message: rule["message"].as_str().unwrap_or_default().into(),
            }),
            Ok(other) => out.push(refuse_error(format!("not a bool: {other:?}"))),
            Err(e) => out.push(refuse_error(e.to_string())),
        }
    }
}

/// The CEL value Kubernetes binds for `value` typed by `schema`.
pub fn to_cel(schema: &Value, value: &Value) -> Result<cel::Value, String> {
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) if ty == "number" => cel::Value::Float(n.as_f64().ok_or("not a double")?),
        Value::Number(n) => {
            cel::Value::Int(n.as_i64().ok_or_else(|| format!("{n} is not an int64"))?)
        }
        Value::String(s) => {
            let format = schema
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if ["byte", "duration", "date", "date-time"].contains(&format) {
                // Kubernetes would bind bytes/duration/timestamp here; not modelled.
                return Err(format!(
                    "string format {format:?} changes the CEL type; model it in tests/support"
                ));
            }
            cel::Value::String(Arc::new(s.clone()))
        }
        Value::Array(items) => {
            let item = schema.get("items").unwrap_or(&Value::Null);
            let items = items
                .iter()
                .map(|i| to_cel(item, i))
                .collect::<Result<Vec<_>, _>>()?;
            cel::Value::List(Arc::new(items))
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let values = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut out = HashMap::new();
            for (key, child) in map {
                let sub = props
                    .and_then(|p| p.get(key))
                    .or(values)
                    .unwrap_or(&Value::Null);
                out.insert(
                    cel::objects::Key::String(Arc::new(key.clone())),
                    to_cel(sub, child)?,
                );
            }
            cel::Value::Map(cel::objects::Map { map: Arc::new(out) })
        }
    })
}

/// The metallb.io objects in every valid fixture of oxlb-config, with their file.
pub fn fixture_objects() -> Vec<(PathBuf, Value)> {
    fixtures_in("valid")
}

/// The metallb.io objects of the fixtures in `fixtures/<kind>` of oxlb-config.
pub fn fixtures_in(kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture reads");
        let mut stack: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(documents) => documents,
            // Broken YAML never reaches the API server: only invalid fixtures have it.
            Err(_) if kind == "invalid" => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        while let Some(doc) = stack.pop() {
            if doc["kind"] == "List" {
                stack.extend(doc["items"].as_array().cloned().unwrap_or_default());
            } else if doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("metallb.io/"))
            {
                out.push((file.clone(), doc));
            }
        }
    }
    out
}
