//! `baton secrets` and the builds that read them: `PARAMETER_STORE` and `SECRETS_MANAGER`
//! variables (a buildspec's `env/parameter-store`, a Commands action's typed variables)
//! resolve from the home's encrypted store, reach the commands, and are found nowhere in the
//! home in the clear afterwards: not in logs, state, events or artifacts.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::json;

use crate::run::{baton, files, git};

fn put(home: &Path, args: &[&str], value: &str) -> String {
    let mut child = baton(home)
        .args(["secrets", "put"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pipeline(parameter: &str) -> serde_json::Value {
    json!({"pipeline": {
    "name": "app", "pipelineType": "V2",
    "roleArn": "arn:aws:iam::111111111111:role/p",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [
            {"name": "Compile",
             "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
             "configuration": {"ProjectName": "app",
                "EnvironmentVariables": json!([{"name": "API_KEY", "value": parameter, "type": "PARAMETER_STORE"}]).to_string()},
             "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Out"}]},
            {"name": "Migrate",
             "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
             "commands": ["test \"${PW:1:5}\" = unter", "test ${#PW} = 7", "echo \"password is $PW\""],
             "environmentVariables": [{"name": "PW", "value": "prod/db:password", "type": "SECRETS_MANAGER"}],
             "inputArtifacts": [{"name": "Src"}]}]}
    ]}})
}

const BUILDSPEC: &str = "version: 0.2
env:
  parameter-store:
    TOKEN: /app/token
phases:
  build:
    commands:
      - test \"$TOKEN\" = s3cret-v4lue
      - test \"$API_KEY\" = k3y-v4lue
      - echo \"token is $TOKEN and key is $API_KEY\"
      - echo \"$TOKEN\" > copy.txt
artifacts:
  files: ['copy.txt']
";

#[test]
fn secrets_reach_the_commands_and_nothing_else() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(
        put(h, &["/app/token"], "s3cret-v4lue\n").contains("Stored PARAMETER_STORE /app/token")
    );
    put(h, &["/app/api-key"], "k3y-v4lue");
    put(h, &["--secrets-manager", "prod/db"], r#"{"password":"hunter2"}"#);
    let listed = baton(h).args(["secrets", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("/app/token") && listed.contains("prod/db"), "{listed}");
    assert!(!listed.contains("s3cret") && !listed.contains("hunter2"), "names only: {listed}");
    let table = baton(h).args(["--output", "table", "secrets", "list"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TYPE") && lines[0].contains("NAME"), "{table}");
    assert_eq!(lines.len(), 4, "a header and a row a secret: {table}");
    assert!(
        lines.iter().any(|l| l.starts_with("SECRETS_MANAGER") && l.ends_with("prod/db")),
        "{table}"
    );

    let repo = h.join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("buildspec.yml"), BUILDSPEC).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "build"]);
    let file = h.join("pipeline.json");
    std::fs::write(&file, pipeline("/app/api-key").to_string()).unwrap();
    let run = baton(h).arg("run").arg(&file).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the commands saw the values:\n{text}");

    let logs: String = files(&h.join("logs"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(logs.contains("token is *** and key is ***"), "masked in the build's log:\n{logs}");
    assert!(logs.contains("password is ***"), "masked in the commands' log:\n{logs}");
    // Nowhere in the home in the clear: logs, the state and its events, the artifacts (which
    // are encrypted; the artifact holding a copy is the build's own doing, as in CodeBuild).
    // (The repository is the user's own: its buildspec spells the values to compare them.)
    for path in files(h).into_iter().filter(|p| !p.starts_with(h.join("git"))) {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["s3cret-v4lue", "k3y-v4lue", "hunter2"] {
            assert!(!text.contains(secret), "{secret} in the clear in {}", path.display());
        }
    }
}

#[test]
fn a_missing_secret_fails_the_action_saying_how_to_add_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    put(h, &["/app/token"], "s3cret-v4lue");
    put(h, &["--secrets-manager", "prod/db"], r#"{"password":"hunter2"}"#);
    let repo = h.join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("buildspec.yml"), BUILDSPEC).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "build"]);
    let file = h.join("pipeline.json");
    std::fs::write(&file, pipeline("/app/nope").to_string()).unwrap();
    assert!(!baton(h).arg("run").arg(&file).output().unwrap().status.success());
    let status = baton(h).args(["status", "app"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("environment variable API_KEY: no PARAMETER_STORE secret named /app/nope in this home: add it with `baton secrets put /app/nope`"),
        "{status}"
    );
    let deleted = baton(h).args(["secrets", "delete", "/app/nope"]).output().unwrap();
    assert_eq!(deleted.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&deleted.stderr)
            .contains("there is no PARAMETER_STORE secret named /app/nope")
    );
}
