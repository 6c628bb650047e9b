//! `baton --endpoint URL console`: the console of a deployment on AWS, served on loopback. Its
//! pages are drawn from the deployment's API, called with the user's own AWS credentials
//! (signed for the function URL, so IAM decides what they may see and do), and nothing new is
//! exposed on AWS. The deployment's events stay on its bus, so open pages are kept live by
//! reading each pipeline's state every few seconds, and only while a page is open.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use baton::api::Credentials;
use baton_core::engine::ArtifactLocation;
use maud::html;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::logs::latest_attempt;
use super::{
    Backend, Console, Guard, Login, attempts_of, execution, failure, page, pages, refusal_message,
};
use crate::aws_as_user::BuildLog;
use crate::remote::Client;

/// How often open pages' pipelines are read for changes.
const POLL: Duration = Duration::from_secs(2);

/// The key id of the one login the console takes: the token it prints.
pub(super) const TOKEN_KEY: &str = "console";

/// A deployment's API, and the changes seen in it.
pub(crate) struct Deployment {
    client: Arc<Client>,
    region: String,
    /// Where an artifact read from S3 is kept while it is measured or sent.
    scratch: std::path::PathBuf,
    /// The access key id calls are signed with, for the audit log.
    who: String,
    /// The names of pipelines whose state changed.
    changes: broadcast::Sender<String>,
}

impl Deployment {
    pub(super) fn region(&self) -> &str {
        &self.region
    }

    pub(super) fn who(&self) -> &str {
        &self.who
    }

    /// One call; a refusal is the API's own message.
    pub(super) async fn ask(&self, operation: &str, input: &Value) -> Result<Value, String> {
        match self.client.exchange_json(operation, input).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(refusal_message(&error)),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    /// The names of pipelines whose state changes from now on.
    pub(super) fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}

/// The log page of an action of a deployment: a link to where its provider keeps the log, as
/// CodePipeline's console links to CodeBuild's (only a web address is made a link).
pub(super) async fn log_page(c: &Console, user: &str, names: [&str; 4]) -> Response {
    let [name, id, stage, action] = names;
    let title = format!("{stage}/{action}");
    let attempts = match attempts_of(c, user, name, id).await {
        Ok(a) => a,
        Err(e) => return failure(c, &title, &e),
    };
    let Some(latest) = latest_attempt(&attempts, stage, action) else {
        return failure(c, &title, &format!("{stage}/{action} has not run in execution {id}"));
    };
    let url = latest["output"]["executionResult"]["externalExecutionUrl"].as_str();
    let body = html! {
        p { a href=(execution::href(name, id)) { "← execution " (pages::short(id)) } }
        h1 { (title) }
        p {
            "On AWS this action's log is kept by its provider"
            @if let Some(url) = url.filter(|u| pages::is_web_link(u)) {
                ": " a href=(url) rel="noopener noreferrer" target="_blank" { (url) }
            } @else {
                " (CodeBuild's in CloudWatch Logs); this attempt gave no link to it."
            }
        }
    };
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    page(StatusCode::OK, pages::layout(&frame, &title, None, body))
}

impl Deployment {
    /// Where the build of a CodeBuild attempt logs; `None` for other providers, or an attempt
    /// that started no build.
    pub(super) async fn build_log_of(&self, attempt: &Value) -> Result<Option<BuildLog>, String> {
        let provider = &attempt["input"]["actionTypeId"]["provider"];
        let build = attempt["output"]["executionResult"]["externalExecutionId"].as_str();
        let (true, Some(build)) = (provider == "CodeBuild", build) else { return Ok(None) };
        let region = attempt["input"]["region"].as_str().unwrap_or(&self.region);
        let keys = self.client.keys().await.map_err(|e| format!("{e:#}"))?;
        let log = crate::aws_as_user::build_log(&keys, region, build).await;
        log.map(Some).map_err(|e| format!("{e:#}"))
    }

    /// The build log's text so far, read as the user.
    pub(super) async fn log_text(&self, log: &BuildLog) -> Result<Vec<u8>, String> {
        let keys = self.client.keys().await.map_err(|e| format!("{e:#}"))?;
        crate::aws_as_user::log_text(&keys, log).await.map_err(|e| format!("{e:#}"))
    }

    /// A private copy of the artifact at `location`, read from S3 as the user: IAM and the
    /// artifact key's policy decide, as they do for CodePipeline's console.
    pub(super) async fn plaintext(
        &self,
        location: &ArtifactLocation,
    ) -> Result<tempfile::NamedTempFile, String> {
        let copy = tempfile::Builder::new()
            .prefix(".artifact-")
            .tempfile_in(&self.scratch)
            .map_err(|e| e.to_string())?;
        let keys = self.client.keys().await.map_err(|e| e.to_string())?;
        crate::aws_as_user::download(
            &keys,
            &self.region,
            &location.bucket,
            &location.key,
            copy.path(),
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        Ok(copy)
    }
}

/// Serves the console of the deployment behind `client` on `127.0.0.1:port` until Ctrl-C.
pub(crate) async fn serve(
    client: Client,
    region: &str,
    port: u16,
    home: &Path,
) -> Result<ExitCode> {
    let keys = client.keys().await?;
    let client = Arc::new(client);
    // A wrong URL or credentials IAM refuses are said now, in one sentence, not on a page.
    client.exchange_json("ListPipelines", &json!({})).await?.map_err(|e| {
        anyhow!("the deployment's API refused ListPipelines: {}", refusal_message(&e))
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    // The pages act with the user's credentials, so another user of this machine must not
    // reach them through loopback: the page is opened once with a token only this process
    // printed, which leaves a signed session cookie.
    let token = token()?;
    let login = Login {
        accepted: Credentials::from([(TOKEN_KEY.to_owned(), token.clone())]),
        secure: false,
    };
    let (quit_tx, quit_rx) = watch::channel(false);
    let (changes, _) = broadcast::channel(256);
    tokio::spawn(watch_pipelines(Arc::clone(&client), changes.clone(), quit_rx.clone()));
    let deployment = Deployment {
        client,
        region: region.to_owned(),
        scratch: home.to_owned(),
        who: keys.access_key,
        changes,
    };
    let console = Console::new(
        Backend::Deployment(deployment),
        Guard::new(TOKEN_KEY, Some(login))?,
        home.join("console-audit.log"),
        quit_rx,
    );
    let app = super::routes(Router::new(), Arc::new(console));
    let url = format!("http://{addr}/console/login?token={token}");
    eprintln!("The console of the deployment, as you (your AWS credentials), in {region}:");
    eprintln!("  {url}");
    eprintln!("Listening on http://{addr}");
    crate::output::ready(&json!({"console": url, "region": region}));
    let app = app.into_make_service_with_connect_info::<crate::serve::Peer>();
    axum::serve(listener, app).with_graceful_shutdown(crate::serve::quitting(quit_tx)).await?;
    Ok(ExitCode::SUCCESS)
}

/// 32 random bytes as hex.
fn token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("cannot make the console's token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Reads every pipeline's state each [`POLL`] while a page follows the changes, and names the
/// pipelines whose state differs from the last read. Nobody following, nothing is asked.
async fn watch_pipelines(
    client: Arc<Client>,
    changes: broadcast::Sender<String>,
    mut quit: watch::Receiver<bool>,
) {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = quit.changed() => return,
        }
        if changes.receiver_count() == 0 {
            seen.clear();
            continue;
        }
        match states(&client).await {
            Ok(now) => {
                for (name, print) in &now {
                    if seen.get(name) != Some(print) {
                        let _ = changes.send(name.clone());
                    }
                }
                seen = now;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the deployment's pipelines"),
        }
    }
}

/// Each pipeline's name and a digest of its state.
async fn states(client: &Client) -> Result<BTreeMap<String, u64>> {
    let mut names = Vec::new();
    let mut input = json!({});
    loop {
        let page = client.exchange_json("ListPipelines", &input).await?.map_err(api_error)?;
        names.extend(
            page["pipelines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .map(str::to_owned),
        );
        match page["nextToken"].as_str() {
            Some(next) => input = json!({"nextToken": next}),
            None => break,
        }
    }
    let mut states = BTreeMap::new();
    for name in names {
        let state = client.exchange_json("GetPipelineState", &json!({"name": name})).await?;
        // A pipeline deleted since it was listed has no state: nothing to draw.
        let Ok(state) = state else { continue };
        let mut hasher = DefaultHasher::new();
        state.to_string().hash(&mut hasher);
        states.insert(name, hasher.finish());
    }
    Ok(states)
}

fn api_error(body: Value) -> anyhow::Error {
    anyhow!("{}", refusal_message(&body))
}
