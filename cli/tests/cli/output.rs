//! `--output json|table|text`: each command's result as one JSON document on standard output
//! (CodePipeline's shapes where the command does what an operation does), with what is said on
//! the way on standard error; lists as columns under `table`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::run::{baton, git};

const PIPELINE: &str = r#"{"name": "app", "roleArn": "arn:aws:iam::111111111111:role/p",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [{"name": "Compile",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Src"}]}]}
  ]}"#;

pub(crate) fn setup(home: &Path) -> std::path::PathBuf {
    let repo = home.join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo compiled the app\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let pipeline = home.join("pipeline.json");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    pipeline
}

/// Standard output as the one JSON document it must be.
fn document(o: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn json_output_is_one_document_in_codepipelines_shapes_and_the_rest_goes_to_stderr() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = setup(home.path());
    let ran = baton(home.path()).args(["--output", "json", "run"]).arg(&pipeline).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let run = document(&ran);
    let id = run["pipelineExecution"]["pipelineExecutionId"].as_str().unwrap().to_owned();
    assert_eq!(run["pipelineExecution"]["status"], "Succeeded", "{run}");
    let names: Vec<_> = run["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["actionName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"Compile") && names.contains(&"Checkout"), "{names:?}");
    assert_eq!(run["stageStates"][1]["stageName"], "Build");
    let said = String::from_utf8_lossy(&ran.stderr);
    assert!(
        said.contains(&format!("Started execution {id}")),
        "the live view is on stderr: {said}"
    );

    // The same through BATON_OUTPUT, for the other commands.
    let json = |args: &[&str]| {
        let o = baton(home.path()).env("BATON_OUTPUT", "json").args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        document(&o)
    };
    let history = json(&["history", "app"]);
    assert_eq!(history["pipelineExecutionSummaries"][0]["pipelineExecutionId"], id.as_str());
    let status = json(&["status", "app"]);
    assert_eq!(status["pipelineExecution"]["pipelineExecutionId"], id.as_str());
    assert_eq!(status["actionExecutionDetails"].as_array().map(Vec::len), Some(2));
    let disabled = json(&["disable-transition", "app", "Build", "--reason", "freeze"]);
    assert_eq!(disabled, serde_json::json!({}));
    json(&["enable-transition", "app", "Build"]);
    assert_eq!(json(&["secrets", "list"]), serde_json::json!({"secrets": []}));

    // Logs as JSON Lines: one object a line, naming its action.
    let logs = baton(home.path())
        .args(["--output", "json", "logs", "app", &id, "Build", "Compile"])
        .output()
        .unwrap();
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&logs.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["stageName"] == "Build" && l["actionName"] == "Compile"));
    assert!(
        lines.iter().any(|l| l["line"].as_str().unwrap().contains("compiled the app")),
        "{lines:?}"
    );

    // A table: a header, then one row per execution, columns aligned.
    let table = baton(home.path()).args(["--output", "table", "history", "app"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("EXECUTION") && rows[0].contains("STATUS"), "{table}");
    assert!(rows[1].starts_with(&id) && rows[1].contains("Succeeded"), "{table}");
    assert_eq!(rows[0].find("STATUS"), rows[1].find("Succeeded"), "aligned:\n{table}");
}

#[test]
fn a_server_says_where_it_listens_as_one_json_line() {
    let home = tempfile::tempdir().unwrap();
    let mut server = baton(home.path())
        .args(["--output", "json", "serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let endpoint = ready["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{ready}");
    assert!(!endpoint.ends_with(":0"), "the port it took, not the one asked: {ready}");
    assert_eq!(ready["region"], "us-east-1");
}

/// `baton ... | head`: a reader that goes away ends the command quietly, with the status a
/// shell gives a process SIGPIPE ends, not with a panic's message.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let home = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/release-pipeline.json");
    for args in [&["completions", "bash"][..], &["secrets", "list"][..], &["validate", example][..]]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = baton(home.path()).args(args).stdout(writer).stderr(Stdio::piped()).output();
        let o = o.unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
    }
}
