//! GetPipelineState, EnableStageTransition, DisableStageTransition.

use std::collections::HashMap;

use baton_core::engine::{Execution, Input, PipelineState};
use baton_core::plan::ExecutionMode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::conditions::condition_states;
use super::executions::action_execution_id;
use super::wire::{action_status, compact, input, secs, stage_status};
use super::{ApiError, Ctx};
use baton_app::ports::state::Scope;

#[derive(Deserialize)]
struct StateIn {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransitionIn {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Ctx<'_> {
    pub(super) async fn get_state(&self, body: Value) -> Result<Value, ApiError> {
        let StateIn { name } = input(body)?;
        let record = self.pipeline(&name).await?;
        let plan = &record.plan;
        let snapshot = self.api.store.load(&name, &Scope::LanesOnly).await?;
        let mut lanes = snapshot.lanes.value;
        if lanes.holders.len() != plan.stages.len() {
            // No execution ever ran (or the structure changed): nothing held, nothing disabled.
            let disabled = std::mem::take(&mut lanes.disabled);
            lanes = PipelineState::new(plan.stages.len()).lanes;
            for (s, d) in disabled.into_iter().enumerate().take(plan.stages.len()) {
                lanes.disabled[s] = d;
            }
        }
        let mut known: HashMap<String, Execution> =
            snapshot.executions.into_iter().map(|v| (v.value.id.clone(), v.value)).collect();
        // The newest execution that entered each stage, when the lanes do not name one: PARALLEL
        // executions enter without writing the lanes (a name left there by an earlier mode is
        // outdated).
        let recent = self.api.store.executions(&name, 50).await?;
        let parallel = plan.mode == ExecutionMode::Parallel;
        let mut stages = Vec::with_capacity(plan.stages.len());
        for (s, stage) in plan.stages.iter().enumerate() {
            let named = lanes.latest.get(s).cloned().flatten().filter(|_| !parallel);
            let latest_id = match named {
                Some(id) => Some(id),
                None => recent
                    .iter()
                    .find(|e| e.stages.get(s).is_some_and(|r| r.status.is_some()))
                    .map(|e| e.id.clone()),
            };
            let latest = match latest_id {
                Some(id) if !known.contains_key(&id) => {
                    let found = match recent.iter().find(|e| e.id == id) {
                        Some(e) => Some(e.clone()),
                        None => self.api.store.execution(&name, &id).await?,
                    };
                    found.inspect(|e| {
                        known.insert(id.clone(), e.clone());
                    })
                }
                Some(id) => known.get(&id).cloned(),
                None => None,
            };
            let run = latest.as_ref().and_then(|e| e.stages.get(s).map(|r| (e, r)));
            let actions: Vec<Value> = stage
                .actions
                .iter()
                .enumerate()
                .map(|(a, action)| {
                    let latest_action = run.and_then(|(e, r)| {
                        let ar = r.actions.get(a)?;
                        let status = action_status(ar.status)?;
                        Some(compact(json!({
                            "actionExecutionId": action_execution_id(&e.id, &stage.name, &action.name, ar.attempt),
                            "status": status,
                            "summary": ar.summary,
                            "lastStatusChange": ar.updated_at.or(ar.started_at).map(secs),
                            "token": ar.token.as_ref().filter(|_| status == "InProgress"),
                            "lastUpdatedBy": ar.decided_by,
                            "externalExecutionId": ar.external_id,
                            "externalExecutionUrl": ar.external_url,
                            "errorDetails": ar.error.as_ref().map(|err| json!({"code": err.code, "message": err.message})),
                        })))
                    });
                    compact(json!({"actionName": action.name, "latestExecution": latest_action}))
                })
                .collect();
            let waiting: Vec<Value> = lanes
                .waiting
                .get(s)
                .into_iter()
                .flatten()
                .map(|id| json!({"pipelineExecutionId": id, "status": "InProgress"}))
                .collect();
            let transition = match lanes.disabled.get(s).and_then(Option::as_ref) {
                Some(d) => compact(json!({"enabled": false, "disabledReason": d.reason,
                        "lastChangedAt": secs(d.at), "lastChangedBy": d.by})),
                None => json!({"enabled": true}),
            };
            let stage_latest = run.and_then(|(e, r)| {
                r.status.map(|st| {
                    let kind = if e.rollback.is_some() { "ROLLBACK" } else { "STANDARD" };
                    json!({"pipelineExecutionId": e.id, "status": stage_status(st), "type": kind})
                })
            });
            let mut state = compact(json!({
                "stageName": stage.name,
                "inboundExecution": waiting.first(),
                "inboundExecutions": (!waiting.is_empty()).then_some(&waiting),
                "inboundTransitionState": transition,
                "actionStates": actions,
                "latestExecution": stage_latest,
            }));
            if let (Some((e, r)), Some(fields)) = (run, state.as_object_mut()) {
                if let Value::Object(conditions) = condition_states(e, s, &r.conditions) {
                    fields.extend(conditions);
                }
                if r.auto_retried || r.manual_retries > 0 {
                    fields.insert("retryStageMetadata".into(), json!({
                        "autoStageRetryAttempt": u32::from(r.auto_retried),
                        "manualStageRetryAttempt": r.manual_retries,
                        "latestRetryTrigger": if r.manual_retries > 0 { "ManualStageRetry" } else { "AutomatedStageRetry" },
                    }));
                }
            }
            stages.push(state);
        }
        Ok(json!({
            "pipelineName": name,
            "pipelineVersion": plan.version,
            "stageStates": stages,
            "created": secs(record.created),
            "updated": secs(record.updated),
        }))
    }

    pub(super) async fn enable_transition(&self, body: Value) -> Result<Value, ApiError> {
        let t: TransitionIn = input(body)?;
        self.check_transition(&t).await?;
        self.apply(&t.pipeline_name, Input::EnableTransition { stage: t.stage_name }).await?;
        Ok(json!({}))
    }

    pub(super) async fn disable_transition(&self, body: Value) -> Result<Value, ApiError> {
        let t: TransitionIn = input(body)?;
        let reason = t
            .reason
            .clone()
            .ok_or_else(|| ApiError::constraint("reason", "null", "Member must not be null"))?;
        if reason.is_empty() || reason.chars().count() > 300 {
            return Err(ApiError::constraint(
                "reason",
                &format!("'{reason}'"),
                "Member must have length between 1 and 300",
            ));
        }
        self.check_transition(&t).await?;
        let by = Some(self.caller.to_owned());
        let input = Input::DisableTransition { stage: t.stage_name, reason, by };
        self.apply(&t.pipeline_name, input).await?;
        Ok(json!({}))
    }

    /// Only inbound transitions exist in Baton; the pipeline must exist.
    async fn check_transition(&self, t: &TransitionIn) -> Result<(), ApiError> {
        match t.transition_type.as_str() {
            "Inbound" => {}
            "Outbound" => {
                return Err(ApiError::validation(
                    "Baton supports only Inbound transitions: disable the next stage's inbound transition instead",
                ));
            }
            other => {
                return Err(ApiError::constraint(
                    "transitionType",
                    &format!("'{other}'"),
                    "Member must satisfy enum value set: [Inbound, Outbound]",
                ));
            }
        }
        self.pipeline(&t.pipeline_name).await?;
        Ok(())
    }
}
