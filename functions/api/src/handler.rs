//! Decodes a function URL request, runs the operation its `X-Amz-Target` names for the IAM
//! caller the URL authenticated, and answers as CodePipeline does. Never a Lambda error: the
//! caller is waiting for an HTTP answer, and a protocol error is one.

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use baton::api::{CONTENT_TYPE, ControlApi};
use baton::lambda::function_url_body;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

pub(crate) async fn handle(api: &ControlApi, event: LambdaEvent<Value>) -> Value {
    let (payload, context) = event.into_parts();
    let reply = match serde_json::from_value::<LambdaFunctionUrlRequest>(payload) {
        Ok(request) => {
            let target = request.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
            let operation = baton::api::operation_of(target.unwrap_or_default()).to_owned();
            let method = request.request_context.http.method.as_deref().unwrap_or_default();
            // AWS_IAM auth puts the verified caller here; without it the URL is misconfigured.
            let caller = request
                .request_context
                .authorizer
                .as_ref()
                .and_then(|a| a.iam.as_ref())
                .and_then(|iam| iam.user_arn.clone());
            match caller {
                Some(caller) if method == "POST" => {
                    api.call(&operation, &function_url_body(&request), &caller).await
                }
                Some(_) => api.call("", b"", "").await,
                None => {
                    tracing::error!(
                        "request without an IAM caller: the function URL must use AWS_IAM auth"
                    );
                    baton::api::ApiReply::missing_authentication()
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "malformed function URL request");
            api.call("", b"", "").await
        }
    };
    json!({
        "statusCode": reply.status,
        "headers": {"content-type": CONTENT_TYPE, "x-amzn-requestid": context.request_id},
        "body": String::from_utf8_lossy(&reply.body),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use baton_testkit::{LambdaFixture, S3_SOURCED_PIPELINE as PIPELINE, function_url_request};
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::{Value, json};

    use super::*;

    async fn api() -> ControlApi {
        LambdaFixture::new("api").await.aws.control_api()
    }

    /// A call of `operation` through the URL, with `caller` as the IAM principal.
    fn request(operation: &str, body: &str, caller: Option<&str>) -> LambdaEvent<Value> {
        let headers = json!({"x-amz-target": format!("CodePipeline_20150709.{operation}"),
            "content-type": "application/x-amz-json-1.1"});
        LambdaEvent::new(
            function_url_request("POST", "/", headers, body, caller),
            Context::default(),
        )
    }

    fn body(reply: &Value) -> Value {
        serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn operations_run_for_the_iam_caller_and_answer_as_codepipeline_does() {
        let api = api().await;
        let caller = Some("arn:aws:iam::111111111111:user/ana");
        let created = handle(&api, request("CreatePipeline", PIPELINE, caller)).await;
        assert_eq!(created["statusCode"], json!(200), "{created}");
        assert_eq!(created["headers"]["content-type"], json!("application/x-amz-json-1.1"));
        assert_eq!(body(&created)["pipeline"]["version"], json!(1));

        let got = handle(&api, request("GetPipeline", r#"{"name": "web"}"#, caller)).await;
        assert_eq!(
            body(&got)["metadata"]["pipelineArn"],
            json!("arn:aws:codepipeline:us-east-1:111111111111:web")
        );
        let again = handle(&api, request("CreatePipeline", PIPELINE, caller)).await;
        assert_eq!(again["statusCode"], json!(400));
        assert_eq!(body(&again)["__type"], json!("PipelineNameInUseException"));
        let garbled = handle(&api, request("ListPipelines", "{not json", caller)).await;
        assert_eq!(body(&garbled)["__type"], json!("SerializationException"));
    }

    #[tokio::test]
    async fn a_request_without_an_iam_caller_is_refused() {
        let api = api().await;
        let reply = handle(&api, request("ListPipelines", "{}", None)).await;
        assert_eq!(reply["statusCode"], json!(403));
        assert_eq!(body(&reply)["__type"], json!("MissingAuthenticationTokenException"));
    }
}
