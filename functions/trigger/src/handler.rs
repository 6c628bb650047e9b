//! Decodes a source-change event (CodeCommit's "Repository State Change", S3's "Object
//! Created"), a webhook delivery to the function's URL (`/webhooks/<host>`) or the minute's
//! poll of `PollForSourceChanges` sources, starts the pipelines that watch them, maps errors.
//! The URL also takes Lambda functions' job results (a request with `X-Amz-Target`).

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use baton::lambda::{Aws, HandlerError, Invocation, Schedule, function_url_body, settle};
use baton::service::webhooks::{self, Reply};
use baton::service::{ServiceError, SourceChange, Trigger};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tracing::info;

pub(crate) async fn handle(
    trigger: &Trigger,
    aws: &Aws,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let (payload, _context) = event.into_parts();
    let change = match Invocation::decode(&payload) {
        Ok(Invocation::FunctionUrl(request)) => return Ok(webhook(trigger, aws, &request).await),
        Ok(Invocation::Schedule(Schedule::PollSources)) => {
            let started = trigger.poll().await?;
            info!(started = started.len(), "polled sources");
            return Ok(Value::Null);
        }
        Ok(Invocation::Event(e)) => SourceChange::from_event(&e).map_err(ServiceError::Permanent),
        Ok(other) => Err(other.not_for("trigger")),
        Err(e) => Err(ServiceError::Permanent(e)),
    };
    let result = match change {
        Ok(change) => trigger.on_change(&change, payload["id"].as_str()).await.map(|started| {
            info!(started = started.len(), "source change handled");
        }),
        Err(e) => Err(e),
    };
    settle("trigger", result, aws.dead_letters(), &payload).await.map(|()| Value::Null)
}

/// A delivery from a repository host, answered as `baton serve` answers it. Nothing here is a
/// Lambda error: the host waits for the status, and says itself whether it delivers again.
async fn webhook(trigger: &Trigger, aws: &Aws, request: &LambdaFunctionUrlRequest) -> Value {
    let path = request.raw_path.as_deref().unwrap_or_default();
    let method = request.request_context.http.method.as_deref().unwrap_or_default();
    if let (Some(target), "POST") = (request.headers.get("x-amz-target"), method) {
        return job_report(aws, target.to_str().unwrap_or_default(), request).await;
    }
    if (method, path) == ("POST", "/trigger") {
        return reply_json(path, webhook_v1(trigger, aws, request).await);
    }
    let reply = match (method, path.strip_prefix("/webhooks/")) {
        ("POST", Some(host)) => match aws.webhook_secrets().await {
            Ok(secrets) => {
                let secret = |host: webhooks::Host| {
                    secrets.get(&host).cloned().ok_or_else(|| {
                        format!("webhooks from {} are not accepted here: add its secret to the stack's WebhookSecrets", host.name())
                    })
                };
                let headers = headers_of(request);
                let body = function_url_body(request);
                webhooks::answer(trigger, host, secret, &headers, &body).await
            }
            Err(why) => Reply { status: 503, body: json!({ "message": why }) },
        },
        _ => Reply {
            status: 404,
            body: json!({"message": "deliveries are POSTed to /webhooks/github, /webhooks/gitlab or /webhooks/bitbucket"}),
        },
    };
    reply_json(path, reply)
}

/// A delivery to one of CodePipeline's webhooks (`PutWebhook`, GitHub v1 sources), found by
/// the token in its URL.
async fn webhook_v1(trigger: &Trigger, aws: &Aws, request: &LambdaFunctionUrlRequest) -> Reply {
    let token = request.query_string_parameters.get("t").map_or("", String::as_str);
    let source_ip =
        request.request_context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    let body = function_url_body(request);
    aws.webhooks().deliver(trigger, token, &headers_of(request), &body, source_ip).await
}

/// A Lambda function's result for its job, sent with stock SDK code (`AWS_ENDPOINT_URL_CODEPIPELINE`
/// set to this URL): taken by the job's id, as the API's `job_report` explains.
async fn job_report(aws: &Aws, target: &str, request: &LambdaFunctionUrlRequest) -> Value {
    let reply = aws.control_api().job_report(target, &function_url_body(request)).await;
    info!(target, status = reply.status, "job report answered");
    json!({
        "statusCode": reply.status,
        "headers": {"content-type": baton::api::CONTENT_TYPE},
        "body": String::from_utf8_lossy(&reply.body),
        "isBase64Encoded": false,
    })
}

fn headers_of(request: &LambdaFunctionUrlRequest) -> Vec<(String, String)> {
    request
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

fn reply_json(path: &str, reply: Reply) -> Value {
    info!(path, status = reply.status, "webhook delivery answered");
    json!({
        "statusCode": reply.status,
        "headers": {"content-type": "application/json"},
        "body": reply.body.to_string(),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use baton_testkit::{LambdaFixture, S3_SOURCED_PIPELINE as PIPELINE, function_url_request};
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    fn upload(id: &str, key: &str) -> LambdaEvent<Value> {
        let payload = json!({"version": "0", "id": id, "source": "aws.s3",
            "detail-type": "Object Created", "account": "111111111111", "region": "us-east-1",
            "resources": ["arn:aws:s3:::uploads"],
            "detail": {"bucket": {"name": "uploads"}, "object": {"key": key, "version-id": "v1"}}});
        LambdaEvent::new(payload, Context::default())
    }

    #[tokio::test]
    async fn an_upload_starts_the_watching_pipeline_once_however_often_it_is_delivered() {
        let f = LambdaFixture::new("trigger").await;
        let created = f.aws.control_api().call("CreatePipeline", PIPELINE.as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        let trigger = f.aws.trigger();
        for _ in 0..2 {
            handle(&trigger, &f.aws, upload("event-1", "web.zip")).await.unwrap();
        }
        handle(&trigger, &f.aws, upload("event-2", "other.zip")).await.unwrap();
        // The start is applied at once: its public events are saved for the relay, once.
        let saved = f.saved_events("web").await;
        let starts: Vec<_> = saved
            .iter()
            .filter(|e| e.detail_type == "CodePipeline Pipeline Execution State Change")
            .collect();
        assert_eq!(starts.len(), 1, "one execution however often it is delivered: {saved:?}");
        assert_eq!(starts[0].detail["state"], json!("STARTED"));
        assert_eq!(starts[0].detail["pipeline"], json!("web"));
        let listed = f
            .aws
            .control_api()
            .call("ListPipelineExecutions", br#"{"pipelineName": "web"}"#, "t")
            .await;
        let summaries = listed.json()["pipelineExecutionSummaries"].clone();
        assert_eq!(summaries.as_array().map(Vec::len), Some(1), "{summaries}");
        assert_eq!(summaries[0]["pipelineExecutionId"], starts[0].detail["execution-id"]);
    }

    /// As the API refuses to start it: nothing runs half-way.
    #[tokio::test]
    async fn an_upload_does_not_start_a_pipeline_aws_cannot_run() {
        let f = LambdaFixture::new("trigger").await;
        let mut pipeline: Value = serde_json::from_str(PIPELINE).unwrap();
        pipeline["pipeline"]["stages"].as_array_mut().unwrap().push(json!({"name": "Deploy",
            "actions": [{"name": "Ship",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ServiceCatalog", "version": "1"},
                "configuration": {"ProductId": "prod-1"},
                "inputArtifacts": [{"name": "Code"}]}]}));
        let created =
            f.aws.control_api().call("CreatePipeline", pipeline.to_string().as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        let trigger = f.aws.trigger();
        handle(&trigger, &f.aws, upload("event-1", "web.zip")).await.unwrap();
        let listed = f
            .aws
            .control_api()
            .call("ListPipelineExecutions", br#"{"pipelineName": "web"}"#, "t")
            .await;
        assert_eq!(listed.json()["pipelineExecutionSummaries"], json!([]), "nothing ran half-way");
    }

    #[tokio::test]
    async fn an_event_that_is_no_source_change_is_dead_lettered() {
        let f = LambdaFixture::new("trigger").await;
        let payload = json!({"source": "aws.codecommit",
            "detail-type": "CodeCommit Repository State Change",
            "detail": {"referenceType": "tag", "repositoryName": "app", "referenceName": "v1"}});
        let trigger = f.aws.trigger();
        let result = handle(&trigger, &f.aws, LambdaEvent::new(payload, Context::default())).await;
        assert!(result.is_ok(), "a bad event must not be retried");
        let kept = f.received(&f.dead_letters, 1).await;
        assert_eq!(kept[0]["reason"], json!("the change is not to a branch"));
    }

    const CONNECTION_PIPELINE: &str = r#"{"pipeline": {
      "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
      "artifactStore": {"type": "S3", "location": "artifacts"},
      "triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Checkout", "push": [{"branches": {"includes": ["main"]}}]}}],
      "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
          "configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/c",
            "FullRepositoryId": "octo/app", "BranchName": "main"},
          "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [{"name": "Compile",
          "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
          "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Src"}]}]}]}}"#;

    const COMMIT: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

    /// A GitHub push delivery (as GitHub's documentation shapes one) to `branch`, signed with
    /// `secret`, as a request to the function's URL.
    fn github_push(delivery: &str, branch: &str, secret: &str) -> LambdaEvent<Value> {
        use hmac::{Hmac, Mac};
        let body = json!({"ref": format!("refs/heads/{branch}"), "after": COMMIT,
            "repository": {"full_name": "octo/app"},
            "commits": [{"added": [], "modified": ["src/main.rs"], "removed": []}]})
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let headers = json!({"content-type": "application/json", "x-github-event": "push",
            "x-github-delivery": delivery,
            "x-hub-signature-256": format!("sha256={}", hex::encode(mac.finalize().into_bytes()))});
        let request = function_url_request("POST", "/webhooks/github", headers, &body, None);
        LambdaEvent::new(request, Context::default())
    }

    async fn webhook_fixture() -> LambdaFixture {
        let secret = format!("webhooks-{}", std::process::id());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let secret = format!("{secret}-{}", nanos.as_nanos());
        LambdaFixture::put_secret(&secret, r#"{"github_secret": "s3cret"}"#).await;
        let env = [("BATON_WEBHOOK_SECRETS", secret.as_str()), ("BATON_COMMANDS_PROJECT", "b")];
        let f = LambdaFixture::with_env("webhook", &env).await;
        let created =
            f.aws.control_api().call("CreatePipeline", CONNECTION_PIPELINE.as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        f
    }

    /// The control API's answer to `operation` with `input`.
    async fn api(f: &LambdaFixture, operation: &str, input: Value) -> Value {
        f.aws.control_api().call(operation, input.to_string().as_bytes(), "t").await.json()
    }

    fn reply_body(reply: &Value) -> Value {
        serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_signed_push_delivery_starts_the_pipeline_on_its_commit_once() {
        let f = webhook_fixture().await;
        let trigger = f.aws.trigger();

        let first = handle(&trigger, &f.aws, github_push("d-1", "main", "s3cret")).await.unwrap();
        assert_eq!(first["statusCode"], json!(202), "{first}");
        let started = reply_body(&first)["started"].clone();
        assert_eq!(started[0]["pipelineName"], json!("app"), "{started}");
        // GitHub delivers again with the same id: the same execution, not another.
        let again = handle(&trigger, &f.aws, github_push("d-1", "main", "s3cret")).await.unwrap();
        assert_eq!(reply_body(&again)["started"], started);

        let id = &started[0]["pipelineExecutionId"];
        let execution = api(
            &f,
            "GetPipelineExecution",
            json!({"pipelineName": "app",
            "pipelineExecutionId": id}),
        )
        .await;
        let execution = &execution["pipelineExecution"];
        assert_eq!(execution["trigger"]["triggerType"], json!("WebhookV2"), "{execution}");
        let listed = api(&f, "ListPipelineExecutions", json!({"pipelineName": "app"})).await;
        assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(1));
    }

    #[tokio::test]
    async fn a_bad_signature_another_branch_or_host_and_a_wrong_path_start_nothing() {
        let f = webhook_fixture().await;
        let trigger = f.aws.trigger();

        let forged = handle(&trigger, &f.aws, github_push("d-2", "main", "guess")).await.unwrap();
        assert_eq!(forged["statusCode"], json!(401), "{forged}");
        let other = handle(&trigger, &f.aws, github_push("d-3", "dev", "s3cret")).await.unwrap();
        assert_eq!(other["statusCode"], json!(202));
        assert_eq!(reply_body(&other)["started"], json!([]), "the trigger takes main only");

        let gitlab = function_url_request("POST", "/webhooks/gitlab", json!({}), "{}", None);
        let gitlab = handle(&trigger, &f.aws, LambdaEvent::new(gitlab, Context::default()));
        let gitlab = gitlab.await.unwrap();
        assert_eq!(gitlab["statusCode"], json!(403));
        assert!(reply_body(&gitlab)["message"].as_str().unwrap().contains("WebhookSecrets"));
        let lost = function_url_request("GET", "/", json!({}), "", None);
        let lost = handle(&trigger, &f.aws, LambdaEvent::new(lost, Context::default()));
        assert_eq!(lost.await.unwrap()["statusCode"], json!(404));

        let listed = api(&f, "ListPipelineExecutions", json!({"pipelineName": "app"})).await;
        assert_eq!(listed["pipelineExecutionSummaries"], json!([]), "nothing started");
        let arrived = f.nothing_in(&[&f.dead_letters]).await;
        assert!(arrived.is_empty(), "a delivery is answered, never dead-lettered: {arrived:?}");
    }

    #[tokio::test]
    async fn the_minutes_poll_starts_a_polled_source_once_per_new_revision() {
        let f = LambdaFixture::new("poll").await;
        let bucket = format!("polled-{}", std::process::id());
        let pipeline = PIPELINE
            .replace(
                "\"S3ObjectKey\": \"web.zip\"",
                "\"S3ObjectKey\": \"web.zip\", \"PollForSourceChanges\": \"true\"",
            )
            .replace("\"uploads\"", &format!("\"{bucket}\""))
            // A role of the emulator's own account, so the poll reads the bucket made here.
            .replace("111111111111:role/pipeline", "123456789012:role/pipeline");
        let created = f.aws.control_api().call("CreatePipeline", pipeline.as_bytes(), "t").await;
        assert_eq!(created.status, 200, "{}", created.json());
        let s3 = LambdaFixture::s3().await;
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                baton_testkit::s3_types::VersioningConfiguration::builder()
                    .status(baton_testkit::s3_types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let poll = || LambdaEvent::new(json!({"schedule": "PollSources"}), Context::default());
        let trigger = f.aws.trigger();
        let executions = |f: &LambdaFixture| {
            let api = f.aws.control_api();
            async move {
                let listed =
                    api.call("ListPipelineExecutions", br#"{"pipelineName": "web"}"#, "t").await;
                listed.json()["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default()
            }
        };

        handle(&trigger, &f.aws, poll()).await.unwrap();
        assert!(executions(&f).await.is_empty(), "nothing to fetch yet");
        let put = s3.put_object().bucket(&bucket).key("web.zip").body(b"v1".to_vec().into());
        put.send().await.unwrap();
        handle(&trigger, &f.aws, poll()).await.unwrap();
        handle(&trigger, &f.aws, poll()).await.unwrap();
        let listed = executions(&f).await;
        assert_eq!(listed.len(), 1, "one start for one revision: {listed:?}");
        assert_eq!(listed[0]["trigger"]["triggerType"], json!("PollForSourceChanges"));
    }

    /// CodePipeline's own webhooks on AWS: PutWebhook through the API keeps it in the table
    /// with a URL on the trigger's; a delivery to that URL, signed with its SecretToken and
    /// passing its filter, starts the pipeline once; one that fails the filter or the
    /// signature starts nothing. A GitHub (v1) pipeline starts too.
    #[tokio::test]
    async fn codepipeline_webhooks_are_kept_in_the_table_and_delivered_to_the_trigger() {
        use hmac::{Hmac, Mac};
        let env = [("BATON_WEBHOOK_URL", "https://trigger.lambda-url.us-east-1.on.aws/")];
        let f = LambdaFixture::with_env("hookv1", &env).await;
        let legacy = json!({"pipeline": {"name": "legacy",
            "roleArn": "arn:aws:iam::111111111111:role/pipeline",
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
              {"name": "Source", "actions": [{"name": "Checkout",
                "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                "configuration": {"Owner": "octo", "Repo": "app", "Branch": "main", "OAuthToken": "****"},
                "outputArtifacts": [{"name": "Src"}]}]},
              {"name": "Build", "actions": [{"name": "Compile",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Src"}]}]}]}});
        for declaration in [legacy, serde_json::from_str(PIPELINE).unwrap()] {
            let created = api(&f, "CreatePipeline", declaration).await;
            assert!(created["pipeline"].is_object(), "{created}");
        }
        let hook = |name: &str, pipeline: &str, action: &str| {
            json!({"webhook": {"name": name, "targetPipeline": pipeline, "targetAction": action,
                "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
                "authentication": "GITHUB_HMAC",
                "authenticationConfiguration": {"SecretToken": "s3cret"}}})
        };
        let token_of = |put: &Value| {
            put["webhook"]["url"]
                .as_str()
                .and_then(|u| {
                    u.strip_prefix("https://trigger.lambda-url.us-east-1.on.aws/trigger?t=")
                })
                .and_then(|t| t.strip_suffix("&v=1"))
                .unwrap_or_else(|| panic!("a URL on the trigger's: {put}"))
                .to_owned()
        };
        let web = hook("web-hook", "web", "Fetch");
        let token = token_of(&api(&f, "PutWebhook", web.clone()).await);
        let legacy_token =
            token_of(&api(&f, "PutWebhook", hook("legacy-hook", "legacy", "Checkout")).await);
        let listed = api(&f, "ListWebhooks", json!({})).await;
        assert_eq!(listed["webhooks"][1]["definition"], web["webhook"], "{listed}");

        let delivery = |token: &str, id: &str, branch: &str, secret: &str| {
            let body = json!({"ref": format!("refs/heads/{branch}"), "after": COMMIT,
                "repository": {"name": "app"}})
            .to_string();
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            let headers = json!({"content-type": "application/json", "x-github-event": "push",
                "x-github-delivery": id,
                "x-hub-signature-256": format!("sha256={}", hex::encode(mac.finalize().into_bytes()))});
            let mut request = function_url_request("POST", "/trigger", headers, &body, None);
            request["rawQueryString"] = json!(format!("t={token}&v=1"));
            request["queryStringParameters"] = json!({"t": token, "v": "1"});
            LambdaEvent::new(request, Context::default())
        };
        let trigger = f.aws.trigger();
        let deliver = |token: &str, id: &str, branch: &str, secret: &str| {
            handle(&trigger, &f.aws, delivery(token, id, branch, secret))
        };
        let first = deliver(&token, "g-1", "main", "s3cret").await.unwrap();
        assert_eq!(first["statusCode"], json!(202), "{first}");
        let id = reply_body(&first)["pipelineExecutionId"].clone();
        let again = deliver(&token, "g-1", "main", "s3cret").await.unwrap();
        assert_eq!(
            reply_body(&again)["pipelineExecutionId"],
            id,
            "a redelivery starts nothing new"
        );
        let other = deliver(&token, "g-2", "dev", "s3cret").await.unwrap();
        assert_eq!(other["statusCode"], json!(200), "{other}");
        let forged = deliver(&token, "g-3", "main", "guess").await.unwrap();
        assert_eq!(forged["statusCode"], json!(401), "{forged}");
        let execution = api(
            &f,
            "GetPipelineExecution",
            json!({"pipelineName": "web", "pipelineExecutionId": id}),
        )
        .await;
        assert_eq!(execution["pipelineExecution"]["trigger"]["triggerType"], json!("Webhook"));
        let listed = api(&f, "ListPipelineExecutions", json!({"pipelineName": "web"})).await;
        assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(1));
        // A GitHub (v1) pipeline starts on the pushed commit, which its source then fetches.
        let legacy = deliver(&legacy_token, "g-4", "main", "s3cret").await.unwrap();
        assert_eq!(legacy["statusCode"], json!(202), "{legacy}");
        let started = api(
            &f,
            "GetPipelineExecution",
            json!({"pipelineName": "legacy",
                "pipelineExecutionId": reply_body(&legacy)["pipelineExecutionId"]}),
        )
        .await;
        assert_eq!(started["pipelineExecution"]["trigger"]["triggerType"], json!("Webhook"));

        for name in ["web-hook", "legacy-hook"] {
            assert_eq!(api(&f, "DeleteWebhook", json!({ "name": name })).await, json!({}));
        }
        assert_eq!(api(&f, "ListWebhooks", json!({})).await["webhooks"], json!([]));
        let gone = deliver(&token, "g-5", "main", "s3cret").await.unwrap();
        assert_eq!(gone["statusCode"], json!(404), "{gone}");
    }

    /// A function's result for the job handed to it, sent as stock SDK code sends it (signed
    /// for `codepipeline` with the function's own keys, which nobody but AWS can check), is
    /// taken by the job's id; nothing else is answered on the open URL.
    #[tokio::test]
    async fn a_functions_job_result_is_taken_by_its_job_id_alone() {
        use baton::ports::job_queue::{ActionType, JobStatus, QueuedJob};
        use baton::ports::state::Versioned;
        let f = LambdaFixture::new("trigger").await;
        let queue = f.aws.job_queue();
        let job = |id: &str, handed_over: bool| QueuedJob {
            id: id.into(),
            action_type: ActionType {
                category: "Invoke".into(),
                owner: if handed_over { "AWS" } else { "Custom" }.into(),
                provider: "Lambda".into(),
                version: "1".into(),
            },
            status: if handed_over { JobStatus::InProgress } else { JobStatus::Queued },
            nonce: None,
            data: json!({}),
            query: Default::default(),
            report: None,
            created: 0,
            waiting: format!("Lambda#{id}"),
            grant: id.into(),
            handed_over,
        };
        let handed = "11111111-2222-4333-8444-555555555555";
        let polled = "66666666-7777-4888-9999-000000000000";
        for j in [job(handed, true), job(polled, false)] {
            queue.put_job(&Versioned { version: 0, value: j }).await.unwrap();
        }
        let trigger = f.aws.trigger();
        let report = |operation: &str, body: Value| {
            let headers = json!({
                "x-amz-target": format!("CodePipeline_20150709.{operation}"),
                "authorization": "AWS4-HMAC-SHA256 Credential=ASIAFUNCTION/20261206/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000",
            });
            let request = function_url_request("POST", "/", headers, &body.to_string(), None);
            handle(&trigger, &f.aws, LambdaEvent::new(request, Context::default()))
        };
        let code = |reply: &Value| reply_body(reply)["__type"].as_str().unwrap_or("").to_owned();

        let done = json!({"jobId": handed, "outputVariables": {"Checked": "yes"}});
        let taken = report("PutJobSuccessResult", done.clone()).await.unwrap();
        assert_eq!(taken["statusCode"], json!(200), "{taken}");
        let kept = queue.job(handed).await.unwrap().unwrap().value;
        assert_eq!(kept.status, JobStatus::Succeeded);
        // Once reported, the id opens nothing any more.
        let again = report("PutJobSuccessResult", done).await.unwrap();
        assert!(code(&again).ends_with("JobNotFoundException"), "{again}");
        // A job workers poll for is the API's, behind IAM.
        let failure =
            json!({"jobId": polled, "failureDetails": {"type": "JobFailed", "message": "x"}});
        let refused = report("PutJobFailureResult", failure).await.unwrap();
        assert!(code(&refused).ends_with("JobNotFoundException"), "{refused}");
        assert_eq!(queue.job(polled).await.unwrap().unwrap().value.status, JobStatus::Queued);
        // No other operation is answered here.
        for operation in ["GetJobDetails", "CreatePipeline", "PollForJobs"] {
            let other = report(operation, json!({"jobId": handed})).await.unwrap();
            assert!(code(&other).ends_with("AccessDeniedException"), "{operation}: {other}");
        }
        let garbled = report("PutJobSuccessResult", json!(["not", "a", "report"])).await.unwrap();
        assert_eq!(garbled["statusCode"], json!(400), "{garbled}");
        let arrived = f.nothing_in(&[&f.dead_letters]).await;
        assert!(arrived.is_empty(), "a report is answered, never dead-lettered: {arrived:?}");
    }
}
