//! The `LambdaInvoke` rule on the embedded runtime with `[aws]`: the AWS SDK invokes the
//! function synchronously through Lambda's `Invoke` protocol on a loopback endpoint that plays
//! the service and the function, which lets the stage in or keeps it out.

use std::sync::{Arc, Mutex};

use baton_core::engine::{ExecutionStatus, RuleStatus, StageStatus};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::embedded::{start_runtime_on_aws, start_with_variable, wait_for};
use crate::lambda_invoke::{read_request, response};

const PIPELINE: &str = r##"{"pipeline": {
  "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "variables": [{"name": "Gate", "defaultValue": "open"}],
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Deploy",
     "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Gate",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "LambdaInvoke", "version": "1"},
        "configuration": {"FunctionName": "FUNCTION", "UserParameters": "#{variables.Gate}"},
        "inputArtifacts": [{"name": "Src"}]}]}]},
     "actions": [{"name": "Ship",
      "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
      "commands": ["true"], "inputArtifacts": [{"name": "Src"}]}]}
  ]}}"##;

/// A loopback Lambda service whose function lets the gate through when its `UserParameters`
/// say `open` and raises otherwise; every event it is invoked with is kept.
/// Every invocation: its path, invocation type and event.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn gate_function() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some((_, path, headers, body)) = read_request(&mut read, &mut write).await
                {
                    let kind = headers
                        .iter()
                        .find(|(n, _)| n == "x-amz-invocation-type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push((path.clone(), kind, event.clone()));
                    let reply = if path.contains("/functions/missing/") {
                        let h = [("x-amzn-errortype".into(), "ResourceNotFoundException".into())];
                        response(
                            404,
                            &h,
                            br#"{"Type":"User","Message":"Function not found: missing"}"#,
                        )
                    } else if event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
                        ["UserParameters"]
                        == "open"
                    {
                        response(200, &[], br#"{"decision":"go"}"#)
                    } else {
                        let h = [("x-amz-function-error".into(), "Unhandled".into())];
                        response(
                            200,
                            &h,
                            br#"{"errorMessage":"the gate is closed","errorType":"Exception"}"#,
                        )
                    };
                    if write.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, kept)
}

async fn runtime(function: &str) -> (crate::embedded::Running, Seen) {
    let (url, seen) = gate_function().await;
    (start_runtime_on_aws(&url, &PIPELINE.replace("FUNCTION", function)).await, seen)
}

async fn start(rt: &baton::embedded::Embedded, gate: &str) -> String {
    start_with_variable(rt, "Gate", gate).await
}

#[tokio::test]
async fn a_lambda_rule_lets_the_stage_in_when_its_function_returns_and_not_when_it_raises() {
    let (running, seen) = runtime("gate").await;
    let rt = &running.rt;

    let open = start(rt, "open").await;
    let done = wait_for(rt, &open, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{done:#?}");
    let (path, kind, event) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/2015-03-31/functions/gate/invocations");
    assert_eq!(kind, "RequestResponse", "the rule waits for the function's answer");
    let data = &event["CodePipeline.job"]["data"];
    assert_eq!(
        data["actionConfiguration"]["configuration"],
        json!({"FunctionName": "gate", "UserParameters": "open"})
    );
    assert_eq!(data["inputArtifacts"][0]["name"], "Src");
    assert_eq!(data["pipelineContext"]["pipelineExecutionId"], open.as_str());

    let closed = start(rt, "closed").await;
    let failed = wait_for(rt, &closed, "ended", |e| e.status().is_ended()).await;
    assert_eq!(failed.status(), ExecutionStatus::Failed);
    let deploy = &failed.stages[1];
    assert_eq!(deploy.status, Some(StageStatus::Failed));
    assert_eq!(deploy.actions[0].attempt, 0, "Ship never ran");
    let gate = &deploy.conditions.before_entry.as_ref().unwrap().rules[0];
    assert_eq!((gate.status, gate.summary.as_str()), (RuleStatus::Failed, "the gate is closed"));
}

#[tokio::test]
async fn a_function_lambda_does_not_know_fails_the_rule_with_lambdas_words() {
    let (running, _) = runtime("missing").await;
    let rt = &running.rt;
    let id = start(rt, "open").await;
    let failed = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    let summary = failed.status_summary.clone().unwrap_or_default();
    assert!(summary.contains("ResourceNotFoundException"), "{summary}");
    assert!(summary.contains("rule Gate"), "{summary}");
}
