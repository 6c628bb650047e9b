//! The control API release scenario through the Rust `aws-sdk-codepipeline`, with a custom
//! endpoint and static credentials.

use std::time::Duration;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ApprovalResult, ApprovalStatus,
    ArtifactStore, ArtifactStoreType, ExecutionMode, InputArtifact, OutputArtifact,
    PipelineDeclaration, PipelineExecution, PipelineExecutionStatus, PipelineType,
    PipelineVariable, PipelineVariableDeclaration, StageDeclaration, StageRetryMode,
    StageTransitionType, Tag,
};
use serde_json::Value;

use super::api::{Server, invalid_pipeline, pipeline};

fn client(server: &Server) -> Client {
    let config = aws_sdk_codepipeline::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&server.url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("baton", "baton-local-secret", None, None, "test"))
        .build();
    Client::from_conf(config)
}

/// The fixture's declaration (CodePipeline JSON) as the SDK's types.
fn declaration(p: &Value) -> PipelineDeclaration {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let stages = p["stages"].as_array().unwrap().iter().map(|s| {
        let actions = s["actions"].as_array().unwrap().iter().map(|a| {
            let t = &a["actionTypeId"];
            let mut b = ActionDeclaration::builder()
                .name(text(&a["name"]))
                .action_type_id(
                    ActionTypeId::builder()
                        .category(ActionCategory::from(t["category"].as_str().unwrap()))
                        .owner(ActionOwner::from(t["owner"].as_str().unwrap()))
                        .provider(text(&t["provider"]))
                        .version(text(&t["version"]))
                        .build()
                        .unwrap(),
                )
                .run_order(a["runOrder"].as_i64().unwrap() as i32);
            for (k, v) in a["configuration"].as_object().into_iter().flatten() {
                b = b.configuration(k, text(v));
            }
            for i in a["inputArtifacts"].as_array().into_iter().flatten() {
                b = b.input_artifacts(
                    InputArtifact::builder().name(text(&i["name"])).build().unwrap(),
                );
            }
            for o in a["outputArtifacts"].as_array().into_iter().flatten() {
                b = b.output_artifacts(
                    OutputArtifact::builder().name(text(&o["name"])).build().unwrap(),
                );
            }
            if let Some(ns) = a["namespace"].as_str() {
                b = b.namespace(ns);
            }
            b.build().unwrap()
        });
        StageDeclaration::builder()
            .name(text(&s["name"]))
            .set_actions(Some(actions.collect()))
            .build()
            .unwrap()
    });
    let variables = p["variables"].as_array().unwrap().iter().map(|v| {
        PipelineVariableDeclaration::builder()
            .name(text(&v["name"]))
            .default_value(text(&v["defaultValue"]))
            .description(text(&v["description"]))
            .build()
            .unwrap()
    });
    PipelineDeclaration::builder()
        .name(text(&p["name"]))
        .role_arn(text(&p["roleArn"]))
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location(text(&p["artifactStore"]["location"]))
                .build()
                .unwrap(),
        )
        .pipeline_type(PipelineType::V2)
        .execution_mode(ExecutionMode::Superseded)
        .set_variables(Some(variables.collect()))
        .set_stages(Some(stages.collect()))
        .build()
        .unwrap()
}

fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<T, SdkError<E, R>>,
) -> String {
    match result {
        Ok(_) => panic!("the call succeeded"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no error code: {e:?}")).to_string(),
    }
}

async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn wait_status(cp: &Client, id: &str, status: PipelineExecutionStatus) -> PipelineExecution {
    poll(&format!("execution {id} is {status:?}"), || async {
        let e = cp
            .get_pipeline_execution()
            .pipeline_name("app")
            .pipeline_execution_id(id)
            .send()
            .await
            .unwrap()
            .pipeline_execution
            .unwrap();
        (e.status.as_ref() == Some(&status)).then_some(e)
    })
    .await
}

async fn approval_token(cp: &Client, id: &str) -> String {
    poll("the approval waits", || async {
        let state = cp.get_pipeline_state().name("app").send().await.unwrap();
        let stage =
            state.stage_states().iter().find(|s| s.stage_name() == Some("Approve"))?.clone();
        let mine = stage.latest_execution().map(|l| l.pipeline_execution_id()) == Some(id);
        let latest = stage.action_states().first()?.latest_execution()?.clone();
        let waiting = latest.status().map(|s| s.as_str()) == Some("InProgress");
        if mine && waiting { latest.token().map(str::to_string) } else { None }
    })
    .await
}

#[test]
fn the_rust_sdk_runs_the_same_release() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(scenario(&server));
}

async fn scenario(server: &Server) {
    let cp = client(server);
    let fixture = pipeline();
    let created = cp
        .create_pipeline()
        .pipeline(declaration(&fixture))
        .tags(Tag::builder().key("team").value("release").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(created.pipeline().and_then(|p| p.version()), Some(1));
    let got = cp.get_pipeline().name("app").send().await.unwrap();
    let p = got.pipeline().unwrap();
    let names: Vec<&str> = p.stages().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["Source", "Build", "Check", "Approve", "Deploy"]);
    let compile = &p.stages()[1].actions()[0];
    assert_eq!(compile.configuration().unwrap()["ProjectName"], "app-build");
    assert_eq!(p.variables()[0].default_value(), Some("hello"));
    let metadata = got.metadata().unwrap();
    assert_eq!(metadata.pipeline_arn(), Some("arn:aws:codepipeline:us-east-1:000000000000:app"));
    assert!(metadata.created().unwrap().secs() > 1_700_000_000);
    let again = cp.create_pipeline().pipeline(declaration(&fixture)).send().await;
    assert_eq!(code(again), "PipelineNameInUseException");
    let invalid = cp.create_pipeline().pipeline(declaration(&invalid_pipeline())).send().await;
    let e = invalid.unwrap_err();
    assert_eq!(e.code(), Some("InvalidStructureException"));
    assert!(e.message().unwrap_or_default().contains("Compile"), "{e:?}");
    assert_eq!(code(cp.get_pipeline().name("nope").send().await), "PipelineNotFoundException");
    let listed = cp.list_pipelines().send().await.unwrap();
    assert_eq!(
        listed.pipelines().iter().map(|p| p.name().unwrap_or_default()).collect::<Vec<_>>(),
        ["app"]
    );

    let first = cp
        .start_pipeline_execution()
        .name("app")
        .variables(PipelineVariable::builder().name("Greeting").value("hi").build().unwrap())
        .send()
        .await
        .unwrap()
        .pipeline_execution_id
        .unwrap();
    wait_status(&cp, &first, PipelineExecutionStatus::Failed).await;
    let retry = |stage: &str| {
        cp.retry_stage_execution()
            .pipeline_name("app")
            .stage_name(stage)
            .pipeline_execution_id(&first)
            .retry_mode(StageRetryMode::FailedActions)
            .send()
    };
    assert_eq!(code(retry("Build").await), "StageNotRetryableException");
    std::fs::write(server.pass_flag(), "").unwrap();
    retry("Check").await.unwrap();

    let token = approval_token(&cp, &first).await;
    let approve = |token: String| {
        cp.put_approval_result()
            .pipeline_name("app")
            .stage_name("Approve")
            .action_name("Release")
            .result(
                ApprovalResult::builder()
                    .summary("ship it")
                    .status(ApprovalStatus::Approved)
                    .build()
                    .unwrap(),
            )
            .token(token)
            .send()
    };
    let wrong = approve("11111111-2222-4333-8444-555555555555".into()).await;
    assert_eq!(code(wrong), "InvalidApprovalTokenException");
    let approved = approve(token.clone()).await.unwrap();
    assert!(approved.approved_at().unwrap().secs() > 1_700_000_000);
    assert_eq!(code(approve(token.clone()).await), "ApprovalAlreadyCompletedException");
    let done = wait_status(&cp, &first, PipelineExecutionStatus::Succeeded).await;
    // Once the execution has ended too: CodePipeline's answer does not depend on how fast
    // the stages after the approval ran.
    assert_eq!(code(approve(token).await), "ApprovalAlreadyCompletedException");
    let greeting = done.variables().iter().find(|v| v.name() == Some("Greeting")).unwrap();
    assert_eq!(greeting.resolved_value(), Some("hi"));

    let history = cp.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(history.pipeline_execution_summaries().len(), 1);
    let actions = cp
        .list_action_executions()
        .pipeline_name("app")
        .filter(
            aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
                .pipeline_execution_id(&first)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let checkout = actions
        .action_execution_details()
        .iter()
        .find(|d| d.action_name() == Some("Checkout"))
        .unwrap();
    let vars = checkout.output().unwrap().output_variables().unwrap();
    assert_eq!(vars["CommitId"].len(), 40);

    cp.disable_stage_transition()
        .pipeline_name("app")
        .stage_name("Build")
        .transition_type(StageTransitionType::Inbound)
        .reason("code freeze")
        .send()
        .await
        .unwrap();
    let start = || cp.start_pipeline_execution().name("app").client_request_token("sdk-2").send();
    let second = start().await.unwrap().pipeline_execution_id.unwrap();
    assert_eq!(start().await.unwrap().pipeline_execution_id.unwrap(), second);
    poll("the execution waits before Build", || async {
        let state = cp.get_pipeline_state().name("app").send().await.unwrap();
        let build = state.stage_states().iter().find(|s| s.stage_name() == Some("Build"))?.clone();
        let waiting = build.inbound_execution()?.pipeline_execution_id() == second;
        let enabled = build.inbound_transition_state()?.enabled();
        (waiting && !enabled).then_some(())
    })
    .await;
    cp.enable_stage_transition()
        .pipeline_name("app")
        .stage_name("Build")
        .transition_type(StageTransitionType::Inbound)
        .send()
        .await
        .unwrap();
    approval_token(&cp, &second).await;
    let stop = || {
        cp.stop_pipeline_execution()
            .pipeline_name("app")
            .pipeline_execution_id(&second)
            .abandon(true)
            .reason("enough")
            .send()
    };
    stop().await.unwrap();
    let stopped = wait_status(&cp, &second, PipelineExecutionStatus::Stopped).await;
    assert_eq!(stopped.status_summary(), Some("enough"));
    assert_eq!(code(stop().await), "PipelineExecutionNotStoppableException");
    let missing = cp
        .get_pipeline_execution()
        .pipeline_name("app")
        .pipeline_execution_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await;
    assert_eq!(code(missing), "PipelineExecutionNotFoundException");

    let mut changed = fixture.clone();
    changed["variables"][0]["defaultValue"] = "bonjour".into();
    let updated = cp.update_pipeline().pipeline(declaration(&changed)).send().await.unwrap();
    assert_eq!(updated.pipeline().and_then(|p| p.version()), Some(2));
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:app";
    cp.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
    let tags = cp.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert!(tags.tags().is_empty());
    cp.delete_pipeline().name("app").send().await.unwrap();
    assert_eq!(code(cp.get_pipeline().name("app").send().await), "PipelineNotFoundException");
}
