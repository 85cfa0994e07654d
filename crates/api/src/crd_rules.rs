//! Admission rules added to the generated CRDs where a derive attribute cannot say them,
//! so the API server itself refuses what it can check (MetalLB has a webhook for this;
//! oxlb has none). Every rule here installs on Kubernetes 1.25+: OpenAPI keywords,
//! and CEL rules using only the standard macros and functions (`has`, `matches`,
//! `duration`). CEL's IP/CIDR library (`isCIDR`, `isIP`, Kubernetes 1.31+) is not used:
//! a CRD naming it fails to install on 1.25..1.30, and the address pattern below already
//! refuses malformed IPv4 exactly; what it lets through (a malformed IPv6 address) the
//! controller reports and leaves out.

use serde_json::{Value, json};

/// Go's `time.ParseDuration` grammar (what `metav1.Duration` accepts): a sign, then
/// `0` or a sequence of decimal numbers each with a unit. `[.]` instead of `\.`, so the
/// CEL string needs no escape.
pub const DURATION_PATTERN: &str =
    "^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

/// An `IPAddressPool` address: an IPv4 or IPv6 CIDR, or a `start-end` range of one
/// family (spaces around `-` allowed, as MetalLB trims them).
pub fn address_pattern() -> String {
    let v4 = format!("{OCTET}([.]{OCTET}){{3}}");
    // Hex groups around colons (`::` allowed), optionally ending in a dotted IPv4.
    let v6 = format!("[0-9a-fA-F]{{0,4}}(:[0-9a-fA-F]{{0,4}}){{1,7}}(:{v4})?");
    let cidr4 = format!("{v4}/(3[0-2]|[12]?[0-9])");
    let cidr6 = format!("{v6}/(12[0-8]|1[01][0-9]|[1-9]?[0-9])");
    let range4 = format!("\\s*{v4}\\s*-\\s*{v4}\\s*");
    let range6 = format!("\\s*{v6}\\s*-\\s*{v6}\\s*");
    format!("^({cidr4}|{cidr6}|{range4}|{range6})$")
}

/// Applies every rule below to one CRD (as JSON).
pub fn apply(crd: &mut Value) {
    // MetalLB's BGPPeer CRD declares a conversion webhook (v1beta1 <-> v1beta2) pointing
    // at MetalLB's webhook Service. oxlb serves both versions with the same fields and
    // needs no conversion; saying so explicitly makes applying this CRD over MetalLB's
    // replace the webhook, so the API server stops calling a Service that is gone.
    crd["spec"]["conversion"] = json!({"strategy": "None"});
    let kind = crd["spec"]["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(versions) = crd["spec"]["versions"].as_array_mut() else {
        return;
    };
    for version in versions {
        add_columns(&kind, version);
        let schema = &mut version["schema"]["openAPIV3Schema"];
        integer_formats(schema);
        atomic_selectors(schema);
        match kind.as_str() {
            "IPAddressPool" => {
                if let Some(item) = child(
                    schema,
                    &["properties", "spec", "properties", "addresses", "items"],
                ) {
                    item["pattern"] = Value::from(address_pattern());
                }
            }
            "BGPPeer" => {
                if let Some(spec) = child(schema, &["properties", "spec"]) {
                    durations(spec);
                }
            }
            "ServiceL2Status" | "ServiceBGPStatus" => immutable_identity(schema),
            _ => {}
        }
    }
}

/// MetalLB's advertisements list their node selectors in `kubectl get -o wide`.
fn add_columns(kind: &str, version: &mut Value) {
    if !matches!(kind, "L2Advertisement" | "BGPAdvertisement") {
        return;
    }
    if let Some(columns) = version
        .get_mut("additionalPrinterColumns")
        .and_then(Value::as_array_mut)
    {
        columns.push(json!({
            "name": "Node Selectors",
            "type": "string",
            "jsonPath": ".spec.nodeSelectors",
            "priority": 10,
        }));
    }
}

/// schemars writes Rust's unsigned types as `format: uint8/uint16/uint32`, which
/// Kubernetes does not know (ignored, and warned about by recent API servers), and
/// bounds them only below. The integer formats Kubernetes knows are int32 and int64;
/// the type's own maximum is added where no tighter one is set, so an ASN of
/// 4294967296 is refused at admission instead of being stored and skipped.
fn integer_formats(node: &mut Value) {
    walk(node, &mut |n| {
        let max = match n["format"].as_str() {
            Some("uint8") => 255u64,
            Some("uint16") => 65535,
            Some("uint32") => 4_294_967_295,
            _ => return,
        };
        n["format"] = Value::from(if max > i32::MAX as u64 {
            "int64"
        } else {
            "int32"
        });
        if n.get("maximum").is_none() {
            n["maximum"] = Value::from(max);
        }
        if n.get("minimum").is_none() {
            n["minimum"] = Value::from(0);
        }
    });
}

/// Label selectors are replaced whole, never merged key by key (Kubernetes marks
/// `metav1.LabelSelector` atomic; MetalLB's CRDs carry the same markers): a server-side
/// apply from a second manager must not mix two selectors into one that neither meant.
fn atomic_selectors(node: &mut Value) {
    walk(node, &mut |n| {
        let props = &n["properties"];
        if props.get("matchLabels").is_some() && props.get("matchExpressions").is_some() {
            n["x-kubernetes-map-type"] = Value::from("atomic");
            if let Some(list) = child(n, &["properties", "matchExpressions"]) {
                list["x-kubernetes-list-type"] = Value::from("atomic");
            }
            if let Some(values) = child(
                n,
                &[
                    "properties",
                    "matchExpressions",
                    "items",
                    "properties",
                    "values",
                ],
            ) {
                values["x-kubernetes-list-type"] = Value::from("atomic");
            }
        }
    });
}

const DURATION_FIELDS: [&str; 3] = ["holdTime", "keepaliveTime", "connectTime"];
const MAX_DURATION_LENGTH: u64 = 64;

/// A duration without a unit (`holdTime: 90`) gets a message that says so. Without
/// this, the API server answers "type conversion error from 'string' to
/// 'google.protobuf.Duration'". The other rules on these fields are guarded so that
/// such a value gets this one message, not that error too.
fn durations(spec: &mut Value) {
    let syntax = |field: &str| format!("{field}.matches('{DURATION_PATTERN}')");
    if let Some(rules) = spec
        .get_mut("x-kubernetes-validations")
        .and_then(Value::as_array_mut)
    {
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default().to_string();
            let unparsable: Vec<String> = DURATION_FIELDS
                .iter()
                .filter(|f| text.contains(&format!("duration(self.{f})")))
                .map(|f| format!("(has(self.{f}) && !{})", syntax(&format!("self.{f}"))))
                .collect();
            if !unparsable.is_empty() {
                rule["rule"] = Value::from(format!("{} || ({text})", unparsable.join(" || ")));
            }
        }
    }
    for field in DURATION_FIELDS {
        let Some(node) = child(spec, &["properties", field]) else {
            continue;
        };
        // The API server estimates each rule's cost before it accepts the CRD; a
        // regular expression over a string of unbounded length (up to the request
        // size) would exceed the per-rule budget. No duration needs 64 characters.
        node["maxLength"] = Value::from(MAX_DURATION_LENGTH);
        let guard = syntax("self");
        let mut rules = vec![json!({
            "rule": guard,
            "message": format!(
                "{field} must be a duration with a unit, such as 90s, 1m30s or 500ms"
            ),
        })];
        for mut rule in node["x-kubernetes-validations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let text = rule["rule"].as_str().unwrap_or_default().to_string();
            rule["rule"] = Value::from(format!("!{guard} || ({text})"));
            rules.push(rule);
        }
        node["x-kubernetes-validations"] = Value::from(rules);
    }
}

/// As MetalLB's status kinds: which node announces which Service never changes on an
/// object (the speaker names the object after them); a write that would is refused.
fn immutable_identity(root: &mut Value) {
    for field in ["node", "serviceName", "serviceNamespace"] {
        let Some(node) = child(root, &["properties", "status", "properties", field]) else {
            continue;
        };
        node["x-kubernetes-validations"] =
            json!([{"rule": "self == oldSelf", "message": "Value is immutable"}]);
    }
}

/// The node at `path`, if every step exists (indexing would insert nulls).
fn child<'a>(node: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(node, |n, key| n.get_mut(*key))
}

fn walk(node: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    if !node.is_object() {
        return;
    }
    f(node);
    if let Some(props) = node.get_mut("properties").and_then(Value::as_object_mut) {
        for child in props.values_mut() {
            walk(child, f);
        }
    }
    if node.get("items").is_some() {
        walk(&mut node["items"], f);
    }
    if node
        .get("additionalProperties")
        .is_some_and(Value::is_object)
    {
        walk(&mut node["additionalProperties"], f);
    }
}
