//! `AWS/Invoke/CodePipeline` on the embedded runtime: one pipeline starts another with
//! variables and a pinned source revision, once per attempt, and a target that cannot start
//! fails the action with the reason.

use std::time::Duration;

use baton::ports::state::StateStore;
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{Execution, ExecutionStatus};
use baton_testkit::manual_start;

use crate::embedded::{Running, home_with_repo, start_runtime_for};

const INVOKER: &str = r##"{"pipeline": {
  "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout", "namespace": "SourceVariables",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Release", "actions": [{"name": "StartDownstream",
      "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "CodePipeline", "version": "1"},
      "configuration": {"PipelineName": "TARGET",
        "Variables": "[{\"name\":\"Build\",\"value\":\"#{codepipeline.PipelineExecutionId}\"}]",
        "SourceRevisions": "[{\"actionName\":\"Fetch\",\"revisionType\":\"COMMIT_ID\",\"revisionValue\":\"#{SourceVariables.CommitId}\"}]"}}]}
  ]}}"##;

const DOWNSTREAM: &str = r##"{"pipeline": {
  "name": "downstream", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "variables": [{"name": "Build", "defaultValue": "none"}],
  "stages": [
    {"name": "Source", "actions": [{"name": "Fetch",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Use", "actions": [{"name": "Check",
      "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
      "commands": ["test -f buildspec.yml"], "inputArtifacts": [{"name": "Src"}]}]}
  ]}}"##;

async fn ended(rt: &baton::embedded::Embedded, pipeline: &str, id: &str) -> Execution {
    for _ in 0..600 {
        if let Some(e) = rt.store.execution(pipeline, id).await.unwrap()
            && e.status() != ExecutionStatus::InProgress
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{pipeline} {id} never ended");
}

/// The invoking pipeline, aimed at `target`, on a runtime in a home with the `app` repository.
async fn invoking(target: &str) -> (tempfile::TempDir, Running) {
    let home = home_with_repo(false);
    let config = baton::embedded::EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 4,
        ..Default::default()
    };
    let running = start_runtime_for(config, &INVOKER.replace("TARGET", target)).await;
    (home, running)
}

#[tokio::test]
async fn a_pipeline_starts_another_with_its_variables_and_revision() {
    let (_home, running) = invoking("downstream").await;
    let rt = &running.rt;
    rt.put_pipeline(&PipelineDocument::parse(DOWNSTREAM).unwrap(), "us-east-1").await.unwrap();

    rt.apply("app", manual_start("11111111-1111-4111-8111-111111111111")).await.unwrap();
    let invoker = ended(rt, "app", "11111111-1111-4111-8111-111111111111").await;
    assert_eq!(invoker.status(), ExecutionStatus::Succeeded, "{invoker:#?}");
    let action = &invoker.stages[1].actions[0];
    let target = action.external_id.clone().expect("the action names the execution it started");
    let downstream = ended(rt, "downstream", &target).await;
    assert_eq!(downstream.status(), ExecutionStatus::Succeeded, "{downstream:#?}");
    assert_eq!(downstream.variables["Build"], invoker.id);
    let commit = &invoker.outputs["SourceVariables"]["CommitId"];
    assert_eq!(&downstream.source_revisions["Fetch"].value, commit);
    assert_eq!(downstream.trigger.trigger_type, "StartPipelineExecution");
    assert_eq!(rt.store.executions("downstream", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_target_that_cannot_start_fails_the_action_with_the_reason() {
    let (_home, running) = invoking("nowhere").await;
    let rt = &running.rt;
    rt.apply("app", manual_start("22222222-2222-4222-8222-222222222222")).await.unwrap();
    let e = ended(rt, "app", "22222222-2222-4222-8222-222222222222").await;
    assert_eq!(e.status(), ExecutionStatus::Failed);
    let message =
        e.stages[1].actions[0].error.as_ref().map(|x| x.message.clone()).unwrap_or_default();
    assert!(message.contains("nowhere"), "{message}");
}
