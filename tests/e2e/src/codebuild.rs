//! What CodeBuild does on AWS and moto does not: run the build on the source Baton named
//! (`sourceLocationOverride`, an object in the artifact bucket), write its artifact where Baton
//! said (`artifactsOverride`, encrypted with `encryptionKeyOverride`; a clone through a
//! connection, `sourceTypeOverride` other than S3, yields a README naming what was cloned), and announce the end on
//! the account's default event bus ("CodeBuild Build State Change"), which the template's
//! `CodeBuildFinished` rule routes to the action-worker. The stand-in build passes its source
//! through and adds `built-by.txt` with the build's id. Its S3 and EventBridge calls go straight
//! to moto, not through the counting proxy: they are CodeBuild's, not Baton's.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::json;

use crate::proxy::Proxy;
use crate::stack::{HOME, Stack};

/// Announces builds' ends until dropped.
pub struct BuildAnnouncer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BuildAnnouncer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BuildAnnouncer {
    /// Watches the pipeline account's builds in the home region, of the projects this stack's
    /// scenarios create (named after the stack: other tests share the emulator).
    pub async fn start(stack: &Stack, proxy: Proxy) -> Self {
        let sdk = stack.sdk(HOME).await;
        let aws = Aws {
            codebuild: aws_sdk_codebuild::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            s3: crate::scenario::s3_client(&sdk),
            endpoint: stack.endpoint.clone(),
            keys: stack.keys.clone(),
            proxy,
            prefix: format!("{}-", stack.name),
        };
        let task = tokio::spawn(async move {
            let mut announced = BTreeSet::new();
            loop {
                if let Err(e) = announce_ended(&aws, &mut announced).await {
                    eprintln!("cannot announce builds: {e:#}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task }
    }
}

struct Aws {
    codebuild: aws_sdk_codebuild::Client,
    events: aws_sdk_eventbridge::Client,
    s3: aws_sdk_s3::Client,
    /// moto, and the keys the build's log is written with.
    endpoint: String,
    keys: crate::stack::AccountKeys,
    proxy: Proxy,
    /// Of the projects to watch.
    prefix: String,
}

async fn announce_ended(aws: &Aws, announced: &mut BTreeSet<String>) -> Result<()> {
    let (codebuild, events) = (&aws.codebuild, &aws.events);
    let ids = codebuild.list_builds().send().await.context("ListBuilds")?.ids.unwrap_or_default();
    let new: Vec<String> = ids
        .into_iter()
        .filter(|id| id.starts_with(&aws.prefix) && !announced.contains(id))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let builds = codebuild.batch_get_builds().set_ids(Some(new)).send().await?;
    for build in builds.builds() {
        let status = build.build_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let (Some(id), Some(arn)) = (build.id(), build.arn()) else { continue };
        if status == "IN_PROGRESS" {
            continue;
        }
        let start = aws
            .proxy
            .calls()
            .into_iter()
            .rev()
            .filter(|c| c.operation == "StartBuild")
            .filter_map(|c| c.request)
            .find(|r| r["projectName"].as_str() == build.project_name());
        if let Some(start) = start {
            run_build(&aws.s3, id, &start).await.with_context(|| format!("running {id}"))?;
            write_log(aws, id).await.with_context(|| format!("writing {id}'s log"))?;
        }
        let detail = json!({
            "build-status": status,
            "project-name": build.project_name(),
            "build-id": arn,
            "additional-information": {"initiator": build.initiator()},
        });
        let entry = PutEventsRequestEntry::builder()
            .source("aws.codebuild")
            .detail_type("CodeBuild Build State Change")
            .resources(arn)
            .detail(detail.to_string())
            .build();
        let out = events.put_events().entries(entry).send().await.context("PutEvents")?;
        if out.failed_entry_count() == 0 {
            announced.insert(id.to_owned());
        }
    }
    Ok(())
}

/// What every stand-in build prints: a colour, and a line that must stay text in a page.
pub const BUILD_LOG: [&str; 3] = [
    "[Container] Entering phase BUILD",
    "\u{1b}[32mbuilding the site\u{1b}[0m",
    "<script>alert(1)</script> is only text",
];

/// The build's log where CodeBuild writes it: the group `/aws/codebuild/<project>`, a stream
/// named by the build id's UUID.
async fn write_log(aws: &Aws, id: &str) -> Result<()> {
    let (project, uuid) = id.split_once(':').context("a build id is project:uuid")?;
    let group = format!("/aws/codebuild/{project}");
    // The group is the project's, made by its first build.
    let _ = logs_call(aws, "CreateLogGroup", &json!({"logGroupName": group})).await;
    logs_call(aws, "CreateLogStream", &json!({"logGroupName": group, "logStreamName": uuid}))
        .await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let events: Vec<_> = BUILD_LOG
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"timestamp": now + i as u128, "message": m}))
        .collect();
    let put = json!({"logGroupName": group, "logStreamName": uuid, "logEvents": events});
    logs_call(aws, "PutLogEvents", &put).await
}

/// One CloudWatch Logs call to moto, signed as the SDKs sign it.
async fn logs_call(aws: &Aws, operation: &str, input: &serde_json::Value) -> Result<()> {
    use baton::api::sigv4::{Signable, SigningKey, sign};
    use http_body_util::{BodyExt, Full};
    let authority = aws.endpoint.trim_start_matches("http://").to_owned();
    let body = input.to_string().into_bytes();
    let mut headers = vec![
        ("host".to_owned(), authority.clone()),
        ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
        ("x-amz-target".to_owned(), format!("Logs_20140328.{operation}")),
        ("x-amz-security-token".to_owned(), aws.keys.session_token.clone()),
    ];
    let key = SigningKey {
        access_key: &aws.keys.access_key,
        secret_key: &aws.keys.secret_key,
        region: HOME,
        service: "logs",
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let signable =
        Signable { method: "POST", path: "/", query: "", headers: &headers, body: &body };
    let (date, authorization) = sign(&signable, &key, now as i64);
    headers.push(("x-amz-date".to_owned(), date));
    headers.push(("authorization".to_owned(), authorization));
    let mut request = hyper::Request::builder().method("POST").uri("/");
    for (n, v) in &headers {
        request = request.header(n.as_str(), v.as_str());
    }
    let request = request.body(Full::new(bytes::Bytes::from(body)))?;
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{operation}: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

/// The build: its source zip (a clone's, a README naming the repository and version), plus
/// `built-by.txt`, as its artifact.
async fn run_build(s3: &aws_sdk_s3::Client, id: &str, start: &serde_json::Value) -> Result<()> {
    use std::io::{Read, Write};
    let Some(source) = start["sourceLocationOverride"].as_str() else { return Ok(()) };
    let artifacts = &start["artifactsOverride"];
    let (Some(bucket), Some(path), Some(name)) =
        (artifacts["location"].as_str(), artifacts["path"].as_str(), artifacts["name"].as_str())
    else {
        return Ok(());
    };
    let bytes = match start["sourceTypeOverride"].as_str() {
        // A clone through a connection: a commit of one README naming what was cloned.
        Some(kind) if kind != "S3" => {
            let mut clone = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            clone.start_file("README", zip::write::SimpleFileOptions::default())?;
            let version = start["sourceVersion"].as_str().unwrap_or("HEAD");
            clone.write_all(format!("{source} at {version}\n").as_bytes())?;
            bytes::Bytes::from(clone.finish()?.into_inner())
        }
        _ => {
            let (src_bucket, src_key) =
                source.split_once('/').context("source is not bucket/key")?;
            let object = s3.get_object().bucket(src_bucket).key(src_key).send().await?;
            object.body.collect().await?.into_bytes()
        }
    };
    let mut source = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for i in 0..source.len() {
        let mut entry = source.by_index(i)?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.start_file(entry.name(), options)?;
        out.write_all(&data)?;
    }
    out.start_file("built-by.txt", options)?;
    out.write_all(id.as_bytes())?;
    let zipped = out.finish()?.into_inner();
    let mut put = s3
        .put_object()
        .bucket(bucket)
        .key(format!("{path}/{name}"))
        .body(zipped.into())
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms);
    if let Some(key) = start["encryptionKeyOverride"].as_str() {
        put = put.ssekms_key_id(key);
    }
    put.send().await.context("writing the build's artifact")?;
    Ok(())
}
