//! Declaration fixtures: every valid one validates and round-trips; every invalid one fails with exactly its expected error.

use std::fs;
use std::path::{Path, PathBuf};

use baton_core::declaration::{PipelineDocument, validate};
use serde_json::Value;

/// The region every fixture is validated in, as `baton validate` defaults to.
const HOME_REGION: &str = "us-east-1";

/// Fewer fixtures than this means a directory went missing, not that everything passed.
const MIN_FIXTURES: usize = 22;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/declarations").join(kind);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= MIN_FIXTURES, "only {} fixtures in {}", files.len(), dir.display());
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(path: &Path, text: &str) -> PipelineDocument {
    PipelineDocument::parse(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn valid_fixtures_have_no_error() {
    let mut failures = Vec::new();
    for path in fixtures("valid") {
        let document = parse(&path, &read(&path));
        for error in validate(&document.pipeline, HOME_REGION) {
            failures.push(format!("{}: {error}", name(&path)));
        }
    }
    assert!(failures.is_empty(), "valid fixtures reported errors:\n{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_round_trip_losslessly() {
    let mut failures = Vec::new();
    for path in fixtures("valid") {
        let text = read(&path);
        let original: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let written = parse(&path, &text).to_value();
        if written != original {
            failures.push(format!(
                "{}: round trip changed the document:\n{}",
                name(&path),
                serde_json::to_string_pretty(&written).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_fixtures_report_exactly_their_expected_errors() {
    let mut failures = Vec::new();
    for path in fixtures("invalid") {
        let expected_path = path.with_extension("expected");
        let expected: Vec<String> = read(&expected_path).lines().map(str::to_string).collect();
        assert!(!expected.is_empty(), "{} is empty", expected_path.display());
        let document = parse(&path, &read(&path));
        let actual: Vec<String> =
            validate(&document.pipeline, HOME_REGION).iter().map(ToString::to_string).collect();
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  actual:\n    {}",
                name(&path),
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The invalid fixtures only prove something if each one breaks a rule a valid document keeps:
/// every `.expected` must sit beside its fixture and every fixture must have one.
#[test]
fn every_invalid_fixture_has_its_expectation() {
    for path in fixtures("invalid") {
        assert!(path.with_extension("expected").is_file(), "{} has no .expected", path.display());
    }
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/declarations/invalid");
    for entry in fs::read_dir(&dir).expect("invalid fixture directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|ext| ext == "expected") {
            assert!(path.with_extension("json").is_file(), "{} has no fixture", path.display());
        }
    }
}
