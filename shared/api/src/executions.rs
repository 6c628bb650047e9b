//! StartPipelineExecution, StopPipelineExecution, GetPipelineExecution, ListPipelineExecutions,
//! RetryStageExecution, PutApprovalResult, ListActionExecutions.

use std::collections::BTreeMap;

use baton_core::engine::{Execution, Input, Rejection, SourceRevision, Trigger};
use baton_core::events::format_uuid;
use baton_core::plan::{Plan, RetryMode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::Page;
use super::wire::{action_status, compact, execution_status, input, secs};
use super::{ApiError, Ctx};
use baton_app::ports::clock::entropy;
use baton_app::service::runnable;

/// Executions read for a listing; CodePipeline keeps twelve months of history.
const HISTORY: usize = 100_000;
/// The newest executions searched for a token an approval's decision names once its execution
/// has ended: a decision comes soon after the approval is asked for.
const ENDED_APPROVALS: usize = 50;

#[derive(Deserialize)]
struct VariableIn {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn {
    name: String,
    #[serde(default)]
    variables: Vec<VariableIn>,
    #[serde(default)]
    client_request_token: Option<String>,
    #[serde(default)]
    source_revisions: Vec<SourceRevisionIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceRevisionIn {
    action_name: String,
    revision_type: String,
    revision_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionRevisionIn {
    revision_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRevisionIn {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    action_revision: ActionRevisionIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopIn {
    pipeline_name: String,
    pipeline_execution_id: String,
    #[serde(default)]
    abandon: bool,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionIn {
    pipeline_name: String,
    pipeline_execution_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageFilter {
    stage_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionFilter {
    #[serde(default)]
    succeeded_in_stage: Option<StageFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListIn {
    pipeline_name: String,
    #[serde(default)]
    filter: Option<ExecutionFilter>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryIn {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

#[derive(Deserialize)]
struct ApprovalResultIn {
    summary: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalIn {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: ApprovalResultIn,
    token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LatestIn {
    pipeline_execution_id: String,
}

/// `ListActionExecutions`'s and `ListRuleExecutions`'s filter.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailsFilter {
    #[serde(default)]
    pipeline_execution_id: Option<String>,
    #[serde(default)]
    latest_in_pipeline_execution: Option<LatestIn>,
}

/// `ListActionExecutions`'s and `ListRuleExecutions`'s input.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailsIn {
    pipeline_name: String,
    #[serde(default)]
    filter: Option<DetailsFilter>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

impl Ctx<'_> {
    pub(super) async fn start_execution(&self, body: Value) -> Result<Value, ApiError> {
        let StartIn { name, variables, client_request_token, source_revisions } = input(body)?;
        let record = self.pipeline(&name).await?;
        // Accepted at create as CodePipeline accepts it; refused here, before anything runs.
        runnable(&self.api.providers, &record.plan).await.map_err(|e| self.refused(e))?;
        let mut revisions = BTreeMap::new();
        for r in source_revisions {
            let revision = SourceRevision {
                revision_type: r.revision_type,
                value: r.revision_value,
                branch: None,
            };
            if revisions.insert(r.action_name.clone(), revision).is_some() {
                return Err(ApiError::validation(format!(
                    "sourceRevisions names action '{}' more than once",
                    r.action_name
                )));
            }
        }
        let mut overrides = BTreeMap::new();
        for v in variables {
            if overrides.insert(v.name.clone(), v.value).is_some() {
                return Err(ApiError::validation(format!(
                    "Variable '{}' is given more than once",
                    v.name
                )));
            }
        }
        let execution_id = match &client_request_token {
            Some(token) => {
                let valid = (1..=128).contains(&token.len())
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !valid {
                    return Err(ApiError::constraint(
                        "clientRequestToken",
                        &format!("'{token}'"),
                        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9-]+$",
                    ));
                }
                idempotent_id(&name, token)
            }
            None => format_uuid(
                entropy()
                    .map_err(|e| ApiError::internal(&format!("no randomness for an id: {e}")))?,
            ),
        };
        let trigger = Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: self.caller.to_string(),
        };
        // A start with an id that exists changes nothing: the same token gives the same id.
        let input = Input::Start {
            execution_id: execution_id.clone(),
            trigger,
            variables: overrides,
            source_revisions: revisions,
        };
        self.apply(&name, input).await?;
        Ok(json!({"pipelineExecutionId": execution_id}))
    }

    /// `PutActionRevision`: a source action has a revision; unless its latest execution ran
    /// it already, a new execution runs it (trigger `PutActionRevision`).
    pub(super) async fn put_action_revision(&self, body: Value) -> Result<Value, ApiError> {
        let PutRevisionIn { pipeline_name, stage_name, action_name, action_revision } =
            input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let plan = &record.plan;
        let stage = plan.stages.iter().find(|s| s.name == stage_name).ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!("Stage {stage_name} was not found in pipeline {pipeline_name}"),
            )
        })?;
        let action = stage.actions.iter().find(|a| a.name == action_name).ok_or_else(|| {
            ApiError::new(
                "ActionNotFoundException",
                format!("Action {action_name} was not found in stage {stage_name}"),
            )
        })?;
        if action.action_type.category != "Source" {
            return Err(ApiError::validation(format!(
                "Action {action_name} is not a source action, so it has no revisions"
            )));
        }
        let wanted = action_revision.revision_id;
        let latest = self.api.store.executions(&pipeline_name, 1).await?.into_iter().next();
        if let Some(e) = latest.filter(|e| e.source_revision_of(action) == Some(wanted.as_str())) {
            return Ok(json!({"newRevision": false, "pipelineExecutionId": e.id}));
        }
        runnable(&self.api.providers, plan).await.map_err(|e| self.refused(e))?;
        let mut revisions = BTreeMap::new();
        if let Some(kind) = SourceRevision::types_for(&action.action_type.provider).first() {
            let revision = SourceRevision {
                revision_type: (*kind).into(),
                value: wanted.clone(),
                branch: None,
            };
            revisions.insert(action_name.clone(), revision);
        }
        let execution_id =
            idempotent_id(&pipeline_name, &format!("revision\n{action_name}\n{wanted}"));
        let trigger = Trigger {
            trigger_type: "PutActionRevision".into(),
            trigger_detail: self.caller.to_string(),
        };
        let input = Input::Start {
            execution_id: execution_id.clone(),
            trigger,
            variables: BTreeMap::new(),
            source_revisions: revisions,
        };
        self.apply(&pipeline_name, input).await?;
        Ok(json!({"newRevision": true, "pipelineExecutionId": execution_id}))
    }

    pub(super) async fn stop_execution(&self, body: Value) -> Result<Value, ApiError> {
        let StopIn { pipeline_name, pipeline_execution_id, abandon, reason } = input(body)?;
        self.pipeline(&pipeline_name).await?;
        let input = Input::Stop {
            execution_id: pipeline_execution_id.clone(),
            abandon,
            reason: reason.unwrap_or_default(),
        };
        self.apply(&pipeline_name, input).await?;
        Ok(json!({"pipelineExecutionId": pipeline_execution_id}))
    }

    pub(super) async fn get_execution(&self, body: Value) -> Result<Value, ApiError> {
        let ExecutionIn { pipeline_name, pipeline_execution_id } = input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let e = self.execution(&pipeline_name, &pipeline_execution_id).await?;
        // As CodePipeline: the source artifacts, each with the revision it holds.
        let artifacts: Vec<Value> = e
            .revisions
            .iter()
            .map(|(name, revision)| json!({"name": name, "revisionId": revision}))
            .collect();
        let variables: Vec<Value> = e
            .variables
            .iter()
            .map(|(name, value)| json!({"name": name, "resolvedValue": value}))
            .collect();
        Ok(json!({"pipelineExecution": compact(json!({
            "pipelineName": pipeline_name,
            "pipelineVersion": e.pipeline_version,
            "pipelineExecutionId": e.id,
            "status": execution_status(e.status()),
            "statusSummary": e.status_summary,
            "artifactRevisions": artifacts,
            "variables": variables,
            "trigger": trigger_json(&e.trigger),
            "executionMode": record.plan.mode.as_str(),
            "executionType": execution_type(&e),
            "rollbackMetadata": rollback_metadata(&e),
        }))}))
    }

    pub(super) async fn list_executions(&self, body: Value) -> Result<Value, ApiError> {
        let ListIn { pipeline_name, filter, next_token, max_results } = input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let list = format!("executions/{pipeline_name}");
        let page = Page::read(&list, next_token.as_deref(), max_results, 100, 100)?;
        // Unfiltered, the page and one more (to tell whether a next page exists) are read:
        // a listing costs the same however long the history.
        let wanted = match &filter {
            Some(f) if f.succeeded_in_stage.is_some() => HISTORY,
            _ => page.start.saturating_add(page.size).saturating_add(1).min(HISTORY),
        };
        let mut executions = self.api.store.executions(&pipeline_name, wanted).await?;
        if let Some(stage) = filter.and_then(|f| f.succeeded_in_stage) {
            let s = record.plan.stage_index(&stage.stage_name);
            executions.retain(|e| {
                s.and_then(|s| e.stages.get(s)).and_then(|r| r.status)
                    == Some(baton_core::engine::StageStatus::Succeeded)
            });
        }
        let (executions, next) = page.slice(&list, executions);
        let summaries: Vec<Value> = executions
            .iter()
            .map(|e| {
                compact(json!({
                    "pipelineExecutionId": e.id,
                    "status": execution_status(e.status()),
                    "statusSummary": e.status_summary,
                    "startTime": secs(e.started_at),
                    "lastUpdateTime": secs(e.updated_at),
                    "sourceRevisions": source_revisions(&record.plan, e),
                    "trigger": trigger_json(&e.trigger),
                    "stopTrigger": e.stop().as_ref().map(|s| json!({"reason": s.reason})),
                    "executionMode": record.plan.mode.as_str(),
                    "executionType": execution_type(e),
                    "rollbackMetadata": rollback_metadata(e),
                }))
            })
            .collect();
        let mut out = json!({"pipelineExecutionSummaries": summaries});
        if let Some(token) = next {
            out["nextToken"] = json!(token);
        }
        Ok(out)
    }

    pub(super) async fn retry_stage(&self, body: Value) -> Result<Value, ApiError> {
        let RetryIn { pipeline_name, stage_name, pipeline_execution_id, retry_mode } = input(body)?;
        let mode = match retry_mode.as_str() {
            "FAILED_ACTIONS" => RetryMode::FailedActions,
            "ALL_ACTIONS" => RetryMode::AllActions,
            other => {
                return Err(ApiError::constraint(
                    "retryMode",
                    &format!("'{other}'"),
                    "Member must satisfy enum value set: [FAILED_ACTIONS, ALL_ACTIONS]",
                ));
            }
        };
        self.pipeline(&pipeline_name).await?;
        let input =
            Input::Retry { execution_id: pipeline_execution_id.clone(), stage: stage_name, mode };
        self.apply(&pipeline_name, input).await?;
        Ok(json!({"pipelineExecutionId": pipeline_execution_id}))
    }

    pub(super) async fn put_approval_result(&self, body: Value) -> Result<Value, ApiError> {
        let ApprovalIn { pipeline_name, stage_name, action_name, result, token } = input(body)?;
        let approved = match result.status.as_str() {
            "Approved" => true,
            "Rejected" => false,
            other => {
                return Err(ApiError::constraint(
                    "result.status",
                    &format!("'{other}'"),
                    "Member must satisfy enum value set: [Approved, Rejected]",
                ));
            }
        };
        let record = self.pipeline(&pipeline_name).await?;
        let input = Input::ApprovalDecided {
            stage: stage_name.clone(),
            action: action_name.clone(),
            token: token.clone(),
            approved,
            summary: result.summary,
            by: self.caller.to_string(),
        };
        match self.apply(&pipeline_name, input).await {
            Ok(_) => Ok(json!({"approvedAt": secs(self.api.clock.now())})),
            // The engine sees the executions still running; a token of one that has since
            // ended was decided already, as CodePipeline answers, however fast the rest ran.
            Err(e) if e.code == "InvalidApprovalTokenException" => {
                let ended = self.api.store.executions(&pipeline_name, ENDED_APPROVALS).await?;
                let issued = |e: &Execution| {
                    approval_token(&record.plan, e, &stage_name, &action_name) == Some(&token)
                };
                if ended.iter().any(issued) {
                    Err(Rejection::ApprovalAlreadyCompleted.into())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn list_action_executions(&self, body: Value) -> Result<Value, ApiError> {
        let field = "actionExecutionDetails";
        let mut out = self.execution_details(body, "actions", field, action_details).await?;
        self.secret_keys().await?.mask_details(&mut out[field]);
        Ok(out)
    }

    /// A page of what `details` lists of each execution (of the filter's one, or of every one,
    /// newest first), under `field`; `kind` names the list in its page tokens.
    pub(super) async fn execution_details(
        &self,
        body: Value,
        kind: &str,
        field: &str,
        details: fn(&Plan, &Execution) -> Vec<Value>,
    ) -> Result<Value, ApiError> {
        let DetailsIn { pipeline_name, filter, next_token, max_results } = input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let list = format!("{kind}/{pipeline_name}");
        let page = Page::read(&list, next_token.as_deref(), max_results, 100, 100)?;
        let wanted = filter.and_then(|f| {
            f.pipeline_execution_id
                .or(f.latest_in_pipeline_execution.map(|l| l.pipeline_execution_id))
        });
        let executions = match &wanted {
            Some(id) => vec![self.execution(&pipeline_name, id).await?],
            None => self.api.store.executions(&pipeline_name, HISTORY).await?,
        };
        let details: Vec<Value> =
            executions.iter().flat_map(|e| details(&record.plan, e)).collect();
        let (details, next) = page.slice(&list, details);
        let mut out = json!({ field: details });
        if let Some(token) = next {
            out["nextToken"] = json!(token);
        }
        Ok(out)
    }

    /// One execution, or `PipelineExecutionNotFoundException`.
    pub(super) async fn execution(&self, pipeline: &str, id: &str) -> Result<Execution, ApiError> {
        self.api
            .store
            .execution(pipeline, id)
            .await?
            .ok_or_else(|| ApiError::execution_not_found(pipeline, id))
    }
}

/// The execution id a `clientRequestToken` stands for: the same pipeline and token always give
/// the same id, so a repeated start finds the execution it started and changes nothing.
fn idempotent_id(pipeline: &str, token: &str) -> String {
    baton_app::ports::stable_id(pipeline, token)
}

pub(super) use baton_app::ports::action_execution_id;

fn execution_type(e: &Execution) -> &'static str {
    if e.rollback.is_some() { "ROLLBACK" } else { "STANDARD" }
}

fn rollback_metadata(e: &Execution) -> Option<Value> {
    e.rollback.as_ref().map(|r| json!({"rollbackTargetPipelineExecutionId": r.target}))
}

pub(super) fn trigger_json(t: &Trigger) -> Value {
    json!({"triggerType": t.trigger_type, "triggerDetail": t.trigger_detail})
}

/// What the source actions of the first stage fetched: CodeCommit's commit, S3's version.
fn source_revisions(plan: &Plan, e: &Execution) -> Vec<Value> {
    let (Some(stage), Some(run)) = (plan.stages.first(), e.stages.first()) else { return vec![] };
    stage
        .actions
        .iter()
        .zip(&run.actions)
        .filter(|(a, _)| a.action_type.category == "Source")
        .filter_map(|(a, r)| {
            let id = r.output_variables.get("CommitId").or(r.output_variables.get("VersionId"))?;
            Some(compact(json!({
                "actionName": a.name,
                "revisionId": id,
                "revisionSummary": r.output_variables.get("CommitMessage"),
            })))
        })
        .collect()
}

/// Every started action of an execution, as `ActionExecutionDetail`s.
fn action_details(plan: &Plan, e: &Execution) -> Vec<Value> {
    let mut out = Vec::new();
    for (stage, run) in plan.stages.iter().zip(&e.stages) {
        for (action, r) in stage.actions.iter().zip(&run.actions) {
            // Every attempt, the latest first, as CodePipeline lists them.
            for attempt in std::iter::once(r).chain(r.earlier.iter().rev()) {
                if let Some(detail) = attempt_detail(e, &stage.name, action, attempt) {
                    out.push(detail);
                }
            }
        }
    }
    out
}

/// One attempt of an action as CodePipeline's `ActionExecutionDetail`; none for an action that
/// has not run.
fn attempt_detail(
    e: &Execution,
    stage: &str,
    action: &baton_core::plan::ActionPlan,
    r: &baton_core::engine::ActionRun,
) -> Option<Value> {
    let status = action_status(r.status)?;
    let artifacts = |list: &[baton_core::engine::Artifact]| -> Vec<Value> {
        list.iter()
            .map(|a| json!({"name": a.name, "s3location": {"bucket": a.location.bucket, "key": a.location.key}}))
            .collect()
    };
    let t = &action.action_type;
    Some(compact(json!({
        "pipelineExecutionId": e.id,
        "actionExecutionId": action_execution_id(&e.id, stage, &action.name, r.attempt),
        "pipelineVersion": e.pipeline_version,
        "stageName": stage,
        "actionName": action.name,
        "startTime": r.started_at.map(secs),
        "lastUpdateTime": r.updated_at.map(secs),
        "updatedBy": r.decided_by,
        "status": status,
        "input": {
            "actionTypeId": {"category": t.category, "owner": t.owner, "provider": t.provider, "version": t.version},
            "configuration": action.configuration,
            "resolvedConfiguration": r.resolved_configuration,
            "roleArn": action.role_arn,
            "region": action.region,
            "inputArtifacts": artifacts(&r.inputs),
            "namespace": action.namespace,
        },
        "output": {
            "outputArtifacts": artifacts(&r.outputs),
            "executionResult": {
                "externalExecutionId": r.external_id,
                "externalExecutionSummary": r.summary,
                "externalExecutionUrl": r.external_url,
                "errorDetails": r.error.as_ref().map(|err| json!({"code": err.code, "message": err.message})),
            },
            "outputVariables": r.output_variables,
        },
    })))
}

/// The token the approval `stage`/`action` of `execution` was issued, if it still holds one.
fn approval_token<'a>(
    plan: &Plan,
    execution: &'a Execution,
    stage: &str,
    action: &str,
) -> Option<&'a String> {
    let (s, a) = plan.action_position(stage, action)?;
    execution.stages.get(s)?.actions.get(a)?.token.as_ref()
}
