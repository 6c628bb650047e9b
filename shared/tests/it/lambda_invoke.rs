//! `AWS/Invoke/Lambda` on the embedded runtime with `[aws]`: the AWS SDK invokes the function
//! through Lambda's own `Invoke` protocol on a loopback endpoint that plays the Lambda service,
//! and the test plays the function, as its code would: it reads the `CodePipeline.job` event,
//! uses the job's artifacts, and reports through CodePipeline's job protocol.

use std::sync::Arc;

use baton::api::Credentials as ApiCredentials;
use baton::api::s3_objects;
use baton::ports::job_artifacts::GrantedObjects;
use baton_core::engine::{Execution, ExecutionStatus};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::embedded::{Running, start_runtime_on_aws, wait_for};

const ACCESS_KEY: &str = "baton";
const SECRET_KEY: &str = "baton-local-secret";

const PIPELINE: &str = r##"{"pipeline": {
  "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Invoke", "actions": [{"name": "Fn", "namespace": "Fn",
      "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
      "configuration": {"FunctionName": "deployer", "UserParameters": "{\"env\":\"prod\"}"},
      "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Made"}]}]},
    {"name": "Check", "actions": [{"name": "Check",
      "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
      "commands": ["grep -q buildspec.yml made.txt", "test \"$RESULT\" = ok"],
      "environmentVariables": [{"name": "RESULT", "value": "#{Fn.Result}"}],
      "inputArtifacts": [{"name": "Made"}]}]}
  ]}}"##;

/// One `Invoke` the endpoint received, and how its function process ended.
struct Invocation {
    path: String,
    invocation_type: String,
    event: Value,
    function_output: String,
    function_ok: bool,
}

/// One HTTP/1.1 request read from `stream`: method, target, headers, body; `None` at the end.
pub(crate) async fn read_request<R: tokio::io::AsyncBufRead + Unpin, W: AsyncWriteExt + Unpin>(
    stream: &mut R,
    writer: &mut W,
) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.ok()?;
    }
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((method, target, headers, body))
}

pub(crate) fn response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers.iter().filter(|(n, _)| n != "content-length") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Baton's control API and its job artifacts (S3's protocol) over HTTP on loopback, as
/// `baton serve` answers them, for the function process to call.
async fn serve_api(rt: Arc<baton::embedded::Embedded>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let credentials = ApiCredentials::from([(ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())]);
    let api = Arc::new(rt.control_api("us-east-1", credentials));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (api, rt) = (api.clone(), rt.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some((method, target, headers, body)) =
                    read_request(&mut read, &mut write).await
                {
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let reply = if path.starts_with("/baton-artifacts/") {
                        let request = s3_objects::ObjectRequest {
                            method: &method,
                            path,
                            query,
                            headers: &headers,
                            body: &body,
                        };
                        let now =
                            baton::ports::clock::Clock::now(&baton::ports::clock::SystemClock);
                        let r = s3_objects::serve(rt.granted.as_ref(), "us-east-1", &request, now);
                        response(r.status, &r.headers, &r.body)
                    } else {
                        let request = baton::api::ApiRequest {
                            method: &method,
                            path,
                            query,
                            headers: &headers,
                            body: &body,
                        };
                        let r = api.handle(&request).await;
                        let json =
                            [("content-type".to_owned(), baton::api::CONTENT_TYPE.to_owned())];
                        response(r.status, &json, &r.body)
                    };
                    if write.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn python() -> std::path::PathBuf {
    std::env::var_os("BATON_TEST_PYTHON").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/emu/venv/bin/python")
        },
        std::path::PathBuf::from,
    )
}

/// A loopback endpoint answering Lambda's `Invoke` as the service does for asynchronous calls
/// (202, then the function runs: here `lambda_function.py` as its own process, against
/// `api_url`), and `ResourceNotFoundException` for the function `missing`.
async fn lambda_service(
    api_url: Arc<std::sync::OnceLock<String>>,
) -> (String, mpsc::UnboundedReceiver<Invocation>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tx, api_url) = (tx.clone(), api_url.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some((_, path, headers, body)) = read_request(&mut read, &mut write).await
                {
                    if path.contains("/functions/missing/") {
                        let body = br#"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:111111111111:function:missing"}"#;
                        let h = [(
                            "x-amzn-errortype".to_owned(),
                            "ResourceNotFoundException".to_owned(),
                        )];
                        let _ = write.write_all(&response(404, &h, body)).await;
                        continue;
                    }
                    let _ = write.write_all(&response(202, &[], b"")).await;
                    let invocation_type = headers
                        .iter()
                        .find(|(n, _)| n == "x-amz-invocation-type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let tx = tx.clone();
                    let api_url = api_url.get().cloned().unwrap_or_default();
                    tokio::spawn(async move {
                        let file = tempfile::NamedTempFile::new().unwrap();
                        std::fs::write(file.path(), &body).unwrap();
                        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("tests/it/lambda_function.py");
                        let out = tokio::process::Command::new(python())
                            .arg(script)
                            .arg(file.path())
                            .arg(&api_url)
                            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                            .env("AWS_DEFAULT_REGION", "us-east-1")
                            .env("AWS_CONFIG_FILE", "/nonexistent")
                            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                            .env("AWS_EC2_METADATA_DISABLED", "true")
                            .env_remove("AWS_PROFILE")
                            .env_remove("AWS_SESSION_TOKEN")
                            .env_remove("AWS_ENDPOINT_URL")
                            .output()
                            .await
                            .unwrap();
                        let function_output = format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                        let _ = tx.send(Invocation {
                            path,
                            invocation_type,
                            event,
                            function_output,
                            function_ok: out.status.success(),
                        });
                    });
                }
            });
        }
    });
    (url, rx)
}

async fn next_invocation(rx: &mut mpsc::UnboundedReceiver<Invocation>) -> Invocation {
    let invocation = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("the function was never invoked")
        .unwrap();
    assert!(invocation.function_ok, "the function failed:\n{}", invocation.function_output);
    invocation
}

/// The embedded runtime with `[aws]` on a Lambda endpoint whose functions call back the
/// runtime's own API; the API is served once the runtime exists, and the endpoint reads its
/// address at each invocation.
async fn runtime_with_lambda(pipeline: &str) -> (Running, mpsc::UnboundedReceiver<Invocation>) {
    let api_url = Arc::new(std::sync::OnceLock::new());
    let (url, rx) = lambda_service(api_url.clone()).await;
    let running = start_runtime_on_aws(&url, pipeline).await;
    let _ = api_url.set(serve_api(running.rt.clone()).await);
    (running, rx)
}

async fn started(rt: &baton::embedded::Embedded) -> String {
    let api = rt.control_api("us-east-1", ApiCredentials::new());
    let reply =
        api.call("StartPipelineExecution", br#"{"name":"app"}"#, "arn:aws:iam::1:user/t").await;
    reply.json()["pipelineExecutionId"].as_str().unwrap().to_owned()
}

fn fn_error(e: &Execution) -> Option<String> {
    e.stages[1].actions[0].error.as_ref().map(|err| err.message.clone())
}

#[tokio::test]
async fn a_lambda_action_runs_its_function_which_reports_through_the_job_protocol() {
    let (running, mut invocations) = runtime_with_lambda(PIPELINE).await;
    let rt = &running.rt;
    let first = started(rt).await;

    // Invoked asynchronously with CodePipeline's job event; the function asks to go on...
    let invoked = next_invocation(&mut invocations).await;
    assert_eq!(invoked.path, "/2015-03-31/functions/deployer/invocations");
    assert_eq!(invoked.invocation_type, "Event");
    let job = &invoked.event["CodePipeline.job"];
    let data = &job["data"];
    assert_eq!(
        data["actionConfiguration"]["configuration"],
        json!({"FunctionName": "deployer", "UserParameters": "{\"env\":\"prod\"}"})
    );
    assert_eq!(job["accountId"], "000000000000");
    assert!(data["inputArtifacts"][0]["revision"].is_string(), "{data}");
    assert!(data.get("continuationToken").is_none());

    // ...and is invoked again with its token and the same artifacts, reads its input, writes
    // its output and ends the action with output variables a later action reads.
    let again = next_invocation(&mut invocations).await;
    let job2 = &again.event["CodePipeline.job"];
    assert_ne!(job2["id"], job["id"]);
    assert_eq!(job2["data"]["continuationToken"], "deploying");
    assert_eq!(job2["data"]["outputArtifacts"], data["outputArtifacts"]);
    let done = wait_for(rt, &first, "ended", |e| e.status() != ExecutionStatus::InProgress).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{done:#?}");
    assert_eq!(done.outputs["Fn"]["Result"], "ok");
    assert_eq!(done.outputs["Fn"]["Params"], "{\"env\":\"prod\"}");

    // The job's credentials end with it.
    let key = job2["data"]["artifactCredentials"]["accessKeyId"].as_str().unwrap();
    let (bucket, input) = place(&data["inputArtifacts"][0]);
    assert!(rt.granted.readable(key, &bucket, &input).is_err(), "credentials outlived the job");
    let api = rt.control_api("us-east-1", ApiCredentials::new());
    let late = api
        .call("PutJobSuccessResult", json!({"jobId": job2["id"]}).to_string().as_bytes(), "t")
        .await;
    assert_eq!(
        (late.status, late.json()["__type"].as_str()),
        (400, Some("InvalidJobStateException"))
    );
}

#[tokio::test]
async fn a_function_that_reports_failure_fails_the_action_with_its_message() {
    let pipeline = PIPELINE
        .replace(r#""UserParameters": "{\"env\":\"prod\"}""#, r#""UserParameters": "fail""#);
    assert_ne!(pipeline, PIPELINE);
    let (running, mut invocations) = runtime_with_lambda(&pipeline).await;
    let rt = &running.rt;
    let id = started(rt).await;
    next_invocation(&mut invocations).await;
    let failed = wait_for(rt, &id, "ended", |e| e.status() != ExecutionStatus::InProgress).await;
    assert_eq!(failed.status(), ExecutionStatus::Failed);
    assert_eq!(fn_error(&failed).as_deref(), Some("the canary died"));
}

#[tokio::test]
async fn a_function_lambda_does_not_know_fails_the_action_with_lambdas_words() {
    let (running, _invocations) =
        runtime_with_lambda(&PIPELINE.replace("\"deployer\"", "\"missing\"")).await;
    let rt = &running.rt;
    let id = started(rt).await;
    let failed = wait_for(rt, &id, "failed", |e| e.status() != ExecutionStatus::InProgress).await;
    let message = fn_error(&failed).unwrap_or_default();
    assert!(
        message.contains("ResourceNotFoundException") && message.contains("missing"),
        "{message}"
    );
}

fn place(artifact: &Value) -> (String, String) {
    let s3 = &artifact["location"]["s3Location"];
    (s3["bucketName"].as_str().unwrap().into(), s3["objectKey"].as_str().unwrap().into())
}
