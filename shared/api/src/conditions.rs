//! Stage conditions and rollback: OverrideStageCondition, RollbackStage, ListRuleExecutions,
//! ListRuleTypes, and the condition states GetPipelineState shows.

use baton_core::engine::{
    ConditionKind, ConditionRun, ConditionRuns, ConditionStatus, Execution, Input, RollbackPoint,
    RuleStatus, Trigger,
};
use baton_core::events::format_uuid;
use baton_core::plan::Plan;
use baton_core::rules::{ENGINE_RULES, SERVICE_RULES};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{compact, input, secs};
use super::{ApiError, Ctx};
use baton_app::ports::clock::entropy;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverrideIn {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    condition_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollbackIn {
    pipeline_name: String,
    stage_name: String,
    target_pipeline_execution_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleTypesIn {
    #[serde(default)]
    rule_owner_filter: Option<String>,
}

impl Ctx<'_> {
    pub(super) async fn override_condition(&self, body: Value) -> Result<Value, ApiError> {
        let OverrideIn { pipeline_name, stage_name, pipeline_execution_id, condition_type } =
            input(body)?;
        let condition = match condition_type.as_str() {
            "BEFORE_ENTRY" => ConditionKind::BeforeEntry,
            "ON_SUCCESS" => ConditionKind::OnSuccess,
            other => {
                return Err(ApiError::constraint(
                    "conditionType",
                    &format!("'{other}'"),
                    "Member must satisfy enum value set: [BEFORE_ENTRY, ON_SUCCESS]",
                ));
            }
        };
        self.pipeline(&pipeline_name).await?;
        let input = Input::OverrideCondition {
            execution_id: pipeline_execution_id,
            stage: stage_name,
            condition,
            by: self.caller.to_string(),
        };
        self.apply(&pipeline_name, input).await?;
        Ok(json!({}))
    }

    pub(super) async fn rollback_stage(&self, body: Value) -> Result<Value, ApiError> {
        let RollbackIn { pipeline_name, stage_name, target_pipeline_execution_id: target } =
            input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let s = record.plan.stage_index(&stage_name).ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!("Stage {stage_name} was not found in pipeline {pipeline_name}"),
            )
        })?;
        let e = self.execution(&pipeline_name, &target).await?;
        let point = RollbackPoint::of(&e, s).ok_or_else(|| {
            ApiError::new(
                "UnableToRollbackStageException",
                format!(
                    "execution {target} cannot be rolled back to: it did not succeed in stage {stage_name}, or it is a rollback itself"
                ),
            )
        })?;
        let id = format_uuid(
            entropy().map_err(|e| ApiError::internal(&format!("no randomness for an id: {e}")))?,
        );
        let trigger = Trigger {
            trigger_type: "ManualRollback".into(),
            trigger_detail: self.caller.to_string(),
        };
        let input = Input::Rollback { execution_id: id.clone(), stage: stage_name, point, trigger };
        self.apply(&pipeline_name, input).await?;
        Ok(json!({"pipelineExecutionId": id}))
    }

    pub(super) async fn list_rule_executions(&self, body: Value) -> Result<Value, ApiError> {
        self.execution_details(body, "rules", "ruleExecutionDetails", rule_details).await
    }
}

/// `ListRuleTypes`: the rules this host runs (those the engine decides, and those whose
/// service it has a provider for: `has`), with their configuration properties.
pub(super) fn list_rule_types(body: Value, has: impl Fn(&str) -> bool) -> Result<Value, ApiError> {
    let RuleTypesIn { rule_owner_filter } = input(body)?;
    if rule_owner_filter.as_deref().is_some_and(|o| o != "AWS") {
        return Ok(json!({"ruleTypes": []}));
    }
    let property = |name: &str, required: bool, description: &str| {
        json!({"name": name, "required": required, "key": true, "secret": false,
            "queryable": false, "description": description, "type": "String"})
    };
    let properties = |provider: &str| match provider {
        "VariableCheck" => vec![
            property("Variable", true, "The variable to check, as #{namespace.name}"),
            property("Value", true, "The value to compare it with"),
            property("Operator", true, "EQ, NE, CONTAINS or MATCHES"),
        ],
        "DeploymentWindow" => vec![
            property("Cron", true, "When deploying is allowed: six fields and an optional year"),
            property("TimeZone", false, "A time zone name, UTC±HH:MM or a short id; UTC if absent"),
        ],
        "LambdaInvoke" => vec![
            property(
                "FunctionName",
                true,
                "The function that decides: it returns to pass, raises to fail",
            ),
            property("UserParameters", false, "Given to the function in its event"),
        ],
        "CloudWatchAlarm" => vec![
            property("AlarmName", true, "The alarm (metric or composite) to watch"),
            property(
                "AlarmStates",
                false,
                "The states that fail the rule, comma-separated; ALARM if absent",
            ),
            property("WaitTime", false, "Minutes to wait for the alarm to leave those states"),
        ],
        // Commands rules take their top-level `commands`.
        _ => vec![],
    };
    let inputs = |provider: &str| match provider {
        "Commands" => (0, 1),
        "LambdaInvoke" => (0, 5),
        _ => (0, 0),
    };
    let types: Vec<Value> = ENGINE_RULES
        .iter()
        .chain(SERVICE_RULES.iter().filter(|p| has(p)))
        .map(|provider| {
            let (min, max) = inputs(provider);
            json!({
                "id": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
                "ruleConfigurationProperties": properties(provider),
                "inputArtifactDetails": {"minimumCount": min, "maximumCount": max},
            })
        })
        .collect();
    Ok(json!({"ruleTypes": types}))
}

/// `beforeEntryConditionState`, `onSuccessConditionState` and `onFailureConditionState` of one
/// stage run, for GetPipelineState.
pub(super) fn condition_states(e: &Execution, s: usize, runs: &ConditionRuns) -> Value {
    let state = |kind: ConditionKind| {
        runs.get(kind).map(|c| {
            let rules: Vec<Value> = c
                .rules
                .iter()
                .map(|r| {
                    json!({"ruleName": r.name, "latestExecution": compact(json!({
                        "ruleExecutionId": rule_execution_id(e, s, kind, &r.name),
                        "status": rule_status(r.status),
                        "summary": r.summary,
                        "lastStatusChange": secs(r.updated_at),
                        "lastUpdatedBy": c.overridden_by,
                    }))})
                })
                .collect();
            json!({
                "latestExecution": {"status": condition_status(c), "summary": c.summary},
                "conditionStates": [{
                    "latestExecution": {"status": condition_status(c), "summary": c.summary,
                        "lastStatusChange": secs(c.updated_at)},
                    "ruleStates": rules,
                }],
            })
        })
    };
    compact(json!({
        "beforeEntryConditionState": state(ConditionKind::BeforeEntry),
        "onSuccessConditionState": state(ConditionKind::OnSuccess),
        "onFailureConditionState": state(ConditionKind::OnFailure),
    }))
}

/// Every rule evaluation of an execution, as `RuleExecutionDetail`s.
fn rule_details(plan: &Plan, e: &Execution) -> Vec<Value> {
    if !e.runs(plan) {
        return vec![];
    }
    let mut out = Vec::new();
    for (s, (stage, run)) in plan.stages.iter().zip(&e.stages).enumerate() {
        for kind in [ConditionKind::BeforeEntry, ConditionKind::OnSuccess, ConditionKind::OnFailure]
        {
            let (Some(c), Some(declared)) = (run.conditions.get(kind), stage.conditions.get(kind))
            else {
                continue;
            };
            for r in &c.rules {
                let Some(rule) = declared.rules.iter().find(|d| d.name == r.name) else { continue };
                let failed = r.status == RuleStatus::Failed;
                out.push(compact(json!({
                    "pipelineExecutionId": e.id,
                    "ruleExecutionId": rule_execution_id(e, s, kind, &r.name),
                    "pipelineVersion": e.pipeline_version,
                    "stageName": stage.name,
                    "ruleName": r.name,
                    "startTime": secs(r.started_at),
                    "lastUpdateTime": secs(r.updated_at),
                    "updatedBy": c.overridden_by,
                    "status": rule_status(r.status),
                    "input": {
                        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": rule.provider, "version": "1"},
                        "configuration": rule.configuration,
                        "resolvedConfiguration": r.resolved_configuration,
                        "region": plan.region,
                        "inputArtifacts": [],
                    },
                    "output": {"executionResult": compact(json!({
                        "externalExecutionSummary": r.summary,
                        "errorDetails": failed.then(|| json!({"code": "RuleFailed", "message": r.summary})),
                    }))},
                })));
            }
        }
    }
    out
}

/// Stable for one run of one condition's rule in one execution.
fn rule_execution_id(e: &Execution, s: usize, kind: ConditionKind, rule: &str) -> String {
    let started = e.stages[s].conditions.get(kind).map_or(0, |c: &ConditionRun| c.started_at);
    super::executions::action_execution_id(
        &e.id,
        &format!("{s}/{}", kind.as_str()),
        rule,
        u32::try_from(started.rem_euclid(1 << 31)).unwrap_or_default(),
    )
}

fn condition_status(c: &ConditionRun) -> &'static str {
    match c.status {
        ConditionStatus::InProgress => "InProgress",
        ConditionStatus::Succeeded => "Succeeded",
        ConditionStatus::Failed => "Failed",
        ConditionStatus::Overridden => "Overridden",
        ConditionStatus::Cancelled => "Cancelled",
    }
}

fn rule_status(s: RuleStatus) -> &'static str {
    match s {
        RuleStatus::InProgress => "InProgress",
        RuleStatus::Succeeded => "Succeeded",
        RuleStatus::Failed => "Failed",
        RuleStatus::Abandoned => "Abandoned",
    }
}
