//! Decodes an approval request and sends its notice; maps errors.

use baton::lambda::{Aws, HandlerError, bus_event, settle};
use baton::service::{Notices, ServiceError};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

pub(crate) async fn handle(
    notices: &Notices,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<(), HandlerError> {
    let (payload, _context) = event.into_parts();
    let result = match bus_event(&payload).map_err(ServiceError::Permanent) {
        Ok(e) => notices.handle(&e).await,
        Err(e) => Err(e),
    };
    settle("approval", result, aws.dead_letters(), &payload).await
}
