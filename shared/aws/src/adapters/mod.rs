//! The ports on AWS: DynamoDB, S3 with KMS, EventBridge, SNS, STS.
//!
//! Every SDK type and SDK error stays in this module; the ports see domain types only.

#[cfg(feature = "secrets")]
pub mod aws_secrets;
mod dynamodb_active;
pub mod dynamodb_approvals;
mod dynamodb_history;
pub mod dynamodb_job_queue;
pub mod dynamodb_jobs;
pub mod dynamodb_packing;
pub mod dynamodb_relay;
pub mod dynamodb_state;
pub mod dynamodb_webhooks;
mod dynamodb_writes;
pub mod emf_metrics;
pub mod eventbridge_bus;
pub mod iam_pipeline_roles;
pub mod s3_artifacts;
pub mod sdk;
pub mod sns_notifier;
pub mod sts_job_grants;
pub mod sts_roles;

/// The X-Ray trace of the Lambda invocation being handled: the runtime sets
/// `_X_AMZN_TRACE_ID` for each invocation it hands a function (one at a time), as the X-Ray
/// SDKs read it. None outside Lambda, or with tracing off.
pub(crate) fn invocation_trace() -> Option<String> {
    std::env::var("_X_AMZN_TRACE_ID").ok().filter(|t| !t.is_empty())
}

/// `events` carrying `trace` where they carry none yet: an event relayed from an earlier
/// invocation keeps the trace of the invocation that made it.
pub(crate) fn traced(
    events: &[baton_protocol::bus_events::BusEvent],
    trace: Option<&str>,
) -> Vec<baton_protocol::bus_events::BusEvent> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e.trace.is_none() {
                e.trace = trace.map(str::to_owned);
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use baton_protocol::bus_events::BusEvent;
    use serde_json::json;

    #[test]
    fn an_event_keeps_the_trace_it_was_made_in_and_a_new_one_takes_this_invocations() {
        let event = |trace: Option<&str>| BusEvent {
            source: "baton".into(),
            detail_type: "t".into(),
            resources: vec![],
            detail: json!({}),
            trace: trace.map(str::to_owned),
        };
        let saved = [event(Some("Root=1-a")), event(None)];
        let sent = super::traced(&saved, Some("Root=1-b"));
        let traces: Vec<_> = sent.iter().map(|e| e.trace.as_deref()).collect();
        assert_eq!(traces, [Some("Root=1-a"), Some("Root=1-b")]);
        assert_eq!(super::traced(&saved, None)[1].trace, None, "no trace outside Lambda");
        // Saved with the events, read back by the relay.
        let text = serde_json::to_string(&sent[0]).unwrap();
        assert_eq!(
            serde_json::from_str::<BusEvent>(&text).unwrap().trace.as_deref(),
            Some("Root=1-a")
        );
    }
}
