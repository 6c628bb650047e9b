//! Two kinds of invocation: an approval request from the bus (send the notice with its links),
//! or a request to the function URL (the page behind a link, or the decision it posts).

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use baton::lambda::{Aws, HandlerError, bus_event, settle};
use baton::service::{APPROVAL_PAGE_HEADERS, Approvals, ServiceError};
use lambda_runtime::LambdaEvent;
use serde_json::{Map, Value, json};

pub(crate) async fn handle(
    approvals: &Approvals,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let (payload, _context) = event.into_parts();
    if payload.get("requestContext").is_some() && payload.get("rawPath").is_some() {
        return Ok(page(approvals, payload).await);
    }
    let result = match bus_event(&payload).map_err(ServiceError::Permanent) {
        Ok(e) => approvals.handle(&e).await,
        Err(e) => Err(e),
    };
    settle("approval", result, aws.dead_letters(), &payload).await.map(|()| Value::Null)
}

/// A function URL request, answered with a page. Nothing here is a Lambda error: a person is
/// waiting for an answer, and a retry would not help them.
async fn page(approvals: &Approvals, payload: Value) -> Value {
    let page = match serde_json::from_value::<LambdaFunctionUrlRequest>(payload) {
        Ok(request) => {
            let method = request.request_context.http.method.clone().unwrap_or_default();
            let path = request.raw_path.clone().unwrap_or_default();
            let body = body_bytes(&request);
            approvals.serve(&method, &path, &body).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "malformed function URL request");
            approvals.serve("GET", "/", &[]).await
        }
    };
    let headers: Map<String, Value> =
        APPROVAL_PAGE_HEADERS.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    json!({
        "statusCode": page.status,
        "headers": headers,
        "body": page.html,
        "isBase64Encoded": false,
    })
}

fn body_bytes(request: &LambdaFunctionUrlRequest) -> Vec<u8> {
    use base64::Engine as _;
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    }
}
