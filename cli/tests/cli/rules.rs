//! Stage-condition rules that ask a service, on one machine with `baton run`: a `Commands`
//! rule reads the deployed artifact after the deploy and fails the stage when its check fails;
//! rules this host cannot evaluate are refused at start, naming the stage and rule.

use std::path::Path;

use serde_json::{Value, json};

use crate::run::{baton, files, git};

fn run(home: &Path, pipeline: &Value) -> (bool, String) {
    let file = home.join("pipeline.json");
    std::fs::write(&file, pipeline.to_string()).unwrap();
    let o = baton(home).arg("run").arg(&file).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

/// Source -> Deploy (the site to a bucket), checked after the deploy by `rule`.
fn checked(rule: Value, condition: &str) -> Value {
    json!({"pipeline": {
    "name": "site", "pipelineType": "V2",
    "roleArn": "arn:aws:iam::111111111111:role/p",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "variables": [{"name": "Expect", "defaultValue": "v1"}],
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Deploy", condition: {"conditions": [{"result": "FAIL", "rules": [rule]}]},
         "actions": [{"name": "Site",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": "site", "Extract": "true"},
            "inputArtifacts": [{"name": "Src"}]}]}
    ]}})
}

fn smoke_test() -> Value {
    json!({"name": "Smoke",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": ["grep -q '#{variables.Expect}' index.html", "echo smoke test passed"],
        "inputArtifacts": [{"name": "Src"}]})
}

#[test]
fn a_commands_rule_checks_the_deploy_and_fails_the_stage_when_its_commands_fail() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("index.html"), "v1\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);

    let (ok, text) = run(home.path(), &checked(smoke_test(), "onSuccess"));
    assert!(ok, "v1 passes its smoke test:\n{text}");

    std::fs::write(repo.join("index.html"), "v2\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let (ok, text) = run(home.path(), &checked(smoke_test(), "onSuccess"));
    assert!(!ok, "v2 does not have what the rule expects:\n{text}");
    let deployed = std::fs::read_to_string(home.path().join("s3/site/index.html")).unwrap();
    assert_eq!(deployed, "v2\n", "the rule ran after the deploy, on the deployed revision");
    let status = baton(home.path()).args(["status", "site"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("rule Smoke"), "the failure names the rule:\n{status}");

    // The rule's evaluations are kept, with their resolved commands' outcome.
    let logs = home.path().join("logs/site");
    let found = files(&logs).into_iter().any(|p| {
        p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("Deploy.Smoke."))
            && std::fs::read_to_string(&p).unwrap_or_default().contains("smoke test passed")
    });
    assert!(found, "v1's rule log holds its commands' output");
}

#[test]
fn rules_this_host_cannot_evaluate_are_refused_at_start_naming_them() {
    let home = tempfile::tempdir().unwrap();
    let alarm = json!({"name": "Errors",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
        "configuration": {"AlarmName": "site-errors"}});
    let (ok, text) = run(home.path(), &checked(alarm, "onSuccess"));
    assert!(!ok);
    assert!(
        text.contains("stage \"Deploy\", onSuccess rule \"Errors\": CloudWatchAlarm rules ask AWS"),
        "{text}"
    );
    let gate = json!({"name": "Gate",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "LambdaInvoke", "version": "1"},
        "configuration": {"FunctionName": "gate"}});
    let (ok, text) = run(home.path(), &checked(gate, "beforeEntry"));
    assert!(!ok);
    assert!(
        text.contains("stage \"Deploy\", beforeEntry rule \"Gate\": LambdaInvoke rules ask AWS"),
        "{text}"
    );
    assert!(!home.path().join("s3/site").exists(), "nothing ran");
}

/// Source -> Deploy (the site, then a check of it); after a failure, a `Commands` rule decides
/// whether to roll back: it fails (so the rollback is engaged) unless the revision asks to be
/// kept broken.
fn rolled_back() -> Value {
    json!({"pipeline": {
    "name": "site", "pipelineType": "V2", "executionMode": "QUEUED",
    "roleArn": "arn:aws:iam::111111111111:role/p",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Deploy",
         "onFailure": {"result": "ROLLBACK", "conditions": [{"result": "ROLLBACK", "rules": [{"name": "UnlessKept",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["test -f keep-broken"], "inputArtifacts": [{"name": "Src"}]}]}]},
         "actions": [
            {"name": "Site",
             "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
             "configuration": {"BucketName": "site", "Extract": "true"},
             "inputArtifacts": [{"name": "Src"}]},
            {"name": "Verify", "runOrder": 2,
             "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
             "commands": ["test -f ok"], "inputArtifacts": [{"name": "Src"}]}]}
    ]}})
}

#[test]
fn after_a_failure_a_commands_rule_decides_the_rollback() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("index.html"), "v1\n").unwrap();
    std::fs::write(repo.join("ok"), "").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let (ok, text) = run(home.path(), &rolled_back());
    assert!(ok, "{text}");

    std::fs::write(repo.join("index.html"), "v2\n").unwrap();
    git(&repo, &["rm", "-q", "ok"]);
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let (ok, text) = run(home.path(), &rolled_back());
    assert!(!ok, "v2 fails its check:\n{text}");
    assert!(text.contains("Rolling back to execution"), "the run carries on with it:\n{text}");
    assert!(text.contains("Succeeded."), "{text}");
    let site = std::fs::read_to_string(home.path().join("s3/site/index.html")).unwrap();
    assert_eq!(site, "v1\n", "the rule failed, so the rollback was engaged");
    let history = baton(home.path()).args(["history", "site"]).output().unwrap();
    let history = String::from_utf8_lossy(&history.stdout).to_string();
    assert!(history.contains("Succeeded") && history.contains("Failed"), "{history}");
}
