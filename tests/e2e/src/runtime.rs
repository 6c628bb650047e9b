//! A small Lambda Runtime API, so the built function binaries run as they do on Lambda: each
//! process polls `/invocation/next`, handles the payload, and posts its response or error.
//!
//! A [`Pool`] is one function with one or more processes (execution environments) that take
//! invocations from one queue, so two invocations can run at once as on Lambda. Each process
//! has its own listener, which also times its start-up (spawn to first `/next`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// What an invocation ended with: the function's response, or its error document.
pub type Outcome = Result<Value, Value>;

struct Invocation {
    id: String,
    /// Its X-Ray trace id, as Lambda hands one to each traced invocation.
    trace: String,
    payload: Value,
    deadline_ms: u128,
    reply: oneshot::Sender<Outcome>,
    /// When a process took it: Lambda bills from there, not from the wait for a free process
    /// (Lambda would have started another one).
    handed: Arc<OnceLock<Instant>>,
}

#[derive(Clone)]
struct Shared {
    function: String,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_error: Arc<Mutex<Option<String>>>,
}

#[derive(Clone)]
struct Listener {
    shared: Shared,
    first_next: Arc<OnceLock<Instant>>,
}

/// One function process.
pub struct Instance {
    child: Child,
    spawned: Instant,
    first_next: Arc<OnceLock<Instant>>,
}

impl Instance {
    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Spawn to first `/invocation/next`, once the process asked.
    pub fn startup(&self) -> Option<Duration> {
        self.first_next.get().map(|t| t.duration_since(self.spawned))
    }

    /// `kill -9`.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.start_kill().context("SIGKILL")?;
        self.child.wait().await?;
        Ok(())
    }
}

/// One invocation as the harness saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    #[allow(missing_docs)]
    pub function: String,
    /// The payload's detail-type, `sweep` or `stream`.
    pub kind: String,
    #[allow(missing_docs)]
    pub ok: bool,
    /// From a process taking the payload to its response.
    pub duration: Duration,
    /// The X-Ray trace id the invocation was given.
    pub trace: String,
    /// The action state changes the payload carried: its event's, or the events of its stream
    /// records, in order.
    pub carried: Vec<Carried>,
}

/// An action state change an invocation was handed.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    #[allow(missing_docs)]
    pub execution: String,
    /// `<stage>/<action>`; empty for the execution's own state change.
    pub action: String,
    /// STARTED, SUCCEEDED, FAILED...
    pub state: String,
    /// Whether it carried an action's result for stage-advance to apply.
    pub completion: bool,
    /// Which of the payload's stream records carried it (0 for an EventBridge event).
    pub record: usize,
}

impl Carried {
    /// What an EventBridge envelope or a bus event's `detail-type` and `detail` carry: an
    /// action's state change, or the execution's (with an empty `action`).
    fn of(detail_type: &str, detail: &Value) -> Option<Self> {
        use baton::core::events::{ACTION_DETAIL_TYPE, PIPELINE_DETAIL_TYPE};
        if detail_type != ACTION_DETAIL_TYPE && detail_type != PIPELINE_DETAIL_TYPE {
            return None;
        }
        let s = |k: &str| detail.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        Some(Self {
            execution: s("execution-id"),
            action: if detail_type == ACTION_DETAIL_TYPE {
                format!("{}/{}", s("stage"), s("action"))
            } else {
                String::new()
            },
            state: s("state"),
            completion: detail.get(baton::bus_events::COMPLETION_FIELD).is_some(),
            record: 0,
        })
    }

    /// What `payload` (an EventBridge envelope, or a batch of stream records) carries.
    pub fn all_in(payload: &Value) -> Vec<Self> {
        if let Some(records) = payload.get("Records").and_then(Value::as_array) {
            let events = |r| baton::adapters::aws::dynamodb_relay::record_events(r).ok();
            return (records.iter().enumerate())
                .filter_map(|(n, r)| Some((n, events(r)?)))
                .flat_map(|(n, events)| {
                    events.into_iter().filter_map(move |e| {
                        Some(Self { record: n, ..Self::of(&e.detail_type, &e.detail)? })
                    })
                })
                .collect();
        }
        let detail_type = payload.get("detail-type").and_then(Value::as_str).unwrap_or_default();
        payload.get("detail").and_then(|d| Self::of(detail_type, d)).into_iter().collect()
    }
}

/// A function with its processes.
pub struct Pool {
    #[allow(missing_docs)]
    pub function: String,
    sender: mpsc::Sender<Invocation>,
    shared: Shared,
    /// The processes.
    pub instances: Vec<Instance>,
    timeout: Duration,
    records: Arc<Mutex<Vec<Record>>>,
}

/// How to start a function's processes.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary.
    pub binary: PathBuf,
    /// The environment (nothing else is inherited).
    pub env: BTreeMap<String, String>,
    /// Where each process's output goes (`<dir>/<function>-<n>.log`).
    pub log_dir: PathBuf,
    #[allow(missing_docs)]
    pub memory_mb: u64,
    #[allow(missing_docs)]
    pub timeout: Duration,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Pool {
    /// Starts `count` processes of `launch.binary` and waits until each asks for work.
    pub async fn start(
        function: &str,
        launch: &Launch,
        count: usize,
        records: Arc<Mutex<Vec<Record>>>,
    ) -> Result<Self> {
        if !launch.binary.is_file() {
            bail!(
                "{} is missing: build the functions first with `cargo build --workspace --bins` \
                 (`make test` does)",
                launch.binary.display()
            );
        }
        let (sender, receiver) = mpsc::channel(1024);
        let shared = Shared {
            function: function.to_owned(),
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            pending: Arc::default(),
            init_error: Arc::default(),
        };
        let mut pool = Self {
            function: function.to_owned(),
            sender,
            shared,
            instances: Vec::new(),
            timeout: launch.timeout,
            records,
        };
        for _ in 0..count {
            pool.spawn(launch).await?;
        }
        Ok(pool)
    }

    /// Starts one more process and waits for its first `/next`.
    pub async fn spawn(&mut self, launch: &Launch) -> Result<()> {
        let first_next = Arc::new(OnceLock::new());
        let listener = Listener { shared: self.shared.clone(), first_next: first_next.clone() };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(listener);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = tcp.local_addr()?.to_string();
        tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        });
        std::fs::create_dir_all(&launch.log_dir)?;
        let n = self.instances.len();
        let log = std::fs::File::create(launch.log_dir.join(format!("{}-{n}.log", self.function)))?;
        let spawned = Instant::now();
        let child = Command::new(&launch.binary)
            .env_clear()
            .envs(&launch.env)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", launch.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.function))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("e2e/{n}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", launch.binary.display()))?;
        let mut instance = Instance { child, spawned, first_next };
        let deadline = Instant::now() + Duration::from_secs(30);
        while instance.first_next.get().is_none() {
            if let Some(status) = instance.child.try_wait()? {
                let why =
                    self.shared.init_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
                bail!(
                    "{} exited ({status}) before asking for work: {}; see {}",
                    self.function,
                    why.unwrap_or_else(|| "no init error reported".into()),
                    launch.log_dir.display()
                );
            }
            if Instant::now() > deadline {
                bail!("{} did not ask for work within 30 s", self.function);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.instances.push(instance);
        Ok(())
    }

    /// Invokes the function with `payload` and waits for its outcome.
    pub async fn invoke(&self, payload: Value) -> Result<Outcome> {
        let kind = payload.get("detail-type").and_then(Value::as_str).map_or_else(
            || match () {
                () if payload.get("schedule").is_some() => "sweep".into(),
                () if payload.get("Records").is_some() => "stream".into(),
                () => "?".into(),
            },
            str::to_owned,
        );
        let carried = Carried::all_in(&payload);
        let (reply, answer) = oneshot::channel();
        let deadline_ms =
            SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() + self.timeout.as_millis();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("e2e-{n}");
        // X-Ray's format: `Root=1-<8 hex of epoch seconds>-<24 hex>`, one per invocation.
        let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let trace = format!("Root=1-{secs:08x}-{:024x};Sampled=1", u128::from(n) + 1);
        let handed = Arc::new(OnceLock::new());
        let invocation = Invocation {
            id,
            trace: trace.clone(),
            payload,
            deadline_ms,
            reply,
            handed: handed.clone(),
        };
        self.sender
            .send(invocation)
            .await
            .map_err(|_| anyhow!("{} takes no more invocations", self.function))?;
        let outcome = tokio::time::timeout(self.timeout + Duration::from_secs(5), answer)
            .await
            .map_err(|_| anyhow!("{} did not answer within its timeout", self.function))?
            .map_err(|_| anyhow!("{} dropped the invocation", self.function))?;
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push(Record {
            function: self.function.clone(),
            kind,
            ok: outcome.is_ok(),
            duration: handed.get().map_or(Duration::ZERO, Instant::elapsed),
            trace,
            carried,
        });
        Ok(outcome)
    }

    /// Start-up times of the processes that have asked for work.
    pub fn startups(&self) -> Vec<Duration> {
        self.instances.iter().filter_map(Instance::startup).collect()
    }
}

async fn next(State(l): State<Listener>) -> (StatusCode, HeaderMap, Bytes) {
    let _ = l.first_next.set(Instant::now());
    let invocation = l.shared.queue.lock().await.recv().await;
    let Some(inv) = invocation else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let _ = inv.handed.set(Instant::now());
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", inv.id.clone());
    put("lambda-runtime-deadline-ms", inv.deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:us-east-1:111111111111:function:{}", l.shared.function),
    );
    put("lambda-runtime-trace-id", inv.trace.clone());
    put("content-type", "application/json".into());
    l.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(inv.id, inv.reply);
    (StatusCode::OK, headers, Bytes::from(inv.payload.to_string()))
}

fn settle(l: &Listener, id: &str, outcome: Outcome) -> StatusCode {
    let reply = l.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    match reply {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

async fn response(
    State(l): State<Listener>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&l, &id, Ok(json(&body)))
}

async fn error(State(l): State<Listener>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    settle(&l, &id, Err(json(&body)))
}

async fn init_error(State(l): State<Listener>, body: Bytes) -> StatusCode {
    *l.shared.init_error.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// The built binary `name` under the workspace's target folder: the debug build, or with
/// `BATON_E2E_PACKAGES` set, the Lambda package `make build` made (what AWS would run).
pub fn binary(workspace: &Path, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    if runs_packages() {
        target.join("lambda").join(name).join("bootstrap")
    } else {
        target.join("debug").join(name)
    }
}

/// Whether the harness runs the Lambda packages rather than debug builds.
pub fn runs_packages() -> bool {
    std::env::var_os("BATON_E2E_PACKAGES").is_some_and(|v| !v.is_empty())
}
