//! Decodes an action request, runs it, maps errors.

use baton::lambda::{Aws, HandlerError, bus_event, settle};
use baton::service::{ActionWorker, ServiceError};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{Instrument, info_span};

pub(crate) async fn handle(
    worker: &ActionWorker,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<(), HandlerError> {
    let (payload, context) = event.into_parts();
    let result = match bus_event(&payload)
        .map_err(ServiceError::Permanent)
        .and_then(|e| Ok(e.action_request()?))
    {
        Ok(request) => {
            let span = info_span!("action_worker", execution_id = %request.execution_id,
                stage = %request.stage, action = %request.action, attempt = request.attempt,
                request_id = %context.request_id);
            let until = i64::try_from(context.deadline).unwrap_or(i64::MAX);
            worker.run_once(request, until).instrument(span).await
        }
        Err(e) => Err(e),
    };
    settle("action-worker", result, aws.dead_letters(), &payload).await
}

#[cfg(test)]
mod tests {
    use baton::core::engine::ActionRequest;
    use baton::core::plan::ActionType;
    use baton::testing::LambdaFixture;
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    fn request(pipeline: &str) -> Value {
        let request = ActionRequest {
            pipeline: pipeline.into(),
            pipeline_version: 1,
            execution_id: "e-1".into(),
            stage: "Build".into(),
            action: "Compile".into(),
            attempt: 1,
            action_type: ActionType {
                category: "Build".into(),
                owner: "AWS".into(),
                provider: "CodeBuild".into(),
                version: "1".into(),
            },
            configuration: Default::default(),
            commands: vec![],
            input_artifacts: vec![],
            output_artifacts: vec![],
            region: "us-east-1".into(),
            role_arn: None,
            deadline: 0,
            token: None,
            output_artifact_files: vec![],
            output_variables: vec![],
            environment_variables: vec![],
        };
        json!({"version": "0", "id": "1", "source": "baton",
            "detail-type": "Baton Action Requested", "detail": request})
    }

    #[tokio::test]
    async fn a_request_for_an_attempt_that_is_not_current_runs_nothing() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let event = LambdaEvent::new(request("gone"), Context::default());
        handle(&worker, &f.aws, event).await.unwrap();
        assert!(f.received(&f.published, 0).await.is_empty(), "no completion for a stale request");
        assert!(f.received(&f.dead_letters, 0).await.is_empty(), "and nothing to dead-letter");
    }

    #[tokio::test]
    async fn a_malformed_request_is_dead_lettered_not_retried() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let mut payload = request("p");
        payload["detail"]["attempt"] = json!("first");
        let result = handle(&worker, &f.aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "a malformed event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["event"]["detail"]["attempt"], json!("first"));
    }
}
