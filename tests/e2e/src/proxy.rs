//! A counting proxy in front of moto: every AWS request a function makes passes here, so the
//! scenario can say how many requests of each service and operation an action costs, and how
//! many DynamoDB capacity units and EventBridge events they amount to.
//!
//! One listener per function, so each request is attributed to the function that made it.
//! The service comes from the SigV4 credential scope; the operation from `X-Amz-Target`, the
//! `Action` of a query-protocol form, or the S3 method and path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// One request a function made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Call {
    /// The function (binary name) whose listener took it.
    pub function: String,
    /// `dynamodb`, `s3`, `events`...
    pub service: String,
    /// `TransactWriteItems`, `PutObject`...
    pub operation: String,
    /// From the credential scope.
    pub region: String,
    /// The request path (S3: `/bucket/key`).
    pub path: String,
    /// The response status.
    pub status: u16,
    /// DynamoDB write request units this request consumed (computed from item sizes).
    pub write_units: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// The write units by kind of item written (`execution`, `lanes`, `claim`...).
    pub write_units_by_item: Vec<(&'static str, f64)>,
    /// `GetItem`: the kind of item read.
    pub read_kind: &'static str,
    /// The size of each item put, by kind, in bytes as DynamoDB counts them.
    pub item_bytes: Vec<(&'static str, usize)>,
    /// `PutEvents`: the detail-types of the entries.
    pub events: Vec<String>,
    /// `PutEvents`: each entry's `TraceHeader` (empty when it has none).
    pub event_traces: Vec<String>,
    /// CodeBuild and CodeCommit: the request's JSON (the stand-in build reads its overrides).
    pub request: Option<Value>,
}

/// The proxy: listeners by function, and what passed.
#[derive(Clone)]
pub struct Proxy {
    upstream: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Sizes of items written, by key, so a later delete is charged what it removes.
    sizes: Arc<Mutex<HashMap<String, usize>>>,
    /// CodeCommit, which moto does not serve: answered here.
    codecommit: crate::codecommit::Repositories,
}

impl Proxy {
    /// A proxy to `upstream` (moto's `http://host:port`).
    pub fn new(upstream: &str) -> Result<Self> {
        let addr = upstream.trim_start_matches("http://").trim_end_matches('/');
        Ok(Self {
            upstream: addr.parse().with_context(|| format!("moto endpoint {upstream}"))?,
            calls: Arc::default(),
            sizes: Arc::default(),
            codecommit: crate::codecommit::Repositories::default(),
        })
    }

    /// Starts a listener for `function`; returns its endpoint URL.
    pub async fn listen(&self, function: &str) -> Result<String> {
        self.listen_hanging(function, None).await
    }

    /// Like [`Self::listen`], but requests of operation `hang` are carried out and recorded,
    /// and their answer never comes back: the function can be killed after that call took
    /// effect and before it learned so.
    pub async fn listen_hanging(
        &self,
        function: &str,
        hang: Option<&'static str>,
    ) -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (proxy, function) = (self.clone(), function.to_owned());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (proxy, function) = (proxy.clone(), function.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (proxy, function) = (proxy.clone(), function.clone());
                        async move { proxy.forward(&function, req, hang).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(url)
    }

    /// The repositories the functions' CodeCommit requests are answered from.
    pub fn codecommit(&self) -> &crate::codecommit::Repositories {
        &self.codecommit
    }

    /// Everything recorded so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets what was recorded (between the phases of a scenario).
    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    async fn forward(
        &self,
        function: &str,
        req: Request<Incoming>,
        hang: Option<&'static str>,
    ) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let mut call = classify(function, &parts, &body);
        if call.service == "codecommit" {
            return Ok(self.answer_codecommit(call, &body));
        }
        let hangs = hang == Some(call.operation.as_str());
        let parts_headers = parts.headers.clone();
        let upstream = Request::from_parts(parts, Full::new(body.clone()));
        let response = match self.send(upstream).await {
            Ok(r) => r,
            Err(e) => {
                call.status = 502;
                self.record(call);
                let mut r = Response::new(Full::new(Bytes::from(format!("proxy: {e:#}"))));
                *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                return Ok(r);
            }
        };
        let (parts, rbody) = response.into_parts();
        let rbody = rbody.collect().await?.to_bytes();
        call.status = parts.status.as_u16();
        if call.service == "dynamodb" && call.status == 200 {
            let req: Value = serde_json::from_slice(&body).unwrap_or_default();
            let written = written_keys(&call.operation, &req);
            let after = self.sizes_after(&parts_headers, &written).await;
            self.capacity(&mut call, &req, &rbody, &written, &after);
        }
        if call.service == "codebuild" {
            call.request = serde_json::from_slice(&body).ok();
        }
        self.record(call);
        if hangs {
            // The request took effect; its caller never learns it.
            return std::future::pending().await;
        }
        Ok(Response::from_parts(parts, Full::new(rbody)))
    }

    /// CodeCommit's answer from the stand-in, recorded with the request.
    fn answer_codecommit(&self, mut call: Call, body: &[u8]) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let (status, answer) = self.codecommit.answer(&call.operation, &request);
        call.status = status;
        call.request = Some(request);
        self.record(call);
        let mut r = Response::new(Full::new(Bytes::from(answer.to_string())));
        *r.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        r
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        let stream = TcpStream::connect(self.upstream).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender.send_request(req).await?)
    }

    /// The size of each item a successful write touched, read back from moto (0: gone), by
    /// `pk|sk`. The read reuses the write's headers (moto routes by them) and is not recorded.
    async fn sizes_after(
        &self,
        headers: &hyper::HeaderMap,
        written: &[(String, Value)],
    ) -> HashMap<String, usize> {
        let mut sizes = HashMap::new();
        for (table, key) in written {
            let body = serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true});
            let mut get = Request::new(Full::new(Bytes::from(body.to_string())));
            *get.method_mut() = hyper::Method::POST;
            *get.uri_mut() = "/".parse().expect("a valid path");
            *get.headers_mut() = headers.clone();
            get.headers_mut().remove(hyper::header::CONTENT_LENGTH);
            get.headers_mut().insert(
                "x-amz-target",
                hyper::header::HeaderValue::from_static("DynamoDB_20120810.GetItem"),
            );
            let Ok(response) = self.send(get).await else { continue };
            let Ok(got) = response.into_body().collect().await else { continue };
            let got: Value = serde_json::from_slice(&got.to_bytes()).unwrap_or_default();
            sizes.insert(item_key(key), item_size(&got["Item"]));
        }
        sizes
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(call);
    }

    /// DynamoDB's on-demand units for a successful request: writes 1 per KB of item (2 in a
    /// transaction), strongly consistent reads 1 per 4 KB. moto does not return
    /// `ConsumedCapacity` for transactions (and returns 1 for any `PutItem`), so the units are
    /// computed from the item sizes here, as DynamoDB defines them.
    fn capacity(
        &self,
        call: &mut Call,
        req: &Value,
        response: &[u8],
        written: &[(String, Value)],
        after: &HashMap<String, usize>,
    ) {
        let resp: Value = serde_json::from_slice(response).unwrap_or_default();
        let mut sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut by_item = Vec::new();
        let mut bytes = Vec::new();
        // A write is charged the larger of the item before and after it, per KB (twice in a
        // transaction): sizes after come from reading the item back, before from the last.
        let mut charge = |key: &Value, factor: f64, sizes: &mut HashMap<String, usize>| {
            let k = item_key(key);
            let before = sizes.get(&k).copied().unwrap_or(0);
            let now = after.get(&k).copied().unwrap_or(0);
            if now > 0 {
                bytes.push((item_kind(key), now));
                sizes.insert(k, now);
            } else {
                sizes.remove(&k);
            }
            let units = factor * (before.max(now).div_ceil(1024).max(1) as f64);
            by_item.push((item_kind(key), units));
            units
        };
        let read_factor = if req["ConsistentRead"] == Value::Bool(true) { 1.0 } else { 0.5 };
        match call.operation.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" => {
                let factor = if call.operation == "TransactWriteItems" { 2.0 } else { 1.0 };
                for (_, key) in written {
                    call.write_units += charge(key, factor, &mut sizes);
                }
            }
            "GetItem" => {
                let size = item_size(&resp["Item"]);
                call.read_units = read_factor * (size.div_ceil(4096).max(1) as f64);
                call.read_kind = item_kind(&req["Key"]);
            }
            "Query" | "Scan" => {
                let size: usize =
                    resp["Items"].as_array().into_iter().flatten().map(item_size).sum();
                call.read_units = read_factor * (size.div_ceil(4096).max(1) as f64);
            }
            _ => {}
        }
        call.write_units_by_item = by_item;
        call.item_bytes = bytes;
    }
}

/// The table and key of each item a write request writes.
fn written_keys(operation: &str, req: &Value) -> Vec<(String, Value)> {
    let entry = |w: &Value, item: &Value| {
        let key = serde_json::json!({"pk": item["pk"], "sk": item["sk"]});
        (w["TableName"].as_str().unwrap_or_default().to_owned(), key)
    };
    match operation {
        "PutItem" => vec![entry(req, &req["Item"])],
        "UpdateItem" | "DeleteItem" => vec![entry(req, &req["Key"])],
        "TransactWriteItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|op| {
                op.get("Put")
                    .map(|p| entry(p, &p["Item"]))
                    .or_else(|| op.get("Update").map(|u| entry(u, &u["Key"])))
                    .or_else(|| op.get("Delete").map(|d| entry(d, &d["Key"])))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What kind of Baton item a key names, by its key's shape.
fn item_kind(item: &Value) -> &'static str {
    let pk = item["pk"]["S"].as_str().unwrap_or("");
    let sk = item["sk"]["S"].as_str().unwrap_or("");
    match (pk, sk) {
        (_, "PIPELINE") => "pipeline",
        ("JOBS", _) => "running_job",
        (_, "LANES") => "lanes",
        (_, "EVENTS") => "events",
        (_, sk) if sk.starts_with("EXECUTION#") => "execution",
        (pk, _) if pk.starts_with("CLAIM#") => "claim",
        (pk, _) if pk.starts_with("APPROVAL#") => "approval_link",
        _ => "other",
    }
}

/// `pk|sk` of an item or key.
fn item_key(item: &Value) -> String {
    format!("{}|{}", item["pk"]["S"].as_str().unwrap_or(""), item["sk"]["S"].as_str().unwrap_or(""))
}

/// An item's size as DynamoDB counts it: attribute names plus values.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        // A number takes about one byte per two significant digits, plus one.
        "N" => inner.as_str().map_or(1, |n| n.trim_start_matches(['-', '0']).len().div_ceil(2) + 1),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => {
            inner.as_array().map_or(0, |a| a.iter().map(|s| s.as_str().map_or(0, str::len)).sum())
        }
        "L" => 3 + inner.as_array().map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum()),
        "M" => {
            3 + inner
                .as_object()
                .map_or(0, |m| m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum())
        }
        _ => 0,
    }
}

/// Service, operation and region of a request.
fn classify(function: &str, parts: &hyper::http::request::Parts, body: &[u8]) -> Call {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Credential=AKID/date/region/service/aws4_request
    let scope: Vec<&str> = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .map(|c| c.split('/').collect())
        .unwrap_or_default();
    let region = scope.get(2).copied().unwrap_or_default().to_owned();
    let service = scope.get(3).copied().unwrap_or("unknown").to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("");
    let target = header("x-amz-target");
    let operation = if let Some((_, op)) = target.rsplit_once('.') {
        op.to_owned()
    } else if service == "s3" {
        s3_operation(parts.method.as_str(), &path, query, !header("x-amz-copy-source").is_empty())
    } else {
        form_action(body).or_else(|| form_action(query.as_bytes())).unwrap_or_else(|| "?".into())
    };
    let entries = if operation == "PutEvents" {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b["Entries"].as_array().cloned())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let member = |name: &str| -> Vec<String> {
        entries.iter().map(|e| e[name].as_str().unwrap_or("").to_owned()).collect()
    };
    let (events, event_traces) = (member("DetailType"), member("TraceHeader"));
    Call {
        function: function.into(),
        service,
        operation,
        region,
        path,
        events,
        event_traces,
        ..Call::default()
    }
}

fn form_action(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_owned)
}

fn s3_operation(method: &str, path: &str, query: &str, copy: bool) -> String {
    let has = |k: &str| query.split('&').any(|kv| kv == k || kv.starts_with(&format!("{k}=")));
    let object = path.trim_start_matches('/').contains('/');
    match (method, object) {
        ("PUT", true) if copy && has("partNumber") => "UploadPartCopy",
        ("PUT", true) if copy => "CopyObject",
        ("PUT", true) if has("partNumber") => "UploadPart",
        ("PUT", true) => "PutObject",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) => "ListObjects",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) => "PutBucket",
        (m, _) => return format!("{m}?"),
    }
    .to_owned()
}

/// Counts of `calls` by `service:operation`.
pub fn by_operation(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts.entry(format!("{}:{}", c.service, c.operation)).or_insert(0) += 1;
    }
    counts
}
