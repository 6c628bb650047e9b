//! Every public event the engine produces decodes as `aws_lambda_events`' CodePipeline event
//! and carries the fields of CodePipeline's documented examples, with the same JSON types.

use std::collections::BTreeMap;

use aws_lambda_events::event::codepipeline_cloudwatch::CodePipelineCloudWatchEvent;
use baton_core::declaration::PipelineDocument;
use baton_core::engine::*;
use baton_core::events::PublicEvent;
use baton_core::plan::{Placement, Plan, RetryMode};
use serde_json::{Value, json};

const PIPELINE: &str = r#"{
  "pipeline": {
    "name": "myPipeline",
    "roleArn": "arn:aws:iam::123456789012:role/service-role/pipeline",
    "artifactStore": {"type": "S3", "location": "artifact-bucket"},
    "stages": [
      {"name": "Source", "actions": [{"name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"},
        "outputArtifacts": [{"name": "SourceOutput"}]}]},
      {"name": "Approve", "actions": [{"name": "Gate",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
      {"name": "Deploy", "actions": [{"name": "Deploy",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"},
        "configuration": {"ApplicationName": "app", "DeploymentGroupName": "prod"},
        "inputArtifacts": [{"name": "SourceOutput"}]}]}
    ]
  }
}"#;

fn plan() -> Plan {
    let doc = PipelineDocument::parse(PIPELINE).unwrap();
    let placement = Placement {
        account: "123456789012".into(),
        region: "us-west-2".into(),
        event_source: "baton.codepipeline".into(),
    };
    Plan::from_declaration(&doc.pipeline, &placement).unwrap()
}

fn completed(id: &str, stage: &str, action: &str, attempt: u32, ok: bool) -> Input {
    let outcome = if ok {
        ActionOutcome::Succeeded {
            output_variables: BTreeMap::new(),
            artifacts: vec![Artifact {
                name: "SourceOutput".into(),
                location: ArtifactLocation {
                    bucket: "artifact-bucket".into(),
                    key: "myPipeline/SourceOutput/x.zip".into(),
                },
            }],
            summary: Some("done".into()),
            external_id: Some("ext-1".into()),
            external_url: Some("https://example.com/1".into()),
            targets: Vec::new(),
        }
    } else {
        ActionOutcome::Failed {
            error: ActionError {
                code: "JobFailed".into(),
                message: "Deployment d-1 failed".into(),
            },
            external_id: Some("d-1".into()),
            external_url: Some("https://example.com/d-1".into()),
            targets: Vec::new(),
        }
    };
    Input::ActionCompleted {
        execution_id: id.into(),
        stage: stage.into(),
        action: action.into(),
        attempt,
        outcome,
    }
}

/// Drives executions through every state CodePipeline publishes and returns the events.
fn every_event() -> Vec<PublicEvent> {
    let plan = plan();
    let mut state = PipelineState::new(plan.stages.len());
    let mut events = vec![];
    let mut now = 1_579_903_387_000;
    let mut run = |state: &mut PipelineState, input: Input| -> Step {
        now += 1000;
        let step = apply(&plan, state, &input, Env { now, entropy: 42 }).expect("accepted");
        for e in &step.effects {
            if let Effect::Publish(p) = e {
                events.push(p.clone());
            }
        }
        step
    };
    let start = |id: &str| Input::Start {
        execution_id: id.into(),
        trigger: Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: "arn:aws:sts::123456789012:assumed-role/Admin/me".into(),
        },
        variables: BTreeMap::new(),
        source_revisions: Default::default(),
    };
    run(&mut state, start("e1"));
    run(&mut state, completed("e1", "Source", "Source", 1, true));
    let token = state.executions["e1"].stages[1].actions[0].token.clone().unwrap();
    run(
        &mut state,
        Input::ApprovalDecided {
            stage: "Approve".into(),
            action: "Gate".into(),
            token,
            approved: true,
            summary: "ok".into(),
            by: "me".into(),
        },
    );
    run(&mut state, completed("e1", "Deploy", "Deploy", 1, false));
    run(
        &mut state,
        Input::Retry {
            execution_id: "e1".into(),
            stage: "Deploy".into(),
            mode: RetryMode::FailedActions,
        },
    );
    run(&mut state, completed("e1", "Deploy", "Deploy", 2, true));
    run(&mut state, start("e2"));
    run(&mut state, start("e3"));
    run(&mut state, start("e4")); // supersedes e3
    run(
        &mut state,
        Input::Stop { execution_id: "e2".into(), abandon: true, reason: "enough".into() },
    );
    events
}

#[test]
fn every_public_event_decodes_as_the_lambda_events_type() {
    let events = every_event();
    let states: Vec<String> =
        events.iter().map(|e| format!("{}:{}", e.detail_type, e.detail["state"])).collect();
    for needed in [
        "STARTED",
        "SUCCEEDED",
        "FAILED",
        "RESUMED",
        "SUPERSEDED",
        "STOPPING",
        "STOPPED",
        "ABANDONED",
    ] {
        assert!(
            states.iter().any(|s| s.ends_with(&format!("\"{needed}\""))),
            "no {needed} event in {states:?}"
        );
    }
    for event in &events {
        let json = serde_json::to_value(event).unwrap();
        let decoded: CodePipelineCloudWatchEvent =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(decoded.detail_type.as_deref(), Some(event.detail_type.as_str()));
        assert_eq!(decoded.detail.state, event.detail["state"].as_str().unwrap());
        assert_eq!(decoded.detail.execution_id.as_deref(), event.detail["execution-id"].as_str());
        assert_eq!(
            decoded.resources,
            vec!["arn:aws:codepipeline:us-west-2:123456789012:myPipeline"]
        );
        assert_eq!(decoded.account_id.as_deref(), Some("123456789012"));
    }
}

/// The documented examples (CodePipeline user guide, "Monitoring CodePipeline events").
fn documented(detail_type: &str, state: &str) -> Value {
    match (detail_type, state) {
        ("CodePipeline Pipeline Execution State Change", "STARTED") => json!({
            "pipeline": "myPipeline", "execution-id": "x", "state": "STARTED", "version": 1,
            "execution-trigger": {"trigger-type": "StartPipelineExecution", "trigger-detail": "arn"}}),
        ("CodePipeline Pipeline Execution State Change", "STOPPING") => json!({
            "pipeline": "myPipeline", "execution-id": "x", "state": "STOPPING", "version": 1,
            "stop-execution-comments": {"reason": "r"}}),
        ("CodePipeline Pipeline Execution State Change", _) => json!({
            "pipeline": "myPipeline", "execution-id": "x", "state": state, "version": 1}),
        ("CodePipeline Stage Execution State Change", _) => json!({
            "pipeline": "myPipeline", "execution-id": "x", "stage": "Deploy", "state": state, "version": 1}),
        (_, "STARTED") => json!({
            "pipeline": "myPipeline", "execution-id": "x", "stage": "Deploy", "action": "Deploy",
            "state": "STARTED", "region": "us-west-2",
            "type": {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": 1},
            "input-artifacts": [{"name": "SourceOutput", "s3location": {"bucket": "b", "key": "k"}}],
            "version": 1}),
        (_, "FAILED" | "SUCCEEDED") => json!({
            "pipeline": "myPipeline", "execution-id": "x", "stage": "Deploy", "action": "Deploy",
            "state": state, "region": "us-west-2",
            "type": {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": 1},
            "execution-result": {"external-execution-url": "u", "external-execution-summary": "s",
                                 "external-execution-id": "i"},
            "version": 1}),
        _ => json!({
            "pipeline": "myPipeline", "execution-id": "x", "stage": "Deploy", "action": "Deploy",
            "state": state, "region": "us-west-2",
            "type": {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": 1},
            "version": 1}),
    }
}

/// Same keys (recursively) with the same JSON types; we may add only the documented newer
/// `pipeline-execution-attempt`, artifacts lists and `error-code`.
fn same_shape(path: &str, doc: &Value, ours: &Value) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert_eq!(kind(doc), kind(ours), "{path}: {doc} vs {ours}");
    if let (Value::Object(d), Value::Object(o)) = (doc, ours) {
        for (k, v) in d {
            let theirs = o.get(k).unwrap_or_else(|| panic!("{path}.{k} missing in {ours}"));
            same_shape(&format!("{path}.{k}"), v, theirs);
        }
        for k in o.keys() {
            let allowed =
                ["pipeline-execution-attempt", "output-artifacts", "error-code", "input-artifacts"];
            assert!(
                d.contains_key(k) || allowed.contains(&k.as_str()),
                "{path}.{k} is not in the documented event"
            );
        }
    }
}

#[test]
fn events_match_the_documented_examples_field_for_field() {
    for event in every_event() {
        let state = event.detail["state"].as_str().unwrap().to_string();
        let doc = documented(&event.detail_type, &state);
        same_shape(&format!("{} {state}", event.detail_type), &doc, &event.detail);
        assert_eq!(event.version, "0");
        assert_eq!(event.source, "baton.codepipeline");
        assert!(event.time.ends_with('Z') && event.time.len() == 20, "{}", event.time);
    }
}

#[test]
fn a_failed_action_event_carries_the_error_code_and_summary() {
    let events = every_event();
    let failed = events
        .iter()
        .find(|e| e.detail.get("action").is_some() && e.detail["state"] == "FAILED")
        .unwrap();
    assert_eq!(failed.detail["execution-result"]["error-code"], "JobFailed");
    assert_eq!(
        failed.detail["execution-result"]["external-execution-summary"],
        "Deployment d-1 failed"
    );
    assert_eq!(failed.detail["execution-result"]["external-execution-id"], "d-1");
}

#[test]
fn event_ids_are_stable_and_distinct() {
    let a = every_event();
    let b = every_event();
    let ids: Vec<&String> = a.iter().map(|e| &e.id).collect();
    assert_eq!(ids, b.iter().map(|e| &e.id).collect::<Vec<_>>(), "same inputs, same ids");
    let unique: std::collections::BTreeSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "two different events share an id");
}
