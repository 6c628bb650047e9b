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
    async fn a_pipeline_whose_role_the_worker_cannot_assume_is_refused_as_codepipeline_refuses_it()
    {
        let worker = "arn:aws:iam::111111111111:role/baton-worker";
        let fixture = LambdaFixture::with_env(
            "api",
            &[("BATON_WORKER_ROLE_ARN", worker), ("BATON_PIPELINE_ROLE_PATTERN", "pipeline-*")],
        )
        .await;
        let api = fixture.aws.control_api();
        let caller = Some("arn:aws:iam::111111111111:user/ana");
        let suffix = std::process::id();
        let trust = |principal: Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": principal, "Action": "sts:AssumeRole"}]})
        };
        let trusted = fixture
            .create_role(&format!("pipeline-ok-{suffix}"), &trust(json!({"AWS": worker})))
            .await;
        let codepipeline_only = json!({"Service": "codepipeline.amazonaws.com"});
        let untrusted =
            fixture.create_role(&format!("pipeline-cp-{suffix}"), &trust(codepipeline_only)).await;
        let with_role =
            |role: &str| PIPELINE.replace("arn:aws:iam::111111111111:role/pipeline", role);

        let created = handle(&api, request("CreatePipeline", &with_role(&trusted), caller)).await;
        assert_eq!(created["statusCode"], json!(200), "{created}");
        let refusals = [
            (
                untrusted.clone(),
                format!(
                    "Its trust policy does not let the action worker's role, {worker}, assume it"
                ),
            ),
            (
                format!("arn:aws:iam::111111111111:role/pipeline-gone-{suffix}"),
                "The role does not exist.".into(),
            ),
            (
                "arn:aws:iam::111111111111:role/other".into(),
                "does not match the deployment's PipelineRoleNamePattern, pipeline-*".into(),
            ),
            (
                "arn:aws:iam::222222222222:role/pipeline-x".into(),
                "in its own account, 111111111111, only".into(),
            ),
        ];
        for (role, why) in refusals {
            for operation in ["CreatePipeline", "UpdatePipeline"] {
                // A create under a new name, so only the role can be wrong.
                let mut declaration = with_role(&role);
                if operation == "CreatePipeline" {
                    declaration = declaration.replacen(r#""name": "web""#, r#""name": "web2""#, 1);
                }
                let reply = handle(&api, request(operation, &declaration, caller)).await;
                assert_eq!(reply["statusCode"], json!(400), "{operation} {role}: {reply}");
                let error = body(&reply);
                assert_eq!(error["__type"], json!("InvalidStructureException"));
                let message = error["message"].as_str().unwrap();
                let codepipelines = format!(
                    "CodePipeline is not authorized to perform AssumeRole on role {role}. "
                );
                assert!(message.starts_with(&codepipelines), "{message}");
                assert!(message.contains(&why), "{message}");
            }
        }
        // Nor is a pipeline without a role, which CodePipeline requires: the worker would have
        // nothing to run its actions as.
        let roleless: Value = serde_json::from_str(&with_role(&trusted)).unwrap();
        let mut roleless = roleless;
        roleless["pipeline"].as_object_mut().unwrap().remove("roleArn");
        for operation in ["CreatePipeline", "UpdatePipeline"] {
            let reply = handle(&api, request(operation, &roleless.to_string(), caller)).await;
            assert_eq!(reply["statusCode"], json!(400), "{operation}: {reply}");
            assert_eq!(body(&reply)["__type"], json!("ValidationException"));
            assert!(body(&reply)["message"].as_str().unwrap().contains("'pipeline.roleArn'"));
        }
        // The refused updates changed nothing.
        let got = handle(&api, request("GetPipeline", r#"{"name": "web"}"#, caller)).await;
        assert_eq!(body(&got)["pipeline"]["roleArn"], json!(trusted));
        assert_eq!(body(&got)["pipeline"]["version"], json!(1));
    }

    #[tokio::test]
    async fn a_request_without_an_iam_caller_is_refused() {
        let api = api().await;
        let reply = handle(&api, request("ListPipelines", "{}", None)).await;
        assert_eq!(reply["statusCode"], json!(403));
        assert_eq!(body(&reply)["__type"], json!("MissingAuthenticationTokenException"));
    }
}
