//! Decodes a function URL request, runs the operation its `X-Amz-Target` names for the IAM
//! caller the URL authenticated, and answers as CodePipeline does. Never a Lambda error: the
//! caller is waiting for an HTTP answer, and a protocol error is one.

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use baton::api::{CONTENT_TYPE, ControlApi};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

const TARGET_PREFIX: &str = "CodePipeline_20150709.";

pub(crate) async fn handle(api: &ControlApi, event: LambdaEvent<Value>) -> Value {
    let (payload, context) = event.into_parts();
    let reply = match serde_json::from_value::<LambdaFunctionUrlRequest>(payload) {
        Ok(request) => {
            let operation = request
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.strip_prefix(TARGET_PREFIX))
                .unwrap_or_default()
                .to_owned();
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
                    api.call(&operation, &body_bytes(&request), &caller).await
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

fn body_bytes(request: &LambdaFunctionUrlRequest) -> Vec<u8> {
    use base64::Engine as _;
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, Region};
    use baton::adapters::aws::dynamodb_state::create_table;
    use baton::config::Config;
    use baton::lambda::Aws;
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::{Value, json};

    use super::*;

    /// The emulator `make test` starts; these tests are never skipped.
    fn endpoint() -> String {
        std::env::var("BATON_TEST_AWS_ENDPOINT")
            .expect("BATON_TEST_AWS_ENDPOINT is not set: run these tests with `make test`")
    }

    async fn api() -> ControlApi {
        let creds =
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint())
            .credentials_provider(creds)
            .load()
            .await;
        let table = format!(
            "api-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
        let config = Config::from_lookup(|k| match k {
            "BATON_TABLE" => Some(table.clone()),
            "BATON_ARTIFACT_BUCKETS" => Some("us-east-1=artifacts".into()),
            "BATON_ARTIFACT_KEYS" => Some("us-east-1=arn:aws:kms:us-east-1:1:key/k".into()),
            "BATON_ACCOUNT_ID" => Some("111111111111".into()),
            "BATON_BUS" | "BATON_FAILURE_TOPIC" | "BATON_APPROVAL_TOPIC" => Some("x".into()),
            _ => None,
        })
        .unwrap();
        Aws::connect_with(&config, sdk).control_api()
    }

    /// A function URL request as Lambda delivers it, with `caller` as the IAM principal.
    fn request(operation: &str, body: &str, caller: Option<&str>) -> LambdaEvent<Value> {
        let authorizer = caller.map(|arn| {
            json!({"iam": {"userArn": arn, "accessKey": "AKIAEXAMPLE", "accountId": "111111111111",
                "callerId": "AIDAEXAMPLE", "userId": "AIDAEXAMPLE"}})
        });
        let payload = json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "",
            "headers": {"x-amz-target": format!("CodePipeline_20150709.{operation}"),
                "content-type": "application/x-amz-json-1.1"},
            "requestContext": {"accountId": "111111111111", "requestId": "r-1",
                "authorizer": authorizer, "domainName": "abc.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abc", "http": {"method": "POST", "path": "/",
                "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "aws-cli"},
                "time": "24/Nov/2026:16:00:00 +0000", "timeEpoch": 1_795_000_000_000_i64},
            "body": body, "isBase64Encoded": false});
        LambdaEvent::new(payload, Context::default())
    }

    fn body(reply: &Value) -> Value {
        serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
    }

    const PIPELINE: &str = r#"{"pipeline": {"name": "web",
      "roleArn": "arn:aws:iam::111111111111:role/pipeline",
      "artifactStore": {"type": "S3", "location": "artifacts"},
      "stages": [
        {"name": "Source", "actions": [{"name": "Fetch",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
          "configuration": {"S3Bucket": "uploads", "S3ObjectKey": "web.zip"},
          "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Approve", "actions": [{"name": "Gate",
          "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}
      ]}}"#;

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
