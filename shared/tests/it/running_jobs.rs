//! Work that outlives the worker (a build): started, recorded as a running job, completed when
//! looked at again; stopped when its attempt no longer counts. A provider at the boundary
//! plays the external service, so every turn is under the test's control.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton::embedded::EmbeddedConfig;
use baton::ports::jobs::RunningJobs;
use baton::ports::provider::{
    ActionProvider, Job, JobResult, LocalArtifact, ProviderError, ProviderRegistry,
};
use baton::ports::state::StateStore;
use baton_core::engine::{
    ActionRequest, ActionStatus, DeployTarget, DeployTargetEvent, ExecutionStatus, Input, Trigger,
};
use serde_json::{Value, json};

use crate::embedded::{Running, start_runtime_for, wait_for};

const PIPELINE: &str = r#"{"name": "app", "roleArn": "arn:aws:iam::111111111111:role/p",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Zip",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"}, "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [{"name": "Compile",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Src"}]}]}
  ]}"#;

/// A source that hands out a one-file zip.
struct Source;

#[async_trait]
impl ActionProvider for Source {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let path = job.work_dir.join("src.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file("README", zip::write::SimpleFileOptions::default()).unwrap();
        zip.finish().unwrap();
        Ok(JobResult::Succeeded {
            output_artifacts: vec![LocalArtifact::file("Src", path)],
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

/// A build service: every run starts a build that ends at the `finish_at`-th look. Its end
/// reached `reached` (as a deployment reaches its instances).
#[derive(Default)]
struct Builds {
    finish_at: usize,
    looks: AtomicUsize,
    cancelled: Mutex<Vec<String>>,
    reached: Vec<DeployTarget>,
    asked_targets: Mutex<Vec<String>>,
}

#[async_trait]
impl ActionProvider for Builds {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(JobResult::Running {
            external_id: format!("app:{}", job.request.attempt),
            external_url: Some("https://builds.example/app".into()),
        })
    }

    async fn resume(&self, _: &Job, id: &str) -> Result<JobResult, ProviderError> {
        if self.looks.fetch_add(1, Ordering::SeqCst) + 1 < self.finish_at {
            return Ok(JobResult::Running { external_id: id.into(), external_url: None });
        }
        Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::from([("BUILD".into(), id.into())]),
            summary: Some(format!("build {id} passed")),
            external_id: Some(id.into()),
            external_url: None,
        })
    }

    async fn cancel(&self, _: &ActionRequest, id: &str) -> Result<(), ProviderError> {
        self.cancelled.lock().unwrap().push(id.into());
        Ok(())
    }

    async fn targets(&self, _: &Job, id: &str) -> Vec<DeployTarget> {
        self.asked_targets.lock().unwrap().push(id.into());
        self.reached.clone()
    }
}

async fn start(builds: Arc<Builds>) -> (tempfile::TempDir, Running, String) {
    let home = tempfile::tempdir().unwrap();
    let mut providers = ProviderRegistry::default();
    providers.register("Source", "AWS", "S3", Arc::new(Source));
    providers.register("Build", "AWS", "CodeBuild", builds);
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 2,
        providers: Some(providers),
        ..EmbeddedConfig::default()
    };
    let running = start_runtime_for(config, PIPELINE).await;
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "t".into() };
    let id = running.rt.trigger.start("app", trigger, BTreeMap::new()).await.unwrap();
    (home, running, id)
}

/// Waits until the build's job is recorded, and returns it.
async fn recorded_job(running: &Running) -> baton::ports::jobs::RunningJob {
    for _ in 0..400 {
        if let Some(job) = running.rt.store.get_job("CodeBuild#app:1").await.unwrap() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the running build was never recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_outlives_the_worker_completes_when_its_end_is_announced() {
    let builds = Arc::new(Builds { finish_at: 2, ..Builds::default() });
    let (_home, running, id) = start(builds.clone()).await;
    let rt = &running.rt;

    let job = recorded_job(&running).await;
    assert_eq!((job.request.stage.as_str(), job.request.action.as_str()), ("Build", "Compile"));
    assert_eq!(job.external_url.as_deref(), Some("https://builds.example/app"));
    let e = rt.store.execution("app", &id).await.unwrap().unwrap();
    assert_eq!(e.stages[1].actions[0].status, ActionStatus::InProgress, "nothing completed yet");

    // An announcement while the build still runs: looked at, kept, due again later.
    rt.worker.resume(&job.key).await.unwrap();
    let kept = rt.store.get_job(&job.key).await.unwrap().expect("still running");
    assert!(kept.check_at >= job.check_at, "the next look is not earlier than the first");

    // The build's end: the action completes with what the build said, and the job is gone.
    rt.worker.resume(&job.key).await.unwrap();
    let done = wait_for(rt, &id, "succeeded", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{:?}", done.status_summary);
    let build = &done.stages[1].actions[0];
    assert_eq!(build.summary.as_deref(), Some("build app:1 passed"));
    assert_eq!(build.external_id.as_deref(), Some("app:1"));
    assert_eq!(rt.store.get_job(&job.key).await.unwrap(), None);
    // Two looks; the runtime's own periodic look may add one on a very slow machine.
    let looks = builds.looks.load(Ordering::SeqCst);
    assert!((2..=3).contains(&looks), "{looks} looks");

    // The same announcement again (EventBridge delivers at least once) changes nothing.
    rt.worker.resume(&job.key).await.unwrap();
    assert_eq!(builds.looks.load(Ordering::SeqCst), looks, "a finished build is not asked about");
    // So does one about a build Baton never started.
    rt.worker.resume("CodeBuild#other:1").await.unwrap();
    assert!(builds.cancelled.lock().unwrap().is_empty());
    let _ = running.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_of_an_abandoned_attempt_is_stopped_and_forgotten() {
    let builds = Arc::new(Builds { finish_at: usize::MAX, ..Builds::default() });
    let (_home, running, id) = start(builds.clone()).await;
    let rt = &running.rt;
    let job = recorded_job(&running).await;

    let stop =
        Input::Stop { execution_id: id.clone(), abandon: true, reason: "wrong commit".into() };
    rt.apply("app", stop).await.unwrap();
    wait_for(rt, &id, "stopped", |e| e.status().is_ended()).await;

    // The next look finds the attempt abandoned: the build is stopped, the job forgotten, and
    // nothing is completed.
    rt.worker.resume(&job.key).await.unwrap();
    assert_eq!(*builds.cancelled.lock().unwrap(), vec!["app:1".to_owned()]);
    assert_eq!(builds.looks.load(Ordering::SeqCst), 0, "an abandoned build is not asked about");
    assert_eq!(rt.store.get_job(&job.key).await.unwrap(), None);
    let e = rt.store.execution("app", &id).await.unwrap().unwrap();
    assert_eq!(e.status(), ExecutionStatus::Stopped);
    let _ = running.stop.send(true);
}

fn instance(id: &str, status: &str, message: Option<&str>) -> DeployTarget {
    DeployTarget {
        id: id.into(),
        kind: "InstanceTarget".into(),
        status: status.into(),
        started_at: Some(1_700_000_000_000),
        ended_at: Some(1_700_000_042_500),
        events: vec![DeployTargetEvent {
            name: "ApplicationStart".into(),
            status: status.into(),
            started_at: Some(1_700_000_040_000),
            ended_at: Some(1_700_000_042_500),
            message: message.map(str::to_owned),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_ended_work_reached_is_listed_by_its_action_execution_id() {
    let reached = vec![
        instance("i-0aaa", "Succeeded", None),
        instance("i-0bbb", "Failed", Some("ScriptFailed (scripts/start.sh): exit code 1")),
        instance("i-0ccc", "Succeeded", None),
    ];
    let builds = Arc::new(Builds { finish_at: 1, reached, ..Builds::default() });
    let (_home, running, id) = start(builds.clone()).await;
    let rt = &running.rt;
    let job = recorded_job(&running).await;
    let api = rt.control_api("us-east-1", Default::default());
    let call = |op: &'static str, body: Value| {
        let api = &api;
        async move {
            let reply = api.call(op, body.to_string().as_bytes(), "arn:aws:iam::1:user/t").await;
            (reply.status, reply.json())
        }
    };
    let listed = call(
        "ListActionExecutions",
        json!({"pipelineName": "app", "filter": {"pipelineExecutionId": id}}),
    )
    .await
    .1;
    let compile = listed["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["actionName"] == "Compile")
        .unwrap()["actionExecutionId"]
        .clone();
    let (status, before) =
        call("ListDeployActionExecutionTargets", json!({"actionExecutionId": compile})).await;
    assert_eq!((status, before), (200, json!({"targets": []})), "nothing reached while it runs");

    rt.worker.resume(&job.key).await.unwrap();
    wait_for(rt, &id, "succeeded", |e| e.status().is_ended()).await;
    assert_eq!(*builds.asked_targets.lock().unwrap(), ["app:1"], "asked once, at the end");

    let (status, all) = call(
        "ListDeployActionExecutionTargets",
        json!({"pipelineName": "app", "actionExecutionId": compile}),
    )
    .await;
    assert_eq!(status, 200, "{all}");
    let ids: Vec<_> =
        all["targets"].as_array().unwrap().iter().map(|t| t["targetId"].clone()).collect();
    assert_eq!(ids, ["i-0aaa", "i-0bbb", "i-0ccc"]);
    assert_eq!(
        all["targets"][1],
        json!({
            "targetId": "i-0bbb", "targetType": "InstanceTarget", "status": "Failed",
            "startTime": 1_700_000_000.0, "endTime": 1_700_000_042.5,
            "events": [{"name": "ApplicationStart", "status": "Failed",
                "startTime": 1_700_000_040.0, "endTime": 1_700_000_042.5,
                "context": {"message": "ScriptFailed (scripts/start.sh): exit code 1"}}]
        })
    );
    let failed = json!({"actionExecutionId": compile,
        "filters": [{"name": "TARGET_STATUS", "values": ["Failed"]}]});
    let (_, only) = call("ListDeployActionExecutionTargets", failed).await;
    assert_eq!(only["targets"].as_array().map(Vec::len), Some(1), "{only}");
    assert_eq!(only["targets"][0]["targetId"], "i-0bbb");

    // Paged as CodePipeline pages: two, then the last one.
    let first_page = json!({"actionExecutionId": compile, "maxResults": 2});
    let (_, first) = call("ListDeployActionExecutionTargets", first_page).await;
    assert_eq!(first["targets"].as_array().map(Vec::len), Some(2));
    let next =
        json!({"actionExecutionId": compile, "maxResults": 2, "nextToken": first["nextToken"]});
    let (_, second) = call("ListDeployActionExecutionTargets", next).await;
    assert_eq!(second["targets"][0]["targetId"], "i-0ccc");
    assert!(second.get("nextToken").is_none(), "{second}");

    let wrong = json!({"actionExecutionId": compile, "filters": [{"name": "STATUS", "values": ["Failed"]}]});
    let (status, refused) = call("ListDeployActionExecutionTargets", wrong).await;
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("ValidationException")),
        "{refused}"
    );
    assert!(refused["message"].as_str().unwrap().contains("[TARGET_STATUS]"), "{refused}");
    let _ = running.stop.send(true);
}

#[tokio::test]
async fn running_jobs_keep_their_contract_on_one_machine() {
    let store = baton::adapters::local::sql_state::SqlStateStore::in_memory().unwrap();
    baton_testkit::running_jobs_contract(&store).await;
}
