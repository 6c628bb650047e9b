//! The commands that drive pipelines (start, status, history, approve, reject, retry, stop,
//! the transitions), each written once over the [`Control`] API: the same calls, the same
//! output, whether the pipelines live in a local home or behind `--endpoint`.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use baton_core::engine::{ActionStatus, Execution};
use baton_core::plan::Plan;
use serde_json::{Value, json};

use crate::control::{Control, text};
use crate::names::nearest;
use crate::output::{self, Output, note, result};
use crate::view::{secs, short, table};

/// `--var NAME=VALUE` pairs, in order.
pub(crate) fn variables(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .ok_or_else(|| anyhow!("--var {p}: write NAME=VALUE"))
        })
        .collect()
}

/// The plan and one execution of `pipeline` (GetExecutionDetail): `execution` as its id or
/// the short id the views print, or the latest.
pub(crate) async fn execution_detail(
    c: &impl Control,
    pipeline: &str,
    execution: Option<&str>,
) -> Result<(Plan, Execution)> {
    let mut input = json!({"pipelineName": pipeline});
    if let Some(id) = execution {
        input["pipelineExecutionId"] = json!(id);
    }
    let detail = c.call("GetExecutionDetail", &input).await?;
    let plan: Plan = serde_json::from_value(detail["plan"].clone())
        .map_err(|e| anyhow!("the API answered with a plan this baton cannot read: {e}"))?;
    let e: Execution = serde_json::from_value(detail["execution"].clone())
        .map_err(|e| anyhow!("the API answered with an execution this baton cannot read: {e}"))?;
    Ok((plan, e))
}

/// `baton start PIPELINE`: StartPipelineExecution.
pub(crate) async fn start(c: &impl Control, pipeline: &str, vars: &[String]) -> Result<ExitCode> {
    let variables: Vec<Value> = variables(vars)?
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let mut input = json!({"name": pipeline});
    if !variables.is_empty() {
        input["variables"] = json!(variables);
    }
    let out = c.call("StartPipelineExecution", &input).await?;
    let id = text(&out, "pipelineExecutionId");
    result(&out, format_args!("Started execution {id} of pipeline \"{pipeline}\"."));
    c.carry_on(pipeline, id).await
}

/// `baton status PIPELINE [EXECUTION]`: the execution whole (GetExecutionDetail), with the
/// approvals it waits for and the transitions held (GetPipelineState).
pub(crate) async fn status(
    c: &impl Control,
    pipeline: &str,
    execution: Option<&str>,
) -> Result<ExitCode> {
    let (plan, e) = execution_detail(c, pipeline, execution).await?;
    if output::json() {
        return status_document(c, pipeline, &e.id).await;
    }
    let now = baton::ports::clock::Clock::now(&baton::ports::clock::SystemClock);
    print!("{}", table(&plan, &e, now));
    for (s, stage) in plan.stages.iter().enumerate().filter(|_| e.runs(&plan)) {
        for (a, action) in stage.actions.iter().enumerate() {
            let r = &e.stages[s].actions[a];
            if let (ActionStatus::InProgress, Some(token)) = (r.status, &r.token) {
                note(format_args!(
                    "  approval {}/{} is waiting; token {token}",
                    stage.name, action.name
                ));
            }
        }
    }
    let state = c.call("GetPipelineState", &json!({"name": pipeline})).await?;
    for s in stages(&state).iter().filter(|s| s["inboundTransitionState"]["enabled"] == false) {
        let reason = text(&s["inboundTransitionState"], "disabledReason");
        println!("  transition into {} disabled: {reason}", text(s, "stageName"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `baton status --output json`: the execution (GetPipelineExecution), every attempt of its
/// actions (ListActionExecutions) and the pipeline's stages (GetPipelineState), as
/// CodePipeline answers each.
pub(crate) async fn status_document(
    c: &impl Control,
    pipeline: &str,
    id: &str,
) -> Result<ExitCode> {
    let execution = json!({"pipelineName": pipeline, "pipelineExecutionId": id});
    let got = c.call("GetPipelineExecution", &execution).await?;
    let mut details = Vec::new();
    let mut input = json!({"pipelineName": pipeline, "filter": {"pipelineExecutionId": id}});
    loop {
        let page = c.call("ListActionExecutions", &input).await?;
        details.extend(page["actionExecutionDetails"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(next) => input["nextToken"] = json!(next),
            None => break,
        }
    }
    let state = c.call("GetPipelineState", &json!({"name": pipeline})).await?;
    let document = json!({
        "pipelineExecution": got["pipelineExecution"],
        "actionExecutionDetails": details,
        "stageStates": state["stageStates"],
    });
    result(&document, "");
    Ok(ExitCode::SUCCESS)
}

/// `baton history PIPELINE`: ListPipelineExecutions.
pub(crate) async fn history(c: &impl Control, pipeline: &str) -> Result<ExitCode> {
    let listed = c
        .call("ListPipelineExecutions", &json!({"pipelineName": pipeline, "maxResults": 50}))
        .await?;
    let executions = summaries(&listed);
    if output::json() {
        result(&listed, "");
        return Ok(ExitCode::SUCCESS);
    }
    if executions.is_empty() {
        println!("Pipeline \"{pipeline}\" has not run yet.");
        return Ok(ExitCode::SUCCESS);
    }
    // The API gives times as seconds since the epoch, with milliseconds as fractions.
    let millis = |v: &Value| (v.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
    let rows: Vec<Vec<String>> = executions
        .iter()
        .map(|e| {
            let (started, updated) = (millis(&e["startTime"]), millis(&e["lastUpdateTime"]));
            vec![
                text(e, "pipelineExecutionId").to_owned(),
                text(e, "status").to_owned(),
                baton_core::events::rfc3339(started),
                secs(updated - started),
                text(&e["trigger"], "triggerType").to_owned(),
                text(e, "statusSummary").to_owned(),
            ]
        })
        .collect();
    if output::chosen() == Output::Table {
        let header = ["EXECUTION", "STATUS", "STARTED", "TOOK", "TRIGGER", "SUMMARY"];
        println!("{}", output::columns(&header, &rows));
        return Ok(ExitCode::SUCCESS);
    }
    for r in rows {
        println!("{}  {:<10}  {}  {:>8}  {}  {}", r[0], r[1], r[2], r[3], r[4], r[5]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `baton approve|reject PIPELINE STAGE ACTION`: the token from GetPipelineState, then
/// PutApprovalResult.
pub(crate) async fn decide(
    c: &impl Control,
    pipeline: &str,
    stage: &str,
    action: &str,
    approved: bool,
    summary: &str,
) -> Result<ExitCode> {
    let state = c.call("GetPipelineState", &json!({"name": pipeline})).await?;
    let s = stage_in(&state, pipeline, stage)?;
    let a = actions(s).iter().find(|a| text(a, "actionName") == action).ok_or_else(|| {
        let names = actions(s).iter().map(|a| text(a, "actionName"));
        anyhow!("stage \"{stage}\" has no action \"{action}\"{}", nearest(action, names))
    })?;
    let run = &a["latestExecution"];
    let token =
        run["token"].as_str().filter(|_| text(run, "status") == "InProgress").ok_or_else(|| {
            anyhow!("no execution of \"{pipeline}\" is waiting for approval at {stage}/{action}")
        })?;
    let verdict = if approved { "Approved" } else { "Rejected" };
    let input = json!({
        "pipelineName": pipeline,
        "stageName": stage,
        "actionName": action,
        "result": {"summary": summary, "status": verdict},
        "token": token,
    });
    let mut out = c.call("PutApprovalResult", &input).await?;
    let id = text(&s["latestExecution"], "pipelineExecutionId");
    out["pipelineExecutionId"] = json!(id);
    result(&out, format_args!("{verdict} {stage}/{action} of execution {}.", short(id)));
    c.carry_on(pipeline, id).await
}

/// `baton retry PIPELINE STAGE [--all]`: the stage's latest execution from GetPipelineState,
/// then RetryStageExecution.
pub(crate) async fn retry(
    c: &impl Control,
    pipeline: &str,
    stage: &str,
    all: bool,
) -> Result<ExitCode> {
    let state = c.call("GetPipelineState", &json!({"name": pipeline})).await?;
    let s = stage_in(&state, pipeline, stage)?;
    let id = s["latestExecution"]["pipelineExecutionId"]
        .as_str()
        .ok_or_else(|| anyhow!("no execution of \"{pipeline}\" has run stage \"{stage}\""))?;
    let input = json!({
        "pipelineName": pipeline,
        "stageName": stage,
        "pipelineExecutionId": id,
        "retryMode": if all { "ALL_ACTIONS" } else { "FAILED_ACTIONS" },
    });
    let out = c.call("RetryStageExecution", &input).await?;
    result(&out, format_args!("Retrying stage {stage} of execution {}.", short(id)));
    c.carry_on(pipeline, id).await
}

/// `baton stop PIPELINE EXECUTION`: StopPipelineExecution.
pub(crate) async fn stop(
    c: &impl Control,
    pipeline: &str,
    execution: &str,
    abandon: bool,
    reason: &str,
) -> Result<ExitCode> {
    let id = execution_detail(c, pipeline, Some(execution)).await?.1.id;
    let input = json!({
        "pipelineName": pipeline,
        "pipelineExecutionId": id,
        "abandon": abandon,
        "reason": reason,
    });
    let out = c.call("StopPipelineExecution", &input).await?;
    result(&out, format_args!("Stopping execution {}.", short(&id)));
    c.carry_on(pipeline, &id).await
}

/// `baton disable-transition|enable-transition PIPELINE STAGE`: the stage's inbound transition.
pub(crate) async fn transition(
    c: &impl Control,
    pipeline: &str,
    stage: &str,
    enable: bool,
    reason: &str,
) -> Result<ExitCode> {
    // A stage that is not there is named with the nearest that are.
    let state = c.call("GetPipelineState", &json!({"name": pipeline})).await?;
    stage_in(&state, pipeline, stage)?;
    let mut input =
        json!({"pipelineName": pipeline, "stageName": stage, "transitionType": "Inbound"});
    let operation = if enable {
        "EnableStageTransition"
    } else {
        input["reason"] = json!(reason);
        "DisableStageTransition"
    };
    let out = c.call(operation, &input).await?;
    let done = if enable { "enabled" } else { "disabled" };
    result(&out, format_args!("Transition into {stage} {done}."));
    Ok(ExitCode::SUCCESS)
}

fn summaries(listed: &Value) -> &[Value] {
    listed["pipelineExecutionSummaries"].as_array().map_or(&[], Vec::as_slice)
}

fn stages(state: &Value) -> &[Value] {
    state["stageStates"].as_array().map_or(&[], Vec::as_slice)
}

fn actions(stage: &Value) -> &[Value] {
    stage["actionStates"].as_array().map_or(&[], Vec::as_slice)
}

/// The stage called `stage` in a `GetPipelineState` answer, or an error listing the nearest.
fn stage_in<'a>(state: &'a Value, pipeline: &str, stage: &str) -> Result<&'a Value> {
    stages(state).iter().find(|s| text(s, "stageName") == stage).ok_or_else(|| {
        let names = stages(state).iter().map(|s| text(s, "stageName"));
        anyhow!("pipeline \"{pipeline}\" has no stage \"{stage}\"{}", nearest(stage, names))
    })
}
