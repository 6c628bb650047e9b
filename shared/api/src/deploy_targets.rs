//! `ListDeployActionExecutionTargets`: what a deploy action's attempt reached (CodeDeploy's
//! instances, functions and task sets, with their lifecycle events), as its worker read them
//! when the deployment ended. Actions that deploy to no such targets list none.

use baton_core::engine::{ActionRun, DeployTarget, Execution};
use serde::Deserialize;
use serde_json::{Value, json};

use super::executions::action_execution_id;
use super::pagination::Page;
use super::wire::{compact, input, secs};
use super::{ApiError, Ctx};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsIn {
    #[serde(default)]
    pipeline_name: Option<String>,
    action_execution_id: String,
    #[serde(default)]
    filters: Vec<TargetFilter>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

#[derive(Deserialize)]
struct TargetFilter {
    name: String,
    #[serde(default)]
    values: Vec<String>,
}

/// How many of a pipeline's latest executions an action execution id is looked for in.
const TARGET_SEARCH: usize = 1_000;

impl Ctx<'_> {
    /// `ListDeployActionExecutionTargets`.
    pub(super) async fn list_deploy_targets(&self, body: Value) -> Result<Value, ApiError> {
        let TargetsIn {
            pipeline_name,
            action_execution_id: wanted,
            filters,
            next_token,
            max_results,
        } = input(body)?;
        let list = format!("targets/{wanted}");
        let page = Page::read(&list, next_token.as_deref(), max_results, 100, 100)?;
        let statuses = statuses_wanted(&filters)?;
        let pipelines = match pipeline_name {
            Some(name) => {
                self.pipeline(&name).await?;
                vec![name]
            }
            None => self.api.store.list_pipelines().await?,
        };
        for name in pipelines {
            let Some(record) = self.api.store.get_pipeline(&name).await? else { continue };
            for e in self.api.store.executions(&name, TARGET_SEARCH).await? {
                if !e.runs(&record.plan) {
                    continue;
                }
                let Some(attempt) = attempt_named(&record.plan, &e, &wanted) else { continue };
                let targets: Vec<Value> = attempt
                    .targets
                    .iter()
                    .filter(|t| statuses.as_ref().is_none_or(|s| s.contains(&t.status)))
                    .map(target)
                    .collect();
                let (targets, next) = page.slice(&list, targets);
                let mut out = json!({"targets": targets});
                if let Some(next) = next {
                    out["nextToken"] = json!(next);
                }
                return Ok(out);
            }
        }
        Err(ApiError::new(
            "ActionExecutionNotFoundException",
            format!("Action execution with id '{wanted}' was not found"),
        ))
    }
}

/// The statuses a `TARGET_STATUS` filter keeps, or `None` for every target.
fn statuses_wanted(filters: &[TargetFilter]) -> Result<Option<Vec<String>>, ApiError> {
    let mut wanted: Option<Vec<String>> = None;
    for (n, f) in filters.iter().enumerate() {
        if f.name != "TARGET_STATUS" {
            return Err(ApiError::constraint(
                &format!("filters.{}.member.name", n + 1),
                &format!("'{}'", f.name),
                "Member must satisfy enum value set: [TARGET_STATUS]",
            ));
        }
        wanted.get_or_insert_with(Vec::new).extend(f.values.iter().cloned());
    }
    Ok(wanted)
}

/// The attempt of one of `e`'s actions whose `actionExecutionId` is `wanted`.
fn attempt_named<'e>(
    plan: &baton_core::plan::Plan,
    e: &'e Execution,
    wanted: &str,
) -> Option<&'e ActionRun> {
    for (stage, run) in plan.stages.iter().zip(&e.stages) {
        for (action, r) in stage.actions.iter().zip(&run.actions) {
            let mut attempts = std::iter::once(r).chain(r.earlier.iter());
            if let Some(found) = attempts.find(|a| {
                a.attempt > 0
                    && action_execution_id(&e.id, &stage.name, &action.name, a.attempt) == wanted
            }) {
                return Some(found);
            }
        }
    }
    None
}

/// A `DeployActionExecutionTarget`.
fn target(t: &DeployTarget) -> Value {
    let events: Vec<Value> = t
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "status": e.status,
                "startTime": e.started_at.map(secs),
                "endTime": e.ended_at.map(secs),
                "context": e.message.as_ref().map(|m| json!({"message": m})),
            })
        })
        .collect();
    // Absent times and contexts are left out, as CodePipeline leaves them.
    compact(json!({
        "targetId": t.id,
        "targetType": t.kind,
        "status": t.status,
        "startTime": t.started_at.map(secs),
        "endTime": t.ended_at.map(secs),
        "events": events,
    }))
}
