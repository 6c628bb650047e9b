//! Decodes an invocation (a bus event or the sweeper's schedule), calls the service, maps errors.

use baton::lambda::{Aws, HandlerError, bus_event, settle};
use baton::service::{Outcome, ServiceError, StageAdvance};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{Instrument, info, info_span};

pub(crate) async fn handle(
    service: &StageAdvance,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<(), HandlerError> {
    let (payload, context) = event.into_parts();
    if payload.get("sweep").is_some() {
        let sent = service.sweep_outbox(60_000).await?;
        let ticked = aws.tick_all(service).await?;
        info!(sent, ticked, "sweep done");
        return Ok(());
    }
    let result = match bus_event(&payload)
        .map_err(ServiceError::Permanent)
        .and_then(|e| Ok(e.pipeline_input()?))
    {
        Ok(input) => {
            let span = info_span!("stage_advance", pipeline = %input.pipeline, request_id = %context.request_id);
            service.handle(input).instrument(span).await.map(|outcome| {
                if let Outcome::Rejected(r) = outcome {
                    info!(reason = %r, "input rejected");
                }
            })
        }
        Err(e) => Err(e),
    };
    settle("stage-advance", result, aws.dead_letters(), &payload).await
}
