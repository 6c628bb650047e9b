//! Stage conditions and rollback on `baton serve`, through the stock AWS CLI: a deploy that
//! fails its check rolls back to the last good revision (the bucket holds the old site again),
//! a manual `rollback-stage`, a skip on a pipeline variable, and a closed deployment window
//! overridden by a person.

use serde_json::{Value, json};

use crate::api::{Aws, Server, git, poll, stage, tool};

/// Source -> Deploy (the site to a bucket, then a check that the revision has its `ok` file),
/// rolling back on failure; Deploy is skipped unless `Target` is `prod`, and Notify waits for
/// a window that never opens.
fn rollout() -> Value {
    let codebuild = |name: &str, project: &str, order: i64| {
        json!({"name": name,
            "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "runOrder": order, "configuration": {"ProjectName": project},
            "inputArtifacts": [{"name": "Src"}]})
    };
    json!({"pipeline": {
    "name": "rollout",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "pipelineType": "V2",
    "executionMode": "QUEUED",
    "variables": [{"name": "Target", "defaultValue": "prod"}],
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Deploy",
         "beforeEntry": {"conditions": [{"result": "SKIP", "rules": [{"name": "OnlyProd",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
            "configuration": {"Variable": "#{variables.Target}", "Operator": "EQ", "Value": "prod"}}]}]},
         "onFailure": {"result": "ROLLBACK"},
         "actions": [
            {"name": "Site",
             "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
             "configuration": {"BucketName": "site", "Extract": "true"},
             "inputArtifacts": [{"name": "Src"}]},
            codebuild("Verify", "app-verify", 2)]},
        {"name": "Notify",
         "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Never",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"},
            "configuration": {"Cron": "* * * * * ? 2199", "TimeZone": "Europe/Paris"}}]}]},
         "actions": [codebuild("Announce", "app-verify", 1)]}
    ]}})
}

fn rollout_server() -> Server {
    let server = Server::start_with("app-verify = \"verify.yml\"\n");
    let repo = server.home.path().join("git/app");
    std::fs::write(
        repo.join("verify.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f ok\n",
    )
    .unwrap();
    std::fs::write(repo.join("ok"), "").unwrap();
    std::fs::write(repo.join("index.html"), "v1\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    std::fs::write(server.home.path().join("rollout.json"), rollout().to_string()).unwrap();
    server
}

impl Aws<'_> {
    fn rollout_execution(&self, id: &str) -> Value {
        self.ok(&[
            "get-pipeline-execution",
            "--pipeline-name",
            "rollout",
            "--pipeline-execution-id",
            id,
        ])["pipelineExecution"]
            .clone()
    }

    fn rollout_state(&self) -> Value {
        self.ok(&["get-pipeline-state", "--name", "rollout"])
    }

    fn start_rollout(&self, target: &str) -> String {
        let started = self.ok(&[
            "start-pipeline-execution",
            "--name",
            "rollout",
            "--variables",
            &format!("name=Target,value={target}"),
        ]);
        started["pipelineExecutionId"].as_str().unwrap().to_string()
    }

    /// The latest execution of type ROLLBACK, once one has ended with `status`.
    fn rollback_ended(&self, status: &str) -> Value {
        poll(&format!("a rollback is {status}"), || {
            let listed = self.ok(&["list-pipeline-executions", "--pipeline-name", "rollout"]);
            listed["pipelineExecutionSummaries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["executionType"] == "ROLLBACK" && e["status"] == status)
                .cloned()
        })
    }
}

fn site(server: &Server) -> String {
    std::fs::read_to_string(server.home.path().join("s3/site/index.html")).unwrap_or_default()
}

#[test]
fn conditions_and_rollback_run_as_codepipeline_runs_them() {
    let server = rollout_server();
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let file = format!("file://{}", server.home.path().join("rollout.json").display());
    aws.ok(&["create-pipeline", "--cli-input-json", &file]);

    // v1 deploys, then waits at Notify's window, which a person overrides.
    let good = aws.start_rollout("prod");
    let notify = poll("Notify waits for its window", || {
        let state = aws.rollout_state();
        let notify = stage(&state, "Notify").clone();
        (notify["beforeEntryConditionState"]["latestExecution"]["status"] == "InProgress")
            .then_some(notify)
    });
    let rule = &notify["beforeEntryConditionState"]["conditionStates"][0]["ruleStates"][0];
    assert_eq!(rule["ruleName"], "Never");
    assert_eq!(rule["latestExecution"]["status"], "InProgress");
    assert_eq!(site(&server), "v1\n");
    let (code, _) = aws.err(&[
        "override-stage-condition",
        "--pipeline-name",
        "rollout",
        "--stage-name",
        "Deploy",
        "--pipeline-execution-id",
        &good,
        "--condition-type",
        "BEFORE_ENTRY",
    ]);
    assert_eq!(code, "ConditionNotOverridableException");
    aws.ok(&[
        "override-stage-condition",
        "--pipeline-name",
        "rollout",
        "--stage-name",
        "Notify",
        "--pipeline-execution-id",
        &good,
        "--condition-type",
        "BEFORE_ENTRY",
    ]);
    poll("v1 succeeds", || (aws.rollout_execution(&good)["status"] == "Succeeded").then_some(()));
    let notify = stage(&aws.rollout_state(), "Notify").clone();
    assert_eq!(notify["beforeEntryConditionState"]["latestExecution"]["status"], "Overridden");

    // v2 loses its ok file: its Verify fails, and Deploy rolls back to v1.
    let repo = server.home.path().join("git/app");
    std::fs::remove_file(repo.join("ok")).unwrap();
    std::fs::write(repo.join("index.html"), "v2\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let bad = aws.start_rollout("prod");
    poll("v2 fails", || (aws.rollout_execution(&bad)["status"] == "Failed").then_some(()));
    let rollback = aws.rollback_ended("Succeeded");
    assert_eq!(rollback["trigger"]["triggerType"], "AutomatedRollback");
    assert_eq!(rollback["rollbackMetadata"]["rollbackTargetPipelineExecutionId"], good);
    assert_eq!(site(&server), "v1\n", "the bucket holds the last good site again");

    // A manual rollback to v1, and one to the failed v2, which CodePipeline refuses.
    let rolled = aws.ok(&[
        "rollback-stage",
        "--pipeline-name",
        "rollout",
        "--stage-name",
        "Deploy",
        "--target-pipeline-execution-id",
        &good,
    ]);
    let manual = rolled["pipelineExecutionId"].as_str().unwrap().to_string();
    poll("the manual rollback succeeds", || {
        let e = aws.rollout_execution(&manual);
        (e["status"] == "Succeeded").then_some(e)
    });
    assert_eq!(aws.rollout_execution(&manual)["trigger"]["triggerType"], "ManualRollback");
    let (code, _) = aws.err(&[
        "rollback-stage",
        "--pipeline-name",
        "rollout",
        "--stage-name",
        "Deploy",
        "--target-pipeline-execution-id",
        &bad,
    ]);
    assert_eq!(code, "UnableToRollbackStageException");

    // A start pinned to v1's commit runs v1, though the branch is at v2.
    let v1 = String::from_utf8(
        std::process::Command::new("git")
            .args(["-C", repo.to_str().unwrap(), "rev-parse", "HEAD~1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let pinned = aws.ok(&[
        "start-pipeline-execution",
        "--name",
        "rollout",
        "--source-revisions",
        &format!("actionName=Checkout,revisionType=COMMIT_ID,revisionValue={v1}"),
    ])["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let ran = poll("the pinned start reaches Notify", || {
        let e = aws.rollout_execution(&pinned);
        let state = aws.rollout_state();
        let waiting =
            stage(&state, "Notify")["latestExecution"]["pipelineExecutionId"] == pinned.as_str();
        waiting.then_some(e)
    });
    assert_eq!(ran["artifactRevisions"], json!([{"name": "Src", "revisionId": v1}]));
    let (code, _) = aws.err(&[
        "start-pipeline-execution",
        "--name",
        "rollout",
        "--source-revisions",
        "actionName=Site,revisionType=COMMIT_ID,revisionValue=abc",
    ]);
    assert_eq!(code, "ValidationException");
    aws.ok(&[
        "stop-pipeline-execution",
        "--pipeline-name",
        "rollout",
        "--pipeline-execution-id",
        &pinned,
        "--abandon",
    ]);

    // A start for another target skips Deploy.
    let skipped = aws.start_rollout("dev");
    poll("Deploy is skipped", || {
        let state = aws.rollout_state();
        let deploy = stage(&state, "Deploy");
        (deploy["latestExecution"]["pipelineExecutionId"] == skipped.as_str()
            && deploy["latestExecution"]["status"] == "Skipped")
            .then_some(())
    });
    let rules = aws.ok(&[
        "list-rule-executions",
        "--pipeline-name",
        "rollout",
        "--filter",
        &format!("pipelineExecutionId={skipped}"),
    ]);
    let only_prod = &rules["ruleExecutionDetails"][0];
    assert_eq!(only_prod["ruleName"], "OnlyProd");
    assert_eq!(only_prod["status"], "Failed");
    assert_eq!(only_prod["input"]["resolvedConfiguration"]["Variable"], "dev");
    let types = aws.ok(&["list-rule-types"]);
    let providers: Vec<&str> = types["ruleTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"]["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["VariableCheck", "DeploymentWindow", "Commands"], "what this host runs");
}
