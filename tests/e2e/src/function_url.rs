//! The API function's URL as AWS serves it with `AuthType: AWS_IAM`: each request's SigV4
//! signature, made for the service `lambda`, is checked against the one principal allowed in
//! (IAM's part), and the function is handed the request with that caller's ARN. A request
//! signed with other keys, or for another service, is refused with a 403 as Lambda refuses it.

use std::sync::Arc;

use anyhow::{Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use baton::api::sigv4::{Expected, Signable, verify};
use serde_json::{Map, json};

use crate::runtime::Pool;
use crate::stack::{AccountKeys, HOME};

/// A listening function URL, stopped when dropped.
pub struct FunctionUrl {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Front {
    pool: Arc<Pool>,
    keys: AccountKeys,
    caller: String,
}

impl FunctionUrl {
    /// Serves `pool`'s function, letting in only requests signed with `keys` as `caller`.
    pub async fn start(pool: Arc<Pool>, keys: AccountKeys, caller: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let front = Arc::new(Front { pool, keys, caller: caller.to_owned() });
        let app = Router::new().fallback(handle).with_state(front);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }
}

async fn handle(
    State(front): State<Arc<Front>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let signable = Signable {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &pairs,
        body: &body,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let keys = &front.keys;
    let signed = verify(&signable, &Expected { region: HOME, service: "lambda", now }, |k| {
        (k == keys.access_key).then(|| keys.secret_key.clone())
    });
    let token = headers.get("x-amz-security-token").map(|v| v.as_bytes());
    if signed.is_err() || token != Some(keys.session_token.as_bytes()) {
        return (StatusCode::FORBIDDEN, r#"{"Message":"Forbidden"}"#).into_response();
    }
    let mut named = Map::new();
    for (n, v) in &pairs {
        named.insert(n.clone(), json!(v));
    }
    let payload = json!({"version": "2.0", "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or_default(), "headers": named,
        "requestContext": {"accountId": crate::stack::PIPELINE_ACCOUNT, "requestId": "e2e",
            "domainName": "api.lambda-url.us-east-1.on.aws", "domainPrefix": "api",
            "authorizer": {"iam": {"accessKey": keys.access_key, "userArn": front.caller,
                "accountId": crate::stack::PIPELINE_ACCOUNT, "callerId": "e2e"}},
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "baton-e2e"},
            "time": "06/Dec/2026:16:00:00 +0000", "timeEpoch": 0},
        "body": String::from_utf8_lossy(&body), "isBase64Encoded": false});
    match front.pool.invoke(payload).await {
        Ok(Ok(reply)) => {
            let status = reply["statusCode"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let text = reply["body"].as_str().unwrap_or_default().to_owned();
            (status, [("content-type", "application/x-amz-json-1.1")], text).into_response()
        }
        Ok(Err(error)) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Calls CodePipeline's `operation` on the function URL at `url` as the AWS CLI does through
/// `baton proxy`: the JSON protocol, signed for `lambda` with `keys`. Returns the status and
/// the answer.
pub async fn call(
    url: &str,
    keys: &AccountKeys,
    operation: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value)> {
    use baton::api::sigv4::{SigningKey, sign};
    use http_body_util::{BodyExt, Full};
    let host = url.trim_start_matches("http://").to_owned();
    let body = body.to_string();
    let mut headers = vec![
        ("host".to_owned(), host.clone()),
        ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
        ("x-amz-target".to_owned(), format!("CodePipeline_20150709.{operation}")),
        ("x-amz-security-token".to_owned(), keys.session_token.clone()),
    ];
    let signable =
        Signable { method: "POST", path: "/", query: "", headers: &headers, body: body.as_bytes() };
    let key = SigningKey {
        access_key: &keys.access_key,
        secret_key: &keys.secret_key,
        region: HOME,
        service: "lambda",
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let (date, authorization) = sign(&signable, &key, i64::try_from(now)?);
    headers.push(("x-amz-date".to_owned(), date));
    headers.push(("authorization".to_owned(), authorization));
    let mut request = axum::http::Request::post("/");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let stream = tokio::net::TcpStream::connect(&host).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let answer = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null)))
}

/// A user of CodePipeline's API through the API function's URL, as the AWS CLI reaches it
/// through `baton proxy`.
pub struct ApiUser {
    url: FunctionUrl,
    keys: AccountKeys,
    refused: Box<dyn Fn() -> Vec<String> + Send + Sync>,
}

impl ApiUser {
    /// Serves `pool`'s function for a user with `keys` whom IAM names `caller`; `refused` tells
    /// which calls moto refused, for a failed call's error.
    pub async fn start(
        pool: Arc<Pool>,
        keys: AccountKeys,
        caller: &str,
        refused: impl Fn() -> Vec<String> + Send + Sync + 'static,
    ) -> Result<Self> {
        let url = FunctionUrl::start(pool, keys.clone(), caller).await?;
        Ok(Self { url, keys, refused: Box::new(refused) })
    }

    /// The function URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url.url
    }

    /// `operation`'s answer; an error with the answer (and what moto refused) unless it is 200.
    pub async fn ok(&self, operation: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let (status, answer) = call(&self.url.url, &self.keys, operation, &body).await?;
        if status != 200 {
            bail!("{operation}: {status} {answer}\nrefused: {:?}", (self.refused)());
        }
        Ok(answer)
    }

    /// The status of `pipeline`'s execution `id` once it is no longer `InProgress`, or after
    /// `patience`; `between` runs after each look.
    pub async fn end_of(
        &self,
        pipeline: &str,
        id: &str,
        patience: std::time::Duration,
        between: impl AsyncFn(),
    ) -> Result<String> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let body = json!({"pipelineName": pipeline, "pipelineExecutionId": id});
            let got = self.ok("GetPipelineExecution", body).await?;
            let status = got["pipelineExecution"]["status"].as_str().unwrap_or_default();
            if status != "InProgress" || std::time::Instant::now() > deadline {
                return Ok(status.to_owned());
            }
            between().await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
