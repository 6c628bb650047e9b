//! Two kinds of invocation: an approval request from the bus (send the notice with its links),
//! or a request to the function URL (the page behind a link, or the decision it posts).

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use baton::lambda::{Aws, HandlerError, Invocation, function_url_body, settle};
use baton::service::{APPROVAL_PAGE_HEADERS, Approvals, ServiceError};
use lambda_runtime::LambdaEvent;
use serde_json::{Map, Value, json};

pub(crate) async fn handle(
    approvals: &Approvals,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let (payload, _context) = event.into_parts();
    let result = match Invocation::decode(&payload) {
        Ok(Invocation::FunctionUrl(request)) => return Ok(page(approvals, &request).await),
        Ok(Invocation::Event(e)) => approvals.handle(&e).await,
        Ok(other) => Err(other.not_for("approval")),
        Err(e) => Err(ServiceError::Permanent(e)),
    };
    settle("approval", result, aws.dead_letters(), &payload).await.map(|()| Value::Null)
}

/// A function URL request, answered with a page. Nothing here is a Lambda error: a person is
/// waiting for an answer, and a retry would not help them.
async fn page(approvals: &Approvals, request: &LambdaFunctionUrlRequest) -> Value {
    let method = request.request_context.http.method.clone().unwrap_or_default();
    let path = request.raw_path.clone().unwrap_or_default();
    let page = approvals.serve(&method, &path, &function_url_body(request)).await;
    let headers: Map<String, Value> =
        APPROVAL_PAGE_HEADERS.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    json!({
        "statusCode": page.status,
        "headers": headers,
        "body": page.html,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use baton_testkit::{LambdaFixture, function_url_request};
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    fn url_request(method: &str, path: &str, body: &str) -> Value {
        let headers = json!({"content-type": "application/x-www-form-urlencoded"});
        function_url_request(method, path, headers, body, None)
    }

    #[tokio::test]
    async fn a_link_that_is_not_ours_gets_the_invalid_link_page_with_safe_headers() {
        let f = LambdaFixture::new("approval").await;
        let approvals = f.aws.approvals();
        let path = format!("/approvals/{}/{}", "A".repeat(22), "B".repeat(43));
        for method in ["GET", "POST"] {
            let event = LambdaEvent::new(url_request(method, &path, "name=x"), Context::default());
            let reply = handle(&approvals, &f.aws, event).await.unwrap();
            assert_eq!(reply["statusCode"], json!(404), "{reply}");
            assert_eq!(reply["headers"]["referrer-policy"], json!("no-referrer"));
            assert_eq!(reply["headers"]["cache-control"], json!("no-store"));
            assert!(reply["body"].as_str().unwrap().contains("This approval link is not valid."));
        }
        let other = LambdaEvent::new(url_request("GET", "/", ""), Context::default());
        assert_eq!(handle(&approvals, &f.aws, other).await.unwrap()["statusCode"], json!(404));
        let arrived = f.nothing_in(&[&f.published, &f.dead_letters]).await;
        assert!(arrived.is_empty(), "nothing was decided: {arrived:?}");
    }

    #[tokio::test]
    async fn a_malformed_approval_request_is_dead_lettered_not_retried() {
        let f = LambdaFixture::new("approval").await;
        let approvals = f.aws.approvals();
        let payload = json!({"source": "baton.codepipeline",
            "detail-type": "CodePipeline Action Execution State Change",
            "detail": {"state": "STARTED", "baton-action-request": {"pipeline": "p"}}});
        let reply = handle(&approvals, &f.aws, LambdaEvent::new(payload, Context::default())).await;
        assert_eq!(reply.unwrap(), Value::Null, "a malformed event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["event"]["detail"]["baton-action-request"]["pipeline"], json!("p"));
    }
}
