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
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

mod kms;
mod pass_role;
mod unchecked;
pub use kms::FOR_ANOTHER_SERVICE;

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
    /// The signing access key: whose credentials made the call.
    pub access_key: String,
    /// The resource as moto's IAM checks see it: S3 object or bucket, SQS queue, the role of
    /// an `AssumeRole`; `*` for every other service (moto checks those against `*`).
    pub resource: String,
    /// Who made a call the harness decided against the declared statements, as IAM's
    /// `kms:ViaService` names it: another service, for KMS calls it makes as the caller
    /// (`sqs.us-east-1.amazonaws.com`..., see `kms`), or the service the harness answers for.
    pub via: Option<String>,
}

/// The proxy: listeners by function, and what passed.
#[derive(Clone)]
pub struct Proxy {
    upstream: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Sizes of items written, by key, so a later delete is charged what it removes.
    sizes: Arc<Mutex<HashMap<String, usize>>>,
    /// Each item's sort key in each of the table's keys-only indexes, by index and `pk|sk`.
    indexed: Arc<Mutex<HashMap<(&'static str, String), String>>>,
    /// CodeCommit, which moto does not serve: answered here.
    codecommit: crate::codecommit::Repositories,
    /// CloudWatch's alarms, which moto cannot serve as the SDK asks: answered here.
    alarms: crate::cloudwatch::Alarms,
    /// AppConfig's deployments, which moto does not have: answered here.
    appconfig: crate::appconfig::Deployments,
    /// Elastic Beanstalk's versions and environments, which moto does not have: answered here.
    beanstalk: crate::beanstalk::Beanstalk,
    /// CodeConnections' connections, which moto does not have: answered here.
    connections: crate::connections::Connections,
    /// The role each access key that STS handed out belongs to.
    assumed: Arc<Mutex<HashMap<String, String>>>,
    /// With IAM enforced: the secret of every access key the functions hold, to sign forms
    /// again as moto reads them (see `resign_for_moto`).
    secrets: Option<Arc<Mutex<HashMap<String, String>>>>,
    /// The customer key of each encrypted topic, for SNS's KMS calls (see `kms`).
    topic_keys: Arc<HashMap<String, String>>,
    /// The customer key of each encrypted queue (by name) and secret (by ARN), for SQS's and
    /// Secrets Manager's KMS calls, which `decide` decides.
    service_keys: Arc<HashMap<String, String>>,
    /// The stack's artifact keys by region, whose calls through S3 moto decides; S3's calls
    /// with any other key (a declared store's) are decided by `decide` (see `kms`).
    own_keys: Arc<BTreeMap<String, String>>,
    /// Whether the declared statements of the caller (its access key, and the role it was
    /// handed out for) allow a call: the harness's decision where moto cannot make one.
    decide: Option<Decide>,
    /// How many more `UpdateItem`s of a function (by name) are answered with a conflict here,
    /// as DynamoDB answers a save whose condition another save broke.
    conflicts: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// A deployment as CodeDeploy reports it once it has run: moto's never leave `Created`.
fn deployed(answer: &Bytes) -> Bytes {
    let Ok(mut answer) = serde_json::from_slice::<Value>(answer) else { return answer.clone() };
    if answer["deploymentInfo"]["status"] == "Created" {
        answer["deploymentInfo"]["status"] = "Succeeded".into();
    }
    Bytes::from(answer.to_string())
}

/// S3's answer to a caller refused `action` on `resource` (`<Error>`), or a query-protocol
/// service's (`<ErrorResponse>`), which the SDKs read the code and message from.
fn access_denied(service: &str, action: &str, resource: &str) -> Response<Full<Bytes>> {
    let error = format!(
        "<Error><Code>AccessDenied</Code><Message>User is not authorized to perform {action} on {resource}</Message></Error>"
    );
    let text = match service {
        "s3" => error,
        _ => format!("<ErrorResponse>{error}</ErrorResponse>"),
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = hyper::StatusCode::FORBIDDEN;
    r
}

/// A stand-in's refusal of `call`'s caller, in IAM's words.
fn not_authorized(call: &Call) -> String {
    format!("not authorized to perform {} on {}", crate::iam::action_of(call), call.resource)
}

/// A stand-in's answer: `status` (400 if it is not one), `body`, and its content type.
fn answered(
    status: u16,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    r
}

/// See [`Proxy::with_decisions`].
pub type Decide = Arc<dyn Fn(&Call, Option<&str>) -> bool + Send + Sync>;

impl Proxy {
    /// A proxy to `upstream` (moto's `http://host:port`).
    pub fn new(upstream: &str) -> Result<Self> {
        let addr = upstream.trim_start_matches("http://").trim_end_matches('/');
        Ok(Self {
            upstream: addr.parse().with_context(|| format!("moto endpoint {upstream}"))?,
            calls: Arc::default(),
            sizes: Arc::default(),
            indexed: Arc::default(),
            codecommit: crate::codecommit::Repositories::default(),
            alarms: crate::cloudwatch::Alarms::default(),
            appconfig: crate::appconfig::Deployments::default(),
            beanstalk: crate::beanstalk::Beanstalk::default(),
            connections: crate::connections::Connections::default(),
            assumed: Arc::default(),
            secrets: None,
            topic_keys: Arc::default(),
            service_keys: Arc::default(),
            own_keys: Arc::default(),
            decide: None,
            conflicts: Arc::default(),
        })
    }

    /// SQS's and Secrets Manager's KMS calls for these queues (by name) and secrets (by ARN),
    /// with their keys, are decided by `decide` against the caller's declared statements: moto
    /// can neither make them nor evaluate the `kms:ViaService` condition that grants them.
    pub fn with_decisions(
        mut self,
        keys: impl IntoIterator<Item = (String, String)>,
        decide: Decide,
    ) -> Self {
        self.service_keys = Arc::new(keys.into_iter().collect());
        self.decide = Some(decide);
        self
    }

    /// The stack's artifact keys (see `kms`).
    pub fn with_own_keys(mut self, keys: BTreeMap<String, String>) -> Self {
        self.own_keys = Arc::new(keys);
        self
    }

    /// Publications to these topics (ARN, key ARN) ask KMS for a data key as the publisher.
    pub fn with_topic_keys(mut self, keys: impl IntoIterator<Item = (String, String)>) -> Self {
        self.topic_keys = Arc::new(keys.into_iter().collect());
        self
    }

    /// A proxy to a moto with IAM enforced, whose functions hold `keys` (access key, secret):
    /// form requests are checked here and signed again as moto reads them.
    pub fn resigning(
        upstream: &str,
        keys: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        Ok(Self {
            secrets: Some(Arc::new(Mutex::new(keys.into_iter().collect()))),
            ..Self::new(upstream)?
        })
    }

    /// Requests signed with `keys` (the harness's own, sent through a listener) are signed
    /// again as moto reads them too.
    pub fn knows(&self, keys: &crate::stack::AccountKeys) {
        if let Some(secrets) = &self.secrets {
            let mut secrets = secrets.lock().unwrap_or_else(PoisonError::into_inner);
            secrets.insert(keys.access_key.clone(), keys.secret_key.clone());
        }
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

    /// The alarms the functions' `DescribeAlarms` requests are answered from.
    pub fn alarms(&self) -> &crate::cloudwatch::Alarms {
        &self.alarms
    }

    /// The connections the functions' CodeConnections requests are answered from.
    pub fn connections(&self) -> &crate::connections::Connections {
        &self.connections
    }

    /// The Elastic Beanstalk environments the functions updated.
    pub fn beanstalk(&self) -> &crate::beanstalk::Beanstalk {
        &self.beanstalk
    }

    /// The AppConfig deployments the functions started.
    pub fn appconfig(&self) -> &crate::appconfig::Deployments {
        &self.appconfig
    }

    /// The repositories the functions' CodeCommit requests are answered from.
    pub fn codecommit(&self) -> &crate::codecommit::Repositories {
        &self.codecommit
    }

    /// Answers the next `n` `UpdateItem`s of `function` with a conflict, without sending them.
    pub fn conflict_saves(&self, function: &str, n: usize) {
        self.conflicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(function.to_owned(), n);
    }

    /// Whether this call is one [`Self::conflict_saves`] asked to be answered with a conflict.
    fn conflicts_here(&self, call: &Call) -> bool {
        if call.operation != "UpdateItem" {
            return false;
        }
        let mut conflicts = self.conflicts.lock().unwrap_or_else(PoisonError::into_inner);
        match conflicts.get_mut(&call.function) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Everything recorded so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The role ARN an access key was handed out for by `AssumeRole`, if it passed here.
    pub fn role_of(&self, access_key: &str) -> Option<String> {
        self.assumed.lock().unwrap_or_else(PoisonError::into_inner).get(access_key).cloned()
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
        let (mut parts, body) = req.into_parts();
        let mut body = body.collect().await?.to_bytes();
        let mut call = classify(function, &parts, &body);
        if let Some(secrets) = &self.secrets {
            match resign_for_moto(&mut parts, &body, secrets) {
                Ok(Some(resigned)) => body = resigned,
                Ok(None) => {}
                Err(e) => {
                    call.status = 403;
                    self.record(call);
                    let mut r = Response::new(Full::new(Bytes::from(format!("proxy: {e}"))));
                    *r.status_mut() = hyper::StatusCode::FORBIDDEN;
                    return Ok(r);
                }
            }
        }
        if call.service == "codecommit" {
            return Ok(self.answer_codecommit(call, &body));
        }
        if call.service == "monitoring" {
            return Ok(self.answer_cloudwatch(call, &body));
        }
        if call.service == "elasticbeanstalk" {
            return Ok(self.answer_beanstalk(function, call, &body));
        }
        if call.service == "codeconnections" || call.service == "codestar-connections" {
            return Ok(self.answer_connections(call, &body));
        }
        if call.service == "appconfig"
            && let Some((_, environment)) =
                crate::appconfig::deployment_operation(parts.method.as_str(), &call.path)
        {
            return Ok(self.answer_appconfig(call, &environment, &body));
        }
        let mut refusal = self.kms_before_write(function, &call, &parts.headers).await;
        if refusal.is_none() {
            refusal = self.kms_before_publish(function, &call, &parts.headers, &body).await;
        }
        let refusal = refusal
            .or_else(|| self.kms_decided_here(function, &call, &body))
            .or_else(|| self.pass_role_decided_here(function, &call, &body))
            .or_else(|| self.connection_pass_decided_here(function, &call, &body))
            .or_else(|| self.revision_decided_here(function, &call, &body))
            .or_else(|| self.topic_decided_here(function, &call, &body));
        if let Some(refusal) = refusal {
            call.status = 403;
            self.record(call);
            return Ok(refusal);
        }
        if self.conflicts_here(&call) {
            call.status = 400;
            self.record(call);
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            return Ok(r);
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
        let (mut parts, rbody) = response.into_parts();
        let mut rbody = rbody.collect().await?.to_bytes();
        call.status = parts.status.as_u16();
        if call.service == "codedeploy" && call.operation == "GetDeployment" && call.status == 200 {
            rbody = deployed(&rbody);
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
        }
        if let Some(refusal) =
            self.kms_after_read(function, &call, &parts_headers, &parts.headers).await
        {
            call.status = 403;
            self.record(call);
            return Ok(refusal);
        }
        if call.service == "dynamodb" && call.status == 200 {
            let req: Value = serde_json::from_slice(&body).unwrap_or_default();
            let written = written_keys(&call.operation, &req);
            let after = self.sizes_after(&parts_headers, &written).await;
            self.capacity(&mut call, &req, &rbody, &written, &after);
        }
        if call.service == "codebuild"
            || (call.service.as_str(), call.operation.as_str()) == ("lambda", "Invoke")
        {
            call.request = serde_json::from_slice(&body).ok();
        }
        if call.operation == "AssumeRole" && call.status == 200 {
            let text = String::from_utf8_lossy(&rbody);
            if let Some(key) = between(&text, "<AccessKeyId>", "</AccessKeyId>") {
                let mut assumed = self.assumed.lock().unwrap_or_else(PoisonError::into_inner);
                assumed.insert(key.to_owned(), call.resource.clone());
                let secret = between(&text, "<SecretAccessKey>", "</SecretAccessKey>");
                if let (Some(secrets), Some(secret)) = (&self.secrets, secret) {
                    let mut secrets = secrets.lock().unwrap_or_else(PoisonError::into_inner);
                    secrets.insert(key.to_owned(), secret.to_owned());
                }
            }
        }
        self.record(call);
        if hangs {
            // The request took effect; its caller never learns it.
            return std::future::pending().await;
        }
        Ok(Response::from_parts(parts, Full::new(rbody)))
    }

    /// CodeCommit's answer from the stand-in, to a caller the harness let act on the
    /// repository; recorded with the request.
    fn answer_codecommit(&self, mut call: Call, body: &[u8]) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let repository = request["repositoryName"].as_str().unwrap_or_default();
        let account = self.account_of(&call.access_key);
        call.resource = format!("arn:aws:codecommit:{}:{account}:{repository}", call.region);
        let (status, answer) = match self.lets_in(&mut call) {
            true => self.codecommit.answer(&call.operation, &request),
            false => {
                let message = not_authorized(&call);
                (400, serde_json::json!({"__type": "AccessDeniedException", "message": message}))
            }
        };
        call.status = status;
        call.request = Some(request);
        self.record(call);
        answered(status, answer.to_string(), "application/x-amz-json-1.1")
    }

    /// CloudWatch's answer from the stand-in, to a caller the harness let read the alarms
    /// asked for (their ARNs in the caller's account); recorded with that decision.
    fn answer_cloudwatch(&self, mut call: Call, body: &[u8]) -> Response<Full<Bytes>> {
        let account = self.account_of(&call.access_key);
        let arn = |name: &str| format!("arn:aws:cloudwatch:{}:{account}:alarm:{name}", call.region);
        let named = self.alarms.named_in(body);
        let alarms: Vec<_> = named.into_iter().map(|(n, s)| (n.clone(), arn(&n), s)).collect();
        call.resource = alarms.first().map_or_else(|| "*".to_owned(), |(_, a, _)| a.clone());
        let (status, answer) = match self.lets_in(&mut call) {
            true => (200, crate::cloudwatch::answer(&alarms)),
            false => (403, crate::cloudwatch::refusal(&not_authorized(&call))),
        };
        call.status = status;
        self.record(call);
        let mut r = answered(status, answer, "application/cbor");
        r.headers_mut()
            .insert("smithy-protocol", hyper::header::HeaderValue::from_static("rpc-v2-cbor"));
        r
    }

    /// AppConfig's answer from the stand-in, to a caller the harness let act on the
    /// environment's ARN (in the caller's account); recorded with that decision.
    fn answer_appconfig(
        &self,
        mut call: Call,
        environment: &str,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let account = self.account_of(&call.access_key);
        let arn_path = environment
            .replace("applications/", "application/")
            .replace("environments/", "environment/");
        call.resource = format!("arn:aws:appconfig:{}:{account}:{arn_path}", call.region);
        let (status, answer) = match self.lets_in(&mut call) {
            true => {
                let request: Value = serde_json::from_slice(body).unwrap_or_default();
                self.appconfig.answer(&call.operation, environment, &call.path, &request)
            }
            false => (403, serde_json::json!({"Message": not_authorized(&call)})),
        };
        call.status = status;
        call.request = serde_json::from_slice(body).ok();
        self.record(call);
        let mut r = answered(status, answer.to_string(), "application/json");
        if status == 403 {
            r.headers_mut().insert(
                "x-amzn-errortype",
                hyper::header::HeaderValue::from_static("AccessDeniedException"),
            );
        }
        r
    }

    /// Elastic Beanstalk's answer from the stand-in; a new version's source bundle is read
    /// (and decrypted under its region's artifact key) as the caller first.
    fn answer_beanstalk(
        &self,
        function: &str,
        mut call: Call,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let via = format!("elasticbeanstalk.{}.amazonaws.com", call.region);
        let mut refusal = None;
        if call.operation == "CreateApplicationVersion" {
            let field = |name: &str| form.get(name).map_or("", String::as_str);
            let object = format!(
                "arn:aws:s3:::{}/{}",
                field("SourceBundle.S3Bucket"),
                field("SourceBundle.S3Key")
            );
            refusal = self.decided_here(function, &call, ("s3", "GetObject"), &object, via.clone());
            if let (None, Some(key)) = (&refusal, self.own_keys.get(&call.region)) {
                refusal = self.decided_here(function, &call, ("kms", "Decrypt"), key, via);
            }
        }
        let (status, answer) = match refusal {
            Some(_) => {
                let message = "Unable to perform the operation because the user does not have enough privileges for one of more downstream aws services";
                (403, crate::beanstalk::error("InsufficientPrivilegesException", message))
            }
            None => self.beanstalk.answer(&call.operation, &form),
        };
        call.status = status;
        self.record(call);
        answered(status, answer, "text/xml")
    }

    /// CodeConnections' answer from the stand-in, to a caller the harness let read the
    /// connection; recorded with that decision.
    fn answer_connections(&self, mut call: Call, body: &[u8]) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        call.resource = request["ConnectionArn"].as_str().unwrap_or("*").to_owned();
        let (status, answer) = match self.lets_in(&mut call) {
            true => self.connections.answer(&call.operation, &request),
            false => {
                let message = not_authorized(&call);
                (400, serde_json::json!({"__type": "AccessDeniedException", "Message": message}))
            }
        };
        call.status = status;
        self.record(call);
        answered(status, answer.to_string(), "application/x-amz-json-1.0")
    }

    /// The account of the role an access key was handed out for here; the pipeline account's
    /// otherwise (the functions' own roles).
    fn account_of(&self, access_key: &str) -> String {
        let role = self.role_of(access_key);
        let account = role.as_deref().and_then(|r| r.split(':').nth(4));
        account.unwrap_or(crate::stack::PIPELINE_ACCOUNT).to_owned()
    }

    /// Whether the caller of a call the harness answers itself may make it, decided against
    /// its declared statements (everyone may without IAM enforced); `call` is marked as
    /// decided so.
    fn lets_in(&self, call: &mut Call) -> bool {
        call.via = Some(format!("{}.{}.amazonaws.com", call.service, call.region));
        let role = self.role_of(&call.access_key);
        self.decide.as_ref().is_none_or(|decide| decide(call, role.as_deref()))
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        let stream = TcpStream::connect(self.upstream).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender.send_request(req).await?)
    }

    /// The size of each item a successful write touched, read back from moto (0: gone), and
    /// its sort key in each keys-only index, by `pk|sk`. The read reuses the write's headers
    /// (moto routes by them) and is not recorded.
    async fn sizes_after(
        &self,
        headers: &hyper::HeaderMap,
        written: &[(String, Value)],
    ) -> HashMap<String, (usize, IndexKeys)> {
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
            self.sign_again(get.headers_mut(), body.to_string().as_bytes());
            let Ok(response) = self.send(get).await else { continue };
            let Ok(got) = response.into_body().collect().await else { continue };
            let got: Value = serde_json::from_slice(&got.to_bytes()).unwrap_or_default();
            let keys = INDEXES
                .map(|(_, attribute)| got["Item"][attribute]["N"].as_str().map(str::to_owned));
            sizes.insert(item_key(key), (item_size(&got["Item"]), keys));
        }
        sizes
    }

    /// Signs a read-back again, for its own body, with the caller's key where the proxy
    /// knows it: with IAM enforced moto checks signatures, and the write's would not match.
    fn sign_again(&self, headers: &mut hyper::HeaderMap, body: &[u8]) {
        use baton::api::sigv4::{Signable, SigningKey, sign};
        let Some(secrets) = &self.secrets else { return };
        let scope = credential_scope(headers);
        let [access_key, _, region, service, ..] = &scope[..] else { return };
        let secret =
            secrets.lock().unwrap_or_else(PoisonError::into_inner).get(access_key).cloned();
        let Some(secret) = secret else { return };
        let header =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let signed: Vec<(String, String)> =
            ["host", "content-type", "x-amz-target", "x-amz-security-token"]
                .iter()
                .filter_map(|n| Some(((*n).to_owned(), header(n)?)))
                .collect();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let signable = Signable { method: "POST", path: "/", query: "", headers: &signed, body };
        let key = SigningKey { access_key, secret_key: &secret, region, service };
        let (amz_date, authorization) = sign(&signable, &key, now);
        set_header(headers, "x-amz-date", &amz_date);
        set_header(headers, "authorization", &authorization);
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push(call);
    }

    /// `service:operation` on `resource`, which another service (`via`) makes for `call`'s
    /// caller, decided by [`Proxy::with_decisions`]' judge and recorded; `Some` refusal, in the
    /// service's words for `call`, when the caller may not. `None` without a judge.
    fn decided_here(
        &self,
        function: &str,
        call: &Call,
        (service, operation): (&str, &str),
        resource: &str,
        via: String,
    ) -> Option<Response<Full<Bytes>>> {
        let decide = self.decide.as_ref()?;
        let mut made = Call {
            function: format!("{function}{FOR_ANOTHER_SERVICE}"),
            service: service.into(),
            operation: operation.into(),
            region: call.region.clone(),
            resource: resource.into(),
            access_key: call.access_key.clone(),
            via: Some(via),
            ..Call::default()
        };
        let role = self.role_of(&call.access_key);
        made.status = if decide(&made, role.as_deref()) { 200 } else { 403 };
        let refused = made.status == 403;
        self.record(made);
        refused.then(|| access_denied(&call.service, &format!("{service}:{operation}"), resource))
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
        after: &HashMap<String, (usize, IndexKeys)>,
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
            let now = after.get(&k).map_or(0, |(size, _)| *size);
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
                let mut index_units = Vec::new();
                let mut indexed = self.indexed.lock().unwrap_or_else(PoisonError::into_inner);
                for (_, key) in written {
                    call.write_units += charge(key, factor, &mut sizes);
                    // A keys-only index's entry (under 1 KB) is written when an item's sort key
                    // for it appears, deleted when it goes, both when it changes.
                    let k = item_key(key);
                    for (i, (kind, _)) in INDEXES.iter().enumerate() {
                        let now = after.get(&k).and_then(|(_, keys)| keys[i].clone());
                        let slot = (*kind, k.clone());
                        let before = match &now {
                            Some(value) => indexed.insert(slot, value.clone()),
                            None => indexed.remove(&slot),
                        };
                        if before != now {
                            let units =
                                f64::from(u8::from(before.is_some()) + u8::from(now.is_some()));
                            call.write_units += units;
                            index_units.push((*kind, units));
                        }
                    }
                }
                by_item.extend(index_units);
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

/// The table's keys-only indexes, as the write units name them, and each one's sort key.
const INDEXES: [(&str, &str); 2] = [("by_start_index", "started"), ("active_index", "ended")];

/// An item's sort key in each of [`INDEXES`], where it has one.
type IndexKeys = [Option<String>; 2];

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
    let scope = credential_scope(&parts.headers);
    let region = scope.get(2).cloned().unwrap_or_default();
    let service = scope.get(3).cloned().unwrap_or_else(|| "unknown".into());
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("");
    let target = header("x-amz-target");
    let operation = if let Some((_, op)) = target.rsplit_once('.') {
        op.to_owned()
    } else if service == "s3" {
        s3_operation(parts.method.as_str(), &path, query, !header("x-amz-copy-source").is_empty())
    } else if service == "lambda" {
        lambda_operation(parts.method.as_str(), &path)
    } else if service == "appconfig" {
        appconfig_operation(parts.method.as_str(), &path)
    } else if service == "monitoring" {
        path.rsplit("/operation/").next().unwrap_or("?").to_owned()
    } else {
        form_value(body, "Action")
            .or_else(|| form_value(query.as_bytes(), "Action"))
            .unwrap_or_else(|| "?".into())
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
    let resource = match (service.as_str(), operation.as_str()) {
        ("s3", _) => format!("arn:aws:s3:::{}", path.trim_start_matches('/')),
        ("sts", "AssumeRole") => form_value(body, "RoleArn").unwrap_or_else(|| "*".into()),
        // Only the pipeline account's functions call IAM (the API, on its own roles).
        ("iam", "GetRole") => form_value(body, "RoleName").map_or_else(
            || "*".into(),
            |name| format!("arn:aws:iam::{}:role/{name}", crate::stack::PIPELINE_ACCOUNT),
        ),
        ("sqs", _) => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b["QueueUrl"].as_str().map(str::to_owned))
            .and_then(|url| {
                let mut parts = url.rsplit('/');
                let (name, account) = (parts.next()?, parts.next()?);
                Some(format!("arn:aws:sqs:{region}:{account}:{name}"))
            })
            .unwrap_or_else(|| "*".into()),
        _ => "*".into(),
    };
    Call {
        access_key: scope.first().cloned().unwrap_or_default(),
        resource,
        via: None,
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

/// A request moto would misread, signed again as moto reads it. `None`: forwarded as sent.
///
/// - A query-protocol form (SNS, CloudFormation, STS): moto checks a form's signature against
///   the form it parsed, encoded again the way botocore encodes (`+` for a space), not against
///   the bytes sent; the SDK encodes a space as `%20`, so any form with a space would be
///   refused though its signature is right.
/// - A request without a body to a REST service other than S3 (Lambda's `GET`s): moto hashes
///   the parameters it parsed as the payload, not the empty body that was signed. Signed again
///   with `x-amz-content-sha256`, which botocore takes as the payload's hash.
///
/// The signature is checked here, on the bytes sent, and the request signed again with the
/// same key for moto.
fn resign_for_moto(
    parts: &mut hyper::http::request::Parts,
    body: &Bytes,
    secrets: &Mutex<HashMap<String, String>>,
) -> Result<Option<Bytes>, String> {
    use baton::api::sigv4::{Expected, Signable, SigningKey, sign, verify};
    use sha2::Digest as _;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let form = header("content-type").starts_with("application/x-www-form-urlencoded");
    let scope = credential_scope(&parts.headers);
    let [access_key, _, region, service, ..] = &scope[..] else {
        return match form {
            true => Err("no credential scope".into()),
            false => Ok(None),
        };
    };
    let secret_for =
        |k: &str| secrets.lock().unwrap_or_else(PoisonError::into_inner).get(k).cloned();
    // Only a function's own request: the harness's go to moto as sent.
    let bodiless = body.is_empty() && service != "s3" && secret_for(access_key).is_some();
    if !form && !bodiless {
        return Ok(None);
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let query = parts.uri.query().unwrap_or("");
    let signable = Signable {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query,
        headers: &headers,
        body,
    };
    verify(&signable, &Expected { region, service, now }, secret_for).map_err(|e| e.to_string())?;

    let mut resent = String::new();
    for (k, v) in form_urlencoded::parse(body).filter(|_| form) {
        if !resent.is_empty() {
            resent.push('&');
        }
        resent.push_str(&botocore_encode(&k));
        resent.push('=');
        resent.push_str(&botocore_encode(&v));
    }
    let resent = Bytes::from(resent);
    let mut signed: Vec<(String, String)> = ["host", "content-type", "x-amz-security-token"]
        .iter()
        .filter(|n| !header(n).is_empty())
        .map(|n| ((*n).to_owned(), header(n).to_owned()))
        .collect();
    let empty_hash = hex::encode(sha2::Sha256::digest(b""));
    if bodiless {
        signed.push(("x-amz-content-sha256".to_owned(), empty_hash.clone()));
    }
    let secret = secret_for(access_key).ok_or("unknown access key")?;
    let key = SigningKey { access_key, secret_key: &secret, region, service };
    let resigned = Signable { headers: &signed, body: &resent, ..signable };
    let (amz_date, authorization) = sign(&resigned, &key, now);
    set_header(&mut parts.headers, "x-amz-date", &amz_date);
    set_header(&mut parts.headers, "authorization", &authorization);
    if bodiless {
        set_header(&mut parts.headers, "x-amz-content-sha256", &empty_hash);
    } else {
        set_header(&mut parts.headers, "content-length", &resent.len().to_string());
    }
    Ok(Some(resent))
}

/// Sets `name` to `value`, when `value` is a valid header value.
fn set_header(headers: &mut hyper::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Python's `quote_plus`, which botocore's form encoding uses.
fn botocore_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `Credential=AKID/date/region/service/aws4_request` of the `Authorization` header, split.
/// AppConfig's REST operations the functions use, by method and path.
fn appconfig_operation(method: &str, path: &str) -> String {
    if let Some((op, _)) = crate::appconfig::deployment_operation(method, path) {
        return op.to_owned();
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let op = match (method, &parts[..]) {
        ("GET", ["applications", _, "configurationprofiles", _]) => "GetConfigurationProfile",
        (
            "POST",
            ["applications", _, "configurationprofiles", _, "hostedconfigurationversions"],
        ) => "CreateHostedConfigurationVersion",
        _ => "?",
    };
    op.to_owned()
}

/// Lambda's REST operations the functions use, by method and path.
fn lambda_operation(method: &str, path: &str) -> String {
    let rest = path.split('/').skip(4).collect::<Vec<_>>();
    let op = match (method, &rest[..]) {
        ("GET", []) => "GetFunction",
        ("PUT", ["code"]) => "UpdateFunctionCode",
        ("GET", ["configuration"]) => "GetFunctionConfiguration",
        ("POST", ["versions"]) => "PublishVersion",
        ("GET", ["aliases", _]) => "GetAlias",
        ("PUT", ["aliases", _]) => "UpdateAlias",
        ("POST", ["invocations"]) => "Invoke",
        _ => "?",
    };
    op.to_owned()
}

fn credential_scope(headers: &hyper::HeaderMap) -> Vec<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(',').next())
        .map(|c| c.split('/').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    Some(&text[start..start + text[start..].find(close)?])
}

/// A form field's value, percent-decoded.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn s3_operation(method: &str, path: &str, query: &str, copy: bool) -> String {
    let has = |k: &str| query.split('&').any(|kv| kv == k || kv.starts_with(&format!("{k}=")));
    // `/bucket/` (as the SDK sends HeadBucket path-style) names the bucket, not an object.
    let object =
        path.trim_start_matches('/').split_once('/').is_some_and(|(_, key)| !key.is_empty());
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
