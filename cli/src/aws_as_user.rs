//! AWS read as the user, for the console of a deployment: an artifact's S3 object and a
//! build's log in CloudWatch Logs, each request signed with the user's own credentials, so IAM,
//! the bucket's policy and the keys decide what they may read, as in CodePipeline's console.
//! Each service's endpoint is its regional one, or the one the AWS tools are pointed at
//! (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use baton::api::sigv4::{Signable, SigningKey, sign, sign_s3};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::remote::{Connection, Keys};

/// SHA-256 of nothing: a GET's payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How long connecting and the answer's head may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a log read for one page: CloudWatch gives up to 1 MB a call.
const LOG_PAGES: usize = 64;

/// Writes `s3://bucket/key` to `to`, reading it as `keys` in `region` (or in the region S3
/// says the bucket is in).
pub(crate) async fn download(
    keys: &Keys,
    region: &str,
    bucket: &str,
    key: &str,
    to: &Path,
) -> Result<()> {
    match get_object(keys, region, bucket, key, to).await? {
        None => Ok(()),
        Some(elsewhere) if elsewhere != region => {
            match get_object(keys, &elsewhere, bucket, key, to).await? {
                None => Ok(()),
                Some(_) => bail!("S3 keeps sending s3://{bucket}/{key} elsewhere"),
            }
        }
        Some(_) => bail!("S3 sent s3://{bucket}/{key} to the region it was asked in"),
    }
}

/// Where a CodeBuild build writes its log: what `BatchGetBuilds` says, else CodeBuild's
/// defaults (`/aws/codebuild/<project>`, the id after the project's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildLog {
    pub(crate) region: String,
    pub(crate) group: String,
    pub(crate) stream: String,
}

/// The log of the build `build_id` (`project:uuid`, or its ARN) in `region`.
pub(crate) async fn build_log(keys: &Keys, region: &str, build_id: &str) -> Result<BuildLog> {
    let id = build_id.rsplit_once(":build/").map_or(build_id, |(_, id)| id);
    let (project, uuid) = id.split_once(':').ok_or_else(|| anyhow!("{id} is no build id"))?;
    let out = call_json(
        keys,
        region,
        ("codebuild", "CODEBUILD"),
        "CodeBuild_20161006.BatchGetBuilds",
        &json!({"ids": [id]}),
    )
    .await?;
    let logs = &out["builds"][0]["logs"]["cloudWatchLogs"];
    let named = |field: &str, top: &str| {
        logs[field]
            .as_str()
            .or_else(|| out["builds"][0]["logs"][top].as_str())
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned)
    };
    let group =
        named("groupName", "groupName").unwrap_or_else(|| format!("/aws/codebuild/{project}"));
    let stream = match named("streamName", "streamName") {
        // A configured stream name is a prefix the build's id follows.
        Some(prefix) if !prefix.ends_with(uuid) => format!("{prefix}/{uuid}"),
        Some(stream) => stream,
        None => uuid.to_owned(),
    };
    Ok(BuildLog { region: region.to_owned(), group, stream })
}

/// Every event of `log` from its start, one message a line; nothing while it does not exist
/// yet (a build that is starting).
pub(crate) async fn log_text(keys: &Keys, log: &BuildLog) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..LOG_PAGES {
        let mut input = json!({"logGroupName": log.group, "logStreamName": log.stream,
            "startFromHead": true});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let target = "Logs_20140328.GetLogEvents";
        let out =
            match call_json(keys, &log.region, ("logs", "CLOUDWATCH_LOGS"), target, &input).await {
                Ok(out) => out,
                Err(e) if e.to_string().contains("ResourceNotFoundException") => return Ok(text),
                Err(e) => return Err(e),
            };
        for event in out["events"].as_array().into_iter().flatten() {
            let message = event["message"].as_str().unwrap_or_default();
            text.extend_from_slice(message.as_bytes());
            if !message.ends_with('\n') {
                text.push(b'\n');
            }
        }
        let next = out["nextForwardToken"].as_str().map(str::to_owned);
        // The last page gives back the token it was asked with.
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(text)
}

fn endpoint(host: &str, env_suffix: &str, region: &str) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    env(&format!("AWS_ENDPOINT_URL_{env_suffix}"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://{host}.{region}.amazonaws.com"))
}

/// One JSON 1.1 call (`target`) to the service (`host` prefix, endpoint variable suffix).
async fn call_json(
    keys: &Keys,
    region: &str,
    (host, env_suffix): (&str, &str),
    target: &str,
    input: &Value,
) -> Result<Value> {
    let url = endpoint(host, env_suffix, region);
    let body = input.to_string().into_bytes();
    let fields = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
    // The signing name of CloudWatch Logs is `logs`, of CodeBuild `codebuild`.
    let connection = Connection::new(&url)?;
    let scope = (region, host);
    let headers = signed(keys, scope, &connection, ("POST", "/"), &fields, &body)?;
    let (status, _, answer) =
        send(&connection, &url, ("POST", "/"), &headers, Bytes::from(body)).await?;
    let answer = answer.collect().await.map_err(|e| anyhow!("{url}: {e}"))?.to_bytes();
    let json: Value = serde_json::from_slice(&answer).unwrap_or_default();
    if status != 200 {
        let kind = json["__type"].as_str().unwrap_or("an error");
        let kind = kind.rsplit('#').next().unwrap_or(kind);
        let message = json["message"].as_str().or(json["Message"].as_str()).unwrap_or_default();
        bail!(
            "{host} refused {} as you (HTTP {status}, {kind}): {message}",
            target.rsplit('.').next().unwrap_or(target)
        );
    }
    Ok(json)
}

/// One signed GET, path style. `Some(region)`: the bucket is in that region, nothing written.
async fn get_object(
    keys: &Keys,
    region: &str,
    bucket: &str,
    key: &str,
    to: &Path,
) -> Result<Option<String>> {
    let url = endpoint("s3", "S3", region);
    let path = format!("/{}/{}", encode_key(bucket), encode_key(key));
    let fields = [("x-amz-content-sha256", EMPTY_SHA256)];
    let connection = Connection::new(&url)?;
    let headers = signed(keys, (region, "s3"), &connection, ("GET", &path), &fields, &[])?;
    let (status, head, mut body) =
        send(&connection, &url, ("GET", &path), &headers, Bytes::new()).await?;
    let lost = |e: hyper::Error| anyhow!("the connection to {url} failed: {e}");
    if status != 200 {
        let bucket_region =
            head.get("x-amz-bucket-region").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let (301 | 400, Some(elsewhere)) = (status, bucket_region) {
            return Ok(Some(elsewhere));
        }
        let answer = body.collect().await.map_err(lost)?.to_bytes();
        let text = String::from_utf8_lossy(&answer[..answer.len().min(64 * 1024)]);
        let field = |tag: &str| {
            let open = format!("<{tag}>");
            let start = text.find(&open)? + open.len();
            Some(text[start..start + text[start..].find('<')?].to_owned())
        };
        bail!(
            "S3 refused to read s3://{bucket}/{key} as you (HTTP {status}): {}",
            match (field("Code"), field("Message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code,
                _ => "no reason given".to_owned(),
            }
        );
    }
    let mut file = tokio::fs::File::create(to).await?;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(lost)?.into_data() {
            file.write_all(&data).await?;
        }
    }
    file.flush().await?;
    Ok(None)
}

/// The headers of a request on `connection` signed as `keys` for `(region, service)`: `host`,
/// `fields`, the session token, the date and the signature (S3's way for `s3`).
fn signed(
    keys: &Keys,
    (region, service): (&str, &str),
    connection: &Connection,
    (method, path): (&str, &str),
    fields: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>> {
    let mut headers = vec![("host".to_owned(), connection.authority.clone())];
    headers.extend(fields.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
    if let Some(token) = &keys.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let key =
        SigningKey { access_key: &keys.access_key, secret_key: &keys.secret_key, region, service };
    let request = Signable { method, path, query: "", headers: &headers, body };
    let (date, authorization) =
        if service == "s3" { sign_s3(&request, &key, now()) } else { sign(&request, &key, now()) };
    headers.push(("x-amz-date".to_owned(), date));
    headers.push(("authorization".to_owned(), authorization));
    Ok(headers)
}

/// S3's URI encoding of a key: unreserved characters and `/` as they are.
fn encode_key(key: &str) -> String {
    key.split('/').map(crate::console::url_encode).collect::<Vec<_>>().join("/")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One request on its own connection (TLS for https): the status, the headers and the body
/// to read.
async fn send(
    connection: &Connection,
    url: &str,
    (method, path): (&str, &str),
    headers: &[(String, String)],
    body: Bytes,
) -> Result<(u16, hyper::HeaderMap, Incoming)> {
    tokio::time::timeout(TIMEOUT, connection.send(method, path, headers, body))
        .await
        .map_err(|_| anyhow!("{url} did not answer within {}s", TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(encode_key("p@1/e-2/Source Output/1.zip"), "p%401/e-2/Source%20Output/1.zip");
    }
}
