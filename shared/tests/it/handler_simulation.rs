//! The simulation one layer up: the real handlers (stage-advance, the action-worker with its
//! claims, the outbox sweeper) over the embedded store, on a bus that loses, duplicates and
//! reorders, with crashes between a save and its publish and between a publish and its
//! acknowledgement. The core's simulation checks the pure engine; this one checks that the
//! wiring around it keeps the same promises: nothing lost, nothing run twice per attempt.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton::adapters::local::file_artifacts::FileArtifactStore;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::bus_events::{BusEvent, PipelineInput};
use baton::ports::bus::{BusError, EventBus};
use baton::ports::clock::{Clock, ManualClock, SystemClock};
use baton::ports::provider::{
    ActionProvider, Job, JobResult, LocalArtifact, ProviderError, ProviderRegistry,
};
use baton::ports::state::StateStore;
use baton::providers::archive;
use baton::routing::{Target, rules, targets};
use baton::service::{ActionWorker, StageAdvance};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionStatus, ExecutionStatus, Input, Trigger};
use baton_core::plan::Plan;

/// How long a worker's invocation may live: its claim lasts this long (the function's time-out).
const LEASE: i64 = 900_000;

/// When a failed invocation's event is delivered again: Lambda retries an asynchronous
/// invocation after about a minute, well within the claim of the one that failed.
const RETRY_AFTER: i64 = 60_000;

const PIPELINE: &str = r#"{"pipeline": {
  "name": "sim", "roleArn": "arn:aws:iam::111111111111:role/p", "pipelineType": "V2",
  "executionMode": "PARALLEL",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Fetch",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [
      {"name": "Unit", "runOrder": 1,
       "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
       "configuration": {"ProjectName": "u"}, "inputArtifacts": [{"name": "Src"}]},
      {"name": "Compile", "runOrder": 1,
       "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
       "configuration": {"ProjectName": "c"}, "inputArtifacts": [{"name": "Src"}],
       "outputArtifacts": [{"name": "App"}]},
      {"name": "Package", "runOrder": 2,
       "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
       "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "App"}],
       "outputArtifacts": [{"name": "Pkg"}]}]},
    {"name": "Deploy", "actions": [{"name": "Site",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"BucketName": "site", "Extract": "true"},
      "inputArtifacts": [{"name": "Pkg"}]}]}
  ]}}"#;

/// SplitMix64: a schedule is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An event on its way, deliverable from `due`.
struct InFlight {
    event: BusEvent,
    due: i64,
}

/// How a publish goes wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The publisher dies before the bus has the events: nothing is delivered, and the caller
    /// sees an error (stage-advance's events wait in the outbox for the sweeper).
    Before,
    /// The publisher dies after the bus took the events, before it could tell: delivered, yet
    /// the caller sees an error (the outbox sends them again; the worker is invoked again).
    After,
}

/// The bus the handlers publish to: the test decides what becomes of each publish.
struct SimBus {
    in_flight: Mutex<Vec<InFlight>>,
    rng: Mutex<Rng>,
    clock: Arc<ManualClock>,
    /// Attempts whose worker saw its completion's publish fail: they may run once more each.
    worker_failures: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl EventBus for SimBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError> {
        let fault = {
            let mut rng = self.rng.lock().unwrap();
            match rng.next() % 100 {
                0..10 => Fault::Before,
                10..20 => Fault::After,
                _ => Fault::None,
            }
        };
        if fault != Fault::Before {
            let now = self.clock.now();
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.extend(events.iter().map(|e| InFlight { event: e.clone(), due: now }));
        }
        if fault == Fault::None {
            return Ok(());
        }
        for event in events {
            if event.announced_end().is_some()
                && let Ok(PipelineInput { input: Input::ActionCompleted { .. }, .. }) =
                    event.pipeline_input()
            {
                *self.worker_failures.lock().unwrap().entry(attempt_of(event)).or_default() += 1;
            }
        }
        Err(BusError::Unavailable("the publisher died (simulated)".into()))
    }
}

/// `execution/stage/action/attempt` of an action's request or completion.
fn attempt_of(event: &BusEvent) -> String {
    let d = &event.detail;
    format!(
        "{}/{}/{}/{}",
        d["execution-id"].as_str().unwrap_or_default(),
        d["stage"].as_str().unwrap_or_default(),
        d["action"].as_str().unwrap_or_default(),
        event
            .action_request()
            .map(|r| r.attempt)
            .or_else(|_| match event.pipeline_input().map(|m| m.input) {
                Ok(Input::ActionCompleted { attempt, .. }) => Ok(attempt),
                _ => Err(()),
            })
            .unwrap_or_default()
    )
}

/// Whether stage-advance is the one handler `event` goes to here (approval and notice
/// targets do nothing in this simulation).
fn advances_only(routes: &[baton::routing::Rule], event: &BusEvent) -> bool {
    let routed = targets(routes, event);
    routed.contains(&Target::StageAdvance) && !routed.contains(&Target::ActionWorker)
}

fn execution_of(event: &BusEvent) -> Option<String> {
    let input = event.pipeline_input().ok()?.input;
    input.execution_id().map(str::to_string)
}

/// Counts its runs per attempt; makes each declared output artifact.
struct Counting {
    runs: Mutex<BTreeMap<String, u32>>,
}

#[async_trait]
impl ActionProvider for Counting {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let r = &job.request;
        let key = format!("{}/{}/{}/{}", r.execution_id, r.stage, r.action, r.attempt);
        *self.runs.lock().unwrap().entry(key).or_default() += 1;
        let mut outputs = Vec::new();
        for name in &r.output_artifacts {
            let file = job.work_dir.join(format!("{name}.txt"));
            std::fs::write(&file, name).unwrap();
            let zip = job.work_dir.join(format!("{name}.zip"));
            archive::zip_entries(&[(file, format!("{name}.txt"))], &zip).unwrap();
            outputs.push(LocalArtifact::file(name.clone(), zip));
        }
        Ok(JobResult::Succeeded {
            output_artifacts: outputs,
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

/// Runs one schedule; panics naming the seed when an invariant breaks.
async fn run_schedule(seed: u64) {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStateStore::open(&home.path().join("baton.db")).unwrap());
    // Ahead of the system clock, which stamps the outbox: the sweeper, on this clock, sees
    // every entry a crashed writer left as old enough to send again.
    let clock = Arc::new(ManualClock::at(SystemClock.now() + 3_600_000));
    let bus = Arc::new(SimBus {
        in_flight: Mutex::default(),
        rng: Mutex::new(Rng(seed ^ 0xA5A5)),
        clock: clock.clone(),
        worker_failures: Mutex::default(),
    });
    let counting = Arc::new(Counting { runs: Mutex::default() });
    let mut providers = ProviderRegistry::default();
    for (category, provider) in
        [("Source", "S3"), ("Test", "CodeBuild"), ("Build", "CodeBuild"), ("Deploy", "S3")]
    {
        providers.register(category, "AWS", provider, counting.clone());
    }
    let artifacts = Arc::new(FileArtifactStore::open(home.path()).unwrap());
    let worker = ActionWorker::new(
        store.clone(),
        bus.clone(),
        artifacts,
        providers,
        store.clone(),
        home.path().to_path_buf(),
    )
    .with_claims(store.clone())
    .with_clock(clock.clone());
    let advance = StageAdvance::new(store.clone(), bus.clone(), clock.clone());

    let doc = PipelineDocument::parse(PIPELINE).unwrap();
    let record = crate::planned(doc.pipeline, "us-east-1", clock.now());
    store.create_pipeline(&record).await.unwrap();
    let plan = record.plan.clone();
    let ids = ["e-1", "e-2", "e-3"];
    for id in ids {
        let start = Input::Start {
            execution_id: id.into(),
            trigger: Trigger {
                trigger_type: "StartPipelineExecution".into(),
                trigger_detail: "sim".into(),
            },
            variables: BTreeMap::new(),
            source_revisions: Default::default(),
        };
        advance.handle(PipelineInput { pipeline: "sim".into(), input: start }).await.unwrap();
    }

    let mut rng = Rng(seed);
    let routes = rules();
    let mut duplicated_requests = 0;
    for step in 0..5_000 {
        let pick = {
            let mut in_flight = bus.in_flight.lock().unwrap();
            let due: Vec<usize> =
                (0..in_flight.len()).filter(|&i| in_flight[i].due <= clock.now()).collect();
            if due.is_empty() || rng.chance(8) {
                None
            } else {
                let i = due[rng.below(due.len())];
                // A copy stays behind a fifth of the time: delivered again, later, in any order.
                if rng.chance(20) {
                    Some(InFlight { event: in_flight[i].event.clone(), due: in_flight[i].due })
                } else {
                    Some(in_flight.swap_remove(i))
                }
            }
        };
        let Some(InFlight { event, .. }) = pick else {
            // The sweeper's turn: what a crashed writer left in the outbox goes out again.
            advance.sweep_outbox(0).await.ok();
            let next_due = bus.in_flight.lock().unwrap().iter().map(|f| f.due).min();
            if let Some(due) = next_due.filter(|&d| d > clock.now()) {
                clock.advance(due - clock.now());
            }
            if finished(store.as_ref(), &ids).await && bus.in_flight.lock().unwrap().is_empty() {
                let pending = store.pending_outbox(i64::MAX, 10).await.unwrap();
                if pending.is_empty() {
                    check_runs(seed, step, &counting, &bus, &plan, store.as_ref(), &ids).await;
                    return;
                }
            }
            continue;
        };
        // A third of the time, the other due inputs of the same execution come with it, as the
        // embedded dispatcher hands stage-advance what is queued at once.
        let batch = if advances_only(&routes, &event) && rng.chance(33) {
            let mut in_flight = bus.in_flight.lock().unwrap();
            let mut batch = Vec::new();
            let mut i = 0;
            while i < in_flight.len() {
                let f = &in_flight[i];
                if f.due <= clock.now()
                    && advances_only(&routes, &f.event)
                    && execution_of(&f.event) == execution_of(&event)
                {
                    batch.push(in_flight.swap_remove(i).event);
                } else {
                    i += 1;
                }
            }
            batch
        } else {
            Vec::new()
        };
        if !batch.is_empty() {
            BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut events = vec![event];
            events.extend(batch);
            let refs: Vec<&BusEvent> = events.iter().collect();
            for (event, result) in events.iter().zip(advance.handle_events(&refs).await) {
                retry_later(seed, &bus, event, result.map(|_| ()));
            }
            continue;
        }
        for target in targets(&routes, &event) {
            let result = match target {
                Target::StageAdvance => advance.handle_event(&event).await.map(|_| ()),
                Target::ActionWorker => {
                    let request = event.action_request().unwrap();
                    if bus
                        .in_flight
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|f| f.event.action_request().is_ok_and(|r| r == request))
                    {
                        duplicated_requests += 1;
                    }
                    worker.run_once(request, clock.now() + LEASE).await
                }
                Target::Approval | Target::Notices => Ok(()),
            };
            retry_later(seed, &bus, &event, result);
        }
    }
    let states: Vec<_> = statuses(store.as_ref(), &ids).await;
    panic!(
        "seed {seed}: not finished after 5,000 steps ({duplicated_requests} duplicated requests): {states:?}"
    );
}

/// A failed handler's event is delivered again a minute later, as Lambda retries a failed
/// invocation; no failure may be for good.
fn retry_later(
    seed: u64,
    bus: &SimBus,
    event: &BusEvent,
    result: Result<(), baton::service::ServiceError>,
) {
    if let Err(e) = result {
        assert!(
            e.kind() != baton::service::ErrorKind::Permanent,
            "seed {seed}: a handler failed for good: {e}"
        );
        let due = bus.clock.now() + RETRY_AFTER;
        bus.in_flight.lock().unwrap().push(InFlight { event: event.clone(), due });
    }
}

async fn statuses(store: &dyn StateStore, ids: &[&str]) -> Vec<Option<ExecutionStatus>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.execution("sim", id).await.unwrap().map(|e| e.status()));
    }
    out
}

async fn finished(store: &dyn StateStore, ids: &[&str]) -> bool {
    statuses(store, ids).await.iter().all(|s| s.is_some_and(|s| s.is_ended()))
}

/// Nothing lost: every execution succeeded, each action's last attempt with it. Nothing run
/// twice: an attempt ran once, plus once for each time its worker died around publishing the
/// result (then nobody can know the work was done); duplicated deliveries add nothing.
async fn check_runs(
    seed: u64,
    step: usize,
    counting: &Counting,
    bus: &SimBus,
    plan: &Plan,
    store: &dyn StateStore,
    ids: &[&str],
) {
    let runs = counting.runs.lock().unwrap().clone();
    let failures = bus.worker_failures.lock().unwrap().clone();
    for id in ids {
        let e = store.execution("sim", id).await.unwrap().unwrap();
        assert_eq!(e.status(), ExecutionStatus::Succeeded, "seed {seed}, step {step}: {id}");
        for (stage, run) in plan.stages.iter().zip(&e.stages) {
            for (action, a) in stage.actions.iter().zip(&run.actions) {
                assert_eq!(a.status, ActionStatus::Succeeded, "seed {seed}: {id}/{}", action.name);
                let key = format!("{id}/{}/{}/{}", stage.name, action.name, a.attempt);
                assert!(runs.contains_key(&key), "seed {seed}: {key} never ran");
            }
        }
    }
    for (attempt, n) in &runs {
        let allowed = 1 + failures.get(attempt).copied().unwrap_or(0);
        assert!(
            *n <= allowed,
            "seed {seed}: {attempt} ran {n} times with {} worker failures",
            allowed - 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_lose_nothing_and_run_each_attempt_once_through_crashes_and_duplicates() {
    let seeds: u64 =
        std::env::var("BATON_SIM_HANDLER_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    for seed in 0..seeds {
        run_schedule(seed).await;
    }
    let batches = BATCHES.load(std::sync::atomic::Ordering::Relaxed);
    assert!(seeds < 10 || batches > 0, "no schedule handed stage-advance a batch");
}

/// Batches of two or more inputs handed to stage-advance, over all schedules.
static BATCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
