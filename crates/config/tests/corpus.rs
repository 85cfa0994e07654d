//! The fixture corpus: every file under tests/fixtures/valid must give a Config without
//! errors; every file under tests/fixtures/invalid must give exactly the errors its
//! header lists (`# expect: CODE Kind/name field`, one per line) and at least the
//! warnings it lists (`# warn: ...`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oxlb_config::{Diagnostic, build_config, load_paths};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `code Kind/name field` of a diagnostic, as the headers write it.
fn key(d: &Diagnostic) -> String {
    let code = serde_json::to_value(d.code).unwrap();
    let code = code.as_str().unwrap();
    let mut out = format!("{code} {}/{}", d.kind, d.name);
    if !d.field.is_empty() {
        out.push(' ');
        out.push_str(&d.field);
    }
    out
}

fn header(path: &Path, tag: &str) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("# {tag}: ")))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Errors and warnings of a file, loading and building as `oxlb check` does.
fn run(path: &Path) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    match load_paths(&[path.to_path_buf()], "metallb-system") {
        Err(all) => all.into_iter().partition(Diagnostic::is_error),
        Ok(snapshot) => {
            let built = build_config(&snapshot);
            (built.config.err().unwrap_or_default(), built.warnings)
        }
    }
}

#[test]
fn valid_fixtures_build() {
    let files = fixtures("valid");
    assert!(files.len() >= 30, "corpus too small");
    for path in files {
        let (errors, warnings) = run(&path);
        assert!(
            errors.is_empty(),
            "{}: unexpected errors:\n{}",
            path.display(),
            lines(&errors)
        );
        let got_warnings: BTreeSet<String> = warnings.iter().map(key).collect();
        for w in header(&path, "warn") {
            assert!(
                got_warnings.contains(&w),
                "{}: missing warning {w}; got:\n{}",
                path.display(),
                lines(&warnings)
            );
        }
        for w in header(&path, "nowarn") {
            assert!(
                !got_warnings.contains(&w),
                "{}: unexpected warning {w}; got:\n{}",
                path.display(),
                lines(&warnings)
            );
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_exactly_the_expected_errors() {
    let files = fixtures("invalid");
    assert!(files.len() >= 30, "corpus too small");
    for path in files {
        let expected = header(&path, "expect");
        assert!(
            !expected.is_empty(),
            "{}: no `# expect:` header",
            path.display()
        );
        let (errors, warnings) = run(&path);
        let got: BTreeSet<String> = errors.iter().map(key).collect();
        assert_eq!(
            got,
            expected,
            "{}: errors differ; got:\n{}",
            path.display(),
            lines(&errors)
        );
        let got_warnings: BTreeSet<String> = warnings.iter().map(key).collect();
        for w in header(&path, "warn") {
            assert!(
                got_warnings.contains(&w),
                "{}: missing warning {w}; got:\n{}",
                path.display(),
                lines(&warnings)
            );
        }
        // Every error says where and what would be valid (except YAML syntax errors,
        // which say where).
        for e in &errors {
            assert!(
                e.origin.file.is_some(),
                "{}: error without file: {e}",
                path.display()
            );
            assert!(
                e.expected.is_some() || e.code == oxlb_config::Code::Yaml,
                "{}: no valid alternative named: {e}",
                path.display()
            );
        }
    }
}

fn lines(ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(|d| format!("  {}  <- {d}\n", key(d)))
        .collect()
}
