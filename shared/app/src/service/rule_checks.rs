//! The action worker's second job: evaluating the stage-condition rules that ask a service
//! (`Commands`, `CloudWatchAlarm`, `LambdaInvoke`), one request at a time, and answering
//! stage-advance with the rule's verdict.

use baton_core::engine::{ConditionKind, ConditionStatus, Place, RuleRequest};
use baton_core::rules::Verdict;
use tracing::info;

use super::ServiceError;
use super::action_worker::{ActionWorker, Piece, Step, gather};
use crate::ports::provider::RuleCheck;
use baton_protocol::bus_events::BusEvent;

impl ActionWorker {
    /// Evaluates the rule `request` names, unless the request is no longer current, and
    /// publishes its answer.
    ///
    /// # Errors
    /// Retryable errors when a port or the rule's service is unavailable; a rule that cannot
    /// pass is not an error but a `Fail` answer.
    pub async fn evaluate_rule(&self, mut request: RuleRequest) -> Result<(), ServiceError> {
        request.role_arn =
            self.role_for(request.role_arn.as_deref(), request.pipeline_role_arn.as_deref());
        if !self.rule_is_current(&request).await? {
            info!(execution_id = %request.execution_id, rule = %request.rule, "rule request no longer current; not evaluating it");
            return Ok(());
        }
        let (verdict, handle) = match self.providers.rule(&request.provider) {
            None => (
                Verdict::Fail(format!(
                    "no provider for {} rules on this runtime",
                    request.provider
                )),
                None,
            ),
            Some(provider) => {
                let step = Step {
                    pipeline: &request.pipeline,
                    execution_id: &request.execution_id,
                    stage: &request.stage,
                    name: &request.rule,
                    number: request.request,
                };
                let (dir, log_path) = self.scratch_for(&step, "rule")?;
                let artifacts = self.store_for(&request.artifact_stores)?;
                let piece = Piece {
                    pipeline: &request.pipeline,
                    execution_id: &request.execution_id,
                    attempt: request.request,
                    region: &request.region,
                };
                let (in_place, inputs) = gather(
                    &*artifacts,
                    &piece,
                    (&request.input_artifacts, &[]),
                    provider.works_in_place(),
                    // Input zips go beside the rule's own folder (`run`), out of its sight.
                    &dir,
                )
                .await?;
                let check = RuleCheck {
                    request: request.clone(),
                    inputs,
                    work_dir: dir.join("run"),
                    log_path,
                    now: self.clock.now(),
                    in_place,
                };
                std::fs::create_dir_all(&check.work_dir)
                    .map_err(|e| ServiceError::io("cannot create the work folder", e))?;
                let answer = provider.evaluate_held(&check).await;
                self.folders.give_back(&dir);
                answer?
            }
        };
        info!(execution_id = %request.execution_id, rule = %request.rule, ?verdict, "rule evaluated");
        self.bus.publish(&[BusEvent::rule_completed(&request, verdict, handle)]).await?;
        Ok(())
    }

    /// Whether the rule still waits for this very request.
    async fn rule_is_current(&self, r: &RuleRequest) -> Result<bool, ServiceError> {
        let Some(record) = self.store.get_pipeline(&r.pipeline).await? else { return Ok(false) };
        let Some(e) = self.store.execution(&r.pipeline, &r.execution_id).await? else {
            return Ok(false);
        };
        let Some(s) = record.plan.stage_index(&r.stage) else { return Ok(false) };
        // An onFailure condition is decided after the stage failed.
        let after_failure =
            r.condition == ConditionKind::OnFailure && e.place() == Place::Halted(s);
        if !e.runs(&record.plan) || (e.place() != Place::InStage(s) && !after_failure) {
            return Ok(false);
        }
        let Some(c) = e.stages[s].conditions.get(r.condition) else { return Ok(false) };
        Ok(c.status == ConditionStatus::InProgress
            && c.rules.iter().any(|x| x.name == r.rule && x.awaiting && x.requests == r.request))
    }
}
