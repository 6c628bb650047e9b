//! The orchestration engine: `(plan, state, input, env) -> (state', effects)`.
//!
//! Pure: no I/O, no clock, no randomness of its own. The caller loads the state, applies one
//! input, saves the state with a condition on the version it read, then performs the effects.
//!
//! At-least-once delivery is the normal case: an input that was already applied, or that refers
//! to an attempt that is no longer current, is accepted and changes nothing. A command that cannot
//! apply (retrying a running stage, approving with a used token) is a [`Rejection`], and also
//! changes nothing.
//!
//! | level     | from        | input                         | to                              |
//! |-----------|-------------|-------------------------------|---------------------------------|
//! | execution | (none)      | Start                         | Waiting(first stage)            |
//! | execution | Waiting(i)  | lock free, transition enabled | InStage(i)                      |
//! | execution | Waiting(i)  | newer execution waits at i    | Superseded (SUPERSEDED mode)    |
//! | execution | InStage(i)  | last group succeeded          | Waiting(i+1), or Succeeded      |
//! | execution | InStage(i)  | group done with a failure     | Halted(i) Failed, or auto retry |
//! | execution | InStage(i)  | Stop                          | Stopping, then Halted(i) Stopped|
//! | execution | Halted(i)   | Retry                         | InStage(i)                      |
//! | action    | Pending     | its group starts              | InProgress (attempt + 1)        |
//! | action    | InProgress  | ActionCompleted(same attempt) | Succeeded or Failed             |
//! | action    | InProgress  | ApprovalDecided(its token)    | Succeeded or Failed             |
//! | action    | InProgress  | Tick past its deadline        | Failed (TimedOut)               |
//! | action    | InProgress  | Stop with abandon             | Abandoned                       |
//! | action    | any other   | ActionCompleted (stale/dup)   | unchanged, no effect            |
//! | condition | (none)      | entry, or every action done   | Succeeded, InProgress or Failed |
//! | condition | InProgress  | Tick: rule passes / times out | Succeeded / Failed              |
//! | condition | InProgress  | OverrideCondition             | Overridden                      |
//! | condition | Failed      | its result                    | stage Failed, Skipped, rollback |
//! | execution | (none)      | Rollback, or a rollback result| a ROLLBACK execution, one stage |

mod deploy_targets;
mod effect;
mod input;
mod machine;
mod state;

use std::collections::BTreeSet;

pub use deploy_targets::{DeployTarget, DeployTargetEvent, KEPT_TARGETS};
pub use effect::{ActionRequest, Effect, FailureNotice, RuleRequest};
pub use input::{ActionOutcome, Env, Input};
pub use state::*;

use crate::plan::Plan;

/// Why a command cannot apply. Each maps to a CodePipeline API exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `PipelineExecutionNotFoundException`.
    #[error("execution {0} does not exist in this pipeline")]
    ExecutionNotFound(String),
    /// `StageNotFoundException`.
    #[error("stage \"{0}\" does not exist in this pipeline")]
    StageNotFound(String),
    /// `ActionNotFoundException`.
    #[error("stage \"{stage}\" has no action \"{action}\"")]
    ActionNotFound {
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        action: String,
    },
    /// `ValidationException`: a variable override is not declared or a variable has no value.
    #[error("{0}")]
    InvalidVariables(String),
    /// `StageNotRetryableException`.
    #[error("{0}")]
    StageNotRetryable(String),
    /// `NotLatestPipelineExecutionException`.
    #[error("execution {execution} is not the latest one in stage \"{stage}\"")]
    NotLatestPipelineExecution {
        #[allow(missing_docs)]
        execution: String,
        #[allow(missing_docs)]
        stage: String,
    },
    /// `ApprovalAlreadyCompletedException`.
    #[error("the approval was already decided")]
    ApprovalAlreadyCompleted,
    /// `InvalidApprovalTokenException`.
    #[error("the approval token is not valid for this action")]
    InvalidApprovalToken,
    /// `PipelineExecutionNotStoppableException`.
    #[error("{0}")]
    NotStoppable(String),
    /// `DuplicatedStopRequestException`.
    #[error("execution {0} is already stopping; only a stop with abandon can follow")]
    DuplicatedStopRequest(String),
    /// `ValidationException`: a source revision names no source action or a type it cannot take.
    #[error("{0}")]
    InvalidSourceRevision(String),
    /// `ConditionNotOverridableException`.
    #[error("{0}")]
    ConditionNotOverridable(String),
    /// `UnableToRollbackStageException`.
    #[error("{0}")]
    UnableToRollbackStage(String),
    /// `PipelineExecutionOutdatedException`.
    #[error("{0}")]
    ExecutionOutdated(String),
}

/// What applying one input did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// What the caller must do after saving, in order.
    pub effects: Vec<Effect>,
    /// Executions whose state changed.
    pub touched: BTreeSet<ExecutionId>,
    /// Whether the shared lanes (locks, waiting lines, transitions) changed.
    pub lanes_changed: bool,
}

impl Step {
    /// Whether the input changed nothing.
    pub fn is_noop(&self) -> bool {
        self.effects.is_empty() && self.touched.is_empty() && !self.lanes_changed
    }
}

/// Applies `input` to `state`.
///
/// On `Ok`, `state` is the new state and the step lists the effects; on `Err`, `state` is
/// untouched. Only the executions named by the input and those waiting in the lanes are read,
/// so a store may load just those.
///
/// # Errors
/// A [`Rejection`] when a command cannot apply to the current state.
pub fn apply(
    plan: &Plan,
    state: &mut PipelineState,
    input: &Input,
    env: Env,
) -> Result<Step, Rejection> {
    // Cancelling executions of an older declaration changes the state before the input is
    // judged; a rejected input must leave no trace, so that work happens on a copy.
    if state.executions.values().any(|e| e.pipeline_version != plan.version) {
        let mut next = state.clone();
        let step = machine::Machine::new(plan, &mut next, env).apply(input)?;
        *state = next;
        return Ok(step);
    }
    machine::Machine::new(plan, state, env).apply(input)
}

/// [`apply`] as a pure function of values: returns the new state beside the step.
///
/// # Errors
/// As [`apply`].
pub fn step(
    plan: &Plan,
    state: &PipelineState,
    input: &Input,
    env: Env,
) -> Result<(PipelineState, Step), Rejection> {
    let mut next = state.clone();
    let step = apply(plan, &mut next, input, env)?;
    Ok((next, step))
}

#[cfg(test)]
mod tests;
