//! Reading YAML (files, directories, strings) into a [`Snapshot`]. Bounded: a file larger
//! than [`MAX_FILE_BYTES`], more than [`MAX_DOCUMENTS`] documents or [`MAX_OBJECTS`]
//! objects is refused with an error, and the YAML parser runs with budgets (depth, nodes,
//! aliases), so no input makes it panic or allocate without limit.

use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Origin};
use crate::legacy;
use crate::schema;
use crate::snapshot::{Snapshot, Sourced};

pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
pub const MAX_DOCUMENTS: usize = 50_000;
pub const MAX_OBJECTS: usize = 200_000;
/// Files read from directories, in total.
pub const MAX_FILES: usize = 10_000;
/// Directory nesting followed.
const MAX_DIR_DEPTH: usize = 16;

/// Loads every path (a file, or a directory read recursively for `*.yaml`, `*.yml`,
/// `*.json`, in name order). `Err` holds every error and warning when any error was found.
pub fn load_paths(paths: &[PathBuf], namespace: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut loader = Loader::new(namespace);
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, 0, true, &mut files, &mut loader.errors);
    }
    for file in files {
        match read_bounded(&file) {
            Ok(text) => loader.add_text(&text, Some(&file)),
            Err(diagnostic) => loader.errors.push(*diagnostic),
        }
    }
    loader.finish()
}

/// Loads YAML text (one or more documents). `file` only names the source in messages.
pub fn load_str(
    text: &str,
    file: Option<&Path>,
    namespace: &str,
) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut loader = Loader::new(namespace);
    loader.add_text(text, file);
    loader.finish()
}

/// Loads bytes, refusing non-UTF-8 and oversized input (what the fuzz target drives).
pub fn load_bytes(bytes: &[u8], namespace: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(vec![too_large(None)]);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(text, None, namespace),
        Err(e) => Err(vec![Diagnostic::error(
            Code::Yaml,
            format!("not UTF-8 text: {e}"),
        )]),
    }
}

fn too_large(file: Option<&Path>) -> Diagnostic {
    Diagnostic::error(Code::TooLarge, "file too large")
        .at(&Origin {
            file: file.map(Path::to_path_buf),
            ..Origin::default()
        })
        .expected(format!("at most {} MiB", MAX_FILE_BYTES / 1024 / 1024))
}

fn read_bounded(path: &Path) -> Result<String, Box<Diagnostic>> {
    let origin = Origin {
        file: Some(path.to_path_buf()),
        ..Origin::default()
    };
    let io_error = |e: std::io::Error| {
        Box::new(Diagnostic::error(Code::Io, format!("cannot read: {e}")).at(&origin))
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Box::new(too_large(Some(path))));
    }
    String::from_utf8(bytes).map_err(|e| {
        Box::new(Diagnostic::error(Code::Yaml, format!("not UTF-8 text: {e}")).at(&origin))
    })
}

fn collect_files(
    path: &Path,
    depth: usize,
    explicit: bool,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<Diagnostic>,
) {
    let origin = Origin {
        file: Some(path.to_path_buf()),
        ..Origin::default()
    };
    if files.len() >= MAX_FILES {
        return;
    }
    // Named paths are followed through symlinks; inside directories symlinks are not,
    // so a link loop cannot make the walk endless.
    let metadata = if explicit {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    let metadata = match metadata {
        Ok(m) => m,
        Err(e) => {
            errors.push(Diagnostic::error(Code::Io, format!("cannot read: {e}")).at(&origin));
            return;
        }
    };
    if metadata.is_file() {
        let wanted = explicit
            || path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if wanted {
            files.push(path.to_path_buf());
        }
        return;
    }
    if !metadata.is_dir() || depth >= MAX_DIR_DEPTH {
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push(
                Diagnostic::error(Code::Io, format!("cannot read directory: {e}")).at(&origin),
            );
            return;
        }
    };
    entries.sort();
    for entry in entries {
        collect_files(&entry, depth + 1, false, files, errors);
    }
    if files.len() >= MAX_FILES {
        errors.push(
            Diagnostic::error(Code::TooLarge, "too many files")
                .at(&origin)
                .expected(format!("at most {MAX_FILES} files")),
        );
    }
}

/// Splits a YAML stream at `---` lines; returns (1-based start line, text) per document.
/// Done by hand (rather than by the parser) so that documents keep their index and line
/// numbers and one broken document does not hide the others.
pub(crate) fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        if is_marker {
            documents.push((start_line, &text[start..offset]));
            // The rest of the marker line (`--- {a: 1}`) belongs to the next document.
            start = offset + 3;
            start_line = index + 1;
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_nodes: 2_000_000,
            max_documents: 2,
            max_aliases: 1_000,
            max_anchors: 1_000,
        },
    }
}

/// Parses one YAML document; `Ok(None)` for an empty one.
pub(crate) fn parse_document(text: &str) -> Result<Option<Value>, (String, Option<usize>)> {
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "..."
    }) {
        return Ok(None);
    }
    match serde_saphyr::from_str_with_options::<Option<Value>>(text, yaml_options()) {
        Ok(value) => Ok(value.filter(|v| !v.is_null())),
        Err(e) => {
            let line = e.location().map(|l| l.line() as usize);
            Err((first_line(&e.to_string()), line))
        }
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

/// Accumulates objects and diagnostics over several files.
pub(crate) struct Loader {
    pub(crate) snapshot: Snapshot,
    pub(crate) errors: Vec<Diagnostic>,
    documents: usize,
}

impl Loader {
    pub(crate) fn new(namespace: &str) -> Loader {
        Loader {
            snapshot: Snapshot::new(namespace),
            errors: Vec::new(),
            documents: 0,
        }
    }

    pub(crate) fn finish(mut self) -> Result<Snapshot, Vec<Diagnostic>> {
        if self.errors.is_empty() {
            // The lists grew by doubling; a k8s Service is about 1 KB inline, so the
            // slack of 10,000 of them is up to 6 MB held for the life of the snapshot.
            let s = &mut self.snapshot;
            s.services.shrink_to_fit();
            s.endpoint_slices.shrink_to_fit();
            s.nodes.shrink_to_fit();
            s.namespaces.shrink_to_fit();
            Ok(self.snapshot)
        } else {
            self.errors.append(&mut self.snapshot.warnings);
            Err(self.errors)
        }
    }

    pub(crate) fn add_text(&mut self, text: &str, file: Option<&Path>) {
        for (index, (line, document)) in split_documents(text).into_iter().enumerate() {
            let origin = Origin {
                file: file.map(Path::to_path_buf),
                document: Some(index + 1),
                line: Some(line),
                namespace: None,
            };
            self.documents += 1;
            if self.documents > MAX_DOCUMENTS {
                self.errors.push(
                    Diagnostic::error(Code::TooLarge, "too many YAML documents")
                        .at(&origin)
                        .expected(format!("at most {MAX_DOCUMENTS} documents in all")),
                );
                return;
            }
            match parse_document(document) {
                Ok(Some(value)) => self.add_value(value, &origin, 0),
                Ok(None) => {}
                Err((message, error_line)) => {
                    let origin = Origin {
                        line: error_line
                            .map(|l| line + l.saturating_sub(1))
                            .or(Some(line)),
                        ..origin
                    };
                    self.errors.push(
                        Diagnostic::error(Code::Yaml, format!("invalid YAML: {message}"))
                            .at(&origin),
                    );
                }
            }
        }
    }

    fn full(&mut self, origin: &Origin) -> bool {
        if self.snapshot.object_count() >= MAX_OBJECTS {
            self.errors.push(
                Diagnostic::error(Code::TooLarge, "too many objects")
                    .at(origin)
                    .expected(format!("at most {MAX_OBJECTS} objects")),
            );
            return true;
        }
        false
    }

    /// One document: a Kubernetes object, a `*List`, legacy Helm values or a bare legacy
    /// config.
    pub(crate) fn add_value(&mut self, value: Value, origin: &Origin, depth: usize) {
        let Some(map) = value.as_object() else {
            self.snapshot.warnings.push(
                Diagnostic::warning(Code::NotAnObject, "document is not a mapping; ignored")
                    .at(origin),
            );
            return;
        };
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if kind.is_empty() && api_version.is_empty() {
            legacy::add_legacy_document(self, &value, origin);
            return;
        }
        if kind.ends_with("List") && depth == 0 {
            if let Some(Value::Array(items)) = map.get("items") {
                for item in items {
                    if self.full(origin) {
                        return;
                    }
                    self.add_value(item.clone(), origin, depth + 1);
                }
            }
            return;
        }
        if self.full(origin) {
            return;
        }
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = map
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_metallb = api_version.starts_with("metallb.io/");
        if is_metallb {
            if let Some(ns) = &namespace
                && *ns != self.snapshot.namespace
            {
                self.snapshot.warnings.push(
                    Diagnostic::warning(
                        Code::OtherNamespace,
                        format!(
                            "ignored: oxlb reads its configuration only from namespace {:?}",
                            self.snapshot.namespace
                        ),
                    )
                    .at(origin)
                    .object(&kind, &name)
                    .field("metadata.namespace")
                    .value(ns)
                    .expected(format!(
                        "{:?} (or pass --namespace {ns})",
                        self.snapshot.namespace
                    )),
                );
                return;
            }
            for unknown in schema::unknown_crd_fields(&api_version, &kind, &value) {
                self.snapshot
                    .warnings
                    .push(unknown_field_warning(&unknown, &kind, &name, origin));
            }
        }
        let mut value = value;
        if is_metallb
            && let Some(map) = value.as_object_mut()
            && map.get("spec").is_none_or(Value::is_null)
        {
            // MetalLB's kinds have `spec,omitempty`: an object without one (a common
            // L2Advertisement) is an empty spec, and required fields inside are named.
            map.insert("spec".to_string(), Value::Object(serde_json::Map::new()));
        }
        let o = origin.clone();
        let s = &mut self.snapshot;
        let e = &mut self.errors;
        match (api_version.as_str(), kind.as_str()) {
            ("metallb.io/v1beta1", "IPAddressPool") => push(value, &o, &kind, &name, &mut s.ip_address_pools, e),
            ("metallb.io/v1beta1", "L2Advertisement") => push(value, &o, &kind, &name, &mut s.l2_advertisements, e),
            ("metallb.io/v1beta1", "BGPAdvertisement") => push(value, &o, &kind, &name, &mut s.bgp_advertisements, e),
            ("metallb.io/v1beta2", "BGPPeer") => push(value, &o, &kind, &name, &mut s.bgp_peers, e),
            ("metallb.io/v1beta1", "BGPPeer") => {
                let mut old = Vec::new();
                push::<oxlb_api::bgppeer_v1beta1::BGPPeer>(value, &o, &kind, &name, &mut old, e);
                s.bgp_peers.extend(old.into_iter().map(|p| Sourced::new(p.object.into(), p.origin)));
            }
            ("metallb.io/v1beta1", "BFDProfile") => push(value, &o, &kind, &name, &mut s.bfd_profiles, e),
            ("metallb.io/v1beta1", "Community") => push(value, &o, &kind, &name, &mut s.communities, e),
            ("metallb.io/v1beta1", "ServiceL2Status" | "ServiceBGPStatus" | "ConfigurationState") => {}
            ("v1", "Secret") => push(value, &o, &kind, &name, &mut s.secrets, e),
            ("v1", "Service") => push(value, &o, &kind, &name, &mut s.services, e),
            ("v1", "Node") => push(value, &o, &kind, &name, &mut s.nodes, e),
            ("v1", "Namespace") => push(value, &o, &kind, &name, &mut s.namespaces, e),
            ("discovery.k8s.io/v1", "EndpointSlice") => push(value, &o, &kind, &name, &mut s.endpoint_slices, e),
            ("v1", "ConfigMap") => {
                let mut maps: Vec<Sourced<ConfigMap>> = Vec::new();
                push(value, &o, &kind, &name, &mut maps, e);
                for map in maps {
                    let legacy_config = map.object.data.as_ref().and_then(|d| d.get("config")).cloned();
                    let in_namespace = map.object.metadata.namespace.as_deref().is_none_or(|ns| ns == self.snapshot.namespace);
                    if let (Some(text), true, "config") = (legacy_config, in_namespace, name.as_str()) {
                        legacy::add_legacy_text(self, &text, &map.origin, "data.config");
                    }
                    self.snapshot.config_maps.push(map);
                }
            }
            _ if is_metallb => self.snapshot.warnings.push(
                Diagnostic::warning(Code::UnknownKind, "not a kind oxlb (or MetalLB v0.15) reads; ignored")
                    .at(origin)
                    .object(&kind, &name)
                    .field("apiVersion")
                    .value(&api_version)
                    .expected("metallb.io/v1beta1 IPAddressPool, L2Advertisement, BGPAdvertisement, BFDProfile, Community; metallb.io/v1beta2 (or v1beta1) BGPPeer"),
            ),
            // Deployments, RBAC and the like in the same manifests: not configuration.
            _ => {}
        }
    }
}

/// Diagnostic for a key the schema does not know.
pub(crate) fn unknown_field_warning(
    unknown: &schema::UnknownField,
    kind: &str,
    name: &str,
    origin: &Origin,
) -> Diagnostic {
    let (message, expected) = match &unknown.suggestion {
        Some(s) => (
            format!(
                "unknown field {:?}, ignored; did you mean {s:?}?",
                unknown.key
            ),
            s.clone(),
        ),
        None => (
            format!("unknown field {:?}, ignored", unknown.key),
            format!("one of {}", unknown.known.join(", ")),
        ),
    };
    Diagnostic::warning(Code::UnknownField, message)
        .at(origin)
        .object(kind, name)
        .field(&unknown.path)
        .expected(expected)
}

/// Deserializes a typed object, naming the field path on failure.
fn push<T: DeserializeOwned>(
    value: Value,
    origin: &Origin,
    kind: &str,
    name: &str,
    into: &mut Vec<Sourced<T>>,
    errors: &mut Vec<Diagnostic>,
) {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(object) => into.push(Sourced::new(object, origin.clone())),
        Err(e) => errors.push(type_error(&e, origin, kind, name)),
    }
}

pub(crate) fn type_error(
    e: &serde_path_to_error::Error<serde_json::Error>,
    origin: &Origin,
    kind: &str,
    name: &str,
) -> Diagnostic {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let code = if inner.starts_with("missing field") {
        Code::MissingField
    } else {
        Code::WrongType
    };
    let field = if path == "." { String::new() } else { path };
    let mut d = Diagnostic::error(code, inner).at(origin).object(kind, name);
    if code == Code::MissingField {
        // `missing field `x`` names the field relative to the path serde reached.
        let missing = d.message.split('`').nth(1).unwrap_or_default().to_string();
        d.field = if field.is_empty() {
            missing
        } else {
            format!("{field}.{missing}")
        };
        d.expected = Some("the field is required".to_string());
    } else {
        d.field = field;
        d.expected = Some(expected_from_serde(&d.message));
        if let Some(value) = d
            .message
            .split('`')
            .nth(1)
            .filter(|_| d.message.starts_with("invalid"))
        {
            d.value = Some(value.to_string());
        }
    }
    d
}

/// Turns serde's "expected u32" into words a user understands.
fn expected_from_serde(message: &str) -> String {
    let wanted = message.rsplit("expected ").next().unwrap_or(message).trim();
    match wanted {
        "u8" => "a whole number in 0..255".into(),
        "u16" => "a whole number in 0..65535".into(),
        "u32" => "a whole number in 0..4294967295".into(),
        "i32" | "i64" => "a whole number".into(),
        "a sequence" => "a list (one `- item` per line)".into(),
        "a boolean" => "true or false".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_lines() {
        let docs = split_documents("a: 1\n---\nb: 2\n--- {c: 3}\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0], (1, "a: 1\n"));
        assert_eq!(docs[1], (2, "\nb: 2\n"));
        assert_eq!(docs[2], (4, " {c: 3}\n"));
    }

    #[test]
    fn empty_documents_are_skipped() {
        assert_eq!(parse_document("# nothing\n"), Ok(None));
        assert_eq!(parse_document(""), Ok(None));
    }
}
