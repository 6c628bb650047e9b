//! A thousand executions of one PARALLEL pipeline at once through stage-advance on the
//! DynamoDB store: each starts and moves on without contending on a shared item, because a
//! PARALLEL execution's start and stage entries write only its own item.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use baton::adapters::aws::dynamodb_state::{DynamoDbStateStore, create_table};
use baton::bus_events::{BusEvent, PipelineInput};
use baton::ports::bus::{BusError, EventBus};
use baton::ports::clock::SystemClock;
use baton::ports::state::{Scope, StateStore};
use baton::service::{Outcome, StageAdvance};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionOutcome, Input, Place, Trigger};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws_support::{sdk_config, unique};

const EXECUTIONS: usize = 1_000;
/// How many inputs are in flight at once, as a burst of pushes or API calls would be.
const AT_ONCE: usize = 50;

/// The table's stream is the outbox on DynamoDB: stage-advance publishes nothing itself.
struct Unused;

#[async_trait]
impl EventBus for Unused {
    async fn publish(&self, _: &[BusEvent]) -> Result<(), BusError> {
        unreachable!("the stream relays the events")
    }
}

fn parallel_pipeline() -> PipelineDocument {
    let action = |name: &str, category: &str| json!({"name": name, "actionTypeId": {"category": category, "owner": "Custom", "provider": "NoOp", "version": "1"}});
    PipelineDocument::from_value(json!({
        "name": "wide", "roleArn": "arn:aws:iam::111111111111:role/p", "executionMode": "PARALLEL",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": [action("Src", "Source")]},
                   {"name": "Build", "actions": [action("Make", "Build")]}]}))
    .unwrap()
}

/// Applies every input, `AT_ONCE` at a time, and returns their outcomes.
async fn apply_all(advance: &Arc<StageAdvance>, inputs: Vec<Input>) -> Vec<Outcome> {
    let gate = Arc::new(Semaphore::new(AT_ONCE));
    let mut running = JoinSet::new();
    for input in inputs {
        let (advance, gate) = (advance.clone(), gate.clone());
        running.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            advance.handle(PipelineInput { pipeline: "wide".into(), input }).await
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        outcomes.push(joined.unwrap().expect("no input fails, whatever the others do"));
    }
    outcomes
}

#[tokio::test]
async fn a_thousand_executions_of_one_parallel_pipeline_start_and_move_at_once() {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config("eu-west-1").await);
    let table = unique("baton-scale");
    create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoDbStateStore::new(client, table, 30));
    let advance =
        Arc::new(StageAdvance::new(store.clone(), Arc::new(Unused), Arc::new(SystemClock)));
    let record = crate::planned(parallel_pipeline().pipeline, "eu-west-1", 0);
    store.create_pipeline(&record).await.unwrap();

    let starts = (0..EXECUTIONS)
        .map(|i| Input::Start {
            execution_id: format!("e-{i:04}"),
            trigger: Trigger {
                trigger_type: "StartPipelineExecution".into(),
                trigger_detail: "t".into(),
            },
            variables: BTreeMap::new(),
            source_revisions: Default::default(),
        })
        .collect();
    let outcomes = apply_all(&advance, starts).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })), "every start applies");
    let running = store.executions("wide", EXECUTIONS + 1).await.unwrap();
    assert_eq!(running.len(), EXECUTIONS);
    assert!(running.iter().all(|e| e.place() == Place::InStage(0)), "every source runs");

    let ends = running
        .iter()
        .map(|e| Input::ActionCompleted {
            execution_id: e.id.clone(),
            stage: "Source".into(),
            action: "Src".into(),
            attempt: e.stages[0].actions[0].attempt,
            outcome: ActionOutcome::Succeeded {
                output_variables: BTreeMap::new(),
                artifacts: Vec::new(),
                summary: None,
                external_id: None,
                external_url: None,
                targets: Vec::new(),
            },
        })
        .collect();
    let outcomes = apply_all(&advance, ends).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied { .. })), "every end applies");
    let building = store.executions("wide", EXECUTIONS + 1).await.unwrap();
    assert!(building.iter().all(|e| e.place() == Place::InStage(1)), "every execution builds");

    // The pipeline's shared item was never written: nothing serialised the executions.
    let lanes = store.load("wide", &Scope::LanesOnly).await.unwrap();
    assert_eq!(lanes.lanes.version, 0, "a PARALLEL execution wrote the lanes");
}
