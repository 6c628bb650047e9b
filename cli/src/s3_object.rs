//! One S3 object read as the user, for the console of a deployment: a `GetObject` signed with
//! the user's own credentials, so IAM, the bucket's policy and its KMS key decide what they may
//! read, as they do in CodePipeline's console. The endpoint is S3's of the region, or the one
//! the AWS tools are pointed at (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use baton::api::sigv4::{Signable, SigningKey, sign_s3};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::remote::{Keys, parse_endpoint, server_name};

/// SHA-256 of nothing: a GET's payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How long connecting and the first byte of the answer may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `s3://bucket/key` to `to`, reading it as `keys` in `region` (or in the region S3
/// says the bucket is in).
pub(crate) async fn download(
    keys: &Keys,
    region: &str,
    bucket: &str,
    key: &str,
    to: &Path,
) -> Result<()> {
    match get(keys, region, bucket, key, to).await? {
        None => Ok(()),
        Some(elsewhere) if elsewhere != region => {
            match get(keys, &elsewhere, bucket, key, to).await? {
                None => Ok(()),
                Some(_) => bail!("S3 keeps sending s3://{bucket}/{key} elsewhere"),
            }
        }
        Some(_) => bail!("S3 sent s3://{bucket}/{key} to the region it was asked in"),
    }
}

fn endpoint(region: &str) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"))
}

/// S3's URI encoding of a key: unreserved characters and `/` as they are.
fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One signed GET, path style. `Some(region)`: the bucket is in that region, nothing written.
async fn get(
    keys: &Keys,
    region: &str,
    bucket: &str,
    key: &str,
    to: &Path,
) -> Result<Option<String>> {
    let url = endpoint(region);
    let ep = parse_endpoint(&url)?;
    let path = format!("/{}/{}", encode_key(bucket), encode_key(key));
    let mut headers = vec![
        ("host".to_owned(), ep.authority.clone()),
        ("x-amz-content-sha256".to_owned(), EMPTY_SHA256.to_owned()),
    ];
    if let Some(token) = &keys.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signing = SigningKey {
        access_key: &keys.access_key,
        secret_key: &keys.secret_key,
        region,
        service: "s3",
    };
    let request = Signable { method: "GET", path: &path, query: "", headers: &headers, body: &[] };
    let (date, authorization) = sign_s3(&request, &signing, now);
    headers.push(("x-amz-date".to_owned(), date));
    headers.push(("authorization".to_owned(), authorization));

    let mut builder = hyper::Request::builder().method("GET").uri(&path);
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder.body(Empty::<bytes::Bytes>::new())?;
    let lost = |e: hyper::Error| anyhow!("the connection to {url} failed: {e}");
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(&ep.address))
        .await
        .map_err(|_| anyhow!("{url} did not answer within {}s", TIMEOUT.as_secs()))?
        .map_err(|e| anyhow!("cannot reach {url}: {e}"))?;
    let response = if ep.https {
        let name = server_name(&ep.host, &url)?;
        let tls = crate::tls::client()?
            .connect(name, tcp)
            .await
            .map_err(|e| anyhow!("no trusted TLS connection to {url}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(lost)?;
        tokio::spawn(connection);
        sender.send_request(request).await.map_err(lost)?
    } else {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(lost)?;
        tokio::spawn(connection);
        sender.send_request(request).await.map_err(lost)?
    };

    let status = response.status().as_u16();
    let bucket_region = response
        .headers()
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = response.into_body();
    if status != 200 {
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

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(encode_key("p@1/e-2/Source Output/1.zip"), "p%401/e-2/Source%20Output/1.zip");
    }
}
