//! Decodes an invocation (an action request, CodeBuild's "Build State Change", a job's report,
//! or the schedule's look at running jobs), calls the worker, maps errors.

use baton::lambda::{Aws, HandlerError, Invocation, Schedule, settle};
use baton::providers::aws::codebuild::finished_build_keys;
use baton::service::{ActionWorker, ServiceError};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{Instrument, info, info_span};

/// Running jobs one scheduled invocation looks at; more wait for the next minute.
const CHECKS_PER_INVOCATION: usize = 50;

pub(crate) async fn handle(
    worker: &ActionWorker,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<(), HandlerError> {
    let (payload, context) = event.into_parts();
    let event = match Invocation::decode(&payload) {
        Ok(Invocation::Schedule(Schedule::CheckRunningJobs)) => {
            let looked = worker.check_due(CHECKS_PER_INVOCATION).await?;
            info!(looked, "running jobs checked");
            return Ok(());
        }
        Ok(Invocation::Event(e)) => Ok(e),
        Ok(other) => Err(other.not_for("action-worker")),
        Err(e) => Err(ServiceError::Permanent(e)),
    };
    let result = match event {
        Ok(e) if e.reported_job().is_some() => {
            let key = e.reported_job().unwrap_or_default().to_owned();
            worker.resume(&key).instrument(info_span!("job_reported", job = %key)).await
        }
        Ok(e) if let Some(request) = e.rule_request() => match request {
            Ok(request) => {
                let span = info_span!("rule_check", execution_id = %request.execution_id,
                    stage = %request.stage, rule = %request.rule, request = request.request,
                    request_id = %context.request_id);
                worker.evaluate_rule(request).instrument(span).await
            }
            Err(e) => Err(e.into()),
        },
        // The build may be any of the providers' that run builds: only one has it waiting.
        Ok(e) if e.source == "aws.codebuild" => match finished_build_keys(&e.detail) {
            Ok(keys) => resume_build(worker, &keys).await,
            Err(why) => Err(ServiceError::Permanent(why)),
        },
        Ok(e) => match e.action_request() {
            Ok(request) => {
                let span = info_span!("action_worker", execution_id = %request.execution_id,
                    stage = %request.stage, action = %request.action, attempt = request.attempt,
                    request_id = %context.request_id);
                let until = i64::try_from(context.deadline).unwrap_or(i64::MAX);
                worker.run_once(request, until).instrument(span).await
            }
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    settle("action-worker", result, aws.dead_letters(), &payload).await
}

/// Resumes a finished build's running job under whichever provider's key it waits.
async fn resume_build(worker: &ActionWorker, keys: &[String]) -> Result<(), ServiceError> {
    for key in keys {
        worker.resume(key).instrument(info_span!("build_finished", job = %key)).await?;
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use baton_testkit::LambdaFixture;
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    fn request(pipeline: &str) -> Value {
        let request = baton_testkit::build_request(pipeline, "e-1");
        json!({"version": "0", "id": "1", "source": "baton.codepipeline",
            "detail-type": "CodePipeline Action Execution State Change",
            "detail": {"state": "STARTED", "baton-action-request": request}})
    }

    #[tokio::test]
    async fn a_request_for_an_attempt_that_is_not_current_runs_nothing() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let event = LambdaEvent::new(request("gone"), Context::default());
        handle(&worker, &f.aws, event).await.unwrap();
        let arrived = f.nothing_in(&[&f.published, &f.dead_letters]).await;
        assert!(
            arrived.is_empty(),
            "no completion for a stale request, nothing dead-lettered: {arrived:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_request_is_dead_lettered_not_retried() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let mut payload = request("p");
        payload["detail"]["baton-action-request"]["attempt"] = json!("first");
        let result = handle(&worker, &f.aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "a malformed event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["event"]["detail"]["baton-action-request"]["attempt"], json!("first"));
    }

    /// A rule's request reaches the rule branch: a malformed one is dead-lettered, not retried;
    /// one for an execution that does not exist evaluates nothing and answers nothing.
    #[tokio::test]
    async fn rule_requests_are_decoded_and_checked_before_anything_runs() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let request = json!({"pipeline": "gone", "pipeline_version": 1, "execution_id": "e-1",
            "stage": "Deploy", "condition": "OnSuccess", "rule": "Alarm", "request": 1,
            "provider": "CloudWatchAlarm", "configuration": {"AlarmName": "a"}, "commands": [],
            "input_artifacts": [], "region": "us-east-1", "role_arn": null,
            "started_at": 0, "deadline": 1});
        let event = |detail: Value| {
            json!({"version": "0", "id": "4", "source": "baton",
                "detail-type": "Baton Rule Requested", "detail": detail})
        };
        let stale = LambdaEvent::new(event(request.clone()), Context::default());
        handle(&worker, &f.aws, stale).await.unwrap();
        let arrived = f.nothing_in(&[&f.published, &f.dead_letters]).await;
        assert!(arrived.is_empty(), "no answer for a rule nobody waits on: {arrived:?}");

        let mut bad = request;
        bad["request"] = json!("first");
        let result =
            handle(&worker, &f.aws, LambdaEvent::new(event(bad), Context::default())).await;
        assert!(result.is_ok(), "a malformed event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept[0]["event"]["detail"]["request"], json!("first"));
    }

    /// A job's report wakes the worker for the attempt that waits on it: here one no provider
    /// of this host runs, which is looked at and forgotten.
    #[tokio::test]
    async fn a_job_report_looks_at_its_waiting_attempt_at_once() {
        use baton::adapters::aws::dynamodb_state::DynamoDbStateStore;
        use baton::ports::jobs::{RunningJob, RunningJobs};
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let store = DynamoDbStateStore::new(f.dynamodb.clone(), f.aws.config().table.clone(), 30);
        let mut request = baton_testkit::build_request("p", "e-1");
        request.action_type.provider = "Nobody".into();
        let job = RunningJob {
            key: "Nobody#job-1".into(),
            request,
            external_id: "job-1".into(),
            external_url: None,
            check_at: i64::MAX / 2,
        };
        store.put_job(&job).await.unwrap();
        let event = json!({"version": "0", "id": "3", "source": "baton",
            "detail-type": "Baton Job Reported", "detail": {"running-job": "Nobody#job-1"}});
        handle(&worker, &f.aws, LambdaEvent::new(event, Context::default())).await.unwrap();
        assert_eq!(
            store.get_job("Nobody#job-1").await.unwrap(),
            None,
            "the attempt was not looked at"
        );
    }

    fn build_state_change(build_id: Value) -> Value {
        json!({"version": "0", "id": "2", "source": "aws.codebuild",
            "detail-type": "CodeBuild Build State Change",
            "detail": {"build-status": "SUCCEEDED", "project-name": "app", "build-id": build_id}})
    }

    #[tokio::test]
    async fn the_end_of_a_build_baton_did_not_start_is_ignored() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let arn = json!("arn:aws:codebuild:us-east-1:111111111111:build/someone-else:42");
        let event = LambdaEvent::new(build_state_change(arn), Context::default());
        handle(&worker, &f.aws, event).await.unwrap();
        let arrived = f.nothing_in(&[&f.published, &f.dead_letters]).await;
        assert!(arrived.is_empty(), "no completion, nothing dead-lettered: {arrived:?}");
    }

    #[tokio::test]
    async fn a_build_event_without_a_build_arn_is_dead_lettered() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let event = LambdaEvent::new(build_state_change(json!(7)), Context::default());
        assert!(handle(&worker, &f.aws, event).await.is_ok(), "not retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept[0]["event"]["source"], json!("aws.codebuild"));
    }

    #[tokio::test]
    async fn the_scheduled_look_with_nothing_running_does_nothing() {
        let f = LambdaFixture::new("worker").await;
        let worker = f.aws.action_worker();
        let event = LambdaEvent::new(json!({"schedule": "CheckRunningJobs"}), Context::default());
        handle(&worker, &f.aws, event).await.unwrap();
        let arrived = f.nothing_in(&[&f.published, &f.dead_letters]).await;
        assert!(arrived.is_empty(), "{arrived:?}");
    }
}
