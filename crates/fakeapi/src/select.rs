//! The query side of a list or watch: `labelSelector` and `fieldSelector` as the API
//! server reads them (percent-decoded, comma = AND). Only the equality-based forms and
//! set-free existence tests are understood (`a=b`, `a==b`, `a!=b`, `a`, `!a`), which is
//! everything kube-rs sends for `labels("k=v")` / `fields("metadata.name=x")`.

use serde_json::Value;

/// The value of `key` in a URL query, percent-decoded (`+` is a space, as in forms).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(decode)
}

/// Percent-decoding; an invalid escape is kept as it is.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| char::from(*b).to_digit(16))
                .and_then(|d| u8::try_from(d).ok())
        };
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    pub fn parse(text: &str) -> Selector {
        let requirements = text
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                if let Some((k, v)) = r.split_once("!=") {
                    Requirement::NotEquals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = r.split_once("==").or_else(|| r.split_once('=')) {
                    Requirement::Equals(k.trim().into(), v.trim().into())
                } else if let Some(k) = r.strip_prefix('!') {
                    Requirement::Absent(k.trim().into())
                } else {
                    Requirement::Exists(r.into())
                }
            })
            .collect();
        Selector { requirements }
    }

    /// Whether `lookup(key)` (the label's or field's value, if any) satisfies every
    /// requirement.
    fn matches_with(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
            // As in Kubernetes: `a!=b` also matches objects without `a`.
            Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
            Requirement::Exists(k) => lookup(k).is_some(),
            Requirement::Absent(k) => lookup(k).is_none(),
        })
    }
}

/// The selectors of one list or watch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    labels: Selector,
    fields: Selector,
}

impl Filter {
    pub fn from_query(query: &str) -> Filter {
        Filter {
            labels: Selector::parse(&query_param(query, "labelSelector").unwrap_or_default()),
            fields: Selector::parse(&query_param(query, "fieldSelector").unwrap_or_default()),
        }
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.labels
            .matches_with(|k| labels[k].as_str().map(str::to_string))
            && self.fields.matches_with(|path| field(object, path))
    }
}

/// A field selector's value: a dotted path into the object (`metadata.name`,
/// `spec.nodeName`, `status.phase`...).
fn field(object: &Value, path: &str) -> Option<String> {
    let mut at = object;
    for part in path.split('.') {
        at = at.get(part)?;
    }
    match at {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_and_selects() {
        assert_eq!(decode("a%3Db%2Cc%21%3Dd+e"), "a=b,c!=d e");
        assert_eq!(decode("bad%zz%4"), "bad%zz%4");
        let object = json!({"metadata": {"name": "x", "labels": {"a": "b", "c": "d"}}});
        let q = |q: &str| Filter::from_query(q).matches(&object);
        assert!(q("labelSelector=a%3Db"));
        assert!(q("labelSelector=a%3Db%2Cc&fieldSelector=metadata.name%3Dx"));
        assert!(!q("labelSelector=a%3Dc"));
        assert!(!q("labelSelector=%21c"));
        assert!(q("labelSelector=e%21%3Df"));
        assert!(!q("fieldSelector=metadata.name%3Dy"));
        assert!(q(""));
    }
}
