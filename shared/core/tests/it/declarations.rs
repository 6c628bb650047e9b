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

// ---- every field honoured, or said not to be ----------------------------------------------

/// The object a key of `kind` leads into, as the fields table names objects.
fn child(key: &str) -> Option<&'static str> {
    Some(match key {
        "stages" => "stage",
        "actions" => "action",
        "actionTypeId" => "actionTypeId",
        "inputArtifacts" => "inputArtifact",
        "outputArtifacts" => "outputArtifact",
        "artifactStore" => "artifactStore",
        "encryptionKey" => "encryptionKey",
        "variables" => "variable",
        "triggers" => "trigger",
        "gitConfiguration" => "gitConfiguration",
        "push" | "pullRequest" => "gitFilter",
        "branches" | "filePaths" | "tags" => "globCriteria",
        "onFailure" => "onFailure",
        "onSuccess" | "beforeEntry" => "conditions",
        "conditions" => "condition",
        "rules" => "rule",
        "ruleTypeId" => "ruleTypeId",
        "retryConfiguration" => "retryConfiguration",
        "environmentVariables" => "environmentVariable",
        _ => return None,
    })
}

/// Every `object.key` a declaration's JSON holds (configuration maps are values, not fields).
fn fields(kind: &str, value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.insert(format!("{kind}.{key}"));
                match (key.as_str(), child(key)) {
                    ("configuration", _) => {}
                    ("artifactStores", _) => v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .for_each(|(_, s)| fields("artifactStore", s, out)),
                    (_, Some(c)) => fields(c, v, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| fields(kind, i, out)),
        _ => {}
    }
}

/// The keys the model does not know, kept verbatim in its `extra` maps, as `object.key`.
fn extras(p: &baton_core::declaration::PipelineDeclaration) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut add = |kind: &str, extra: &baton_core::declaration::Extra| {
        out.extend(extra.keys().map(|k| format!("{kind}.{k}")));
    };
    add("pipeline", &p.extra);
    for store in p.artifact_store.iter().chain(p.artifact_stores.iter().flat_map(|m| m.values())) {
        add("artifactStore", &store.extra);
    }
    for stage in &p.stages {
        add("stage", &stage.extra);
        for action in &stage.actions {
            add("action", &action.extra);
            add("actionTypeId", &action.action_type_id.extra);
            action.input_artifacts.iter().flatten().for_each(|a| add("inputArtifact", &a.extra));
            action.output_artifacts.iter().flatten().for_each(|a| add("outputArtifact", &a.extra));
        }
    }
    out
}

/// Every field of every valid fixture is either run, checked, or said not to be run yet (the
/// README repeats that list): nothing a declaration says is dropped without a word.
#[test]
fn every_field_is_run_checked_or_said_not_to_be() {
    use baton_core::declaration::honoured::{FIELDS, Honoured, honoured};
    for path in fixtures("valid") {
        let doc = parse(&path, &read(&path));
        let json: Value = serde_json::from_str(&read(&path)).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        fields("pipeline", json.get("pipeline").unwrap_or(&json), &mut seen);
        let unknown = extras(&doc.pipeline);
        for field in seen.difference(&unknown) {
            assert!(
                honoured(field).is_some(),
                "{}: {field} is in no row of the fields table",
                name(&path)
            );
        }
    }
    let not_yet: Vec<&str> =
        FIELDS.iter().filter(|(_, h)| matches!(h, Honoured::NotYet(_))).map(|(f, _)| *f).collect();
    assert_eq!(
        not_yet,
        Vec::<&str>::new(),
        "the fields not yet honoured changed: say so in the README"
    );
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"));
    for field in not_yet {
        assert!(readme.contains(&format!("`{field}`")), "the README does not name {field}");
    }
}

/// The stores a plan carries: a single `artifactStore` in the home region, `artifactStores`
/// region by region, each with its declared key (none when the key is absent).
#[test]
fn plans_carry_the_declared_artifact_stores() {
    use baton_core::plan::{DeclaredStore, Placement, Plan};
    let placement = Placement {
        account: "111111111111".into(),
        region: HOME_REGION.into(),
        event_source: "baton.codepipeline".into(),
    };
    let stages = r#"[{"name": "Source", "actions": [{"name": "Src",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Out"}]}]},
      {"name": "Deploy", "actions": [{"name": "Put",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Out"}]}]}]"#;
    let plan = |stores: &str| {
        let text = format!(
            r#"{{"name": "p", "roleArn": "arn:aws:iam::111111111111:role/r", {stores}, "stages": {stages}}}"#
        );
        Plan::from_declaration(&PipelineDocument::parse(&text).unwrap().pipeline, &placement)
            .unwrap()
            .artifact_stores
    };
    assert_eq!(
        plan(r#""artifactStore": {"type": "S3", "location": "codepipeline-home"}"#),
        [DeclaredStore {
            region: HOME_REGION.into(),
            bucket: "codepipeline-home".into(),
            kms_key: None
        }]
    );
    assert_eq!(
        plan(
            r#""artifactStores": {
                "us-east-1": {"type": "S3", "location": "store-a", "encryptionKey": {"id": "arn:aws:kms:us-east-1:111111111111:key/k", "type": "KMS"}},
                "eu-west-1": {"type": "S3", "location": "store-b"}}"#
        ),
        [
            DeclaredStore {
                region: "us-east-1".into(),
                bucket: "store-a".into(),
                kms_key: Some("arn:aws:kms:us-east-1:111111111111:key/k".into()),
            },
            DeclaredStore { region: "eu-west-1".into(), bucket: "store-b".into(), kms_key: None },
        ]
    );
}

/// A pipeline is indexed by the repositories and buckets its first stage's sources watch, so
/// a change reads only the pipelines it may start.
#[test]
fn plans_name_the_sources_they_watch() {
    use baton_core::plan::{Placement, Plan};
    let placement = Placement {
        account: "111111111111".into(),
        region: HOME_REGION.into(),
        event_source: "baton.codepipeline".into(),
    };
    let source = |name: &str, provider: &str, configuration: &str| {
        format!(
            r#"{{"name": "{name}", "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "{provider}", "version": "1"}},
            "configuration": {configuration}, "outputArtifacts": [{{"name": "{name}Out"}}]}}"#
        )
    };
    let sources = [
        source("Cc", "CodeCommit", r#"{"RepositoryName": "app", "BranchName": "main"}"#),
        source(
            "Up",
            "S3",
            r#"{"S3Bucket": "drop", "S3ObjectKey": "a.zip", "PollForSourceChanges": "true"}"#,
        ),
        source("Img", "ECR", r#"{"RepositoryName": "base"}"#),
        source(
            "Gh",
            "CodeStarSourceConnection",
            r#"{"ConnectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/c", "FullRepositoryId": "acme/site", "BranchName": "main"}"#,
        ),
    ]
    .join(",");
    let text = format!(
        r#"{{"name": "p", "roleArn": "arn:aws:iam::111111111111:role/r",
        "artifactStore": {{"type": "S3", "location": "artifacts"}},
        "stages": [{{"name": "Source", "actions": [{sources}]}},
          {{"name": "Build", "actions": [{{"name": "B", "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
            "configuration": {{"ProjectName": "x"}}, "inputArtifacts": [{{"name": "CcOut"}}]}}]}}]}}"#
    );
    let plan =
        Plan::from_declaration(&PipelineDocument::parse(&text).unwrap().pipeline, &placement)
            .unwrap();
    let watched: Vec<String> = plan.watched_sources().into_iter().collect();
    assert_eq!(watched, ["codecommit:app", "ecr:base", "git:acme/site", "poll", "s3:drop"]);
}
