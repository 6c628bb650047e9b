//! The transitions. One `Machine` applies one input; see the table in the module above.

use std::collections::BTreeMap;

use serde_json::json;

use super::effect::{ActionRequest, Effect, FailureNotice, RuleRequest};
use super::input::{ActionOutcome, Env, Input};
use super::state::*;
use super::{Rejection, Step};
use crate::events::{ActionEvent, Announce, Origin, Published, execution_result, format_uuid};
use crate::plan::{ExecutionMode, Plan, RetryMode};
use crate::rules::{self, ConditionResult, Verdict};
use crate::variables;

pub(super) struct Machine<'a> {
    plan: &'a Plan,
    state: &'a mut PipelineState,
    env: Env,
    step: Step,
    tokens_drawn: u64,
}

impl<'a> Machine<'a> {
    pub(super) fn new(plan: &'a Plan, state: &'a mut PipelineState, env: Env) -> Self {
        let n = plan.stages.len();
        let lanes = &mut state.lanes;
        // A state saved before the pipeline gained stages is widened, never truncated.
        for v in [&mut lanes.holders, &mut lanes.latest] {
            if v.len() < n {
                v.resize(n, None);
            }
        }
        if lanes.waiting.len() < n {
            lanes.waiting.resize(n, Default::default());
        }
        if lanes.disabled.len() < n {
            lanes.disabled.resize(n, None);
        }
        if lanes.rollback_points.len() < n
            && plan.stages.iter().any(|s| s.conditions.may_roll_back())
        {
            lanes.rollback_points.resize(n, None);
        }
        Self { plan, state, env, step: Step::default(), tokens_drawn: 0 }
    }

    pub(super) fn apply(mut self, input: &Input) -> Result<Step, Rejection> {
        // Executions of an older declaration are set aside while the input applies: their
        // stages are not this plan's, so nothing here may look into them.
        let aside = self.cancel_outdated();
        let ran_old = |id: &str| {
            aside.iter().find(|e| e.id == id).map(|e| {
                format!(
                    "execution {id} ran version {} of the pipeline, which has been updated since",
                    e.pipeline_version
                )
            })
        };
        let refused = match input {
            Input::Retry { execution_id, .. } => ran_old(execution_id)
                .map(|why| Rejection::StageNotRetryable(format!("{why}; start a new execution"))),
            Input::Stop { execution_id, .. } => ran_old(execution_id).map(Rejection::NotStoppable),
            _ => None,
        };
        let applied = match refused {
            Some(rejection) => Err(rejection),
            None => self.apply_current(input),
        };
        for e in aside {
            self.state.executions.insert(e.id.clone(), e);
        }
        applied?;
        Ok(self.step)
    }

    fn apply_current(&mut self, input: &Input) -> Result<(), Rejection> {
        match input {
            Input::Start { execution_id, trigger, variables, source_revisions } => {
                self.start(execution_id, trigger, variables, source_revisions)?
            }
            Input::ActionCompleted { execution_id, stage, action, attempt, outcome } => {
                self.complete(execution_id, stage, action, *attempt, outcome)?
            }
            Input::ApprovalDecided { stage, action, token, approved, summary, by } => {
                self.decide(stage, action, token, *approved, summary, by)?
            }
            Input::Stop { execution_id, abandon, reason } => {
                self.stop(execution_id, *abandon, reason)?
            }
            Input::Retry { execution_id, stage, mode } => self.retry(execution_id, stage, *mode)?,
            Input::DisableTransition { stage, reason, by } => {
                self.disable(stage, reason, by.as_deref())?
            }
            Input::EnableTransition { stage } => self.enable(stage)?,
            Input::OverrideCondition { execution_id, stage, condition, by } => {
                self.override_condition(execution_id, stage, *condition, by)?
            }
            Input::Rollback { execution_id, stage, point, trigger } => {
                self.manual_rollback(execution_id, stage, point, trigger)?
            }
            Input::RuleCompleted {
                execution_id,
                stage,
                condition,
                rule,
                request,
                verdict,
                handle,
            } => self.rule_answered(
                execution_id,
                stage,
                *condition,
                (rule, *request),
                verdict,
                handle.as_deref(),
            )?,
            Input::Tick => self.tick(),
        }
        Ok(())
    }

    /// CodePipeline ends an execution in progress when its pipeline's declaration is updated
    /// ("Cancelled"): each one loaded here is cancelled, its stage locks released for the
    /// executions of the new declaration, and every execution of an older declaration is
    /// returned, taken out of the state.
    fn cancel_outdated(&mut self) -> Vec<Execution> {
        let outdated: Vec<ExecutionId> = self
            .state
            .executions
            .values()
            .filter(|e| e.pipeline_version != self.plan.version)
            .map(|e| e.id.clone())
            .collect();
        let mut released = std::collections::BTreeSet::new();
        for id in &outdated {
            let lanes = &mut self.state.lanes;
            for (s, holder) in lanes.holders.iter_mut().enumerate() {
                if holder.as_deref() == Some(id.as_str()) {
                    *holder = None;
                    released.insert(s);
                    self.step.lanes_changed = true;
                }
            }
            for line in &mut lanes.waiting {
                let before = line.len();
                line.retain(|w| w != id);
                self.step.lanes_changed |= line.len() != before;
            }
            let Some(e) = self.state.executions.get_mut(id) else { continue };
            if e.status().is_ended() {
                continue;
            }
            e.phase = Phase::Ended(Ending::Cancelled);
            e.status_summary = Some(
                "The pipeline's declaration was updated before the execution could be completed"
                    .into(),
            );
            e.updated_at = self.env.now;
            for stage in &mut e.stages {
                if matches!(stage.status, Some(StageStatus::InProgress | StageStatus::Stopping)) {
                    stage.status = Some(StageStatus::Cancelled);
                }
                for action in &mut stage.actions {
                    if action.status == ActionStatus::InProgress {
                        action.status = ActionStatus::Abandoned;
                    }
                    action.token = None;
                }
            }
            self.touch(id);
            self.publish_pipeline(id, Published::Canceled, None);
        }
        let aside =
            outdated.iter().filter_map(|id| self.state.executions.remove(id)).collect::<Vec<_>>();
        // A lock of a stage the new declaration no longer has guards nothing.
        for s in released.into_iter().filter(|s| *s < self.plan.stages.len()) {
            self.admit(s);
        }
        aside
    }

    // ---- inputs ---------------------------------------------------------------------------

    fn start(
        &mut self,
        id: &str,
        trigger: &Trigger,
        overrides: &BTreeMap<String, String>,
        source_revisions: &BTreeMap<String, SourceRevision>,
    ) -> Result<(), Rejection> {
        if self.state.executions.contains_key(id) {
            return Ok(()); // the same start delivered again
        }
        let variables = self.resolve_pipeline_variables(overrides)?;
        self.check_source_revisions(source_revisions)?;
        let execution = Execution {
            variables,
            source_revisions: source_revisions.clone(),
            ..self.new_execution(id, trigger)
        };
        self.launch(execution, 0);
        Ok(())
    }

    /// An execution of this plan that has not entered any stage.
    fn new_execution(&self, id: &str, trigger: &Trigger) -> Execution {
        let stages = self
            .plan
            .stages
            .iter()
            .map(|s| StageRun {
                status: None,
                attempt: 0,
                auto_retried: false,
                manual_retries: 0,
                actions: s.actions.iter().map(|_| ActionRun::new()).collect(),
                conditions: ConditionRuns::default(),
                rule_requests: 0,
            })
            .collect();
        Execution {
            id: id.to_string(),
            pipeline_version: self.plan.version,
            phase: Phase::Waiting(0),
            status_summary: None,
            trigger: trigger.clone(),
            variables: BTreeMap::new(),
            arrival: 0,
            started_at: self.env.now,
            updated_at: self.env.now,
            stages,
            outputs: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            rollback: None,
            revisions: BTreeMap::new(),
            source_revisions: BTreeMap::new(),
        }
    }

    /// Adds `execution` in its order of arrival, announces it, and lines it up for stage `s`.
    fn launch(&mut self, mut execution: Execution, s: usize) {
        // Only SUPERSEDED and QUEUED executions are ordered by the shared counter: a PARALLEL
        // start writes nothing shared, so concurrent starts of one pipeline do not contend.
        if self.plan.mode != ExecutionMode::Parallel {
            execution.arrival = self.state.lanes.arrivals;
            self.state.lanes.arrivals += 1;
            self.step.lanes_changed = true;
        }
        let id = execution.id.clone();
        let trigger = &execution.trigger;
        let trigger_json =
            json!({"trigger-type": trigger.trigger_type, "trigger-detail": trigger.trigger_detail});
        self.state.executions.insert(id.clone(), execution);
        self.touch(&id);
        self.publish_pipeline(&id, Published::Started, Some(("execution-trigger", trigger_json)));
        self.join(&id, s);
    }

    fn resolve_pipeline_variables(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Rejection> {
        if let Some(unknown) =
            overrides.keys().find(|k| !self.plan.variables.iter().any(|(n, _)| n == *k))
        {
            return Err(Rejection::InvalidVariables(format!(
                "pipeline variable \"{unknown}\" is not declared by pipeline \"{}\"",
                self.plan.name
            )));
        }
        let mut values = BTreeMap::new();
        for (name, default) in &self.plan.variables {
            let value = overrides.get(name).or(default.as_ref()).ok_or_else(|| {
                Rejection::InvalidVariables(format!(
                    "pipeline variable \"{name}\" has no default value, so the start must give one"
                ))
            })?;
            values.insert(name.clone(), value.clone());
        }
        Ok(values)
    }

    fn check_source_revisions(
        &self,
        revisions: &BTreeMap<String, SourceRevision>,
    ) -> Result<(), Rejection> {
        for (action, revision) in revisions {
            let source = self
                .plan
                .stages
                .iter()
                .flat_map(|s| &s.actions)
                .find(|a| a.name == *action && a.action_type.category == "Source");
            let Some(source) = source else {
                return Err(Rejection::InvalidSourceRevision(format!(
                    "sourceRevisions names \"{action}\", which is not a source action of pipeline \"{}\"",
                    self.plan.name
                )));
            };
            let types = SourceRevision::types_for(&source.action_type.provider);
            if !types.contains(&revision.revision_type.as_str()) {
                return Err(Rejection::InvalidSourceRevision(format!(
                    "source action \"{action}\" ({}) takes a revision of type {}, not {}",
                    source.action_type.provider,
                    if types.is_empty() { "none".to_string() } else { types.join(" or ") },
                    revision.revision_type
                )));
            }
        }
        Ok(())
    }

    fn complete(
        &mut self,
        id: &str,
        stage: &str,
        action: &str,
        attempt: u32,
        outcome: &ActionOutcome,
    ) -> Result<(), Rejection> {
        let (s, a) = self.locate(stage, action)?;
        let exec = self
            .state
            .executions
            .get_mut(id)
            .ok_or_else(|| Rejection::ExecutionNotFound(id.to_string()))?;
        let run = &mut exec.stages[s].actions[a];
        if run.attempt != attempt || run.status != ActionStatus::InProgress {
            return Ok(()); // a duplicate, or the result of an attempt that is no longer current
        }
        run.updated_at = Some(self.env.now);
        run.deadline = None;
        match outcome {
            ActionOutcome::Succeeded {
                output_variables,
                artifacts,
                summary,
                external_id,
                external_url,
                targets,
            } => {
                run.status = ActionStatus::Succeeded;
                run.targets = super::deploy_targets::bounded(targets);
                run.output_variables = output_variables.clone();
                run.outputs = artifacts.clone();
                run.summary = summary.clone();
                run.external_id = external_id.clone();
                run.external_url = external_url.clone();
                run.error = None;
                let plan_action = &self.plan.stages[s].actions[a];
                let revision = (plan_action.action_type.category == "Source")
                    .then(|| source_revision(output_variables))
                    .flatten();
                for artifact in artifacts {
                    exec.artifacts.insert(artifact.name.clone(), artifact.location.clone());
                    match &revision {
                        Some(r) => drop(exec.revisions.insert(artifact.name.clone(), r.clone())),
                        None => drop(exec.revisions.remove(&artifact.name)),
                    }
                }
                if let Some(ns) = &self.plan.stages[s].actions[a].namespace {
                    exec.outputs.insert(ns.clone(), output_variables.clone());
                }
            }
            ActionOutcome::Failed { error, external_id, external_url, targets } => {
                run.status = ActionStatus::Failed;
                run.targets = super::deploy_targets::bounded(targets);
                run.error = Some(error.clone());
                run.external_id = external_id.clone();
                run.external_url = external_url.clone();
            }
        }
        self.touch(id);
        self.publish_action_end(id, s, a);
        self.drive(id);
        Ok(())
    }

    fn decide(
        &mut self,
        stage: &str,
        action: &str,
        token: &str,
        approved: bool,
        summary: &str,
        by: &str,
    ) -> Result<(), Rejection> {
        let (s, a) = self.locate(stage, action)?;
        if !self.plan.stages[s].actions[a].action_type.is_manual_approval() {
            return Err(Rejection::InvalidApprovalToken);
        }
        let holder = self
            .state
            .executions
            .values()
            .find(|e| e.stages[s].actions[a].token.as_deref() == Some(token));
        let Some(exec) = holder else {
            return Err(Rejection::InvalidApprovalToken);
        };
        if exec.stages[s].actions[a].status != ActionStatus::InProgress {
            return Err(Rejection::ApprovalAlreadyCompleted);
        }
        let id = exec.id.clone();
        let now = self.env.now;
        let Some(exec) = self.state.executions.get_mut(&id) else { return Ok(()) };
        let run = &mut exec.stages[s].actions[a];
        run.updated_at = Some(now);
        run.deadline = None;
        run.summary = Some(summary.to_string());
        run.decided_by = Some(by.to_string());
        if approved {
            run.status = ActionStatus::Succeeded;
        } else {
            run.status = ActionStatus::Failed;
            run.error = Some(ActionError {
                code: "Rejected".into(),
                message: format!("Rejected by {by}: {summary}"),
            });
        }
        self.touch(&id);
        self.publish_action_end(&id, s, a);
        self.drive(&id);
        Ok(())
    }

    fn stop(&mut self, id: &str, abandon: bool, reason: &str) -> Result<(), Rejection> {
        let exec = self
            .state
            .executions
            .get(id)
            .ok_or_else(|| Rejection::ExecutionNotFound(id.to_string()))?;
        if exec.status().is_ended() {
            return Err(Rejection::NotStoppable(format!(
                "execution {id} cannot be stopped: it is already {:?}",
                exec.status()
            )));
        }
        if exec.status() == ExecutionStatus::Stopping && !abandon {
            return Err(Rejection::DuplicatedStopRequest(id.to_string()));
        }
        let place = exec.place();
        let was_stopping = exec.status() == ExecutionStatus::Stopping;
        self.touch(id);
        let request = StopRequest { abandon, reason: reason.to_string() };
        match place {
            Place::Waiting(i) => {
                self.state.lanes.waiting[i].retain(|w| w != id);
                self.step.lanes_changed = true;
                let comments = json!({"reason": reason});
                self.publish_pipeline(
                    id,
                    Published::Stopping,
                    Some(("stop-execution-comments", comments)),
                );
                if let Some(e) = self.state.executions.get_mut(id) {
                    e.phase = Phase::Ended(Ending::Stopped(request));
                    e.status_summary = Some(reason.to_string());
                    e.updated_at = self.env.now;
                }
                self.publish_pipeline(id, Published::Stopped, None);
            }
            Place::InStage(i) => {
                if let Some(e) = self.state.executions.get_mut(id) {
                    e.phase = Phase::Stopping(i, request);
                    e.stages[i].status = Some(StageStatus::Stopping);
                    e.updated_at = self.env.now;
                }
                if !was_stopping {
                    let comments = json!({"reason": reason});
                    self.publish_pipeline(
                        id,
                        Published::Stopping,
                        Some(("stop-execution-comments", comments)),
                    );
                    self.publish_stage(id, i, Published::Stopping);
                }
                if abandon {
                    self.abandon_running(id, i);
                }
                self.drive(id);
            }
            Place::Halted(_) | Place::Done => {}
        }
        Ok(())
    }

    fn retry(&mut self, id: &str, stage: &str, mode: RetryMode) -> Result<(), Rejection> {
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        let exec = self
            .state
            .executions
            .get(id)
            .ok_or_else(|| Rejection::ExecutionNotFound(id.to_string()))?;
        if !matches!(exec.status(), ExecutionStatus::Failed | ExecutionStatus::Stopped) {
            return Err(Rejection::StageNotRetryable(format!(
                "stage \"{stage}\" cannot be retried: execution {id} is {:?}",
                exec.status()
            )));
        }
        if exec.place() != Place::Halted(s) {
            return Err(Rejection::StageNotRetryable(format!(
                "stage \"{stage}\" cannot be retried: execution {id} did not fail or stop in it"
            )));
        }
        let parallel = self.plan.mode == ExecutionMode::Parallel;
        let lanes = &self.state.lanes;
        let latest = lanes.latest[s].as_deref() == Some(id);
        if !parallel && (!latest || lanes.holders[s].as_ref().is_some_and(|h| h != id)) {
            return Err(Rejection::NotLatestPipelineExecution {
                execution: id.to_string(),
                stage: stage.to_string(),
            });
        }
        if !parallel {
            self.state.lanes.holders[s] = Some(id.to_string());
            self.step.lanes_changed = true;
        }
        if let Some(e) = self.state.executions.get_mut(id) {
            e.phase = Phase::Running(s);
            e.status_summary = None;
            e.updated_at = self.env.now;
            let run = &mut e.stages[s];
            run.manual_retries += 1;
            reset_for_retry(run, mode);
        }
        self.touch(id);
        self.publish_pipeline(id, Published::Resumed, None);
        self.publish_stage(id, s, Published::Resumed);
        self.drive(id);
        Ok(())
    }

    fn disable(&mut self, stage: &str, reason: &str, by: Option<&str>) -> Result<(), Rejection> {
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        if self.state.lanes.disabled[s].is_none() {
            self.state.lanes.disabled[s] = Some(DisabledTransition {
                reason: reason.to_string(),
                at: self.env.now,
                by: by.map(str::to_owned),
            });
            self.step.lanes_changed = true;
        }
        Ok(())
    }

    fn enable(&mut self, stage: &str) -> Result<(), Rejection> {
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        if self.state.lanes.disabled[s].take().is_some() {
            self.step.lanes_changed = true;
            self.admit(s);
        }
        Ok(())
    }

    fn tick(&mut self) {
        let now = self.env.now;
        let mut expired = Vec::new();
        for e in self.state.executions.values() {
            let Place::InStage(s) = e.place() else { continue };
            for (a, run) in e.stages[s].actions.iter().enumerate() {
                if run.status == ActionStatus::InProgress && run.deadline.is_some_and(|d| d <= now)
                {
                    expired.push((e.id.clone(), s, a));
                }
            }
        }
        let waiting: Vec<(ExecutionId, usize, ConditionKind)> = self
            .state
            .executions
            .values()
            .filter_map(|e| match e.place() {
                Place::InStage(s) if e.stop().is_none() => {
                    e.stages[s].conditions.waiting().map(|k| (e.id.clone(), s, k))
                }
                Place::Halted(s)
                    if e.stages[s].conditions.waiting() == Some(ConditionKind::OnFailure) =>
                {
                    Some((e.id.clone(), s, ConditionKind::OnFailure))
                }
                _ => None,
            })
            .collect();
        for (id, s, kind) in waiting {
            self.look_again(&id, s, kind);
        }
        for (id, s, a) in expired {
            let plan_action = &self.plan.stages[s].actions[a];
            let message = if plan_action.action_type.is_manual_approval() {
                format!(
                    "The approval was not decided within {} minutes",
                    plan_action.timeout_minutes
                )
            } else {
                format!("The action did not finish within {} minutes", plan_action.timeout_minutes)
            };
            if let Some(e) = self.state.executions.get_mut(&id) {
                let run = &mut e.stages[s].actions[a];
                run.status = ActionStatus::Failed;
                run.deadline = None;
                run.updated_at = Some(now);
                run.error = Some(ActionError { code: "TimedOut".into(), message });
            }
            self.touch(&id);
            self.publish_action_end(&id, s, a);
            self.drive(&id);
        }
    }

    // ---- lanes ----------------------------------------------------------------------------

    /// The execution asks to enter stage `s`: it waits in line, superseding or being
    /// superseded in SUPERSEDED mode, and enters when the lane lets it.
    fn join(&mut self, id: &str, s: usize) {
        if let Some(e) = self.state.executions.get_mut(id) {
            e.phase = Phase::Waiting(s);
        }
        if self.plan.mode == ExecutionMode::Parallel && self.state.lanes.disabled[s].is_none() {
            // Nothing to wait for and nothing held: the stage's entry touches no lane, so
            // executions of one pipeline move without contending on its lanes.
            return self.enter(id, s);
        }
        self.step.lanes_changed = true;
        if self.is_rollback(id) {
            // A rollback restores what ran before; it goes first and supersedes nobody.
            self.state.lanes.waiting[s].push_front(id.to_string());
            return self.admit(s);
        }
        self.state.lanes.waiting[s].push_back(id.to_string());
        if self.plan.mode == ExecutionMode::Superseded {
            // Only the newest waiting execution survives; superseding happens between stages.
            let line: Vec<ExecutionId> = self.state.lanes.waiting[s].drain(..).collect();
            let arrival = |x: &ExecutionId| self.state.executions.get(x).map_or(0, |e| e.arrival);
            let newest =
                line.iter().filter(|x| !self.is_rollback(x)).max_by_key(|x| arrival(x)).cloned();
            for other in line {
                if Some(&other) == newest.as_ref() || self.is_rollback(&other) {
                    self.state.lanes.waiting[s].push_back(other);
                } else {
                    self.supersede(&other, newest.as_deref().unwrap_or_default());
                }
            }
            if let Some(newest) = newest {
                self.replace_waiting_approval(s, &newest);
            }
        }
        self.admit(s);
    }

    /// Baton's `SupersedeWaitingApproval` option: when a newer execution reaches a stage whose
    /// holder only waits for people to approve (on approvals that have the option), the holder
    /// is superseded and its approvals are cancelled, so nobody approves an old revision.
    fn replace_waiting_approval(&mut self, s: usize, newest: &str) {
        let Some(holder) = self.state.lanes.holders[s].clone() else { return };
        let Some(e) = self.state.executions.get(&holder) else { return };
        let newer = self.state.executions.get(newest).is_some_and(|n| n.arrival > e.arrival);
        let running: Vec<usize> = (0..e.stages[s].actions.len())
            .filter(|&a| e.stages[s].actions[a].status == ActionStatus::InProgress)
            .collect();
        let only_waiting_for_people = !running.is_empty()
            && running.iter().all(|&a| self.plan.stages[s].actions[a].gives_way_to_newer());
        if !newer || !only_waiting_for_people || e.stop().is_some() {
            return;
        }
        self.abandon_running(&holder, s);
        if let Some(e) = self.state.executions.get_mut(&holder) {
            e.stages[s].status = Some(StageStatus::Cancelled);
            for a in running {
                e.stages[s].actions[a].token = None;
            }
        }
        self.publish_stage(&holder, s, Published::Canceled);
        self.supersede(&holder, newest);
        self.state.lanes.holders[s] = None;
        self.step.lanes_changed = true;
    }

    /// Lets waiting executions into stage `s` while its transition and lock allow.
    fn admit(&mut self, s: usize) {
        let parallel = self.plan.mode == ExecutionMode::Parallel;
        loop {
            let lanes = &mut self.state.lanes;
            if lanes.disabled[s].is_some() || (!parallel && lanes.holders[s].is_some()) {
                return;
            }
            let Some(id) = lanes.waiting[s].pop_front() else { return };
            if !parallel {
                // Only the latest may retry the stage; PARALLEL executions each retry their own.
                lanes.holders[s] = Some(id.clone());
                lanes.latest[s] = Some(id.clone());
            }
            self.step.lanes_changed = true;
            self.enter(&id, s);
        }
    }

    /// Frees stage `s` if `id` holds it, and lets the next execution in.
    fn release(&mut self, id: &str, s: usize) {
        if self.state.lanes.holders[s].as_deref() == Some(id) {
            self.state.lanes.holders[s] = None;
            self.step.lanes_changed = true;
        }
        self.admit(s);
    }

    fn supersede(&mut self, id: &str, by: &str) {
        if let Some(e) = self.state.executions.get_mut(id) {
            e.phase = Phase::Ended(Ending::Superseded);
            e.status_summary = Some(format!("Superseded by execution {by}"));
            e.updated_at = self.env.now;
        }
        self.touch(id);
        self.publish_pipeline(id, Published::Superseded, None);
    }

    // ---- inside a stage -------------------------------------------------------------------

    fn enter(&mut self, id: &str, s: usize) {
        if let Some(e) = self.state.executions.get_mut(id) {
            e.phase = Phase::Running(s);
            e.updated_at = self.env.now;
            let run = &mut e.stages[s];
            run.status = Some(StageStatus::InProgress);
            run.attempt = 1;
            run.conditions = ConditionRuns::default();
        }
        self.touch(id);
        self.publish_stage(id, s, Published::Started);
        self.drive(id);
    }

    /// Moves an execution on as far as it can go without waiting for anything outside.
    fn drive(&mut self, id: &str) {
        loop {
            let Some(e) = self.state.executions.get(id) else { return };
            let Place::InStage(s) = e.place() else { return };
            let run = &e.stages[s];
            if run.actions.iter().any(|a| a.status == ActionStatus::InProgress) {
                return;
            }
            if e.stop().is_some() {
                return self.halt_stopped(id, s);
            }
            if run.conditions.waiting().is_some() {
                return; // a rule waits; a Tick looks again
            }
            let conditions = &self.plan.stages[s].conditions;
            if conditions.before_entry.is_some() && run.conditions.before_entry.is_none() {
                if self.evaluate(id, s, ConditionKind::BeforeEntry) {
                    continue;
                }
                return;
            }
            if run
                .actions
                .iter()
                .any(|a| matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned))
            {
                return self.stage_failed(id, s);
            }
            let next_group = self.plan.stages[s].groups.iter().find_map(|g| {
                let pending: Vec<usize> = g
                    .iter()
                    .copied()
                    .filter(|&a| run.actions[a].status == ActionStatus::Pending)
                    .collect();
                (!pending.is_empty()).then_some(pending)
            });
            match next_group {
                Some(group) => {
                    for a in group {
                        self.start_action(id, s, a);
                    }
                }
                None if conditions.on_success.is_some() && run.conditions.on_success.is_none() => {
                    if !self.evaluate(id, s, ConditionKind::OnSuccess) {
                        return;
                    }
                }
                None => return self.stage_succeeded(id, s),
            }
        }
    }

    fn start_action(&mut self, id: &str, s: usize, a: usize) {
        let plan_action = &self.plan.stages[s].actions[a];
        let token = plan_action.action_type.is_manual_approval().then(|| self.draw_token());
        let now = self.env.now;
        let Some(e) = self.state.executions.get_mut(id) else { return };
        let prepared = prepare(self.plan, e, s, a);
        let run = &mut e.stages[s].actions[a];
        run.attempt += 1;
        run.started_at = Some(now);
        run.updated_at = Some(now);
        run.output_variables.clear();
        run.outputs.clear();
        run.summary = None;
        run.external_id = None;
        run.external_url = None;
        run.targets.clear();
        run.decided_by = None;
        run.error = None;
        self.step.touched.insert(id.to_string());
        match prepared {
            Ok((configuration, commands, inputs, environment_variables)) => {
                let deadline = now + i64::from(plan_action.timeout_minutes) * 60_000;
                run.status = ActionStatus::InProgress;
                run.deadline = Some(deadline);
                run.token = token.clone();
                run.resolved_configuration = Some(configuration.clone());
                run.inputs = inputs.clone();
                let request = ActionRequest {
                    pipeline: self.plan.name.clone(),
                    pipeline_version: e.pipeline_version,
                    execution_id: id.to_string(),
                    stage: self.plan.stages[s].name.clone(),
                    action: plan_action.name.clone(),
                    attempt: run.attempt,
                    action_type: plan_action.action_type.clone(),
                    configuration,
                    commands,
                    input_revisions: inputs
                        .iter()
                        .filter_map(|i| Some((i.name.clone(), e.revisions.get(&i.name)?.clone())))
                        .collect(),
                    input_artifacts: inputs,
                    source_revision: e.source_revisions.get(&plan_action.name).cloned(),
                    output_artifacts: plan_action.output_artifacts.clone(),
                    region: plan_action.region.clone(),
                    role_arn: plan_action.role_arn.clone(),
                    pipeline_role_arn: self.plan.role_arn.clone(),
                    artifact_stores: self.plan.artifact_stores.clone(),
                    deadline,
                    token,
                    output_artifact_files: plan_action.output_artifact_files.clone(),
                    output_variables: plan_action.output_variables.clone(),
                    environment_variables,
                    announce: Announce::of(self.plan, stage_attempt(&e.stages[s])),
                };
                self.publish_action(id, s, a, Published::Started);
                self.step.effects.push(Effect::RequestAction(Box::new(request)));
            }
            Err(error) => {
                // Fails before reaching a provider: there is nothing to run.
                run.status = ActionStatus::Failed;
                run.token = None;
                run.deadline = None;
                run.error = Some(error);
                self.publish_action_end(id, s, a);
            }
        }
    }

    fn stage_succeeded(&mut self, id: &str, s: usize) {
        self.pass_stage(id, s, StageStatus::Succeeded);
    }

    /// The execution is done with stage `s` (it succeeded in it, or skipped it): it goes on to
    /// the next stage, or ends succeeded after the last one (a rollback's only one).
    fn pass_stage(&mut self, id: &str, s: usize, status: StageStatus) {
        let succeeded = status == StageStatus::Succeeded;
        let last = s + 1 == self.plan.stages.len() || self.is_rollback(id);
        if let Some(e) = self.state.executions.get_mut(id) {
            e.stages[s].status = Some(status);
            e.updated_at = self.env.now;
            if succeeded
                && self.plan.stages[s].conditions.may_roll_back()
                && let Some(point) = RollbackPoint::of(e, s)
            {
                self.state.lanes.rollback_points[s] = Some(point);
                self.step.lanes_changed = true;
            }
            if last {
                e.phase = Phase::Ended(Ending::Succeeded);
            }
        }
        self.touch(id);
        if succeeded {
            self.publish_stage(id, s, Published::Succeeded);
        }
        if last {
            self.publish_pipeline(id, Published::Succeeded, None);
            self.release(id, s);
        } else {
            // Leave the stage before joining the next line, so the next execution can take it.
            self.release(id, s);
            self.join(id, s + 1);
        }
    }

    fn stage_failed(&mut self, id: &str, s: usize) {
        let auto = self.plan.stages[s].auto_retry;
        let Some(e) = self.state.executions.get_mut(id) else { return };
        if let (Some(mode), false) = (auto, e.stages[s].auto_retried) {
            // onFailure RETRY: exactly one automatic attempt.
            e.stages[s].auto_retried = true;
            reset_for_retry(&mut e.stages[s], mode);
            self.touch(id);
            self.publish_stage(id, s, Published::Resumed);
            return self.drive(id);
        }
        let failures: Vec<String> = e.stages[s]
            .actions
            .iter()
            .zip(&self.plan.stages[s].actions)
            .filter_map(|(run, plan)| {
                run.error
                    .as_ref()
                    .filter(|_| run.status == ActionStatus::Failed)
                    .map(|err| format!("{}: {}", plan.name, err.message))
            })
            .collect();
        self.fail_stage(id, s, failures);
        self.after_failure(id, s);
    }

    /// Ends the execution in stage `s`, failed for `failures` (`Name: why` each). The caller
    /// releases the stage once it knows whether a rollback goes in first.
    fn fail_stage(&mut self, id: &str, s: usize, failures: Vec<String>) {
        let stage_name = &self.plan.stages[s].name;
        let Some(e) = self.state.executions.get_mut(id) else { return };
        e.stages[s].status = Some(StageStatus::Failed);
        e.phase = Phase::Halted(s, Halt::Failed);
        e.updated_at = self.env.now;
        e.status_summary = Some(format!("Stage {stage_name} failed: {}", failures.join("; ")));
        self.touch(id);
        self.publish_stage(id, s, Published::Failed);
        self.publish_pipeline(id, Published::Failed, None);
        self.step.effects.push(Effect::NotifyFailure(FailureNotice {
            pipeline: self.plan.name.clone(),
            execution_id: id.to_string(),
            stage: stage_name.clone(),
            failures,
        }));
    }

    // ---- conditions and rollbacks ---------------------------------------------------------

    /// Runs the `kind` condition of stage `s` for execution `id`, records what each rule
    /// found, and engages the condition's result if it failed. Returns whether the execution
    /// may go on past it.
    fn evaluate(&mut self, id: &str, s: usize, kind: ConditionKind) -> bool {
        let Some(plan) = self.plan.stages[s].conditions.get(kind) else { return true };
        let now = self.env.now;
        let Some(e) = self.state.executions.get_mut(id) else { return false };
        let prior =
            e.stages[s].conditions.get(kind).filter(|c| c.status == ConditionStatus::InProgress);
        let started_at = prior.map_or(now, |c| c.started_at);
        let mut runs = Vec::new();
        let (mut failed, mut waits) = (Vec::new(), Vec::new());
        let mut requests = Vec::new();
        let mut numbered = e.stages[s].rule_requests;
        for rule in &plan.rules {
            let mut resolved = indexmap::IndexMap::new();
            let mut verdict = None;
            for (k, v) in &rule.configuration {
                match variables::resolve(v, lookup(e)) {
                    Ok(value) => drop(resolved.insert(k.clone(), value)),
                    Err(what) => {
                        verdict = Some(Verdict::Fail(format!(
                            "#{{{what}}} has no value in this execution"
                        )))
                    }
                }
            }
            let prior_rule = prior.and_then(|c| c.rules.iter().find(|r| r.name == rule.name));
            let rule_started = prior_rule.map_or(now, |r| r.started_at);
            let (mut asked, mut awaiting) = (prior_rule.map_or(0, |r| r.requests), false);
            let verdict = match verdict {
                Some(v) => v,
                None if rule.is_decided_by_engine() => rules::evaluate(rule, &resolved, now),
                // A rule that asks a service keeps a pass, waits for an answer, judges the
                // answer it got, or is asked (again, after a `Wait` answer).
                None => match prior_rule {
                    Some(r) if r.status == RuleStatus::Succeeded => {
                        Verdict::Pass(r.summary.clone())
                    }
                    Some(r) if r.awaiting => {
                        awaiting = true;
                        Verdict::Wait(r.summary.clone())
                    }
                    Some(RuleRun { answer: Some(answer), .. }) => answer.clone(),
                    _ => match rule_request(self.plan, e, s, kind, rule, &resolved) {
                        Ok(mut request) => {
                            numbered += 1;
                            asked = numbered;
                            awaiting = true;
                            request.request = asked;
                            request.started_at = rule_started;
                            request.handle = prior_rule.and_then(|r| r.handle.clone());
                            request.deadline =
                                rule_started + i64::from(rule.timeout_minutes) * 60_000;
                            requests.push(request);
                            Verdict::Wait(format!(
                                "Waiting for the {} rule's answer",
                                rule.provider
                            ))
                        }
                        Err(why) => Verdict::Fail(why),
                    },
                },
            };
            let (status, summary) = match verdict {
                Verdict::Pass(why) => (RuleStatus::Succeeded, why),
                Verdict::Fail(why) => {
                    failed.push(format!("rule {}: {why}", rule.name));
                    (RuleStatus::Failed, why)
                }
                Verdict::Wait(why) => {
                    waits.push((rule, why.clone()));
                    (RuleStatus::InProgress, why)
                }
            };
            runs.push(RuleRun {
                name: rule.name.clone(),
                status,
                summary,
                resolved_configuration: resolved,
                started_at: rule_started,
                updated_at: now,
                requests: asked,
                awaiting: awaiting && status == RuleStatus::InProgress,
                answer: None,
                handle: prior_rule.and_then(|r| r.handle.clone()),
            });
        }
        let deadline = prior.and_then(|c| c.deadline).or_else(|| {
            let longest = waits.iter().map(|(r, _)| r.timeout_minutes).max()?;
            Some(now + i64::from(longest) * 60_000)
        });
        let timed_out = !waits.is_empty() && deadline.is_some_and(|d| now >= d);
        if timed_out {
            for (rule, why) in &waits {
                failed.push(format!(
                    "rule {}: {why}, and {} minutes passed",
                    rule.name, rule.timeout_minutes
                ));
            }
            for run in runs.iter_mut().filter(|r| r.status == RuleStatus::InProgress) {
                run.status = RuleStatus::Failed;
            }
        }
        let (status, summary) = if !failed.is_empty() {
            (ConditionStatus::Failed, failed.join("; "))
        } else if let Some((rule, why)) = waits.first() {
            (ConditionStatus::InProgress, format!("rule {}: {why}", rule.name))
        } else {
            (ConditionStatus::Succeeded, "Every rule passed".to_string())
        };
        let waiting = status == ConditionStatus::InProgress;
        if waiting {
            for request in requests {
                self.step.effects.push(Effect::RequestRule(Box::new(request)));
            }
        }
        let Some(e) = self.state.executions.get_mut(id) else { return false };
        if waiting {
            e.stages[s].rule_requests = numbered;
        }
        *e.stages[s].conditions.slot(kind) = Some(ConditionRun {
            status,
            summary: summary.clone(),
            started_at,
            updated_at: now,
            deadline: deadline.filter(|_| waiting),
            overridden_by: None,
            rules: runs,
        });
        e.updated_at = now;
        self.touch(id);
        match status {
            ConditionStatus::Succeeded => true,
            ConditionStatus::Failed => {
                self.engage(id, s, kind, plan.result, &summary);
                false
            }
            _ => false,
        }
    }

    /// The answer of a rule that asks a service: judged with the condition's other rules at
    /// once. A stale answer (another request, a condition no longer waiting) changes nothing.
    fn rule_answered(
        &mut self,
        id: &str,
        stage: &str,
        kind: ConditionKind,
        (rule, request): (&str, u32),
        verdict: &Verdict,
        handle: Option<&str>,
    ) -> Result<(), Rejection> {
        let s = self
            .plan
            .stage_index(stage)
            .ok_or_else(|| Rejection::StageNotFound(stage.to_string()))?;
        let e = self
            .state
            .executions
            .get_mut(id)
            .ok_or_else(|| Rejection::ExecutionNotFound(id.to_string()))?;
        let after_failure = kind == ConditionKind::OnFailure && e.place() == Place::Halted(s);
        if e.place() != Place::InStage(s) && !after_failure {
            return Ok(());
        }
        let Some(c) = e.stages[s].conditions.slot(kind) else { return Ok(()) };
        if c.status != ConditionStatus::InProgress {
            return Ok(());
        }
        let Some(r) = c.rules.iter_mut().find(|r| r.name == rule) else { return Ok(()) };
        if !r.awaiting || r.requests != request {
            return Ok(());
        }
        r.awaiting = false;
        r.answer = Some(verdict.clone());
        r.handle = handle.map(str::to_owned);
        self.look_again(id, s, kind);
        Ok(())
    }

    /// What a failed condition does.
    fn engage(
        &mut self,
        id: &str,
        s: usize,
        kind: ConditionKind,
        result: ConditionResult,
        why: &str,
    ) {
        let failure = || vec![format!("{} condition: {why}", kind.as_str())];
        match (kind, result) {
            (ConditionKind::OnFailure, ConditionResult::Rollback) => self.roll_back(id, s),
            (ConditionKind::OnFailure, _) => {} // the stage has failed already
            // The stage's actions do not run, and the execution goes on.
            (_, ConditionResult::Skip) => self.pass_stage(id, s, StageStatus::Skipped),
            (_, ConditionResult::Rollback) => {
                self.fail_stage(id, s, failure());
                self.roll_back(id, s);
                self.release(id, s);
            }
            (ConditionKind::OnSuccess, _) => {
                self.fail_stage(id, s, failure());
                self.after_failure(id, s);
            }
            _ => {
                self.fail_stage(id, s, failure());
                self.release(id, s);
            }
        }
    }

    /// `onFailure` after a stage failed: roll back, or check its condition; then the stage is
    /// released, unless the condition waits for a rule's answer (the failed execution holds the
    /// stage until it is decided, so a rollback it engages goes in first).
    fn after_failure(&mut self, id: &str, s: usize) {
        let conditions = &self.plan.stages[s].conditions;
        if conditions.rollback_on_failure {
            self.roll_back(id, s);
        } else if conditions.on_failure.is_some() {
            self.evaluate(id, s, ConditionKind::OnFailure);
        }
        self.release_unless_deciding(id, s);
    }

    /// Releases stage `s` from the failed execution `id` once its `onFailure` condition no
    /// longer waits.
    fn release_unless_deciding(&mut self, id: &str, s: usize) {
        let deciding =
            self.state.executions.get(id).is_some_and(|e| {
                e.stages[s].conditions.waiting() == Some(ConditionKind::OnFailure)
            });
        if !deciding {
            self.release(id, s);
        }
    }

    /// Evaluates a waiting condition again (time passed, or a rule answered): the execution
    /// goes on past it, or, after a failure, the stage is released once it is decided.
    fn look_again(&mut self, id: &str, s: usize, kind: ConditionKind) {
        let passed = self.evaluate(id, s, kind);
        if kind == ConditionKind::OnFailure {
            self.release_unless_deciding(id, s);
        } else if passed {
            self.drive(id);
        }
    }

    /// An automatic rollback of stage `s` after execution `id` failed in it, to the last
    /// execution that succeeded there; said in the failed execution's summary when there is
    /// none to roll back to.
    fn roll_back(&mut self, id: &str, s: usize) {
        let point = self.state.lanes.rollback_points.get(s).cloned().flatten();
        let why_not = if self.plan.mode == ExecutionMode::Parallel {
            Some("rollback is not available in PARALLEL mode")
        } else if self.is_rollback(id) {
            Some("a rollback is not rolled back")
        } else if point.as_ref().is_none_or(|p| p.pipeline_version != self.plan.version) {
            Some("no earlier execution of this pipeline version succeeded in the stage")
        } else {
            None
        };
        if let Some(why) = why_not {
            if let Some(e) = self.state.executions.get_mut(id) {
                let summary = e.status_summary.get_or_insert_with(String::new);
                summary.push_str(&format!(" (not rolled back: {why})"));
            }
            return;
        }
        let Some(point) = point else { return };
        let rollback_id = self.draw_token();
        let trigger =
            Trigger { trigger_type: "AutomatedRollback".into(), trigger_detail: id.to_string() };
        self.start_rollback(&rollback_id, s, &point, &trigger);
    }

    fn manual_rollback(
        &mut self,
        id: &str,
        stage: &str,
        point: &RollbackPoint,
        trigger: &Trigger,
    ) -> Result<(), Rejection> {
        if self.state.executions.contains_key(id) {
            return Ok(()); // the same rollback delivered again
        }
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        let unable = |why: String| Err(Rejection::UnableToRollbackStage(why));
        if self.plan.mode == ExecutionMode::Parallel {
            return unable("stages of a pipeline in PARALLEL mode cannot be rolled back".into());
        }
        if self.plan.stages[s].actions.iter().any(|a| a.action_type.category == "Source") {
            return unable(format!(
                "stage \"{stage}\" is a source stage, which cannot be rolled back"
            ));
        }
        if point.pipeline_version != self.plan.version {
            return Err(Rejection::ExecutionOutdated(format!(
                "execution {} ran version {} of the pipeline, which has been updated since",
                point.execution_id, point.pipeline_version
            )));
        }
        if let Some(holder) = &self.state.lanes.holders[s] {
            return unable(format!(
                "stage \"{stage}\" is running execution {holder}; roll back when it is done"
            ));
        }
        self.start_rollback(id, s, point, trigger);
        Ok(())
    }

    fn start_rollback(&mut self, id: &str, s: usize, point: &RollbackPoint, trigger: &Trigger) {
        let execution = Execution {
            variables: point.variables.clone(),
            outputs: point.outputs.clone(),
            artifacts: point.artifacts.clone(),
            revisions: point.revisions.clone(),
            rollback: Some(Rollback { target: point.execution_id.clone(), stage: s }),
            ..self.new_execution(id, trigger)
        };
        self.launch(execution, s);
    }

    fn override_condition(
        &mut self,
        id: &str,
        stage: &str,
        kind: ConditionKind,
        by: &str,
    ) -> Result<(), Rejection> {
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        let e = self
            .state
            .executions
            .get_mut(id)
            .ok_or_else(|| Rejection::ExecutionNotFound(id.to_string()))?;
        let not = |why: String| Err(Rejection::ConditionNotOverridable(why));
        if kind == ConditionKind::OnFailure {
            return not("only beforeEntry and onSuccess conditions can be overridden".into());
        }
        let waiting = e.place() == Place::InStage(s)
            && e.stages[s]
                .conditions
                .get(kind)
                .is_some_and(|c| c.status == ConditionStatus::InProgress);
        if !waiting {
            return not(format!(
                "execution {id} is not waiting on the {} condition of stage \"{stage}\"",
                kind.as_str()
            ));
        }
        let now = self.env.now;
        if let Some(c) = e.stages[s].conditions.slot(kind) {
            c.status = ConditionStatus::Overridden;
            c.summary = format!("Overridden by {by}");
            c.overridden_by = Some(by.to_string());
            c.updated_at = now;
            c.deadline = None;
            abandon_rules(c, now);
        }
        e.updated_at = now;
        self.touch(id);
        self.drive(id);
        Ok(())
    }

    fn halt_stopped(&mut self, id: &str, s: usize) {
        let now = self.env.now;
        if let Some(e) = self.state.executions.get_mut(id) {
            if let Some(kind) = e.stages[s].conditions.waiting()
                && let Some(c) = e.stages[s].conditions.slot(kind)
            {
                c.status = ConditionStatus::Cancelled;
                c.summary = "The execution was stopped while the condition waited".into();
                c.updated_at = now;
                abandon_rules(c, now);
            }
            e.stages[s].status = Some(StageStatus::Stopped);
            let stop = e.stop().cloned();
            e.status_summary = stop.as_ref().map(|r| r.reason.clone());
            e.phase = Phase::Halted(s, Halt::Stopped(stop));
            e.updated_at = self.env.now;
        }
        self.touch(id);
        self.publish_stage(id, s, Published::Stopped);
        self.publish_pipeline(id, Published::Stopped, None);
        self.release(id, s);
    }

    fn abandon_running(&mut self, id: &str, s: usize) {
        let now = self.env.now;
        let Some(e) = self.state.executions.get_mut(id) else { return };
        let running: Vec<usize> = (0..e.stages[s].actions.len())
            .filter(|&a| e.stages[s].actions[a].status == ActionStatus::InProgress)
            .collect();
        for &a in &running {
            let run = &mut e.stages[s].actions[a];
            run.status = ActionStatus::Abandoned;
            run.deadline = None;
            run.updated_at = Some(now);
        }
        for a in running {
            self.publish_action(id, s, a, Published::Abandoned);
        }
    }

    // ---- helpers --------------------------------------------------------------------------

    fn locate(&self, stage: &str, action: &str) -> Result<(usize, usize), Rejection> {
        let s =
            self.plan.stage_index(stage).ok_or_else(|| Rejection::StageNotFound(stage.into()))?;
        let a = self.plan.stages[s].action_index(action).ok_or_else(|| {
            Rejection::ActionNotFound { stage: stage.into(), action: action.into() }
        })?;
        Ok((s, a))
    }

    fn is_rollback(&self, id: &str) -> bool {
        self.state.executions.get(id).is_some_and(|e| e.rollback.is_some())
    }

    fn touch(&mut self, id: &str) {
        if !self.step.touched.contains(id) {
            self.step.touched.insert(id.to_string());
        }
    }

    /// An approval token: a UUID drawn from the input's entropy, distinct per action started.
    fn draw_token(&mut self) -> String {
        self.tokens_drawn += 1;
        let mix = splitmix(self.tokens_drawn ^ (self.env.entropy as u64));
        let high = splitmix((self.env.entropy >> 64) as u64 ^ mix);
        format_uuid((u128::from(high) << 64) | u128::from(mix))
    }

    fn origin<'b>(plan: &'b Plan, e: &'b Execution, now: Millis, attempt: u32) -> Origin<'b> {
        Origin::of(plan, &e.id, now, attempt)
    }

    fn publish_pipeline(
        &mut self,
        id: &str,
        state: Published,
        extra: Option<(&str, serde_json::Value)>,
    ) {
        let Some(e) = self.state.executions.get(id) else { return };
        let attempt = 1 + e.stages.iter().map(|s| s.manual_retries).sum::<u32>();
        let event = Self::origin(self.plan, e, self.env.now, attempt).pipeline(state, extra);
        self.step.effects.push(Effect::Publish(event));
    }

    fn publish_stage(&mut self, id: &str, s: usize, state: Published) {
        let Some(e) = self.state.executions.get(id) else { return };
        let attempt = stage_attempt(&e.stages[s]);
        let event = Self::origin(self.plan, e, self.env.now, attempt)
            .stage(&self.plan.stages[s].name, state);
        self.step.effects.push(Effect::Publish(event));
    }

    fn publish_action(&mut self, id: &str, s: usize, a: usize, state: Published) {
        let Some(e) = self.state.executions.get(id) else { return };
        let run = &e.stages[s].actions[a];
        let plan_action = &self.plan.stages[s].actions[a];
        let event = Self::origin(self.plan, e, self.env.now, stage_attempt(&e.stages[s])).action(
            ActionEvent {
                stage: &self.plan.stages[s].name,
                action: &plan_action.name,
                action_attempt: run.attempt,
                state,
                region: &plan_action.region,
                action_type: &plan_action.action_type,
                input_artifacts: (state == Published::Started).then_some(run.inputs.as_slice()),
                output_artifacts: None,
                result: None,
            },
        );
        self.step.effects.push(Effect::Publish(event));
    }

    /// SUCCEEDED or FAILED, with the execution result.
    fn publish_action_end(&mut self, id: &str, s: usize, a: usize) {
        let Some(e) = self.state.executions.get(id) else { return };
        let run = &e.stages[s].actions[a];
        let plan_action = &self.plan.stages[s].actions[a];
        let succeeded = run.status == ActionStatus::Succeeded;
        let summary = run.error.as_ref().map(|x| x.message.as_str()).or(run.summary.as_deref());
        let result = execution_result(
            run.external_url.as_deref(),
            summary,
            run.external_id.as_deref(),
            run.error.as_ref().map(|x| x.code.as_str()),
        );
        let event = Self::origin(self.plan, e, self.env.now, stage_attempt(&e.stages[s])).action(
            ActionEvent {
                stage: &self.plan.stages[s].name,
                action: &plan_action.name,
                action_attempt: run.attempt,
                state: if succeeded { Published::Succeeded } else { Published::Failed },
                region: &plan_action.region,
                action_type: &plan_action.action_type,
                input_artifacts: None,
                output_artifacts: succeeded.then_some(run.outputs.as_slice()),
                result: Some(result),
            },
        );
        self.step.effects.push(Effect::Publish(event));
    }
}

fn stage_attempt(run: &StageRun) -> u32 {
    run.attempt.max(1)
}

/// Puts a stage back to run again: every action (ALL_ACTIONS) or the failed ones.
fn reset_for_retry(run: &mut StageRun, mode: RetryMode) {
    run.attempt += 1;
    run.status = Some(StageStatus::InProgress);
    // The actions run again, so their exit conditions are checked again; an entry condition
    // that did not let the stage in (failed, or cancelled by a stop) is checked again too.
    run.conditions.on_success = None;
    run.conditions.on_failure = None;
    if run.conditions.before_entry.as_ref().is_some_and(|c| !c.lets_pass()) {
        run.conditions.before_entry = None;
    }
    for action in &mut run.actions {
        let again = match mode {
            RetryMode::AllActions => true,
            RetryMode::FailedActions => {
                matches!(action.status, ActionStatus::Failed | ActionStatus::Abandoned)
            }
        };
        if again {
            action.keep_ended_attempt();
            action.status = ActionStatus::Pending;
            action.token = None;
        }
    }
}

type Prepared =
    (indexmap::IndexMap<String, String>, Vec<String>, Vec<Artifact>, Vec<(String, String, String)>);

/// Resolves an action's configuration, commands and input artifacts at the moment it starts.
fn prepare(plan: &Plan, e: &Execution, s: usize, a: usize) -> Result<Prepared, ActionError> {
    let action = &plan.stages[s].actions[a];
    let lookup = &lookup(e);
    let unresolved = |what: String| ActionError {
        code: "VariableNotResolved".into(),
        message: format!("#{{{what}}} has no value in this execution"),
    };
    let mut configuration = indexmap::IndexMap::new();
    for (k, v) in &action.configuration {
        configuration.insert(k.clone(), variables::resolve(v, lookup).map_err(unresolved)?);
    }
    let commands = action
        .commands
        .iter()
        .map(|c| variables::resolve(c, lookup).map_err(unresolved))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = action
        .input_artifacts
        .iter()
        .map(|name| {
            e.artifacts
                .get(name)
                .map(|location| Artifact { name: name.clone(), location: location.clone() })
                .ok_or_else(|| ActionError {
                    code: "ArtifactMissing".into(),
                    message: format!(
                        "input artifact \"{name}\" was not produced in this execution"
                    ),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let environment = action
        .environment_variables
        .iter()
        .map(|(n, v, t)| {
            Ok((n.clone(), variables::resolve(v, lookup).map_err(unresolved)?, t.clone()))
        })
        .collect::<Result<Vec<_>, ActionError>>()?;
    Ok((configuration, commands, inputs, environment))
}

/// The request for one evaluation of `rule`, a rule that asks a service, with its commands
/// resolved and its input artifacts found; why not, when one is missing. The caller numbers it
/// and times it.
fn rule_request(
    plan: &Plan,
    e: &Execution,
    s: usize,
    kind: ConditionKind,
    rule: &crate::rules::RulePlan,
    resolved: &indexmap::IndexMap<String, String>,
) -> Result<RuleRequest, String> {
    let commands = rule
        .commands
        .iter()
        .map(|c| variables::resolve(c, lookup(e)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|what| format!("#{{{what}}} has no value in this execution"))?;
    let input_artifacts = rule
        .input_artifacts
        .iter()
        .map(|name| {
            e.artifacts
                .get(name)
                .map(|location| Artifact { name: name.clone(), location: location.clone() })
                .ok_or_else(|| {
                    format!("input artifact \"{name}\" was not produced in this execution")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RuleRequest {
        pipeline: plan.name.clone(),
        pipeline_version: plan.version,
        execution_id: e.id.clone(),
        stage: plan.stages[s].name.clone(),
        condition: kind,
        rule: rule.name.clone(),
        request: 0,
        provider: rule.provider.clone(),
        configuration: resolved.clone(),
        commands,
        input_artifacts,
        region: rule.region.clone().unwrap_or_else(|| plan.region.clone()),
        role_arn: rule.role_arn.clone(),
        pipeline_role_arn: plan.role_arn.clone(),
        artifact_stores: plan.artifact_stores.clone(),
        handle: None,
        started_at: 0,
        deadline: 0,
    })
}

/// The revision a source action's output variables name: CodeCommit's and connections'
/// commit, S3's object version, ECR's image digest.
fn source_revision(variables: &BTreeMap<String, String>) -> Option<String> {
    ["CommitId", "VersionId", "ImageDigest"].iter().find_map(|k| variables.get(*k).cloned())
}

/// The values `#{namespace.key}` references read in execution `e`.
fn lookup(e: &Execution) -> impl Fn(&str, &str) -> Option<String> + '_ {
    move |ns: &str, key: &str| -> Option<String> {
        match ns {
            "codepipeline" if key == "PipelineExecutionId" => Some(e.id.clone()),
            "variables" => e.variables.get(key).cloned(),
            _ => e.outputs.get(ns).and_then(|vars| vars.get(key)).cloned(),
        }
    }
}

fn abandon_rules(c: &mut ConditionRun, now: Millis) {
    for rule in c.rules.iter_mut().filter(|r| r.status == RuleStatus::InProgress) {
        rule.status = RuleStatus::Abandoned;
        rule.updated_at = now;
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
