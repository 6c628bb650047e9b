//! `kill -9` of the embedded runtime while its writes commit in groups: nothing it announced is
//! lost, and a new runtime finishes every execution.
//!
//! The runtime runs in a child process (this test binary again, running the ignored `child`
//! test), hundreds of executions at once, so that a group of writes is nearly always open when
//! the kill lands. What the runtime announced is its journal: it writes a public event there
//! only once the write that caused it committed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::embedded::{Embedded, EmbeddedConfig};
use baton::ports::provider::{ActionProvider, Job, JobResult, ProviderError, ProviderRegistry};
use baton::ports::state::StateStore;
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionStatus, ExecutionStatus, StageStatus, Trigger};
use serde_json::{Value, json};
use tokio::sync::watch;

const HOME: &str = "BATON_CRASH_HOME";
const EXECUTIONS: usize = 200;
const STAGES: usize = 10;

/// Succeeds at once.
struct NoOp;

#[async_trait]
impl ActionProvider for NoOp {
    async fn run(&self, _job: &Job) -> Result<JobResult, ProviderError> {
        Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

fn runtime(home: &Path) -> Arc<Embedded> {
    let mut providers = ProviderRegistry::default();
    providers.register("Source", "Custom", "NoOp", Arc::new(NoOp));
    providers.register("Build", "Custom", "NoOp", Arc::new(NoOp));
    let config = EmbeddedConfig {
        home: home.to_path_buf(),
        quiet: true,
        workers: 64,
        providers: Some(providers),
        ..EmbeddedConfig::default()
    };
    let rt = Arc::new(Embedded::open(&config).unwrap());
    std::mem::forget(rt.try_lock().unwrap());
    rt
}

fn pipeline() -> PipelineDocument {
    let stages: Vec<_> = (0..STAGES)
        .map(|i| {
            let category = if i == 0 { "Source" } else { "Build" };
            json!({"name": format!("S{i}"), "actions": [{"name": format!("A{i}"),
                "actionTypeId": {"category": category, "owner": "Custom", "provider": "NoOp", "version": "1"}}]})
        })
        .collect();
    PipelineDocument::from_value(json!({"name": "crash", "executionMode": "PARALLEL",
        "roleArn": "arn:aws:iam::111111111111:role/crash",
        "artifactStore": {"type": "S3", "location": "crash"}, "stages": stages}))
    .unwrap()
}

/// The runtime the parent kills: starts the executions and dispatches until killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by a_kill_in_the_middle_of_group_commits_loses_nothing_announced"]
async fn child() {
    let home = std::env::var(HOME).expect("run by the crash test");
    let rt = runtime(Path::new(&home));
    rt.put_pipeline(&pipeline(), "us-east-1").await.unwrap();
    let (_stop, rx) = watch::channel(false);
    tokio::spawn(Arc::clone(&rt).dispatch(rx));
    let starts: Vec<_> = (0..EXECUTIONS)
        .map(|_| {
            let rt = Arc::clone(&rt);
            let t = Trigger {
                trigger_type: "StartPipelineExecution".into(),
                trigger_detail: "crash".into(),
            };
            tokio::spawn(async move { rt.trigger.start("crash", t, BTreeMap::new()).await })
        })
        .collect();
    for start in starts {
        start.await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn journal(home: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(home.join("events.jsonl")).unwrap_or_default();
    // The last line may be cut by the kill; it was never whole, so never announced.
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_in_the_middle_of_group_commits_loses_nothing_announced() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_in_commit::child", "--exact", "--ignored", "--quiet"])
        .env(HOME, home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once every execution started and some of the work is announced, while the rest is
    // being written (an execution announces 42 events).
    let began = Instant::now();
    loop {
        let text = std::fs::read_to_string(home.path().join("events.jsonl")).unwrap_or_default();
        let started = text
            .lines()
            .filter(|l| l.contains("CodePipeline Pipeline Execution") && l.contains("\"STARTED\""))
            .count();
        if started == EXECUTIONS && text.lines().count() >= EXECUTIONS * 4 {
            break;
        }
        let lines = text.lines().count();
        assert!(began.elapsed() < Duration::from_secs(20), "{started} started, {lines} events");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Everything the journal announced is in the state another process reads.
    let announced = journal(home.path());
    let store = SqlStateStore::open(&home.path().join("baton.db")).unwrap();
    let mut executions = BTreeMap::new();
    for e in store.executions("crash", EXECUTIONS + 1).await.unwrap() {
        executions.insert(e.id.clone(), e);
    }
    let mut checked = 0;
    for event in &announced {
        let d = &event["detail"];
        let (kind, state) = (event["detail-type"].as_str().unwrap(), d["state"].as_str().unwrap());
        let id = d["execution-id"].as_str().unwrap();
        let execution = executions.get(id).unwrap_or_else(|| panic!("execution {id} was lost"));
        let stage = |d: &Value| {
            let name = d["stage"].as_str().unwrap();
            &execution.stages[name[1..].parse::<usize>().unwrap()]
        };
        match (kind, state) {
            ("CodePipeline Pipeline Execution State Change", "SUCCEEDED") => {
                assert_eq!(execution.status(), ExecutionStatus::Succeeded, "{id} lost its end");
            }
            ("CodePipeline Stage Execution State Change", "SUCCEEDED") => {
                assert_eq!(stage(d).status, Some(StageStatus::Succeeded), "{id} lost {d}");
            }
            ("CodePipeline Action Execution State Change", "STARTED") => {
                let status = stage(d).actions[0].status;
                assert_ne!(status, ActionStatus::Pending, "{id} lost the start of {d}");
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked > EXECUTIONS, "only {checked} announcements checked");
    let unfinished = executions.values().filter(|e| !e.status().is_ended()).count();
    assert!(unfinished > 0, "the kill came after the work was done: nothing was in the middle");

    // A new runtime on the same home finishes every execution.
    let rt = runtime(home.path());
    let (stop, rx) = watch::channel(false);
    let dispatcher = tokio::spawn(Arc::clone(&rt).dispatch(rx));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = rt.store.executions("crash", EXECUTIONS + 1).await.unwrap();
        if all.len() == EXECUTIONS && all.iter().all(|e| e.status().is_ended()) {
            for e in &all {
                assert_eq!(e.status(), ExecutionStatus::Succeeded, "{:?}", e.status_summary);
            }
            break;
        }
        assert!(Instant::now() < deadline, "{} executions stored, not all ended", all.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    dispatcher.await.unwrap();
}
