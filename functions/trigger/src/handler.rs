//! Decodes a source-change event (CodeCommit's "Repository State Change", S3's "Object
//! Created"), starts the pipelines that watch it, maps errors.

use baton::lambda::{Aws, HandlerError, Invocation, settle};
use baton::service::{ServiceError, SourceChange, Trigger};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::info;

pub(crate) async fn handle(
    trigger: &Trigger,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<(), HandlerError> {
    let (payload, _context) = event.into_parts();
    let change = match Invocation::decode(&payload) {
        Ok(Invocation::Event(e)) => SourceChange::from_event(&e).map_err(ServiceError::Permanent),
        Ok(other) => Err(other.not_for("trigger")),
        Err(e) => Err(ServiceError::Permanent(e)),
    };
    let result = match change {
        Ok(change) => trigger.on_change(&change, payload["id"].as_str()).await.map(|started| {
            info!(started = started.len(), "source change handled");
        }),
        Err(e) => Err(e),
    };
    settle("trigger", result, aws.dead_letters(), &payload).await
}

#[cfg(test)]
mod tests {
    use baton_testkit::{LambdaFixture, S3_SOURCED_PIPELINE as PIPELINE};
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    fn upload(id: &str, key: &str) -> LambdaEvent<Value> {
        let payload = json!({"version": "0", "id": id, "source": "aws.s3",
            "detail-type": "Object Created", "account": "111111111111", "region": "us-east-1",
            "resources": ["arn:aws:s3:::uploads"],
            "detail": {"bucket": {"name": "uploads"}, "object": {"key": key, "version-id": "v1"}}});
        LambdaEvent::new(payload, Context::default())
    }

    #[tokio::test]
    async fn an_upload_starts_the_watching_pipeline_once_however_often_it_is_delivered() {
        let f = LambdaFixture::new("trigger").await;
        let created = f.aws.control_api().call("CreatePipeline", PIPELINE.as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        let trigger = f.aws.trigger();
        for _ in 0..2 {
            handle(&trigger, &f.aws, upload("event-1", "web.zip")).await.unwrap();
        }
        handle(&trigger, &f.aws, upload("event-2", "other.zip")).await.unwrap();
        // The start is applied at once: its public events are saved for the relay, once.
        let saved = f.saved_events("web").await;
        let starts: Vec<_> = saved
            .iter()
            .filter(|e| e.detail_type == "CodePipeline Pipeline Execution State Change")
            .collect();
        assert_eq!(starts.len(), 1, "one execution however often it is delivered: {saved:?}");
        assert_eq!(starts[0].detail["state"], json!("STARTED"));
        assert_eq!(starts[0].detail["pipeline"], json!("web"));
        let listed = f
            .aws
            .control_api()
            .call("ListPipelineExecutions", br#"{"pipelineName": "web"}"#, "t")
            .await;
        let summaries = listed.json()["pipelineExecutionSummaries"].clone();
        assert_eq!(summaries.as_array().map(Vec::len), Some(1), "{summaries}");
        assert_eq!(summaries[0]["pipelineExecutionId"], starts[0].detail["execution-id"]);
    }

    /// As the API refuses to start it: nothing runs half-way.
    #[tokio::test]
    async fn an_upload_does_not_start_a_pipeline_aws_cannot_run() {
        let f = LambdaFixture::new("trigger").await;
        let mut pipeline: Value = serde_json::from_str(PIPELINE).unwrap();
        pipeline["pipeline"]["stages"].as_array_mut().unwrap().push(json!({"name": "Deploy",
            "actions": [{"name": "Ship",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ElasticBeanstalk", "version": "1"},
                "configuration": {"ApplicationName": "a", "EnvironmentName": "e"},
                "inputArtifacts": [{"name": "Code"}]}]}));
        let created =
            f.aws.control_api().call("CreatePipeline", pipeline.to_string().as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        let trigger = f.aws.trigger();
        handle(&trigger, &f.aws, upload("event-1", "web.zip")).await.unwrap();
        let listed = f
            .aws
            .control_api()
            .call("ListPipelineExecutions", br#"{"pipelineName": "web"}"#, "t")
            .await;
        assert_eq!(listed.json()["pipelineExecutionSummaries"], json!([]), "nothing ran half-way");
    }

    #[tokio::test]
    async fn an_event_that_is_no_source_change_is_dead_lettered() {
        let f = LambdaFixture::new("trigger").await;
        let payload = json!({"source": "aws.codecommit",
            "detail-type": "CodeCommit Repository State Change",
            "detail": {"referenceType": "tag", "repositoryName": "app", "referenceName": "v1"}});
        let trigger = f.aws.trigger();
        let result = handle(&trigger, &f.aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "a bad event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept[0]["reason"], json!("the change is not to a branch"));
    }
}
