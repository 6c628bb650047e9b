//! Approvals on the AWS adapters (moto): the notice published to the approvals topic carries
//! CodePipeline's approval JSON and both links, the pages behind the links read DynamoDB, and
//! the decision reaches EventBridge once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use baton::adapters::aws::dynamodb_state::{DynamoDbStateStore, create_table};
use baton::adapters::aws::eventbridge_bus::EventBridgeBus;
use baton::adapters::aws::sns_notifier::SnsNotifier;
use baton::bus_events::BusEvent;
use baton::ports::clock::{Clock, SystemClock};
use baton::ports::state::{Changes, StateStore, Versioned};
use baton::service::{ApprovalSettings, Approvals};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{
    self, ActionOutcome, Artifact, ArtifactLocation, Effect, Env, Input, PipelineState, Trigger,
};
use baton_core::events::ACTION_DETAIL_TYPE;
use baton_core::plan::Plan;
use baton_testkit::FailingSaves;
use serde_json::{Value, json};

use crate::aws_support::{queue, receive, sdk_config, stream_events, unique};

const REGION: &str = "us-east-1";
const URL: &str = "https://abcdefg.lambda-url.us-east-1.on.aws/";

const PIPELINE: &str = r##"{"pipeline": {
  "name": "web", "roleArn": "arn:aws:iam::111111111111:role/pipeline",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Fetch", "namespace": "Src",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "uploads", "S3ObjectKey": "web.zip"},
      "outputArtifacts": [{"name": "Code"}]}]},
    {"name": "Approve", "actions": [{"name": "Gate",
      "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
      "configuration": {"CustomData": "Release #{Src.VersionId}",
        "ExternalEntityLink": "https://example.invalid/diff"}}]},
    {"name": "Deploy", "actions": [{"name": "Site",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"BucketName": "site", "Extract": "true"},
      "inputArtifacts": [{"name": "Code"}]}]}
  ]}}"##;

/// Runs the engine to the approval and stores what it produced; returns the approval request.
pub(crate) async fn waiting_at_the_approval(store: &dyn StateStore) -> (Plan, BusEvent) {
    let doc = PipelineDocument::parse(PIPELINE).unwrap();
    let now = SystemClock.now();
    let record = crate::planned(doc.pipeline, REGION, now);
    store.create_pipeline(&record).await.unwrap();
    let plan = record.plan;
    let mut state = PipelineState::new(plan.stages.len());
    let env = |entropy| Env { now, entropy };
    let id = "e-1".to_owned();
    let start = Input::Start {
        execution_id: id.clone(),
        trigger: Trigger { trigger_type: "CloudWatchEvent".into(), trigger_detail: "t".into() },
        variables: BTreeMap::new(),
        source_revisions: Default::default(),
    };
    engine::apply(&plan, &mut state, &start, env(1)).unwrap();
    let fetched = Input::ActionCompleted {
        execution_id: id.clone(),
        stage: "Source".into(),
        action: "Fetch".into(),
        attempt: 1,
        outcome: ActionOutcome::Succeeded {
            output_variables: BTreeMap::from([("VersionId".into(), "v42".into())]),
            artifacts: vec![Artifact {
                name: "Code".into(),
                location: ArtifactLocation { bucket: "artifacts".into(), key: "k".into() },
            }],
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        },
    };
    let step = engine::apply(&plan, &mut state, &fetched, env(2)).unwrap();
    assert!(step.effects.iter().any(|e| matches!(e, Effect::RequestAction(_))));
    let event = BusEvent::for_effects(&plan, step.effects)
        .into_iter()
        .find(|e| e.action_request().is_ok())
        .expect("the approval was requested on its STARTED event");
    let changes = Changes {
        lanes: Some(Versioned { version: 0, value: state.lanes.clone() }),
        executions: vec![Versioned { version: 0, value: state.executions[&id].clone() }],
        outbox: Vec::new(),
    };
    store.save("web", changes).await.unwrap();
    (plan, event)
}

#[tokio::test]
async fn the_approval_notice_on_sns_carries_codepipeline_json_and_links_that_decide_once() {
    let config = sdk_config(REGION).await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("baton-approvals");
    create_table(&ddb, &table).await.unwrap();
    let store = Arc::new(DynamoDbStateStore::new(ddb.clone(), table.clone(), 30));
    // The approval's public ends saved for the outbox relay.
    let gate_ends = || async {
        stream_events(&ddb, &table)
            .await
            .into_iter()
            .filter(|e| {
                e.detail_type == ACTION_DETAIL_TYPE
                    && e.detail["action"] == json!("Gate")
                    && e.detail["state"] != json!("STARTED")
            })
            .collect::<Vec<_>>()
    };

    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic =
        sns.create_topic().name(unique("approvals")).send().await.unwrap().topic_arn.unwrap();
    let (notices_url, notices_arn) = queue(&sqs, &unique("approval-notices")).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(notices_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(&config);
    let bus = unique("baton-bus");
    events.create_event_bus().name(&bus).send().await.unwrap();

    let (_plan, request) = waiting_at_the_approval(store.as_ref()).await;
    let approvals = Approvals::new(
        store.clone(),
        store.clone(),
        Arc::new(EventBridgeBus::new(events, bus.clone())),
        Arc::new(SnsNotifier::new(sns, topic)),
        Arc::new(SystemClock),
        ApprovalSettings { base_url: URL.into() },
    );
    approvals.handle(&request).await.unwrap();

    let notices = receive(&sqs, &notices_url, 1, Duration::from_secs(10)).await;
    assert_eq!(notices.len(), 1, "one notice on the approvals topic");
    let notice: Value = serde_json::from_str(&notices[0]).expect("machines get the JSON");
    let approval = &notice["approval"];
    assert_eq!(notice["region"], json!(REGION));
    assert_eq!(approval["pipelineName"], json!("web"));
    assert_eq!(approval["stageName"], json!("Approve"));
    assert_eq!(approval["actionName"], json!("Gate"));
    assert_eq!(approval["customData"], json!("Release v42"), "variables are resolved");
    assert_eq!(approval["externalEntityLink"], json!("https://example.invalid/diff"));
    let stored = store.execution("web", "e-1").await.unwrap().unwrap();
    let token = stored.stages[1].actions[0].token.clone().unwrap();
    assert_eq!(approval["token"], json!(token), "PutApprovalResult subscribers get the token");
    let expires = approval["expires"].as_str().unwrap();
    assert_eq!(expires.len(), "2016-07-07T20:22Z".len(), "{expires}");
    let approve = approval["approveLink"].as_str().unwrap();
    let reject = approval["rejectLink"].as_str().unwrap();
    assert_eq!(approval["approvalReviewLink"], json!(approve));
    let path = |link: &str| {
        assert!(link.starts_with("https://abcdefg.lambda-url.us-east-1.on.aws/approvals/"));
        link.trim_start_matches("https://abcdefg.lambda-url.us-east-1.on.aws").to_owned()
    };
    let (approve, reject) = (path(approve), path(reject));

    let page = approvals.serve("GET", &reject, b"").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Reject this release?") && page.html.contains("object version v42"));
    assert!(gate_ends().await.is_empty(), "a GET decided");

    // A decision that cannot be saved spends nothing: the same link decides afterwards.
    let failing = Approvals::new(
        Arc::new(FailingSaves::new(store.clone(), 1)),
        store.clone(),
        Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&config), bus.clone())),
        Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(&config), "unused".into())),
        Arc::new(SystemClock),
        ApprovalSettings { base_url: URL.into() },
    );
    let failed = failing.serve("POST", &approve, b"name=Ana").await;
    assert_eq!(failed.status, 503, "{}", failed.html);
    assert!(gate_ends().await.is_empty(), "a failed save decided");

    let page = approvals.serve("POST", &approve, b"name=Ana").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Approved"), "{}", page.html);
    let again = approvals.serve("POST", &reject, b"name=Bo").await;
    assert_eq!(again.status, 409, "{}", again.html);
    // The decision is applied at once: the approval's public end is saved for the relay.
    let decided = gate_ends().await;
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0].detail["state"], json!("SUCCEEDED"));
    let stored = store.execution("web", "e-1").await.unwrap().unwrap();
    let gate = &stored.stages[1].actions[0];
    assert_eq!(gate.status, baton_core::engine::ActionStatus::Succeeded);
    assert_eq!(gate.decided_by.as_deref(), Some("Ana (approval link)"));
    assert_eq!(gate.summary.as_deref(), Some("Approved through the approval link"));
    assert_eq!(gate_ends().await.len(), 1, "the second POST decided too");
}
