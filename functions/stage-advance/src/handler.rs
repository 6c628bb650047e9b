//! Decodes an invocation (a bus event, a batch of the table's stream records, or the sweeper's
//! schedule), calls the service, maps errors.

use baton::lambda::{Aws, HandlerError, Invocation, Schedule, settle};
use baton::service::{Outcome, ServiceError, StageAdvance};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{Instrument, info, info_span};

pub(crate) async fn handle(
    service: &StageAdvance,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let (payload, context) = event.into_parts();
    let result = match Invocation::decode(&payload) {
        // The events saves wrote with their state, from the table's stream.
        Ok(Invocation::StreamRecords(records)) => return Ok(aws.relay(&records).await),
        Ok(Invocation::Schedule(Schedule::Sweep)) => {
            let ticked = service.tick_all().await?;
            info!(ticked, "sweep done");
            return Ok(Value::Null);
        }
        Ok(Invocation::Event(event)) => {
            let span = info_span!("stage_advance", detail_type = %event.detail_type, request_id = %context.request_id);
            service.handle_event(&event).instrument(span).await.map(|outcome| {
                if let Outcome::Rejected(r) = outcome {
                    info!(reason = %r, "input rejected");
                }
            })
        }
        Ok(other) => Err(other.not_for("stage-advance")),
        Err(e) => Err(ServiceError::Permanent(e)),
    };
    settle("stage-advance", result, aws.dead_letters(), &payload).await.map(|()| Value::Null)
}

#[cfg(test)]
mod tests {
    use baton::config::Config;
    use baton_testkit::LambdaFixture;
    use lambda_runtime::{Context, LambdaEvent};

    use super::*;

    async fn aws_with_queue() -> (Aws, aws_sdk_sqs::Client, String) {
        let f = LambdaFixture::new("sa").await;
        (f.aws, f.sqs, f.dead_letters)
    }

    async fn sdk() -> aws_config::SdkConfig {
        let endpoint = std::env::var("BATON_TEST_AWS_ENDPOINT")
            .expect("BATON_TEST_AWS_ENDPOINT is not set: run these tests with `make test`");
        let creds =
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }

    async fn dead_lettered(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<Value> {
        let out =
            sqs.receive_message().queue_url(queue).max_number_of_messages(10).send().await.unwrap();
        out.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect()
    }

    #[tokio::test]
    async fn a_malformed_event_is_dead_lettered_not_retried() {
        let (aws, sqs, queue) = aws_with_queue().await;
        let service = aws.stage_advance();
        let payload = serde_json::json!({"source": "baton", "detail": {"pipeline": "p"}});
        let result = handle(&service, &aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "a malformed event must not be retried");
        let kept = dead_lettered(&sqs, &queue).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["reason"], "the event has no detail-type");
        assert_eq!(kept[0]["event"]["detail"]["pipeline"], "p");
    }

    #[tokio::test]
    async fn an_invocation_meant_for_another_function_is_dead_lettered_naming_it() {
        let (aws, sqs, queue) = aws_with_queue().await;
        let service = aws.stage_advance();
        let payload = serde_json::json!({"schedule": "CheckRunningJobs"});
        let result = handle(&service, &aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "it can never succeed here, so it must not be retried");
        let kept = dead_lettered(&sqs, &queue).await;
        assert_eq!(
            kept[0]["reason"],
            "the stage-advance function does not take the CheckRunningJobs schedule"
        );
    }

    #[tokio::test]
    async fn an_input_for_an_unknown_pipeline_is_dead_lettered() {
        let (aws, sqs, queue) = aws_with_queue().await;
        let service = aws.stage_advance();
        let payload = serde_json::json!({"version": "0", "id": "1", "source": "baton",
            "detail-type": "Baton Rule Completed", "detail": {"pipeline": "nope", "input": {"type": "Tick"}}});
        let result = handle(&service, &aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok());
        let kept = dead_lettered(&sqs, &queue).await;
        assert_eq!(kept[0]["reason"], "pipeline nope does not exist");
    }

    #[tokio::test]
    async fn the_relay_publishes_saved_events_and_dead_letters_what_eventbridge_can_never_take() {
        let f = LambdaFixture::new("relay").await;
        let service = f.aws.stage_advance();
        // Public events, which the fixture's rule collects.
        let event = |n| baton::bus_events::BusEvent {
            source: baton::bus_events::PUBLIC_SOURCE.into(),
            ..baton_testkit::event(n)
        };
        let mut huge = event(2);
        huge.detail = serde_json::json!({"blob": "x".repeat(300 * 1024)});
        let records = serde_json::json!({"Records": [
            baton_testkit::stream_record("100", &[event(1)]),
            baton_testkit::stream_record("101", &[huge, event(3)]),
            {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "102"}},
        ]});
        let answer =
            handle(&service, &f.aws, LambdaEvent::new(records, Context::default())).await.unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": []}), "nothing to retry");
        let kept = dead_lettered(&f.sqs, &f.dead_letters).await;
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0]["reason"], "the event is over EventBridge's 256 KB limit");
        assert_eq!(kept[0]["event"]["detail"]["blob"].as_str().map(str::len), Some(300 * 1024));
        let published = f.received(&f.published, 2).await;
        let ns: Vec<_> = published.iter().map(|e| e["detail"]["n"].clone()).collect();
        assert_eq!(ns, vec![serde_json::json!(1), serde_json::json!(3)], "in order, once each");
    }

    #[tokio::test]
    async fn an_unreachable_table_is_a_retryable_failure() {
        let broken = Config::from_lookup(|k| match k {
            "BATON_TABLE" => Some("no-such-table".into()),
            "BATON_ARTIFACT_BUCKETS" => Some("us-east-1=b".into()),
            "BATON_ARTIFACT_KEYS" => Some("us-east-1=k".into()),
            "BATON_RETENTION_DAYS" | "BATON_DEAD_LETTER_QUEUE" | "BATON_ASSUME_PIPELINE_ROLES" => {
                None
            }
            _ => Some("x".into()),
        })
        .unwrap();
        let aws = Aws::connect_with(&broken, sdk().await);
        let service = aws.stage_advance();
        let payload = serde_json::json!({"source": "baton", "detail-type": "Baton Rule Completed",
            "detail": {"pipeline": "p", "input": {"type": "Tick"}}});
        let result = handle(&service, &aws, LambdaEvent::new(payload, Context::default())).await;
        let err = result.expect_err("a missing table is worth a retry, not a dead letter");
        assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "Baton.StateUnavailable");
    }
}
