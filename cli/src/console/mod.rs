//! The web console: `baton serve`'s pages at `/`, drawn from the CodePipeline API it serves
//! (called in process, as the operator or the logged-in key) and kept live by the public
//! events the runtime publishes, sent to the page as server-sent events. `baton console`
//! serves the same pages on loopback for a deployment on AWS, from its API (see
//! [`deployment`]).

mod ansi;
mod artifacts;
mod deployment;
mod execution;
mod guard;
mod logs;
mod pages;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use baton::adapters::local::local_bus::LocalBus;
use baton::api::ControlApi;
use baton::ports::artifacts::ArtifactStore;
use futures_util::StreamExt;
use maud::Markup;
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::{broadcast, watch};

use deployment::Deployment;
pub(crate) use deployment::serve as serve_deployment;
pub(crate) use guard::{Guard, Login};
pub(crate) use pages::url_encode;
use pages::{Frame, Listed, PipelineView};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// How many executions the list's sparkline and a history page show.
const RECENT: usize = 10;
const HISTORY_PAGE: usize = 20;

/// The pages' headers: no script but the console's own, no framing, nothing cached.
const PAGE_HEADERS: &[(&str, &str)] = &[
    ("content-type", "text/html; charset=utf-8"),
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
];

pub(crate) struct Console {
    backend: Backend,
    guard: Guard,
    /// Every control used, one JSON line each: who, when, from where, what.
    audit: PathBuf,
    css: String,
    js: String,
    /// Set when the server shuts down, so live pages' streams end and let it.
    quit: watch::Receiver<bool>,
}

/// Where the pages' facts come from.
pub(crate) enum Backend {
    /// This machine's runtime, beside the console in `baton serve`.
    Home(Home),
    /// A deployment on AWS, through its API with the user's own credentials.
    Deployment(Deployment),
}

/// The runtime `baton serve` runs: its API called in process, its bus, logs and artifacts.
pub(crate) struct Home {
    pub(crate) api: Arc<ControlApi>,
    pub(crate) bus: Arc<LocalBus>,
    /// Where actions' output is kept: `<logs>/<pipeline>/<execution>/<stage>.<action>.<attempt>.log`.
    pub(crate) logs: PathBuf,
    /// The home's artifacts, for their pages and downloads.
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    /// Where an artifact is decrypted to while it is measured or sent: the private home.
    pub(crate) scratch: PathBuf,
}

impl Console {
    pub(crate) fn new(
        backend: Backend,
        guard: Guard,
        audit: PathBuf,
        quit: watch::Receiver<bool>,
    ) -> Self {
        // Content-hashed names: a new binary's assets are never mixed with a cached old page.
        let hashed = |name: &str, ext: &str, body: &str| {
            let digest = hex::encode(sha2::Sha256::digest(body.as_bytes()));
            format!("/console/assets/{name}.{}.{ext}", &digest[..12])
        };
        Self {
            css: hashed("console", "css", CSS),
            js: hashed("console", "js", JS),
            backend,
            guard,
            audit,
            quit,
        }
    }

    fn frame<'a>(&'a self, csrf: &'a str) -> Frame<'a> {
        let region = match &self.backend {
            Backend::Home(h) => h.api.region(),
            Backend::Deployment(d) => d.region(),
        };
        Frame { css: &self.css, js: &self.js, csrf, region, now: now() }
    }

    /// One API call as `user`; a refusal is the API's own message.
    async fn ask(&self, user: &str, operation: &str, input: Value) -> Result<Value, String> {
        let home = match &self.backend {
            Backend::Home(home) => home,
            Backend::Deployment(d) => return d.ask(operation, &input).await,
        };
        let reply =
            home.api.call(operation, input.to_string().as_bytes(), &home.api.caller(user)).await;
        let body = reply.json();
        if reply.status == 200 { Ok(body) } else { Err(refusal_message(&body)) }
    }

    /// Who `user` is to the API, for the audit log.
    fn who(&self, user: &str) -> String {
        match &self.backend {
            Backend::Home(h) => h.api.caller(user),
            Backend::Deployment(d) => d.who().to_owned(),
        }
    }
}

/// The message of an API error's body.
fn refusal_message(body: &Value) -> String {
    body["message"].as_str().or(body["Message"].as_str()).unwrap_or("refused").to_owned()
}

impl Console {
    /// Every page of a list operation: the items under `key`, following `nextToken`.
    async fn ask_all(
        &self,
        user: &str,
        operation: &str,
        mut input: Value,
        key: &str,
    ) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        loop {
            let page = self.ask(user, operation, input.clone()).await?;
            all.extend(page[key].as_array().cloned().unwrap_or_default());
            match page["nextToken"].as_str() {
                Some(next) => input["nextToken"] = json!(next),
                None => return Ok(all),
            }
        }
    }
}

/// The console's routes in front of `router`. `POST /` (and anything carrying `X-Amz-Target`)
/// stays the API's.
pub(crate) fn routes(router: Router, console: Arc<Console>) -> Router {
    let pages = Router::new()
        .route("/", get(index).fallback(api_root))
        .route("/pipelines/{name}", get(pipeline))
        .route("/pipelines/{name}/{control}", axum::routing::post(control))
        .route("/pipelines/{name}/executions/{id}", get(execution_page))
        .route("/pipelines/{name}/executions/{id}/logs/{stage}/{action}", get(logs::log_page))
        .route(
            "/pipelines/{name}/executions/{id}/artifacts/{stage}/{action}/{artifact}",
            get(artifacts::artifact),
        )
        .route(
            "/pipelines/{name}/executions/{id}/logs/{stage}/{action}/follow",
            get(logs::follow_log),
        )
        .route("/console/events", get(events))
        .route("/console/assets/{file}", get(asset))
        .route("/console/login", get(login_page).post(log_in))
        .with_state(console);
    pages.merge(router)
}

async fn api_root(
    State(c): State<Arc<Console>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match &c.backend {
        Backend::Home(h) => crate::serve::answer(&h.api, &method, &uri, &headers, &body).await,
        // Callers of the API use `baton proxy`, which checks that they hold the credentials.
        Backend::Deployment(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    for (name, value) in PAGE_HEADERS {
        response.headers_mut().insert(*name, HeaderValue::from_static(value));
    }
    response
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default()
}

/// The user a request comes from; nobody until they log in, where logging in is needed.
fn user(c: &Console, headers: &HeaderMap) -> Option<String> {
    c.guard.user(headers.get(header::COOKIE).and_then(|v| v.to_str().ok()))
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

async fn index(
    State(c): State<Arc<Console>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.contains_key("x-amz-target") {
        return api_root(State(c), method, uri, headers, body).await;
    }
    let Some(user) = user(&c, &headers) else { return to_login() };
    let q = query(&uri);
    let listed = match listed(&c, &user).await {
        Ok(l) => l,
        Err(e) => return failure(&c, "Pipelines", &e),
    };
    let filter = q.get("q").map_or("", String::as_str);
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    if q.get("fragment").is_some_and(|f| f == "list") {
        return page(StatusCode::OK, pages::pipeline_table(&frame, &listed, filter));
    }
    let body = pages::index(&frame, &listed, filter);
    page(
        StatusCode::OK,
        pages::layout(&frame, "Pipelines", q.get("notice").map(String::as_str), body),
    )
}

/// Every pipeline with its latest executions, the most recently run first.
async fn listed(c: &Console, user: &str) -> Result<Vec<Listed>, String> {
    let all = c.ask_all(user, "ListPipelines", json!({}), "pipelines").await?;
    let mut listed = Vec::with_capacity(all.len());
    for summary in all {
        let name = summary["name"].clone();
        let runs = c
            .ask(
                user,
                "ListPipelineExecutions",
                json!({"pipelineName": name, "maxResults": RECENT}),
            )
            .await?;
        let executions = runs["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default();
        listed.push(Listed { summary, executions });
    }
    let last = |l: &Listed| l.executions.first().and_then(|e| e["lastUpdateTime"].as_f64());
    listed.sort_by(|a, b| {
        last(b)
            .partial_cmp(&last(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.summary["name"].as_str().cmp(&b.summary["name"].as_str()))
    });
    Ok(listed)
}

async fn pipeline(
    State(c): State<Arc<Console>>,
    UrlPath(name): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let q = query(&uri);
    let view = match pipeline_view(&c, &user, &name, q.get("next").cloned()).await {
        Ok(v) => v,
        Err(e) => return failure(&c, &name, &e),
    };
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    if q.get("fragment").is_some_and(|f| f == "live") {
        return page(StatusCode::OK, pages::live(&frame, &view));
    }
    let body = pages::pipeline(&frame, &view);
    page(StatusCode::OK, pages::layout(&frame, &name, q.get("notice").map(String::as_str), body))
}

async fn pipeline_view(
    c: &Console,
    user: &str,
    name: &str,
    next: Option<String>,
) -> Result<PipelineView, String> {
    let declared = c.ask(user, "GetPipeline", json!({"name": name})).await?;
    let state = c.ask(user, "GetPipelineState", json!({"name": name})).await?;
    let history = c
        .ask(
            user,
            "ListPipelineExecutions",
            json!({"pipelineName": name, "maxResults": HISTORY_PAGE, "nextToken": next}),
        )
        .await?;
    // The newest attempt of each action, for its time and the configuration it ran with.
    let actions = c
        .ask(user, "ListActionExecutions", json!({"pipelineName": name, "maxResults": 100}))
        .await?;
    let mut attempts = BTreeMap::new();
    for a in actions["actionExecutionDetails"].as_array().into_iter().flatten() {
        let key = (
            a["stageName"].as_str().unwrap_or_default().to_owned(),
            a["actionName"].as_str().unwrap_or_default().to_owned(),
        );
        let newer = attempts
            .get(&key)
            .is_none_or(|old: &Value| execution::started(a) > execution::started(old));
        if newer {
            attempts.insert(key, a.clone());
        }
    }
    Ok(PipelineView {
        declaration: declared["pipeline"].clone(),
        state,
        executions: history["pipelineExecutionSummaries"].as_array().cloned().unwrap_or_default(),
        next_token: history["nextToken"].as_str().map(str::to_owned),
        attempts,
    })
}

fn failure(c: &Console, title: &str, message: &str) -> Response {
    refusal(c, title, message, StatusCode::NOT_FOUND)
}

fn refusal(c: &Console, title: &str, message: &str, status: StatusCode) -> Response {
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    let body = maud::html! { h1 { (title) } p { a href="/" { "All pipelines" } } };
    page(status, pages::layout(&frame, title, Some(message), body))
}

/// A control from one of the console's forms: checked, recorded, run, then back to the page.
async fn control(
    State(c): State<Arc<Console>>,
    UrlPath((name, control)): UrlPath<(String, String)>,
    ConnectInfo(peer): ConnectInfo<crate::serve::Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site");
    if cross_site || !c.guard.csrf_holds(form.get("csrf").map_or("", String::as_str)) {
        let notice = "This form is out of date or did not come from this console: reload the page and try again.";
        return refusal(&c, &name, notice, StatusCode::FORBIDDEN);
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (operation, input) = match control.as_str() {
        "start" => (
            "StartPipelineExecution",
            json!({"name": name, "variables": variables(&field("variables"))}),
        ),
        "stop" => (
            "StopPipelineExecution",
            json!({"pipelineName": name, "pipelineExecutionId": field("execution"),
                   "abandon": field("abandon") == "true",
                   "reason": Some(field("reason")).filter(|r| !r.is_empty())}),
        ),
        "retry" => (
            "RetryStageExecution",
            json!({"pipelineName": name, "stageName": field("stage"),
                   "pipelineExecutionId": field("execution"), "retryMode": field("mode")}),
        ),
        "transition" if field("enable") == "true" => (
            "EnableStageTransition",
            json!({"pipelineName": name, "stageName": field("stage"), "transitionType": "Inbound"}),
        ),
        "transition" => (
            "DisableStageTransition",
            json!({"pipelineName": name, "stageName": field("stage"), "transitionType": "Inbound",
                   "reason": field("reason")}),
        ),
        "approval" => (
            "PutApprovalResult",
            json!({"pipelineName": name, "stageName": field("stage"), "actionName": field("action"),
                   "token": field("token"),
                   "result": {"status": field("status"), "summary": field("summary")}}),
        ),
        "override" => (
            "OverrideStageCondition",
            json!({"pipelineName": name, "stageName": field("stage"),
                   "pipelineExecutionId": field("execution"), "conditionType": field("condition")}),
        ),
        "rollback" => (
            "RollbackStage",
            json!({"pipelineName": name, "stageName": field("stage"),
                   "targetPipelineExecutionId": field("target")}),
        ),
        _ => return failure(&c, &name, "There is no such control."),
    };
    let outcome = c.ask(&user, operation, input.clone()).await;
    audit(&c, &user, peer.0, operation, &input, outcome.as_ref().err());
    match outcome {
        Ok(out) => {
            let said = match out["pipelineExecutionId"].as_str() {
                Some(id) => format!("{operation}: execution {id}"),
                None => format!("{operation}: done"),
            };
            back(&name, &said)
        }
        Err(e) => back(&name, &format!("{operation} was refused: {e}")),
    }
}

/// `name=value` lines, as the start form takes them.
fn variables(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| json!({"name": n.trim(), "value": v.trim()}))
        .collect()
}

/// Back to the pipeline's page, with a notice of what happened.
fn back(pipeline: &str, notice: &str) -> Response {
    let to =
        format!("/pipelines/{}?notice={}", pages::url_encode(pipeline), pages::url_encode(notice));
    Redirect::to(&to).into_response()
}

/// Appends one line to the audit log. Approval tokens are left out: they are the capability.
fn audit(
    c: &Console,
    user: &str,
    from: std::net::SocketAddr,
    operation: &str,
    input: &Value,
    refused: Option<&String>,
) {
    let mut input = input.clone();
    if let Some(o) = input.as_object_mut() {
        o.remove("token");
    }
    let line = json!({
        "at": baton_core::events::rfc3339((now() * 1000.0) as i64),
        "who": c.who(user),
        "from": from.ip().to_string(),
        "operation": operation,
        "input": input,
        "refused": refused,
    });
    tracing::info!(target: "baton::console", %line, "console control");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&c.audit)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = appended {
        tracing::warn!(error = %e, "cannot append to the console's audit log");
    }
}

/// The public events as they happen, one `change` a line, with the fields a page needs to
/// decide whether to redraw; `lagged` when some were missed.
async fn events(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if user(&c, &headers).is_none() {
        return to_login();
    }
    match &c.backend {
        Backend::Home(h) => live(
            &c,
            changes(h.bus.follow(), |e| {
                json!({
                    "pipeline": e.detail["pipeline"],
                    "execution": e.detail["execution-id"],
                    "stage": e.detail["stage"],
                    "action": e.detail["action"],
                    "state": e.detail["state"],
                    "type": e.detail_type,
                })
            }),
        ),
        Backend::Deployment(d) => {
            live(&c, changes(d.changes(), |pipeline| json!({"pipeline": pipeline})))
        }
    }
}

/// What `rx` receives as `change` events carrying `data` of it; `lagged` when some were missed.
fn changes<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
    data: impl Fn(T) -> Value + Send + Sync + 'static,
) -> impl futures_util::Stream<Item = Event> + Send + 'static {
    let data = Arc::new(data);
    futures_util::stream::unfold(rx, move |mut rx| {
        let data = Arc::clone(&data);
        async move {
            let event = match rx.recv().await {
                Ok(value) => Event::default().event("change").json_data(data(value)),
                Err(broadcast::error::RecvError::Lagged(_)) => Ok(lagged()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((event.unwrap_or_else(|_| lagged()), rx))
        }
    })
}

/// A stream of events as server-sent events that end when the server stops, so graceful
/// shutdown does not wait for open pages.
fn live(c: &Console, events: impl futures_util::Stream<Item = Event> + Send + 'static) -> Response {
    let mut quit = c.quit.clone();
    let ends = async move {
        let _ = quit.wait_for(|q| *q).await;
    };
    let stream = events.take_until(Box::pin(ends)).map(Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Browsers drop an event without data, so even this one carries some.
fn lagged() -> Event {
    Event::default().event("lagged").data("{}")
}

async fn asset(State(c): State<Arc<Console>>, UrlPath(file): UrlPath<String>) -> Response {
    let path = format!("/console/assets/{file}");
    let (body, kind) = if path == c.css {
        (CSS, "text/css; charset=utf-8")
    } else if path == c.js {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn login_page(State(c): State<Arc<Console>>, uri: Uri) -> Response {
    if !c.guard.needs_login() {
        return Redirect::to("/").into_response();
    }
    if let Backend::Deployment(_) = c.backend {
        // The one way in is the link `baton console` printed, which carries its token.
        let token = query(&uri).get("token").cloned().unwrap_or_default();
        return match c.guard.log_in(deployment::TOKEN_KEY, &token) {
            Some(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
            None => refusal(
                &c,
                "Log in",
                "Open the address `baton console` printed: it carries this console's token.",
                StatusCode::FORBIDDEN,
            ),
        };
    }
    let failed = query(&uri).contains_key("failed");
    let frame = c.frame("");
    page(StatusCode::OK, pages::layout(&frame, "Log in", None, pages::login(failed)))
}

async fn log_in(State(c): State<Arc<Console>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| form.get(k).map_or("", String::as_str);
    match c.guard.log_in(field("access_key"), field("secret")) {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        None => Redirect::to("/console/login?failed=1").into_response(),
    }
}

async fn execution_page(
    State(c): State<Arc<Console>>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let view = match execution_view(&c, &user, &name, &id).await {
        Ok(v) => v,
        Err(e) => return failure(&c, &name, &e),
    };
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    if query(&uri).get("fragment").is_some_and(|f| f == "live") {
        return page(StatusCode::OK, execution::live(&frame, &view));
    }
    let title = format!("{name} {}", pages::short(&id));
    page(StatusCode::OK, pages::layout(&frame, &title, None, execution::page(&frame, &view)))
}

async fn execution_view(
    c: &Console,
    user: &str,
    name: &str,
    id: &str,
) -> Result<execution::ExecutionView, String> {
    let got = c
        .ask(user, "GetPipelineExecution", json!({"pipelineName": name, "pipelineExecutionId": id}))
        .await?;
    let execution = got["pipelineExecution"].clone();
    let mut attempts = attempts_of(c, user, name, id).await?;
    attempts.sort_by(|a, b| execution::started(a).total_cmp(&execution::started(b)));
    // The stages of the version this execution ran, when that version is still known.
    let version = execution["pipelineVersion"].clone();
    let declared = match c.ask(user, "GetPipeline", json!({"name": name, "version": version})).await
    {
        Ok(d) => d,
        Err(_) => c.ask(user, "GetPipeline", json!({"name": name})).await?,
    };
    let stages = declared["pipeline"]["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    Ok(execution::ExecutionView { pipeline: name.to_owned(), execution, attempts, stages })
}

/// Every action attempt of one execution.
async fn attempts_of(c: &Console, user: &str, name: &str, id: &str) -> Result<Vec<Value>, String> {
    let input =
        json!({"pipelineName": name, "filter": {"pipelineExecutionId": id}, "maxResults": 100});
    c.ask_all(user, "ListActionExecutions", input, "actionExecutionDetails").await
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_come_one_a_line() {
        assert_eq!(
            variables("Greeting = hi\n\nbad line\nEmpty="),
            vec![json!({"name": "Greeting", "value": "hi"}), json!({"name": "Empty", "value": ""})]
        );
    }
}
