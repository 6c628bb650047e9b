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
