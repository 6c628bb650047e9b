//! Decodes a source-change event (CodeCommit's "Repository State Change", S3's "Object
//! Created"), starts the pipelines that watch it, maps errors.

use baton::lambda::{Aws, HandlerError, bus_event, settle};
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
    let result = match bus_event(&payload)
        .map_err(ServiceError::Permanent)
        .and_then(|e| SourceChange::from_event(&e).map_err(ServiceError::Permanent))
    {
        Ok(change) => trigger.on_change(&change, payload["id"].as_str()).await.map(|started| {
            info!(started = started.len(), "source change handled");
        }),
        Err(e) => Err(e),
    };
    settle("trigger", result, aws.dead_letters(), &payload).await
}
