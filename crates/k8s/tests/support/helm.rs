//! charts/oxlb rendered by the real Helm engine: scripts/helm-render.py drives PyPI's
//! `helm-python-sdk` (Helm v4 as a shared library, no helm binary), installed by
//! scripts/install-test-deps.sh into target/helm-venv. `OXLB_HELM_PYTHON` names another
//! interpreter that has it.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Ok(path) = std::env::var("OXLB_HELM_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = root().join("target/helm-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs helm-python-sdk), \
         or set OXLB_HELM_PYTHON to a Python that has it",
        venv.display()
    );
    venv
}

/// What Helm made of the chart with these values.
pub struct Rendered {
    /// Template path (`oxlb/templates/x.yaml`) to its output.
    pub templates: BTreeMap<String, String>,
    /// `helm lint`'s messages of severity error and above.
    pub lint_errors: Vec<Value>,
}

/// Renders charts/oxlb (release `oxlb`) with `values` merged over values.yaml; Err is
/// Helm's message (a template's `fail`, a render error).
pub fn render(values: &Value, namespace: &str) -> Result<Rendered, String> {
    let request = json!({
        "chart": root().join("charts/oxlb"),
        "values": values,
        "name": "oxlb",
        "namespace": namespace,
    });
    let mut child = Command::new(python())
        .arg(root().join("scripts/helm-render.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/helm-render.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "helm-render.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    if let Some(error) = answer["error"].as_str() {
        return Err(error.to_string());
    }
    let templates = answer["templates"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    // helm's support.Message severities: 1 info, 2 warning, 4 error.
    let lint_errors = answer["lint"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["severity"].as_u64().unwrap_or(0) >= 4)
        .cloned()
        .chain(
            answer["lint"]["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned(),
        )
        .collect();
    Ok(Rendered {
        templates,
        lint_errors,
    })
}

/// Parses a multi-document YAML stream into its non-empty documents.
pub fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.trim().is_empty() {
            let v: Value =
                serde_saphyr::from_str(current).unwrap_or_else(|e| panic!("{e}\n{current}"));
            if !v.is_null() {
                docs.push(v);
            }
        }
        current.clear();
    };
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}
