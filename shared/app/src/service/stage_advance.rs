//! stage-advance: applies one input to a pipeline's executions.
//!
//! Load what the input needs, let the engine decide, save with a condition on every version read
//! (the outbox goes in the same write), then publish. A conflict means another invocation got
//! there first: load again and re-apply; the engine makes a repeated input a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use baton_core::engine::{self, Effect, Env, Input, PipelineState, Rejection};
use baton_core::events::{About, Published, Subject};
use baton_core::plan::Plan;
use tracing::{debug, warn};

use super::ServiceError;
use crate::ports::bus::EventBus;
use crate::ports::clock::{Clock, entropy};
use crate::ports::state::{
    Changes, PipelineRecord, Scope, Snapshot, StateStore, StoreError, Versioned,
};
use baton_protocol::bus_events::{BusEvent, PipelineInput};

/// Saving gives up after this many conflicts in a row; the event is then retried later.
const MAX_CONFLICTS: usize = 20;

/// Waits before applying again after `conflicts` conflicts in a row. The first retry goes at
/// once; later ones wait a random while of up to 2^n ms (64 at most), so that many writers of one
/// pipeline's lanes (hundreds of starts at once) stop meeting each other on every try.
async fn back_off(conflicts: usize) {
    if conflicts < 2 {
        return;
    }
    let ceiling_micros = 1000u128 << conflicts.min(6);
    let wait = entropy().map_or(0, |r| r % ceiling_micros);
    tokio::time::sleep(std::time::Duration::from_micros(wait as u64)).await;
}

/// What applying an input did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The state changed; this many events were published.
    Applied {
        /// Events published.
        published: usize,
    },
    /// A duplicate or stale input: nothing changed.
    Unchanged,
    /// A command that cannot apply now (the API reports it to its caller).
    Rejected(Rejection),
}

/// The stage-advance service.
pub struct StageAdvance {
    store: Arc<dyn StateStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    /// How many saves [`Self::apply_as_read`] tries before the end is handed to the bus.
    tries_as_read: usize,
}

impl StageAdvance {
    #[allow(missing_docs)]
    pub fn new(store: Arc<dyn StateStore>, bus: Arc<dyn EventBus>, clock: Arc<dyn Clock>) -> Self {
        Self { store, bus, clock, tries_as_read: 1 }
    }

    /// Lets [`Self::apply_as_read`] read the state again and retry after a conflict, up to
    /// `tries` saves in all, before it hands the end to the bus: where the bus costs an event,
    /// an invocation and two reads (AWS), and a read costs one. With the default of one, a
    /// conflict goes to the bus at once.
    pub fn with_tries_as_read(mut self, tries: usize) -> Self {
        self.tries_as_read = tries.max(1);
        self
    }

    /// Applies a bus event: an internal input, or an action's public end carrying its
    /// completion (whose public event is then not published again).
    ///
    /// # Errors
    /// A decode error (dead-letter); otherwise as [`Self::handle`].
    pub async fn handle_event(&self, event: &BusEvent) -> Result<Outcome, ServiceError> {
        self.apply(event.pipeline_input()?, event.announced_end(), None).await
    }

    /// Applies an input.
    ///
    /// # Errors
    /// [`ServiceError::Permanent`] for an unknown pipeline; retryable errors when the store or
    /// the bus is unavailable.
    pub async fn handle(&self, message: PipelineInput) -> Result<Outcome, ServiceError> {
        self.apply(message, None, None).await
    }

    /// Applies an input to a pipeline whose record the caller has just read (a trigger that
    /// read it to know whether it may start), without reading it again.
    ///
    /// # Errors
    /// As [`Self::handle`].
    pub async fn handle_read(
        &self,
        message: PipelineInput,
        record: PipelineRecord,
    ) -> Result<Outcome, ServiceError> {
        self.apply(message, None, Some(record)).await
    }

    /// The sweeper's tick: lets time pass on every pipeline (timeouts, waiting conditions and
    /// rules asked again), [`TICK_CONCURRENCY`] at a time. A pipeline that cannot be ticked now
    /// is logged and left for the next tick, so the others still are. Returns how many were
    /// ticked.
    ///
    /// # Errors
    /// When the pipelines cannot be listed.
    pub async fn tick_all(&self) -> Result<usize, ServiceError> {
        use futures_util::stream::{self, StreamExt as _};
        let names = self.store.list_pipelines().await?;
        let ticked = stream::iter(names)
            .map(|name| async move {
                let input = PipelineInput { pipeline: name.clone(), input: Input::Tick };
                let ticked = self.handle(input).await;
                if let Err(e) = &ticked {
                    warn!(pipeline = %name, error = %e, "tick failed");
                }
                ticked.is_ok()
            })
            .buffer_unordered(TICK_CONCURRENCY)
            .filter(|ticked| std::future::ready(*ticked))
            .count()
            .await;
        Ok(ticked)
    }

    /// Applies the events of one execution queued at once (or of none, for inputs naming
    /// no execution) in one load and one save: fifty actions of a stage ending together are one
    /// write of their execution, not fifty. Each event's outcome is its own, as if applied
    /// alone in turn; the engine sees the same state either way. Events that do not decode or
    /// name different pipelines or executions, or a batch that cannot be saved, are applied
    /// one by one, so each gets its own error.
    pub async fn handle_events(&self, events: &[&BusEvent]) -> Vec<Result<Outcome, ServiceError>> {
        let decoded: Result<Vec<PipelineInput>, _> =
            events.iter().map(|e| e.pipeline_input()).collect();
        if let (Ok(inputs), [_, _, ..]) = (decoded, events) {
            let pipeline = &inputs[0].pipeline;
            let execution = inputs[0].input.execution_id();
            let one_execution = inputs
                .iter()
                .all(|i| &i.pipeline == pipeline && i.input.execution_id() == execution);
            if one_execution {
                let batch: Vec<(&Input, Option<&str>)> =
                    inputs.iter().zip(events).map(|(i, e)| (&i.input, e.announced_end())).collect();
                match self.apply_all(pipeline, &batch, None).await {
                    Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
                    Err(e) => debug!(pipeline, error = %e, "a batch failed; applying one by one"),
                }
            }
        }
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.handle_event(event).await);
        }
        results
    }

    async fn apply(
        &self,
        message: PipelineInput,
        announced: Option<&str>,
        read: Option<PipelineRecord>,
    ) -> Result<Outcome, ServiceError> {
        let mut outcomes =
            self.apply_all(&message.pipeline, &[(&message.input, announced)], read).await?;
        Ok(outcomes.pop().unwrap_or(Outcome::Unchanged))
    }

    /// Applies an action's completion where the worker that ran it read the pipeline's
    /// `record` and `snapshot` (of [`Self::execution_scope`]) before it started: saved
    /// conditioned on that read, so the action's end is published with the state, and the
    /// transition to the next action takes no trip through the bus. Another save having come
    /// first (a sibling action's end), the state may be read again and the end applied to it
    /// (see [`Self::with_tries_as_read`]).
    ///
    /// `None` when it still met conflicts, or an execution of another declaration is in the
    /// state: the caller announces the completion on the bus instead, where stage-advance
    /// applies it with the current declaration (and with its siblings, in one save).
    ///
    /// # Errors
    /// When the store or the bus is unavailable.
    pub async fn apply_as_read(
        &self,
        record: &PipelineRecord,
        snapshot: Snapshot,
        input: &Input,
    ) -> Result<Option<Outcome>, ServiceError> {
        let plan = &record.plan;
        let mut read = Some(snapshot);
        for conflicts in 0..self.tries_as_read {
            let snapshot = match read.take() {
                Some(snapshot) => snapshot,
                None => {
                    back_off(conflicts).await;
                    self.store.load(&plan.name, &widened(plan, scope_of(input))).await?
                }
            };
            if snapshot.executions.iter().any(|e| e.value.pipeline_version != plan.version) {
                return Ok(None);
            }
            if let Some(mut outcomes) = self.try_save(plan, snapshot, &[(input, None)]).await? {
                return Ok(outcomes.pop());
            }
        }
        Ok(None)
    }

    /// What [`StageAdvance`] loads to apply an input naming execution `id` (an action's end)
    /// to `plan`'s executions.
    pub fn execution_scope(plan: &Plan, id: &str) -> Scope {
        widened(plan, Scope::One(id.to_owned()))
    }

    /// Applies `inputs` in order to one load of what they need and saves once. The inputs
    /// must need the same executions (one execution's, or none named). `read`: the pipeline's
    /// record, when the caller has it.
    async fn apply_all(
        &self,
        pipeline: &str,
        inputs: &[(&Input, Option<&str>)],
        read: Option<PipelineRecord>,
    ) -> Result<Vec<Outcome>, ServiceError> {
        let record = match read {
            Some(record) => record,
            None => self.store.get_pipeline(pipeline).await?.ok_or_else(|| {
                ServiceError::Permanent(format!("pipeline {pipeline} does not exist"))
            })?,
        };
        let plan = &record.plan;
        let Some((first, _)) = inputs.first() else { return Ok(Vec::new()) };
        let scope = widened(plan, scope_of(first));
        for conflicts in 0..MAX_CONFLICTS {
            back_off(conflicts).await;
            let snapshot = self.store.load(pipeline, &scope).await?;
            match self.try_save(plan, snapshot, inputs).await? {
                Some(outcomes) => return Ok(outcomes),
                None => debug!(pipeline, "conflict; applying again"),
            }
        }
        Err(StoreError::Conflict(pipeline.to_string()).into())
    }

    /// Applies `inputs` to `snapshot` and saves what changed, conditioned on the versions read,
    /// then publishes: each input's outcome, or `None` on a conflict.
    async fn try_save(
        &self,
        plan: &Plan,
        snapshot: Snapshot,
        inputs: &[(&Input, Option<&str>)],
    ) -> Result<Option<Vec<Outcome>>, ServiceError> {
        let versions: BTreeMap<String, u64> =
            snapshot.executions.iter().map(|e| (e.value.id.clone(), e.version)).collect();
        let mut state = PipelineState {
            lanes: snapshot.lanes.value.clone(),
            executions: snapshot
                .executions
                .into_iter()
                .map(|e| (e.value.id.clone(), e.value))
                .collect(),
        };
        if state.lanes.holders.is_empty() {
            state.lanes = PipelineState::new(plan.stages.len()).lanes;
        }
        let mut outcomes = Vec::with_capacity(inputs.len());
        let mut outbox = Vec::new();
        let mut touched = BTreeSet::new();
        let mut lanes_changed = false;
        for (input, announced) in inputs {
            let env = Env {
                now: self.clock.now(),
                entropy: entropy()
                    .map_err(|e| ServiceError::Permanent(format!("no randomness: {e}")))?,
            };
            let step = match engine::apply(plan, &mut state, input, env) {
                Ok(step) if step.is_noop() => {
                    outcomes.push(Outcome::Unchanged);
                    continue;
                }
                Ok(step) => step,
                Err(rejection) => {
                    outcomes.push(Outcome::Rejected(rejection));
                    continue;
                }
            };
            let mut effects = step.effects;
            if let Some(state) = announced {
                effects.retain(|e| !announces(e, input, state));
            }
            let events = BusEvent::for_effects(plan, effects);
            outcomes.push(Outcome::Applied { published: events.len() });
            outbox.extend(events);
            touched.extend(step.touched);
            lanes_changed |= step.lanes_changed;
        }
        if touched.is_empty() && !lanes_changed && outbox.is_empty() {
            return Ok(Some(outcomes));
        }
        let changes = Changes {
            lanes: lanes_changed
                .then(|| Versioned { version: snapshot.lanes.version, value: state.lanes.clone() }),
            executions: touched
                .iter()
                .filter_map(|id| state.executions.get(id))
                .map(|e| Versioned {
                    version: versions.get(&e.id).copied().unwrap_or(0),
                    value: e.clone(),
                })
                .collect(),
            outbox: outbox.clone(),
        };
        let seqs = match self.store.save(&plan.name, changes).await {
            Ok(seqs) => seqs,
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !self.publish(&outbox, &seqs).await? {
            for outcome in &mut outcomes {
                if let Outcome::Applied { published } = outcome {
                    *published = 0;
                }
            }
        }
        Ok(Some(outcomes))
    }

    /// Publishes what was just saved and clears it from the outbox; whether they went out now.
    /// If publishing fails the events stay in the outbox, where the sweeper finds them.
    async fn publish(&self, events: &[BusEvent], seqs: &[i64]) -> Result<bool, ServiceError> {
        if self.store.relays_outbox() {
            // Written with the state; the store's relay publishes them.
            return Ok(true);
        }
        if let Err(e) = self.bus.publish(events).await {
            warn!(error = %e, "publishing failed; the sweeper will send the events again");
            return Ok(false);
        }
        self.store.ack_outbox(seqs).await?;
        Ok(true)
    }

    /// Publishes outbox entries older than `age_millis` that their writer never acknowledged
    /// (it crashed between saving and publishing). Returns how many were sent.
    ///
    /// # Errors
    /// When the store or the bus is unavailable.
    pub async fn sweep_outbox(&self, age_millis: i64) -> Result<usize, ServiceError> {
        let pending = self.store.pending_outbox(self.clock.now() - age_millis, 100).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let events: Vec<BusEvent> = pending.iter().map(|p| p.event.clone()).collect();
        self.bus.publish(&events).await?;
        let seqs: Vec<i64> = pending.iter().map(|p| p.seq).collect();
        self.store.ack_outbox(&seqs).await?;
        Ok(events.len())
    }
}

/// Whether `effect` publishes the action end that `input` (a completion) came announced as.
/// Only an end in the announced state is left out: should the engine see the attempt end
/// otherwise, its own event still goes out.
fn announces(effect: &Effect, input: &Input, state: &str) -> bool {
    let (Effect::Publish(event), Input::ActionCompleted { execution_id, stage, action, .. }) =
        (effect, input)
    else {
        return false;
    };
    let Some(state) = Published::parse(state) else { return false };
    let subject = Subject::Action { stage: stage.clone(), action: action.clone() };
    event.about.as_deref() == Some(&About { execution_id: execution_id.clone(), subject, state })
}

/// How many pipelines a tick lets time pass on at once: each takes a few round trips to the
/// store, and one after another, thousands of them would not fit in the tick's minute.
pub const TICK_CONCURRENCY: usize = 16;

/// `scope`, or every active execution where replacing a waiting approval needs the execution
/// holding the stage as well.
fn widened(plan: &Plan, scope: Scope) -> Scope {
    match scope {
        Scope::One(_) | Scope::LanesOnly
            if plan.mode == baton_core::plan::ExecutionMode::Superseded
                && plan.replaces_waiting_approvals() =>
        {
            Scope::Active
        }
        scope => scope,
    }
}

/// The executions an input needs besides those waiting in the lanes.
fn scope_of(input: &Input) -> Scope {
    match (input, input.execution_id()) {
        (_, Some(id)) => Scope::One(id.to_string()),
        (Input::DisableTransition { .. } | Input::EnableTransition { .. }, None) => {
            Scope::LanesOnly
        }
        _ => Scope::Active,
    }
}
