//! `baton validate` on fixture files, a non-JSON file and a missing file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(kind: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/declarations")
        .join(kind)
        .join(name)
}

/// Runs `baton validate --region us-east-1 FILES`, independent of the caller's AWS_REGION.
fn validate(files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("validate")
        .args(["--region", "us-east-1"])
        .args(files)
        .env_remove("AWS_REGION")
        .output()
        .expect("run baton")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_valid_file_prints_its_summary_and_exits_0() {
    let file = fixture("valid", "cross-region.json");
    let output = validate(&[&file]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{}: valid: pipeline \"global-api\" (V2, SUPERSEDED), 4 stages, 4 actions, regions us-east-1, eu-west-1\n",
            file.display()
        )
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn an_invalid_file_prints_its_expected_errors_and_exits_1() {
    let file = fixture("invalid", "input-not-produced.json");
    let expected = std::fs::read_to_string(file.with_extension("expected")).expect("expected file");
    let output = validate(&[&file]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let prefixed: String =
        expected.lines().map(|line| format!("{}: {line}\n", file.display())).collect();
    assert_eq!(stdout(&output), prefixed);
}

#[test]
fn a_file_that_is_not_json_reports_line_and_column_and_exits_2() {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("baton-validate-broken.json");
    std::fs::write(&file, "{\n  \"name\": \"broken\",\n  \"stages\": [\n}\n")
        .expect("write temp file");
    let output = validate(&[&file]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let prefix = format!("{}: not valid JSON at line 4, column 1: ", file.display());
    assert!(err.starts_with(&prefix) && err.lines().count() == 1, "stderr: {err}");
    assert_eq!(stdout(&output), "");
}

#[test]
fn a_missing_file_cannot_be_read_and_wins_over_an_invalid_one() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("baton-validate-no-such-file.json");
    let invalid = fixture("invalid", "run-order-zero.json");
    let output = validate(&[&missing, &invalid]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.starts_with(&format!("{}: cannot read: ", missing.display())), "stderr: {err}");
    assert!(stdout(&output).contains("runOrder must be between 1 and 999, not 0"));
}

#[test]
fn a_document_of_the_wrong_shape_is_invalid() {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("baton-validate-shape.json");
    std::fs::write(
        &file,
        r#"{"pipeline": {"name": "x", "stages": [{"name": "S", "actions": [{"name": 1}]}]}}"#,
    )
    .expect("write temp file");
    let output = validate(&[&file]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert_eq!(
        out.trim_end(),
        format!("{}: stage \"S\", action #1: name must be a string, not 1", file.display()),
    );
}
