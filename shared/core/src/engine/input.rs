//! What the engine consumes: events from the other functions and commands from people.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::deploy_targets::DeployTarget;
use super::state::{
    ActionError, Artifact, ConditionKind, ExecutionId, Millis, RollbackPoint, SourceRevision,
    Trigger,
};
use crate::plan::RetryMode;
use crate::rules::Verdict;

/// How an action attempt ended, as its provider reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum ActionOutcome {
    /// The action did its work.
    Succeeded {
        /// Output variables, published under the action's namespace.
        #[serde(default)]
        output_variables: BTreeMap<String, String>,
        /// The artifacts it produced.
        #[serde(default)]
        artifacts: Vec<Artifact>,
        /// `external-execution-summary`.
        #[serde(default)]
        summary: Option<String>,
        /// `external-execution-id`.
        #[serde(default)]
        external_id: Option<String>,
        /// `external-execution-url`.
        #[serde(default)]
        external_url: Option<String>,
        /// What a deploy action reached.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<DeployTarget>,
    },
    /// The action failed.
    Failed {
        #[allow(missing_docs)]
        error: ActionError,
        /// `external-execution-id`.
        #[serde(default)]
        external_id: Option<String>,
        /// `external-execution-url`.
        #[serde(default)]
        external_url: Option<String>,
        /// What a deploy action reached.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<DeployTarget>,
    },
}

impl ActionOutcome {
    /// The same outcome, with what the deploy reached.
    #[must_use]
    pub fn with_targets(mut self, reached: Vec<DeployTarget>) -> Self {
        match &mut self {
            Self::Succeeded { targets, .. } | Self::Failed { targets, .. } => *targets = reached,
        }
        self
    }
}

/// One thing that happened to a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Input {
    /// Start an execution with this id. A second start with the same id changes nothing.
    Start {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        trigger: Trigger,
        /// Overrides of declared pipeline variables.
        #[serde(default)]
        variables: BTreeMap<String, String>,
        /// Revisions source actions fetch instead of their latest, by action name.
        #[serde(default)]
        source_revisions: BTreeMap<String, SourceRevision>,
    },
    /// A provider finished an action attempt.
    ActionCompleted {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        action: String,
        /// The attempt that finished; any other attempt's result is stale.
        attempt: u32,
        #[allow(missing_docs)]
        outcome: ActionOutcome,
    },
    /// `PutApprovalResult`: a person decided a waiting manual approval.
    ApprovalDecided {
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        action: String,
        /// The approval's token, from the notice or the pipeline state.
        token: String,
        #[allow(missing_docs)]
        approved: bool,
        #[allow(missing_docs)]
        summary: String,
        /// Who decided.
        by: String,
    },
    /// `StopPipelineExecution`.
    Stop {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        /// Abandon in-progress actions instead of waiting for them.
        abandon: bool,
        #[allow(missing_docs)]
        reason: String,
    },
    /// `RetryStageExecution`.
    Retry {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        mode: RetryMode,
    },
    /// `DisableStageTransition` (inbound).
    DisableTransition {
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        reason: String,
        /// Who asked, recorded as the transition's `lastChangedBy`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// `EnableStageTransition` (inbound).
    EnableTransition {
        #[allow(missing_docs)]
        stage: String,
    },
    /// `OverrideStageCondition`: a person lets a waiting execution past a condition.
    OverrideCondition {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        condition: ConditionKind,
        /// Who overrode it.
        by: String,
    },
    /// `RollbackStage`: a new execution of type ROLLBACK, with this id, re-runs `stage` with
    /// the inputs `point` recorded. A second rollback with the same id changes nothing.
    Rollback {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        point: RollbackPoint,
        #[allow(missing_docs)]
        trigger: Trigger,
    },
    /// A rule that asks a service was evaluated ([`super::RuleRequest`]).
    RuleCompleted {
        #[allow(missing_docs)]
        execution_id: ExecutionId,
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        condition: ConditionKind,
        #[allow(missing_docs)]
        rule: String,
        /// The request answered; any other is stale.
        request: u32,
        /// What the rule found: a `Wait` is asked again on the next tick.
        verdict: Verdict,
        /// What the next request of this rule is to pick up ([`RuleRequest::handle`]).
        ///
        /// [`RuleRequest::handle`]: crate::engine::RuleRequest::handle
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<String>,
    },
    /// Time passed: actions past their deadline time out, waiting conditions look again.
    Tick,
}

impl Input {
    /// The execution the input is about, when it is about one execution.
    pub fn execution_id(&self) -> Option<&str> {
        match self {
            Self::Start { execution_id, .. }
            | Self::ActionCompleted { execution_id, .. }
            | Self::Stop { execution_id, .. }
            | Self::Retry { execution_id, .. }
            | Self::OverrideCondition { execution_id, .. }
            | Self::RuleCompleted { execution_id, .. }
            | Self::Rollback { execution_id, .. } => Some(execution_id),
            Self::ApprovalDecided { .. }
            | Self::Tick
            | Self::DisableTransition { .. }
            | Self::EnableTransition { .. } => None,
        }
    }
}

/// What comes with every input from outside the engine: the time, and fresh randomness for
/// anything the engine names (approval tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Env {
    /// Now.
    pub now: Millis,
    /// 128 random bits; approval tokens are drawn from them.
    pub entropy: u128,
}
