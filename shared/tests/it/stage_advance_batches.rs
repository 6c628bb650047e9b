//! Stage-advance applying the events of one execution queued together in one load and one
//! save: the same outcomes, state and events as applying them one at a time, in one write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::bus_events::{BusEvent, PipelineInput};
use baton::ports::bus::{BusError, EventBus};
use baton::ports::clock::{Clock, ManualClock};
use baton::ports::state::{Scope, StateStore};
use baton::service::{Outcome, StageAdvance};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{
    ActionOutcome, ActionRequest, ActionStatus, ExecutionStatus, Input, Trigger,
};
use serde_json::json;

/// Keeps what is published.
#[derive(Default)]
struct Recording(Mutex<Vec<BusEvent>>);

#[async_trait]
impl EventBus for Recording {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

impl Recording {
    fn take_requests(&self) -> Vec<ActionRequest> {
        let mut events = self.0.lock().unwrap();
        let requests = events.iter().filter_map(|e| e.action_request().ok()).collect();
        events.clear();
        requests
    }
}

/// A source, a stage of fifty parallel actions, and a join.
fn fan_out() -> PipelineDocument {
    let action = |name: String, category: &str| json!({"name": name, "actionTypeId": {"category": category, "owner": "Custom", "provider": "NoOp", "version": "1"}});
    let fan: Vec<_> = (0..50).map(|i| action(format!("P{i:02}"), "Build")).collect();
    let doc = json!({"name": "fan", "roleArn": "arn:aws:iam::111111111111:role/p",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": [action("Src".into(), "Source")]},
                   {"name": "Fan", "actions": fan},
                   {"name": "Join", "actions": [action("Join".into(), "Build")]}]});
    PipelineDocument::from_value(doc).unwrap()
}

fn succeeded() -> ActionOutcome {
    ActionOutcome::Succeeded {
        output_variables: BTreeMap::new(),
        artifacts: Vec::new(),
        summary: None,
        external_id: None,
        external_url: None,
        targets: Vec::new(),
    }
}

struct Setup {
    store: Arc<SqlStateStore>,
    bus: Arc<Recording>,
    advance: StageAdvance,
    clock: Arc<ManualClock>,
}

/// A started execution `e-1` whose fifty fan-out actions have just been requested.
async fn fanned_out() -> (Setup, Vec<ActionRequest>) {
    let store = Arc::new(SqlStateStore::in_memory().unwrap());
    let bus = Arc::new(Recording::default());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let advance = StageAdvance::new(store.clone(), bus.clone(), clock.clone());
    let record = crate::planned(fan_out().pipeline, "us-east-1", clock.now());
    store.create_pipeline(&record).await.unwrap();
    let start = Input::Start {
        execution_id: "e-1".into(),
        trigger: Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: "t".into(),
        },
        variables: BTreeMap::new(),
        source_revisions: Default::default(),
    };
    advance.handle(PipelineInput { pipeline: "fan".into(), input: start }).await.unwrap();
    let source = bus.take_requests();
    assert_eq!(source.len(), 1, "the source is requested alone");
    let done = BusEvent::action_completed(&source[0], succeeded(), clock.now());
    advance.handle_event(&done).await.unwrap();
    let fan = bus.take_requests();
    assert_eq!(fan.len(), 50, "every fan-out action is requested at once");
    (Setup { store, bus, advance, clock }, fan)
}

async fn version_of_execution(store: &SqlStateStore) -> u64 {
    let snapshot = store.load("fan", &Scope::One("e-1".into())).await.unwrap();
    snapshot.executions.iter().find(|e| e.value.id == "e-1").unwrap().version
}

#[tokio::test]
async fn fifty_completions_queued_together_are_one_write_with_the_events_of_fifty() {
    let (batched, requests) = fanned_out().await;
    let (single, _) = fanned_out().await;
    let completions: Vec<BusEvent> = requests
        .iter()
        .map(|r| BusEvent::action_completed(r, succeeded(), batched.clock.now()))
        .collect();
    // The last one again: a duplicate delivery in the same batch changes nothing.
    let mut queued: Vec<&BusEvent> = completions.iter().collect();
    queued.push(&completions[49]);

    let before = version_of_execution(&batched.store).await;
    let outcomes = batched.advance.handle_events(&queued).await;
    let after = version_of_execution(&batched.store).await;
    assert_eq!(after, before + 1, "fifty completions of one execution are saved in one write");
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(Result::unwrap).collect();
    assert!(outcomes[..50].iter().all(|o| matches!(o, Outcome::Applied { .. })), "{outcomes:?}");
    assert_eq!(outcomes[50], Outcome::Unchanged, "the duplicate is a no-op");

    let mut one_by_one = Vec::new();
    for event in &queued {
        one_by_one.push(single.advance.handle_event(event).await.unwrap());
    }
    assert_eq!(outcomes, one_by_one, "each event's outcome is as if applied alone");
    assert_eq!(version_of_execution(&single.store).await, before + 50);

    let detail_types = |bus: &Recording| -> Vec<(String, String)> {
        bus.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.detail_type.clone(), e.detail["state"].to_string()))
            .collect()
    };
    assert_eq!(detail_types(&batched.bus), detail_types(&single.bus), "the same events, in order");
    let join = batched.bus.take_requests();
    assert_eq!(join.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["Join"]);
    let e = batched.store.execution("fan", "e-1").await.unwrap().unwrap();
    let f = single.store.execution("fan", "e-1").await.unwrap().unwrap();
    assert_eq!(e.status(), ExecutionStatus::InProgress);
    assert_eq!(format!("{:?}", e.stages), format!("{:?}", f.stages), "the same state");
}

#[tokio::test]
async fn events_of_different_executions_are_applied_one_by_one() {
    let (s, requests) = fanned_out().await;
    let mut other = requests[0].clone();
    other.execution_id = "e-unknown".into();
    let a = BusEvent::action_completed(&requests[0], succeeded(), s.clock.now());
    let b = BusEvent::action_completed(&other, succeeded(), s.clock.now());
    let outcomes = s.advance.handle_events(&[&a, &b]).await;
    assert!(matches!(outcomes[0], Ok(Outcome::Applied { .. })), "{outcomes:?}");
    assert!(matches!(outcomes[1], Ok(Outcome::Rejected(_))), "{outcomes:?}");
    assert_eq!(version_of_execution(&s.store).await, 3, "started, source done, one action done");
}

/// The worker's way: an action's end applied to what was read before the action ran, in one
/// save, with its public end published by the engine; a read another save has passed since is
/// refused (or read again, where that was asked for); a read of an execution of another
/// declaration is refused untouched, and the end then applies by the bus as before.
#[tokio::test]
async fn an_end_applies_to_the_state_read_before_the_action_or_else_goes_by_the_bus() {
    let (s, requests) = fanned_out().await;
    let record = s.store.get_pipeline("fan").await.unwrap().unwrap();
    let scope = StageAdvance::execution_scope(&record.plan, "e-1");
    let read = s.store.load("fan", &scope).await.unwrap();
    let end = |r: &ActionRequest| r.completion(succeeded());
    let before = version_of_execution(&s.store).await;
    s.bus.0.lock().unwrap().clear();
    let published = || -> Vec<BusEvent> { s.bus.0.lock().unwrap().drain(..).collect() };

    let applied = s.advance.apply_as_read(&record, read.clone(), &end(&requests[0])).await.unwrap();
    assert!(matches!(applied, Some(Outcome::Applied { published: 1 })), "{applied:?}");
    assert_eq!(version_of_execution(&s.store).await, before + 1, "one save");
    let events = published();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["action"], "P00");
    assert_eq!(events[0].detail["state"], "SUCCEEDED", "the engine announces the end");
    assert!(events[0].announced_end().is_none(), "and carries no completion to apply again");

    // P01's worker read the same state, which the save above passed: refused untouched, or
    // read again where that was asked for.
    let stale = s.advance.apply_as_read(&record, read.clone(), &end(&requests[1])).await.unwrap();
    assert_eq!(stale, None, "a stale read is refused");
    assert_eq!(version_of_execution(&s.store).await, before + 1, "nothing was saved");
    assert!(published().is_empty(), "nothing was published");
    let rereading =
        StageAdvance::new(s.store.clone(), s.bus.clone(), s.clock.clone()).with_tries_as_read(3);
    let again = rereading.apply_as_read(&record, read, &end(&requests[1])).await.unwrap();
    assert!(matches!(again, Some(Outcome::Applied { published: 1 })), "{again:?}");
    assert_eq!(version_of_execution(&s.store).await, before + 2);
    assert_eq!(published()[0].detail["action"], "P01");

    // The pipeline was updated since P02 started: its end is not applied with either plan here.
    let mut updated = record.clone();
    updated.plan.version += 1;
    let read = s.store.load("fan", &scope).await.unwrap();
    let refused = rereading.apply_as_read(&updated, read, &end(&requests[2])).await.unwrap();
    assert_eq!(refused, None, "an execution of another declaration is left to stage-advance");
    assert_eq!(version_of_execution(&s.store).await, before + 2, "nothing was saved");
    assert!(published().is_empty(), "nothing was published");
    let by_bus = BusEvent::action_completed(&requests[2], succeeded(), s.clock.now());
    let outcome = s.advance.handle_event(&by_bus).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let e = s.store.execution("fan", "e-1").await.unwrap().unwrap();
    let done = e.stages[1].actions.iter().filter(|a| a.status == ActionStatus::Succeeded).count();
    assert_eq!(done, 3, "each end is applied, once");
}
