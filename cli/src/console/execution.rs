//! One execution's page: its timeline (one bar per action attempt, stage by stage), resolved
//! variables, artifacts, and each action's log, followed live while the action runs.

use maud::{Markup, PreEscaped, html};
use serde_json::Value;

use super::pages::{Frame, ago, seconds, short, status, text, url_encode};

/// Everything an execution's page shows.
pub(crate) struct ExecutionView {
    pub(crate) pipeline: String,
    pub(crate) execution: Value,
    /// Every action attempt of the execution, oldest first.
    pub(crate) attempts: Vec<Value>,
    /// The declared stages, for their order.
    pub(crate) stages: Vec<String>,
}

pub(crate) fn href(pipeline: &str, execution: &str) -> String {
    format!("/pipelines/{}/executions/{}", url_encode(pipeline), url_encode(execution))
}

pub(crate) fn page(frame: &Frame<'_>, view: &ExecutionView) -> Markup {
    let id = text(&view.execution["pipelineExecutionId"]);
    html! {
        p { a href={"/pipelines/" (url_encode(&view.pipeline))} { "← " (view.pipeline) } }
        h1 { "Execution " code title=(id) { (short(id)) } }
        div #live data-src={(href(&view.pipeline, id)) "?fragment=live"} data-pipeline=(view.pipeline) {
            (live(frame, view))
        }
    }
}

pub(crate) fn live(frame: &Frame<'_>, view: &ExecutionView) -> Markup {
    let e = &view.execution;
    let id = text(&e["pipelineExecutionId"]);
    html! {
        dl.facts {
            dt { "Status" } dd { (status(text(&e["status"]))) @if let Some(s) = e["statusSummary"].as_str() { " " span.muted { (s) } } }
            dt { "Trigger" } dd { (text(&e["trigger"]["triggerType"])) " " span.muted { (text(&e["trigger"]["triggerDetail"])) } }
            dt { "Mode" } dd { (text(&e["executionMode"])) " · version " (e["pipelineVersion"].as_i64().unwrap_or(0)) }
            @for r in e["artifactRevisions"].as_array().into_iter().flatten() {
                dt { "Revision of " (text(&r["name"])) }
                dd { code title=(text(&r["revisionId"])) { (short(text(&r["revisionId"]))) } " " (text(&r["revisionSummary"])) }
            }
        }
        h2 { "Timeline" }
        (timeline(frame, view))
        @let variables = e["variables"].as_array().cloned().unwrap_or_default();
        @if !variables.is_empty() {
            h2 { "Variables" }
            table.variables {
                thead { tr { th { "Name" } th { "Resolved value" } } }
                tbody { @for v in &variables { tr { td { code { (text(&v["name"])) } } td { (text(&v["resolvedValue"])) } } } }
            }
        }
        h2 { "Actions" }
        table.attempts {
            thead { tr { th { "Stage / action" } th { "Status" } th { "Started" } th { "Took" } th { "Output" } th { "Log" } } }
            tbody {
                @for a in &view.attempts {
                    @let stage = text(&a["stageName"]);
                    @let action = text(&a["actionName"]);
                    tr {
                        td { (stage) " / " (action) }
                        td { (status(text(&a["status"]))) @if let Some(m) = a["output"]["executionResult"]["externalExecutionSummary"].as_str() { br; span.muted { (m) } } }
                        td { (ago(frame.now, &a["startTime"])) }
                        td { @if let Some(secs) = took(frame.now, a) { (seconds(secs)) } }
                        td {
                            @for art in a["output"]["outputArtifacts"].as_array().into_iter().flatten() {
                                "artifact " a href=(super::artifacts::artifact_href(&view.pipeline, id, a, text(&art["name"]))) { strong { (text(&art["name"])) } } " "
                                code.muted { (text(&art["s3location"]["key"])) } br;
                            }
                            @for (k, v) in a["output"]["outputVariables"].as_object().into_iter().flatten() {
                                code { (k) } " = " (v.as_str().unwrap_or_default()) br;
                            }
                        }
                        td { a href={(href(&view.pipeline, id)) "/logs/" (url_encode(stage)) "/" (url_encode(action))} { "log" } }
                    }
                }
            }
        }
    }
}

/// A bar per attempt on one time axis; SVG attributes place them, as the page's policy allows
/// no inline style.
fn timeline(frame: &Frame<'_>, view: &ExecutionView) -> Markup {
    let start = |a: &Value| a["startTime"].as_f64().unwrap_or(frame.now);
    let end = |a: &Value| ended(frame.now, a);
    let t0 = view.execution["startTime"]
        .as_f64()
        .or_else(|| view.attempts.iter().map(start).reduce(f64::min))
        .unwrap_or(frame.now);
    let t1 = view.attempts.iter().map(end).fold(t0 + 1.0, f64::max);
    let (label, width, row) = (220.0, 1000.0, 26.0);
    let span = width - label - 10.0;
    let x = |t: f64| label + (t - t0) / (t1 - t0) * span;
    let mut rows: Vec<&Value> = view.attempts.iter().collect();
    let order = |a: &Value| {
        view.stages.iter().position(|s| s == text(&a["stageName"])).unwrap_or(usize::MAX)
    };
    rows.sort_by(|a, b| order(a).cmp(&order(b)).then(start(a).total_cmp(&start(b))));
    let height = row * rows.len() as f64 + 24.0;
    html! {
        @if rows.is_empty() { p.muted { "No action has run yet." } } @else {
            svg.timeline viewBox={"0 0 " (width) " " (height)} role="img" aria-label="Timeline of the action attempts" {
                @for (i, a) in rows.iter().enumerate() {
                    @let y = i as f64 * row;
                    @let (from, to) = (x(start(a)), x(end(a)));
                    g class={"bar " (text(&a["status"]).to_ascii_lowercase())} {
                        title { (text(&a["stageName"])) "/" (text(&a["actionName"])) ": " (text(&a["status"])) ", " (seconds(end(a) - start(a))) }
                        text x="4" y=(y + 17.0) { (text(&a["stageName"])) " / " (text(&a["actionName"])) }
                        rect x=(from) y=(y + 4.0) width=((to - from).max(3.0)) height=(row - 8.0) rx="3" {}
                    }
                }
                text.axis x=(label) y=(height - 6.0) { "0 s" }
                text.axis x=(width - 10.0) y=(height - 6.0) text-anchor="end" { (seconds(t1 - t0)) }
            }
        }
    }
}

/// When an attempt started (0 when it has not).
pub(crate) fn started(a: &Value) -> f64 {
    a["startTime"].as_f64().unwrap_or(0.0)
}

/// When an attempt ended: its last change once it has ended, now while it runs.
fn ended(now: f64, a: &Value) -> f64 {
    if text(&a["status"]) == "InProgress" {
        now
    } else {
        a["lastUpdateTime"].as_f64().unwrap_or(now)
    }
}

/// How long an attempt has taken, if it has started.
pub(crate) fn took(now: f64, a: &Value) -> Option<f64> {
    a["startTime"].as_f64().map(|start| ended(now, a) - start)
}

/// An action's log as its page shows it.
pub(crate) struct LogView<'a> {
    /// Pipeline, execution, stage, action.
    pub(crate) names: [&'a str; 4],
    pub(crate) attempt: u32,
    /// The number of the first line drawn, and the lines drawn, as HTML.
    pub(crate) first: usize,
    pub(crate) html: &'a str,
    pub(crate) total_lines: usize,
    /// Where a follower picks up, while the action runs.
    pub(crate) follow_from: Option<u64>,
    /// The page of the log's keeper (CodeBuild's console), for a deployment's build.
    pub(crate) kept_at: Option<&'a str>,
}

/// An action's log: its last lines drawn at once, the rest a download away, and what it
/// prints next appended live while it runs.
pub(crate) fn log_page(view: &LogView<'_>) -> Markup {
    let [pipeline, execution, stage, action] = view.names;
    let base =
        format!("{}/logs/{}/{}", href(pipeline, execution), url_encode(stage), url_encode(action));
    let follow = view
        .follow_from
        .map(|from| format!("{base}/follow?from={from}&line={}", view.total_lines + 1));
    html! {
        p { a href=(href(pipeline, execution)) { "← execution " (short(execution)) } }
        h1 { (stage) " / " (action) " " span.muted { "attempt " (view.attempt) } }
        p {
            @if view.first > 1 { "Lines " (view.first) " to " (view.total_lines) " of " (view.total_lines) ". " }
            a href={(base) "?raw=1"} { "The whole log as text" }
            @if let Some(url) = view.kept_at {
                ". Kept by its provider: " a href=(url) rel="noopener noreferrer" target="_blank" { (url) }
            }
        }
        pre.log #log data-follow=[follow] {
            (PreEscaped(view.html))
        }
    }
}
