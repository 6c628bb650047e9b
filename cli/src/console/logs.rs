//! An action's log: its last lines drawn at once, the whole a download away, and what it
//! prints next followed live. On one machine the log is the action's output file; for a
//! deployment it is a CodeBuild build's log in CloudWatch Logs, read with the user's own
//! credentials. Other providers of a deployment keep their logs themselves: the page links
//! there, as CodePipeline's console does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{
    Backend, Console, Home, ansi, attempts_of, deployment, execution, failure, live, page, pages,
    query, to_login, user,
};
use crate::aws_as_user::BuildLog;

/// How many of a log's last lines a page draws at once.
const LOG_LINES: usize = 1000;

/// Where an action's log is read from.
pub(super) enum LogSource {
    /// The action's output on this machine.
    File(PathBuf),
    /// A CodeBuild build's log in CloudWatch Logs, and the build's page in AWS's console.
    Build { log: BuildLog, url: Option<String> },
}

impl LogSource {
    /// Everything written so far.
    async fn read(&self, c: &Console) -> Result<Vec<u8>, String> {
        match (self, &c.backend) {
            (Self::File(path), _) => Ok(tokio::fs::read(path).await.unwrap_or_default()),
            (Self::Build { log, .. }, Backend::Deployment(d)) => d.log_text(log).await,
            (Self::Build { .. }, Backend::Home(_)) => Err("no AWS here".to_owned()),
        }
    }

    /// How long a follower waits before reading again: CloudWatch is asked less often.
    fn pause(&self) -> Duration {
        match self {
            Self::File(_) => Duration::from_millis(250),
            Self::Build { .. } => Duration::from_secs(2),
        }
    }
}

/// An action's latest log in an execution, its attempt, and whether it is still being
/// written; `None` for a deployment's action whose provider keeps its log where the console
/// cannot read it. Names are checked against the execution and its declaration, never taken
/// as paths.
async fn log_source(
    c: &Console,
    user: &str,
    names: [&str; 4],
) -> Result<Option<(LogSource, u32, bool)>, String> {
    let [name, id, stage, action] = names;
    let attempts = attempts_of(c, user, name, id).await?;
    let latest = latest_attempt(&attempts, stage, action)
        .ok_or_else(|| format!("{stage}/{action} has not run in execution {id}"))?;
    let running = latest["status"] == "InProgress";
    let plain = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    if ![name, id, stage, action].iter().all(|s| plain(s)) {
        return Err("There is no such log.".into());
    }
    let logs = match &c.backend {
        Backend::Home(Home { logs, .. }) => logs,
        Backend::Deployment(d) => {
            let tries = attempts
                .iter()
                .filter(|a| a["stageName"] == stage && a["actionName"] == action)
                .count() as u32;
            let url = latest["output"]["executionResult"]["externalExecutionUrl"]
                .as_str()
                .filter(|u| pages::is_web_link(u))
                .map(str::to_owned);
            let found = d.build_log_of(latest).await?;
            return Ok(found.map(|log| (LogSource::Build { log, url }, tries, running)));
        }
    };
    let dir = logs.join(name).join(id);
    let prefix = format!("{stage}.{action}.");
    let newest = std::fs::read_dir(&dir)
        .map_err(|_| format!("{stage}/{action} wrote no log in execution {id}"))?
        .flatten()
        .filter_map(|f| {
            let file = f.file_name().into_string().ok()?;
            file.strip_prefix(&prefix)?.strip_suffix(".log")?.parse::<u32>().ok()
        })
        .max()
        .ok_or_else(|| format!("{stage}/{action} wrote no log in execution {id}"))?;
    let path = dir.join(format!("{prefix}{newest}.log"));
    Ok(Some((LogSource::File(path), newest, running)))
}

/// The newest attempt of `stage`/`action` among an execution's attempts.
pub(super) fn latest_attempt<'a>(
    attempts: &'a [Value],
    stage: &str,
    action: &str,
) -> Option<&'a Value> {
    attempts.iter().filter(|a| a["stageName"] == stage && a["actionName"] == action).max_by(
        |a, b| {
            a["startTime"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["startTime"].as_f64().unwrap_or(0.0))
        },
    )
}

pub(super) async fn log_page(
    State(c): State<Arc<Console>>,
    UrlPath((name, id, stage, action)): UrlPath<(String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let names = [name.as_str(), &id, &stage, &action];
    let title = format!("{stage}/{action}");
    let (source, attempt, running) = match log_source(&c, &user, names).await {
        Ok(Some(found)) => found,
        Ok(None) => return deployment::log_page(&c, &user, names).await,
        Err(e) => return failure(&c, &title, &e),
    };
    let bytes = match source.read(&c).await {
        Ok(bytes) => bytes,
        Err(e) => return failure(&c, &title, &format!("The log cannot be read: {e}")),
    };
    if query(&uri).contains_key("raw") {
        return (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response();
    }
    // While it runs, only whole lines are drawn; the follower sends the rest as it completes.
    let whole = if running {
        bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    } else {
        bytes.len()
    };
    let text = String::from_utf8_lossy(&bytes[..whole]);
    let total = text.lines().count();
    let first = total.saturating_sub(LOG_LINES) + 1;
    let tail_from = if first > 1 {
        text.match_indices('\n').nth(first - 2).map_or(0, |(i, _)| i + 1)
    } else {
        0
    };
    let html = ansi::lines_html(&text[tail_from..], first);
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    let body = execution::log_page(&execution::LogView {
        names,
        attempt,
        first,
        html: &html,
        total_lines: total,
        follow_from: running.then_some(whole as u64),
        kept_at: match &source {
            LogSource::Build { url, .. } => url.as_deref(),
            LogSource::File(_) => None,
        },
    });
    page(StatusCode::OK, pages::layout(&frame, &title, None, body))
}

/// What an action prints next, as HTML lines (`lines` events), until it stops running (`end`).
pub(super) async fn follow_log(
    State(c): State<Arc<Console>>,
    UrlPath((name, id, stage, action)): UrlPath<(String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let Ok(Some((source, _, _))) = log_source(&c, &user, [&name, &id, &stage, &action]).await
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let q = query(&uri);
    let from: u64 = q.get("from").and_then(|f| f.parse().ok()).unwrap_or(0);
    let line: usize = q.get("line").and_then(|f| f.parse().ok()).unwrap_or(1);
    let follower = LogFollower {
        console: Arc::clone(&c),
        user,
        names: [name, id, stage, action],
        source,
        from,
        line,
        ended: false,
    };
    let stream = futures_util::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((event, f))
    });
    live(&c, stream)
}

/// Reads a growing log from where the page stopped.
struct LogFollower {
    console: Arc<Console>,
    user: String,
    /// Pipeline, execution, stage, action.
    names: [String; 4],
    source: LogSource,
    from: u64,
    line: usize,
    ended: bool,
}

impl LogFollower {
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            let bytes = self.source.read(&self.console).await.unwrap_or_default();
            let new = bytes.get(self.from as usize..).unwrap_or_default();
            if let Some(cut) = new.iter().rposition(|b| *b == b'\n') {
                return Some(self.send(&new[..=cut]));
            }
            let [name, id, stage, action] = &self.names;
            let names = [name.as_str(), id, stage, action];
            let running = log_source(&self.console, &self.user, names)
                .await
                .is_ok_and(|found| found.is_some_and(|(_, _, running)| running));
            if !running {
                self.ended = true;
                return Some(self.send(new));
            }
            tokio::time::sleep(self.source.pause()).await;
        }
    }

    fn send(&mut self, chunk: &[u8]) -> Event {
        let text = String::from_utf8_lossy(chunk);
        let html = ansi::lines_html(&text, self.line);
        self.from += chunk.len() as u64;
        self.line += text.lines().count();
        let kind = if self.ended { "end" } else { "lines" };
        Event::default()
            .event(kind)
            .json_data(html)
            .unwrap_or_else(|_| Event::default().event(kind).data("\"\""))
    }
}
