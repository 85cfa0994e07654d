//! Unknown-field detection: walks a raw object against its JSON schema (the generated
//! CRD schema for metallb.io kinds, the schemars schema for legacy formats) and names
//! every key the schema does not know, with the nearest known key. MetalLB's API server
//! prunes such keys silently, so a typo like `adresses` quietly loses the addresses;
//! oxlb says so.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

/// A key the schema does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Path of the key, such as `spec.adresses`.
    pub path: String,
    pub key: String,
    /// The closest known key at that place, when one is close enough to be a typo.
    pub suggestion: Option<String>,
    /// Every known key at that place, for the message when nothing is close.
    pub known: Vec<String>,
}

/// Depth bound of the walk: objects nest a handful of levels; anything deeper is not a
/// configuration and must not cost stack.
const MAX_DEPTH: usize = 32;

/// The openAPIV3Schema of each metallb.io kind, keyed by (apiVersion, kind).
fn crd_schemas() -> &'static BTreeMap<(String, String), Value> {
    static SCHEMAS: OnceLock<BTreeMap<(String, String), Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut schemas = BTreeMap::new();
        for crd in oxlb_api::crds::all().unwrap_or_default() {
            for version in crd.spec.versions {
                let schema = version
                    .schema
                    .and_then(|s| s.open_api_v3_schema)
                    .and_then(|s| serde_json::to_value(s).ok());
                if let Some(schema) = schema {
                    let api_version = format!("{}/{}", crd.spec.group, version.name);
                    schemas.insert((api_version, crd.spec.names.kind.clone()), schema);
                }
            }
        }
        schemas
    })
}

/// Unknown keys of a metallb.io object under `spec` (and the top level).
pub fn unknown_crd_fields(api_version: &str, kind: &str, object: &Value) -> Vec<UnknownField> {
    let mut found = Vec::new();
    let Some(schema) = crd_schemas().get(&(api_version.to_string(), kind.to_string())) else {
        return found;
    };
    let Some(map) = object.as_object() else {
        return found;
    };
    const TOP: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];
    for key in map.keys() {
        if !TOP.contains(&key.as_str()) {
            found.push(unknown(
                String::new(),
                key,
                TOP.iter().map(|k| k.to_string()).collect(),
            ));
        }
    }
    if let (Some(spec), Some(spec_schema)) = (map.get("spec"), schema.pointer("/properties/spec")) {
        walk(spec, spec_schema, schema, "spec", 0, &mut found);
    }
    found
}

/// Unknown keys of `value` against a schemars root schema (with `$defs`).
pub fn unknown_fields(value: &Value, root: &Value, path: &str) -> Vec<UnknownField> {
    let mut found = Vec::new();
    walk(value, root, root, path, 0, &mut found);
    found
}

fn walk(
    value: &Value,
    schema: &Value,
    root: &Value,
    path: &str,
    depth: usize,
    found: &mut Vec<UnknownField>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut branches = Vec::new();
    flatten(schema, root, 0, &mut branches);
    match value {
        Value::Object(map) => {
            let mut properties: BTreeMap<&str, &Value> = BTreeMap::new();
            let mut open = false;
            let mut is_object = false;
            for branch in &branches {
                if let Some(props) = branch.get("properties").and_then(Value::as_object) {
                    is_object = true;
                    for (k, v) in props {
                        properties.insert(k, v);
                    }
                }
                let additional = branch.get("additionalProperties");
                if additional.is_some_and(|a| a != &Value::Bool(false))
                    || branch.get("x-kubernetes-preserve-unknown-fields")
                        == Some(&Value::Bool(true))
                {
                    open = true;
                }
            }
            if !is_object {
                return;
            }
            for (key, child) in map {
                let child_path = join(path, key);
                match properties.get(key.as_str()) {
                    Some(child_schema) => {
                        walk(child, child_schema, root, &child_path, depth + 1, found)
                    }
                    None if !open => found.push(unknown(
                        path.to_string(),
                        key,
                        properties.keys().map(|k| k.to_string()).collect(),
                    )),
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            for branch in &branches {
                if let Some(item_schema) = branch.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        walk(
                            item,
                            item_schema,
                            root,
                            &format!("{path}[{i}]"),
                            depth + 1,
                            found,
                        );
                    }
                    return;
                }
            }
        }
        _ => {}
    }
}

/// The schema and every schema it stands for through `$ref`, `anyOf`, `oneOf`, `allOf`.
fn flatten<'a>(schema: &'a Value, root: &'a Value, depth: usize, out: &mut Vec<&'a Value>) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        if let Some(target) = root.pointer(pointer) {
            flatten(target, root, depth + 1, out);
        }
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = schema.get(combinator).and_then(Value::as_array) {
            for sub in list {
                flatten(sub, root, depth + 1, out);
            }
        }
    }
    out.push(schema);
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn unknown(path: String, key: &str, known: Vec<String>) -> UnknownField {
    UnknownField {
        path: join(&path, key),
        key: key.to_string(),
        suggestion: nearest(key, &known),
        known,
    }
}

/// The known name closest to `key` by edit distance (case-insensitive), if it is close
/// enough to be a typo: at most a third of the length, and at least 2 edits allowed.
pub fn nearest(key: &str, known: &[String]) -> Option<String> {
    let lower = key.to_lowercase();
    let limit = (key.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_lowercase()), k))
        // A suggestion must keep some of the key: "c" is not a typo of "a".
        .filter(|(d, k)| *d <= limit && *d < lower.chars().count() && *d < k.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Levenshtein distance over chars; inputs are short field names (bounded by the caller
/// only through YAML limits, so cap the work).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(128).collect();
    let b: Vec<char> = b.chars().take(128).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_is_found_with_suggestion() {
        let object = serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "a"},
            "spec": {"adresses": ["10.0.0.0/24"], "serviceAllocation": {"priorty": 1}}
        });
        let found = unknown_crd_fields("metallb.io/v1beta1", "IPAddressPool", &object);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].path, "spec.adresses");
        assert_eq!(found[0].suggestion.as_deref(), Some("addresses"));
        assert_eq!(found[1].path, "spec.serviceAllocation.priorty");
        assert_eq!(found[1].suggestion.as_deref(), Some("priority"));
    }

    #[test]
    fn label_maps_are_open() {
        let object = serde_json::json!({
            "spec": {"addresses": [], "serviceAllocation": {"namespaceSelectors": [{"matchLabels": {"anything": "x"}}]}}
        });
        assert!(unknown_crd_fields("metallb.io/v1beta1", "IPAddressPool", &object).is_empty());
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("adresses", "addresses"), 1);
        assert_eq!(
            nearest("peerASn", &["peerASN".into(), "myASN".into()]).as_deref(),
            Some("peerASN")
        );
        assert_eq!(nearest("zzzzzz", &["peerASN".into()]), None);
    }
}
