//! `AWS/Invoke/Lambda` on the embedded runtime with `[aws]`: the AWS SDK invokes the function
//! through Lambda's own `Invoke` protocol on a loopback endpoint that plays the Lambda service,
//! and the test plays the function, as its code would: it reads the `CodePipeline.job` event,
//! uses the job's artifacts, and reports through CodePipeline's job protocol.

use std::io::Write;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use baton::api::Credentials as ApiCredentials;
use baton::embedded::EmbeddedConfig;
use baton::ports::job_artifacts::GrantedObjects;
use baton_core::engine::{Execution, ExecutionStatus};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::embedded::{home_with_repo, start_runtime_for, wait_for};

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
      "commands": ["test \"$(cat made.txt)\" = made", "test \"$RESULT\" = ok"],
      "environmentVariables": [{"name": "RESULT", "value": "#{Fn.Result}"}],
      "inputArtifacts": [{"name": "Made"}]}]}
  ]}}"##;

/// One `Invoke` the endpoint received.
struct Invocation {
    path: String,
    invocation_type: String,
    event: Value,
}

/// A loopback endpoint answering Lambda's `Invoke` as the service does for asynchronous calls
/// (202), and `ResourceNotFoundException` for the function `missing`.
async fn lambda_service() -> (String, mpsc::UnboundedReceiver<Invocation>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let (mut length, mut invocation_type) = (0, String::new());
                    loop {
                        let mut h = String::new();
                        stream.read_line(&mut h).await.unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (name, value) = h.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "x-amz-invocation-type" => invocation_type = value.trim().to_owned(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).await.unwrap();
                    let reply = if path.contains("/functions/missing/") {
                        let body = r#"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:111111111111:function:missing"}"#;
                        format!(
                            "HTTP/1.1 404 Not Found\r\nx-amzn-ErrorType: ResourceNotFoundException\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send(Invocation { path, invocation_type, event });
                        "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_owned()
                    };
                    stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, rx)
}

async fn next_invocation(rx: &mut mpsc::UnboundedReceiver<Invocation>) -> Invocation {
    tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the function was never invoked")
        .unwrap()
}

fn zip_with(name: &str, contents: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(contents.as_bytes()).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

fn place(artifact: &Value) -> (String, String) {
    let s3 = &artifact["location"]["s3Location"];
    (s3["bucketName"].as_str().unwrap().into(), s3["objectKey"].as_str().unwrap().into())
}

#[tokio::test]
async fn a_lambda_action_invokes_its_function_and_ends_as_the_function_reports() {
    let (url, mut invocations) = lambda_service().await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let home = home_with_repo(false);
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 4,
        aws: Some(sdk),
        ..EmbeddedConfig::default()
    };
    let running = start_runtime_for(config, PIPELINE).await;
    let rt = &running.rt;
    let api = rt.control_api("us-east-1", ApiCredentials::new());
    let call = |op: &'static str, body: Value| {
        let api = &api;
        async move {
            let reply = api.call(op, body.to_string().as_bytes(), "arn:aws:iam::1:user/fn").await;
            (reply.status, reply.json())
        }
    };
    let start = |()| call("StartPipelineExecution", json!({"name": "app"}));

    // The function is invoked asynchronously with CodePipeline's job event.
    let (_, started) = start(()).await;
    let first = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    let invoked = next_invocation(&mut invocations).await;
    assert_eq!(invoked.path, "/2015-03-31/functions/deployer/invocations");
    assert_eq!(invoked.invocation_type, "Event");
    let job = &invoked.event["CodePipeline.job"];
    let data = &job["data"];
    assert_eq!(
        data["actionConfiguration"]["configuration"],
        json!({"FunctionName": "deployer", "UserParameters": "{\"env\":\"prod\"}"})
    );
    assert_eq!(data["inputArtifacts"][0]["name"], "Src");
    assert!(data["inputArtifacts"][0]["revision"].is_string(), "{data}");
    assert_eq!(job["accountId"], "000000000000");
    let key = data["artifactCredentials"]["accessKeyId"].as_str().unwrap().to_owned();

    // The function reads its input and writes its output with the job's credentials...
    let (bucket, input) = place(&data["inputArtifacts"][0]);
    let path = rt.granted.readable(&key, &bucket, &input).unwrap();
    assert!(!zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap().is_empty());
    let (bucket, output) = place(&data["outputArtifacts"][0]);
    rt.granted.write(&key, &bucket, &output, &zip_with("made.txt", "made")).unwrap();
    assert!(rt.granted.write(&key, &bucket, &input, b"x").is_err(), "an input was writable");

    // ...asks to be called again, and is, with its token and the same artifacts...
    let id = job["id"].as_str().unwrap();
    let (status, _) =
        call("PutJobSuccessResult", json!({"jobId": id, "continuationToken": "deploying"})).await;
    assert_eq!(status, 200);
    let again = next_invocation(&mut invocations).await;
    let job2 = &again.event["CodePipeline.job"];
    assert_ne!(job2["id"], job["id"]);
    assert_eq!(job2["data"]["continuationToken"], "deploying");
    assert_eq!(job2["data"]["outputArtifacts"], data["outputArtifacts"]);

    // ...and ends the action with an output variable a later action reads.
    let (status, _) = call(
        "PutJobSuccessResult",
        json!({"jobId": job2["id"], "outputVariables": {"Result": "ok"},
               "executionDetails": {"summary": "deployed"}}),
    )
    .await;
    assert_eq!(status, 200);
    let done = wait_for(rt, &first, "succeeded", |e| e.status != ExecutionStatus::InProgress).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
    let (status, late) = call("PutJobSuccessResult", json!({"jobId": job2["id"]})).await;
    assert_eq!((status, late["__type"].as_str()), (400, Some("InvalidJobStateException")));

    // A function that reports failure fails the action with its message.
    let (_, started) = start(()).await;
    let second = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    let invoked = next_invocation(&mut invocations).await;
    let id = invoked.event["CodePipeline.job"]["id"].clone();
    call(
        "PutJobFailureResult",
        json!({"jobId": id, "failureDetails": {"type": "JobFailed", "message": "the canary died"}}),
    )
    .await;
    let failed = wait_for(rt, &second, "failed", |e| e.status != ExecutionStatus::InProgress).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(fn_error(&failed).as_deref(), Some("the canary died"));
}

#[tokio::test]
async fn a_function_lambda_does_not_know_fails_the_action_with_lambdas_words() {
    let (url, _invocations) = lambda_service().await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let home = home_with_repo(false);
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 4,
        aws: Some(sdk),
        ..EmbeddedConfig::default()
    };
    let running = start_runtime_for(config, &PIPELINE.replace("\"deployer\"", "\"missing\"")).await;
    let rt = Arc::clone(&running.rt);
    let api = rt.control_api("us-east-1", ApiCredentials::new());
    let reply = api.call("StartPipelineExecution", br#"{"name":"app"}"#, "caller").await;
    let id = reply.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let failed = wait_for(&rt, &id, "failed", |e| e.status != ExecutionStatus::InProgress).await;
    let message = fn_error(&failed).unwrap_or_default();
    assert!(
        message.contains("ResourceNotFoundException") && message.contains("missing"),
        "{message}"
    );
}

fn fn_error(e: &Execution) -> Option<String> {
    e.stages[1].actions[0].error.as_ref().map(|err| err.message.clone())
}
