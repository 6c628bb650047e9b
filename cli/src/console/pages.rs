//! The console's pages, rendered on the server from what the CodePipeline API answers. Every
//! value is escaped by the template (maud), so nothing a pipeline or a build says can run in
//! the page; the Content-Security-Policy allows no inline script besides.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// What every page shares: where its assets are and the token its forms carry.
pub(crate) struct Frame<'a> {
    pub(crate) css: &'a str,
    pub(crate) js: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) region: &'a str,
    /// Seconds since the epoch, for "3 min ago".
    pub(crate) now: f64,
}

/// One pipeline on the list: its summary and its latest executions, newest first.
pub(crate) struct Listed {
    pub(crate) summary: Value,
    pub(crate) executions: Vec<Value>,
}

/// Everything one pipeline's page shows.
pub(crate) struct PipelineView {
    pub(crate) declaration: Value,
    pub(crate) state: Value,
    pub(crate) executions: Vec<Value>,
    pub(crate) next_token: Option<String>,
    /// The latest execution's action attempts, by stage and action name.
    pub(crate) attempts: BTreeMap<(String, String), Value>,
}

pub(crate) fn layout(frame: &Frame<'_>, title: &str, notice: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Baton" }
                link rel="stylesheet" href=(frame.css);
                script src=(frame.js) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Baton" }
                    span.region { (frame.region) }
                }
                main {
                    @if let Some(n) = notice {
                        p.notice role="status" { (n) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The list of pipelines, most recently run first.
pub(crate) fn index(frame: &Frame<'_>, pipelines: &[Listed], filter: &str) -> Markup {
    html! {
        h1 { "Pipelines" }
        form.filter method="get" action="/" {
            label for="filter" { "Filter" }
            input #filter type="search" name="q" value=(filter) autocomplete="off";
            noscript { button type="submit" { "Filter" } }
        }
        div #live data-src="/?fragment=list" data-pipeline="" {
            (pipeline_table(frame, pipelines, filter))
        }
    }
}

pub(crate) fn pipeline_table(frame: &Frame<'_>, pipelines: &[Listed], filter: &str) -> Markup {
    let shown = pipelines.iter().filter(|p| {
        filter.is_empty()
            || text(&p.summary["name"]).to_lowercase().contains(&filter.to_lowercase())
    });
    html! {
        @if pipelines.is_empty() {
            p { "No pipelines yet. Create one with " code { "baton run FILE" } " or " code { "aws codepipeline create-pipeline" } "." }
        } @else {
            table.pipelines {
                thead { tr { th { "Pipeline" } th { "Type" } th { "Mode" } th { "Last execution" } th { "Recent" } } }
                tbody {
                    @for p in shown {
                        @let name = text(&p.summary["name"]);
                        tr data-name=(name) {
                            td { a href=(pipeline_href(name)) { (name) } }
                            td { (text(&p.summary["pipelineType"])) }
                            td { (text(&p.summary["executionMode"])) }
                            td {
                                @if let Some(last) = p.executions.first() {
                                    (status(text(&last["status"])))
                                    " " (ago(frame.now, &last["lastUpdateTime"]))
                                } @else { span.muted { "never run" } }
                            }
                            td.spark {
                                @for e in p.executions.iter().rev() {
                                    @let s = text(&e["status"]);
                                    span class={"tick " (slug(s))} title={(s) " " (short(text(&e["pipelineExecutionId"])))} {
                                        (icon(s))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One pipeline: its controls, its stages as a graph, its history.
pub(crate) fn pipeline(frame: &Frame<'_>, view: &PipelineView) -> Markup {
    let name = text(&view.declaration["name"]);
    let variables = view.declaration["variables"].as_array().cloned().unwrap_or_default();
    html! {
        h1 { (name) }
        p.meta {
            (text(&view.declaration["pipelineType"])) " · "
            (text(&view.declaration["executionMode"])) " · version "
            (view.declaration["version"].as_i64().unwrap_or(1))
        }
        form.control method="post" action={(pipeline_href(name)) "/start"}
            data-confirm={"Start an execution of " (name) "?"} {
            (csrf(frame))
            @if !variables.is_empty() {
                label for="variables" { "Variables (one " code { "name=value" } " a line)" }
                textarea #variables name="variables" rows=(variables.len()) {
                    @for v in &variables {
                        (text(&v["name"])) "=" (text(&v["defaultValue"])) "\n"
                    }
                }
            }
            button type="submit" { "Start execution" }
        }
        div #live data-src={(pipeline_href(name)) "?fragment=live"} data-pipeline=(name) {
            (live(frame, view))
        }
    }
}

/// The part of a pipeline's page that events change: the graph and the history.
pub(crate) fn live(frame: &Frame<'_>, view: &PipelineView) -> Markup {
    let name = text(&view.declaration["name"]);
    let states: BTreeMap<&str, &Value> = view.state["stageStates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (text(&s["stageName"]), s))
        .collect();
    let running =
        view.executions.iter().find(|e| matches!(text(&e["status"]), "InProgress" | "Stopping"));
    html! {
        @if let Some(e) = running {
            @let id = text(&e["pipelineExecutionId"]);
            form.control.stop method="post" action={(pipeline_href(name)) "/stop"}
                data-confirm={"Stop execution " (short(id)) "?"} {
                (csrf(frame))
                input type="hidden" name="execution" value=(id);
                span { "Execution " code { (short(id)) } " is " (status(text(&e["status"]))) }
                label { input type="checkbox" name="abandon" value="true"; " abandon running actions" }
                label { "Reason " input type="text" name="reason" maxlength="200"; }
                button type="submit" { "Stop" }
            }
        }
        ol.graph aria-label="Stages" {
            @for (i, stage) in view.declaration["stages"].as_array().into_iter().flatten().enumerate() {
                @let stage_name = text(&stage["name"]);
                @let state = states.get(stage_name).copied().unwrap_or(&Value::Null);
                // The first stage has no inbound transition, in CodePipeline as here.
                @if i > 0 { (transition(frame, name, stage_name, state)) }
                (stage_box(frame, view, name, stage, state))
            }
        }
        (history(frame, name, &view.executions, view.next_token.as_deref()))
    }
}

fn transition(frame: &Frame<'_>, pipeline: &str, stage: &str, state: &Value) -> Markup {
    let t = &state["inboundTransitionState"];
    let enabled = t["enabled"].as_bool().unwrap_or(true);
    let action = format!("{}/transition", pipeline_href(pipeline));
    html! {
        li class=@if enabled { "transition open" } @else { "transition held" } data-into=(stage) {
            @if enabled {
                details {
                    summary { span aria-hidden="true" { "→" } span.sr { "Transition into " (stage) " is enabled" } }
                    form method="post" action=(action) data-confirm={"Disable the transition into " (stage) "?"} {
                        (csrf(frame))
                        input type="hidden" name="stage" value=(stage);
                        input type="hidden" name="enable" value="false";
                        label { "Reason " input type="text" name="reason" required maxlength="300"; }
                        button type="submit" { "Disable transition" }
                    }
                }
            } @else {
                div.why {
                    strong { span aria-hidden="true" { "⊘ " } "Transition disabled" }
                    " — " q { (text(&t["disabledReason"])) }
                    @if let Some(by) = t["lastChangedBy"].as_str() { " by " (by) }
                    @if !t["lastChangedAt"].is_null() { " " (ago(frame.now, &t["lastChangedAt"])) }
                }
                form method="post" action=(action) data-confirm={"Enable the transition into " (stage) "?"} {
                    (csrf(frame))
                    input type="hidden" name="stage" value=(stage);
                    input type="hidden" name="enable" value="true";
                    button type="submit" { "Enable transition" }
                }
            }
        }
    }
}

/// Why the `place`-th execution waiting before a stage waits: a disabled transition, or the
/// execution holding the stage, as the pipeline's mode has it wait.
fn why_waiting(view: &PipelineView, state: &Value, place: usize) -> Markup {
    let latest = &state["latestExecution"];
    let holder =
        latest["pipelineExecutionId"].as_str().filter(|_| latest["status"] == "InProgress");
    let mode = view.declaration["executionMode"].as_str().unwrap_or("SUPERSEDED");
    html! {
        @if state["inboundTransitionState"]["enabled"] == false {
            ": the transition into it is disabled"
        } @else if let Some(holder) = holder {
            @if mode == "QUEUED" {
                ", number " (place + 1) " in the queue behind execution " code { (short(holder)) }
                span.muted { " (QUEUED: one execution at a time, in the order they started)" }
            } @else {
                " until execution " code { (short(holder)) } " leaves it"
                span.muted { " (SUPERSEDED: a newer execution takes its place while it waits)" }
            }
        }
    }
}

fn stage_box(
    frame: &Frame<'_>,
    view: &PipelineView,
    pipeline: &str,
    stage: &Value,
    state: &Value,
) -> Markup {
    let name = text(&stage["name"]);
    let latest = &state["latestExecution"];
    let stage_status = text(&latest["status"]);
    let mut groups: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for a in stage["actions"].as_array().into_iter().flatten() {
        groups.entry(a["runOrder"].as_i64().unwrap_or(1)).or_default().push(a);
    }
    let action_states: BTreeMap<&str, &Value> = state["actionStates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (text(&a["actionName"]), a))
        .collect();
    let waiting: Vec<&str> = state["inboundExecutions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| text(&e["pipelineExecutionId"]))
        .collect();
    html! {
        li class={"stage " (slug(stage_status))} data-stage=(name) {
            h2 {
                (name) " "
                @if stage_status.is_empty() { span.muted { "not run" } } @else { (status(stage_status)) }
            }
            @if let Some(id) = latest["pipelineExecutionId"].as_str() {
                p.execution { "execution " a href=(super::execution::href(pipeline, id)) { code { (short(id)) } } }
            }
            @for (place, id) in waiting.iter().enumerate() {
                p.why {
                    span aria-hidden="true" { "… " } "Execution " code { (short(id)) } " waits to enter this stage"
                    (why_waiting(view, state, place))
                }
            }
            @for (order, actions) in &groups {
                div.group aria-label={"run order " (order)} {
                    @for a in actions {
                        (action_box(frame, view, pipeline, name, a, action_states.get(text(&a["name"])).copied()))
                    }
                }
            }
            @for (key, kind, label) in CONDITIONS {
                @if let Some(c) = state.get(key).filter(|c| !c.is_null()) {
                    (condition(frame, pipeline, name, latest["pipelineExecutionId"].as_str(), c, kind, label))
                }
            }
            @let targets: Vec<&str> = view.executions.iter()
                .filter(|e| text(&e["status"]) == "Succeeded")
                .map(|e| text(&e["pipelineExecutionId"]))
                .collect();
            @if !targets.is_empty() && stage_status != "InProgress" {
                details.rollback {
                    summary { "Roll back" }
                    form method="post" action={(pipeline_href(pipeline)) "/rollback"}
                        data-confirm={"Roll stage " (name) " back?"} {
                        (csrf(frame))
                        input type="hidden" name="stage" value=(name);
                        label { "to execution "
                            select name="target" {
                                @for t in &targets { option value=(t) { (short(t)) } }
                            }
                        }
                        button type="submit" { "Roll back" }
                    }
                }
            }
            @if stage_status == "Failed" {
                @if let Some(id) = latest["pipelineExecutionId"].as_str() {
                    form.control method="post" action={(pipeline_href(pipeline)) "/retry"}
                        data-confirm={"Retry stage " (name) "?"} {
                        (csrf(frame))
                        input type="hidden" name="stage" value=(name);
                        input type="hidden" name="execution" value=(id);
                        button type="submit" name="mode" value="FAILED_ACTIONS" { "Retry failed actions" }
                        button type="submit" name="mode" value="ALL_ACTIONS" { "Retry all actions" }
                    }
                }
            }
        }
    }
}

/// The stage conditions GetPipelineState shows: its key, the kind OverrideStageCondition
/// takes (none for on-failure, which cannot be overridden), and what people call it.
const CONDITIONS: [(&str, Option<&str>, &str); 3] = [
    ("beforeEntryConditionState", Some("BEFORE_ENTRY"), "Before entry"),
    ("onSuccessConditionState", Some("ON_SUCCESS"), "On success"),
    ("onFailureConditionState", None, "On failure"),
];

fn condition(
    frame: &Frame<'_>,
    pipeline: &str,
    stage: &str,
    execution: Option<&str>,
    state: &Value,
    kind: Option<&str>,
    label: &str,
) -> Markup {
    let latest = &state["latestExecution"];
    let s = text(&latest["status"]);
    let rules = state["conditionStates"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ruleStates"].as_array().into_iter().flatten());
    html! {
        div class={"condition " (slug(s))} {
            p { (label) " condition: " (status(s)) @if let Some(m) = latest["summary"].as_str() { " " span.muted { (m) } } }
            ul.rules {
                @for r in rules {
                    li { (text(&r["ruleName"])) ": " (status(text(&r["latestExecution"]["status"])))
                        @if let Some(m) = r["latestExecution"]["summary"].as_str() { " " span.muted { (m) } } }
                }
            }
            @if let (Some(kind), Some(id), "InProgress") = (kind, execution, s) {
                form.control method="post" action={(pipeline_href(pipeline)) "/override"}
                    data-confirm={"Override the " (label.to_lowercase()) " condition of " (stage) "?"} {
                    (csrf(frame))
                    input type="hidden" name="stage" value=(stage);
                    input type="hidden" name="execution" value=(id);
                    input type="hidden" name="condition" value=(kind);
                    button type="submit" { "Override condition" }
                }
            }
        }
    }
}

fn action_box(
    frame: &Frame<'_>,
    view: &PipelineView,
    pipeline: &str,
    stage: &str,
    action: &Value,
    state: Option<&Value>,
) -> Markup {
    let name = text(&action["name"]);
    let type_id = &action["actionTypeId"];
    let latest = state.map_or(&Value::Null, |s| &s["latestExecution"]);
    let s = text(&latest["status"]);
    let attempt = view.attempts.get(&(stage.to_owned(), name.to_owned()));
    let configuration = attempt.map_or(&action["configuration"], |a| &a["input"]["configuration"]);
    let approval = text(&type_id["category"]) == "Approval";
    let artifacts = |key: &str| -> Vec<&str> {
        action[key].as_array().into_iter().flatten().map(|a| text(&a["name"])).collect()
    };
    let (inputs, outputs) = (artifacts("inputArtifacts"), artifacts("outputArtifacts"));
    html! {
        div class={"action " (slug(s))} data-action=(name)
            data-inputs=(inputs.join("\n")) data-outputs=(outputs.join("\n")) {
            h3 { (name) }
            p.provider { (text(&type_id["owner"])) "/" (text(&type_id["provider"])) }
            p.state {
                @if s.is_empty() { span.muted { "not run" } } @else { (status(s)) }
                @if let Some(a) = attempt { " " (duration(frame.now, a)) }
            }
            @if let Some(rev) = state.and_then(|st| st["currentRevision"]["revisionId"].as_str()) {
                p.revision { "revision " code title=(rev) { (short(rev)) } }
            }
            @if let Some(summary) = latest["summary"].as_str() { p.summary { (summary) } }
            @if let Some(err) = latest["errorDetails"]["message"].as_str() { p.error { (err) } }
            @if !inputs.is_empty() || !outputs.is_empty() {
                p.artifacts {
                    @if !inputs.is_empty() { "in: " (inputs.join(", ")) " " }
                    @if !outputs.is_empty() { "out: " (outputs.join(", ")) }
                }
            }
            @if approval && s == "InProgress" {
                @if let Some(token) = latest["token"].as_str() {
                    div.approval {
                        @if let Some(data) = configuration["CustomData"].as_str() { p.custom { (data) } }
                        @if let Some(link) = configuration["ExternalEntityLink"].as_str() {
                            p {
                                "Review: "
                                @if is_web_link(link) {
                                    a href=(link) rel="noopener noreferrer" target="_blank" { (link) }
                                } @else { code { (link) } }
                            }
                        }
                        form method="post" action={(pipeline_href(pipeline)) "/approval"}
                            data-confirm={"Send this decision on " (name) "?"} {
                            (csrf(frame))
                            input type="hidden" name="stage" value=(stage);
                            input type="hidden" name="action" value=(name);
                            input type="hidden" name="token" value=(token);
                            label { "Comment " input type="text" name="summary" maxlength="512"; }
                            button type="submit" name="status" value="Approved" { "Approve" }
                            button type="submit" name="status" value="Rejected" { "Reject" }
                        }
                    }
                }
            }
        }
    }
}

fn history(frame: &Frame<'_>, pipeline: &str, executions: &[Value], next: Option<&str>) -> Markup {
    html! {
        section.history {
            h2 { "History" }
            @if executions.is_empty() { p.muted { "No executions yet." } } @else {
                table {
                    thead { tr { th { "Execution" } th { "Status" } th { "Trigger" } th { "Revisions" } th { "Started" } th { "Duration" } } }
                    tbody {
                        @for e in executions {
                            @let id = text(&e["pipelineExecutionId"]);
                            tr data-execution=(id) {
                                td { a href=(super::execution::href(pipeline, id)) { code title=(id) { (short(id)) } } }
                                td {
                                    (status(text(&e["status"])))
                                    @if let Some(reason) = e["stopTrigger"]["reason"].as_str() { br; span.muted { (reason) } }
                                }
                                td { (text(&e["trigger"]["triggerType"])) @if let Some(d) = e["trigger"]["triggerDetail"].as_str() { br; span.muted { (d) } } }
                                td {
                                    @for r in e["sourceRevisions"].as_array().into_iter().flatten() {
                                        code title=(text(&r["revisionId"])) { (short(text(&r["revisionId"]))) }
                                        @if let Some(s) = r["revisionSummary"].as_str() { " " (first_line(s)) }
                                        br;
                                    }
                                }
                                td { (ago(frame.now, &e["startTime"])) }
                                td { (span_secs(&e["startTime"], &e["lastUpdateTime"])) }
                            }
                        }
                    }
                }
                @if let Some(token) = next {
                    a.more href={(pipeline_href(pipeline)) "?next=" (url_encode(token))} { "Older executions →" }
                }
            }
        }
    }
}

/// The login form, where the console is reachable from other machines.
pub(crate) fn login(failed: bool) -> Markup {
    html! {
        h1 { "Log in" }
        @if failed { p.notice role="alert" { "Those credentials are not accepted by this server." } }
        form.login method="post" action="/console/login" {
            label { "Access key id " input type="text" name="access_key" required autocomplete="username"; }
            label { "Secret access key " input type="password" name="secret" required autocomplete="current-password"; }
            button type="submit" { "Log in" }
        }
    }
}

fn csrf(frame: &Frame<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.csrf); }
}

/// A status shown by icon and word, so it reads without colour.
pub(crate) fn status(s: &str) -> Markup {
    html! { span class={"status " (slug(s))} { span aria-hidden="true" { (icon(s)) } " " (s) } }
}

fn icon(s: &str) -> &'static str {
    match s {
        "Succeeded" => "✓",
        "Failed" => "✗",
        "InProgress" => "◐",
        "Stopping" | "Stopped" => "■",
        "Superseded" => "↷",
        "Abandoned" | "Cancelled" => "⊘",
        "Skipped" => "↓",
        _ => "·",
    }
}

fn slug(s: &str) -> String {
    if s.is_empty() { "none".into() } else { s.to_ascii_lowercase() }
}

pub(crate) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn pipeline_href(name: &str) -> String {
    format!("/pipelines/{}", url_encode(name))
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only web links become links: a `javascript:` URL in a declaration stays text.
pub(super) fn is_web_link(link: &str) -> bool {
    link.starts_with("https://") || link.starts_with("http://")
}

pub(crate) fn ago(now: f64, at: &Value) -> Markup {
    let Some(t) = at.as_f64() else { return html! {} };
    let secs = (now - t).max(0.0) as i64;
    let said = match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    };
    let iso = baton_core::events::rfc3339((t * 1000.0) as i64);
    html! { time datetime=(iso) title=(iso) { (said) } }
}

fn span_secs(start: &Value, end: &Value) -> Markup {
    match (start.as_f64(), end.as_f64()) {
        (Some(s), Some(e)) => html! { (seconds(e - s)) },
        _ => html! {},
    }
}

/// An attempt's time: to its last change when it has ended, to now while it runs.
fn duration(now: f64, attempt: &Value) -> Markup {
    match super::execution::took(now, attempt) {
        Some(secs) => html! { span.time { (seconds(secs)) } },
        None => html! {},
    }
}

pub(crate) fn seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m {:02}s", (s / 60.0) as i64, (s % 60.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame() -> Frame<'static> {
        Frame { css: "/c.css", js: "/c.js", csrf: "tok", region: "eu-west-1", now: 1000.0 }
    }

    #[test]
    fn what_a_declaration_or_a_build_says_is_text_not_markup() {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let view = PipelineView {
            declaration: json!({"name": "app", "stages": [{"name": "Approve", "actions": [{
                "name": "Release", "runOrder": 1,
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "configuration": {"CustomData": evil, "ExternalEntityLink": "javascript:alert(3)"}}]}]}),
            state: json!({"stageStates": [{"stageName": "Approve", "actionStates": [{"actionName": "Release",
                "latestExecution": {"status": "InProgress", "token": "t-1", "summary": evil}}]}]}),
            executions: vec![json!({"pipelineExecutionId": "e1", "status": "InProgress",
                "stopTrigger": {"reason": evil}})],
            next_token: None,
            attempts: BTreeMap::new(),
        };
        let page = layout(&frame(), "app", Some(evil), pipeline(&frame(), &view)).into_string();
        assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains("href=\"javascript:"), "a javascript: link became a link");
        assert!(page.contains("<code>javascript:alert(3)</code>"), "{page}");
        assert!(page.contains("name=\"token\" value=\"t-1\""), "the approval form is shown");
        assert!(page.contains("name=\"csrf\" value=\"tok\""));
    }

    #[test]
    fn a_disabled_transition_says_why_and_who() {
        let view = PipelineView {
            declaration: json!({"name": "app", "stages": [
                {"name": "Source", "actions": []}, {"name": "Deploy", "actions": []}]}),
            state: json!({"stageStates": [{"stageName": "Deploy", "inboundTransitionState": {
                "enabled": false, "disabledReason": "freeze for the audit",
                "lastChangedBy": "arn:aws:iam::1:user/ops", "lastChangedAt": 940.0},
                "inboundExecutions": [{"pipelineExecutionId": "abcdef0123", "status": "InProgress"}]}]}),
            executions: vec![],
            next_token: None,
            attempts: BTreeMap::new(),
        };
        let page = live(&frame(), &view).into_string();
        for said in [
            "Transition disabled",
            "freeze for the audit",
            "user/ops",
            "1 min ago",
            "abcdef01",
            "waits to enter",
        ] {
            assert!(page.contains(said), "{said} missing from {page}");
        }
        assert!(page.contains("Enable transition"));
    }

    #[test]
    fn a_waiting_execution_names_the_execution_that_holds_the_stage_and_the_mode() {
        let view = |mode: &str| PipelineView {
            declaration: json!({"name": "app", "executionMode": mode,
                "stages": [{"name": "Deploy", "actions": []}]}),
            state: json!({"stageStates": [{"stageName": "Deploy",
                "latestExecution": {"pipelineExecutionId": "holder0123", "status": "InProgress"},
                "inboundExecutions": [{"pipelineExecutionId": "first0123"},
                    {"pipelineExecutionId": "second0123"}]}]}),
            executions: vec![],
            next_token: None,
            attempts: BTreeMap::new(),
        };
        let queued = live(&frame(), &view("QUEUED")).into_string();
        for said in ["number 1 in the queue", "number 2 in the queue", "holder01", "QUEUED"] {
            assert!(queued.contains(said), "{said} missing from {queued}");
        }
        let superseded = live(&frame(), &view("SUPERSEDED")).into_string();
        for said in ["until execution <code>holder01</code> leaves it", "SUPERSEDED"] {
            assert!(superseded.contains(said), "{said} missing from {superseded}");
        }
        assert!(!superseded.contains("in the queue"), "{superseded}");
    }

    #[test]
    fn a_waiting_condition_can_be_overridden_and_a_stage_rolled_back() {
        let view = PipelineView {
            declaration: json!({"name": "app", "stages": [{"name": "Deploy", "actions": []}]}),
            state: json!({"stageStates": [{"stageName": "Deploy",
                "latestExecution": {"pipelineExecutionId": "e2", "status": "Stopped"},
                "beforeEntryConditionState": {"latestExecution": {"status": "InProgress", "summary": "outside the window"},
                    "conditionStates": [{"ruleStates": [{"ruleName": "Window",
                        "latestExecution": {"status": "InProgress"}}]}]},
                "onFailureConditionState": {"latestExecution": {"status": "InProgress"}}}]}),
            executions: vec![
                json!({"pipelineExecutionId": "e2", "status": "Stopped"}),
                json!({"pipelineExecutionId": "e1-succeeded", "status": "Succeeded"}),
            ],
            next_token: None,
            attempts: BTreeMap::new(),
        };
        let page = live(&frame(), &view).into_string();
        for said in [
            "Before entry condition",
            "outside the window",
            "Window",
            "name=\"condition\" value=\"BEFORE_ENTRY\"",
            "name=\"execution\" value=\"e2\"",
            "<option value=\"e1-succeeded\">e1-succe</option>",
        ] {
            assert!(page.contains(said), "{said} missing from {page}");
        }
        assert_eq!(
            page.matches("Override condition").count(),
            1,
            "on-failure cannot be overridden: {page}"
        );
    }

    #[test]
    fn names_in_links_are_percent_encoded() {
        assert_eq!(pipeline_href("a b/c"), "/pipelines/a%20b%2Fc");
        assert_eq!(seconds(75.0), "1m 15s");
        assert_eq!(seconds(2.04), "2.0 s");
    }
}
