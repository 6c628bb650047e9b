//! Who an action runs as: on the AWS host (the worker `with_pipeline_roles`), an action with no
//! `roleArn` of its own runs as its pipeline's `roleArn`, as CodePipeline runs it as its
//! service role; one with its own keeps it; on one machine, neither is assumed for it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton::adapters::local::file_artifacts::FileArtifactStore;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::bus_events::PipelineInput;
use baton::ports::clock::{Clock, SystemClock};
use baton::ports::provider::{ActionProvider, Job, JobResult, ProviderError, ProviderRegistry};
use baton::ports::state::StateStore;
use baton::service::{ActionWorker, StageAdvance};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::ActionRequest;
use baton_core::plan::Plan;
use baton_testkit::{KeptEvents, manual_start};

const PIPELINE: &str = r#"{"name": "roles", "roleArn": "arn:aws:iam::111111111111:role/AWSCodePipelineServiceRole-app",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Src",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Out"}]}]},
    {"name": "Deploy", "actions": [{"name": "Own",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "roleArn": "arn:aws:iam::222222222222:role/deployer",
      "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Out"}]}]}
  ]}"#;

/// Notes the role each attempt was handed, and fails it (nothing else is needed here).
#[derive(Default)]
pub(crate) struct Roles(Mutex<Vec<(String, Option<String>)>>);

#[async_trait]
impl ActionProvider for Roles {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let r = &job.request;
        self.0.lock().unwrap().push((r.action.clone(), r.role_arn.clone()));
        Ok(JobResult::Failed { code: "JobFailed".into(), message: "noted".into() })
    }
}

/// The source's request of a fresh execution, and a worker over the same home.
pub(crate) async fn requested(
    pipeline_roles: bool,
) -> (ActionWorker, Arc<Roles>, Vec<ActionRequest>) {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStateStore::open(&home.path().join("baton.db")).unwrap());
    let bus = Arc::new(KeptEvents::default());
    let doc = PipelineDocument::parse(PIPELINE).unwrap();
    let record = crate::planned(doc.pipeline, "us-east-1", SystemClock.now());
    store.create_pipeline(&record).await.unwrap();
    let advance = StageAdvance::new(store.clone(), bus.clone(), Arc::new(SystemClock));
    let start = manual_start("e-1");
    advance.handle(PipelineInput { pipeline: "roles".into(), input: start }).await.unwrap();
    let requests =
        bus.0.lock().unwrap().iter().filter_map(|e| e.action_request().ok()).collect::<Vec<_>>();
    let roles = Arc::new(Roles::default());
    let mut providers = ProviderRegistry::default();
    providers.register("Source", "AWS", "S3", roles.clone());
    let artifacts = Arc::new(FileArtifactStore::open(home.path()).unwrap());
    let worker = ActionWorker::new(
        store.clone(),
        bus,
        artifacts,
        providers,
        store,
        home.path().to_path_buf(),
    );
    std::mem::forget(home);
    let worker = if pipeline_roles { worker.with_pipeline_roles() } else { worker };
    (worker, roles, requests)
}

#[tokio::test]
async fn an_action_without_a_role_runs_as_the_pipelines_role_on_the_aws_host() {
    let (worker, roles, requests) = requested(true).await;
    assert_eq!(requests.len(), 1);
    let r = requests[0].clone();
    assert_eq!(r.role_arn, None, "the source names no role");
    assert_eq!(
        r.pipeline_role_arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/AWSCodePipelineServiceRole-app")
    );
    worker.run(r).await.unwrap();
    assert_eq!(
        roles.0.lock().unwrap().clone(),
        vec![(
            "Src".to_string(),
            Some("arn:aws:iam::111111111111:role/AWSCodePipelineServiceRole-app".to_string())
        )]
    );
}

#[tokio::test]
async fn on_one_machine_an_action_without_a_role_runs_with_the_users_credentials() {
    let (worker, roles, requests) = requested(false).await;
    worker.run(requests[0].clone()).await.unwrap();
    assert_eq!(roles.0.lock().unwrap().clone(), vec![("Src".to_string(), None)]);
}

#[test]
fn an_action_with_its_own_role_keeps_it() {
    let doc = PipelineDocument::parse(PIPELINE).unwrap();
    let plan = Plan::from_declaration(
        &doc.pipeline,
        &baton::embedded::placement("111111111111", "us-east-1"),
    )
    .unwrap();
    assert_eq!(
        plan.stages[1].actions[0].role_arn.as_deref(),
        Some("arn:aws:iam::222222222222:role/deployer")
    );
    assert_eq!(
        plan.role_arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/AWSCodePipelineServiceRole-app")
    );
}
