//! What the engine asks its caller to do, in order.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::input::{ActionOutcome, Input};
use super::state::{Artifact, ConditionKind, ExecutionId, Millis, SourceRevision};
use crate::events::{Announce, PublicEvent};
use crate::plan::{ActionType, DeclaredStore};

/// Everything a provider needs to run one action attempt: the internal `Action Requested`
/// event that the action worker (or, for manual approvals, the approval function) consumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub pipeline_version: i64,
    #[allow(missing_docs)]
    pub execution_id: ExecutionId,
    #[allow(missing_docs)]
    pub stage: String,
    #[allow(missing_docs)]
    pub action: String,
    /// Must come back in the completion.
    pub attempt: u32,
    #[allow(missing_docs)]
    pub action_type: ActionType,
    /// With every `#{...}` resolved.
    pub configuration: IndexMap<String, String>,
    /// With every `#{...}` resolved.
    pub commands: Vec<String>,
    /// The consumed artifacts and where they are.
    pub input_artifacts: Vec<Artifact>,
    /// For a source action: the revision to fetch instead of the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<SourceRevision>,
    /// The source revision of each consumed source artifact, as (artifact, revision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_revisions: Vec<(String, String)>,
    /// Names of the artifacts to produce.
    pub output_artifacts: Vec<String>,
    /// Where to run.
    pub region: String,
    /// Role to assume.
    pub role_arn: Option<String>,
    /// The pipeline's role: what a host that assumes roles (AWS) runs the action as when it
    /// names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_role_arn: Option<String>,
    /// The pipeline's declared artifact stores, for a host that keeps artifacts there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_stores: Vec<DeclaredStore>,
    /// When the attempt times out.
    pub deadline: Millis,
    /// The approval token, for manual approvals.
    pub token: Option<String>,
    /// Files kept in each output artifact (`Commands` action), by artifact name.
    pub output_artifact_files: Vec<(String, Vec<String>)>,
    /// Variables to export (`Commands` action).
    pub output_variables: Vec<String>,
    /// Environment variables (`Commands` action) as (name, value, type), values resolved.
    pub environment_variables: Vec<(String, String, String)>,
    /// What the attempt's public events carry, to announce its end: see
    /// [`crate::events::action_end`].
    #[serde(default)]
    pub announce: Announce,
}

impl ActionRequest {
    /// The engine's input that ends this attempt with `outcome`.
    pub fn completion(&self, outcome: ActionOutcome) -> Input {
        Input::ActionCompleted {
            execution_id: self.execution_id.clone(),
            stage: self.stage.clone(),
            action: self.action.clone(),
            attempt: self.attempt,
            outcome,
        }
    }
}

/// One evaluation of a rule that asks a service (`LambdaInvoke`, `CloudWatchAlarm`,
/// `Commands`): the internal `Baton Rule Requested` event the action worker consumes, and
/// answers with [`crate::engine::Input::RuleCompleted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRequest {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub pipeline_version: i64,
    #[allow(missing_docs)]
    pub execution_id: ExecutionId,
    #[allow(missing_docs)]
    pub stage: String,
    /// The condition the rule belongs to.
    pub condition: ConditionKind,
    /// The rule's name.
    pub rule: String,
    /// Must come back in the answer: the rule's `request`-th evaluation in this run of its
    /// condition. Any other answer is stale.
    pub request: u32,
    /// `ruleTypeId.provider`.
    pub provider: String,
    /// With every `#{...}` resolved.
    pub configuration: IndexMap<String, String>,
    /// With every `#{...}` resolved (`Commands` rules).
    pub commands: Vec<String>,
    /// The artifacts the rule reads, and where they are.
    pub input_artifacts: Vec<Artifact>,
    /// Where to run.
    pub region: String,
    /// Role to assume.
    pub role_arn: Option<String>,
    /// The pipeline's role, as for [`ActionRequest::pipeline_role_arn`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_role_arn: Option<String>,
    /// What the answer to this rule's previous request in this run of its condition left to
    /// pick up: work it started and is following (a build), so a `Wait` goes on with it
    /// rather than starting it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The pipeline's declared artifact stores, for a host that keeps artifacts there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_stores: Vec<DeclaredStore>,
    /// When the rule's first evaluation in this run of its condition began: what a rule that
    /// waits for a change (`CloudWatchAlarm`'s `WaitTime`) counts from.
    pub started_at: Millis,
    /// When the rule stops being waited for.
    pub deadline: Millis,
}

/// A notice for people: sent to the pipeline's failure topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureNotice {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub execution_id: ExecutionId,
    /// The stage that failed.
    pub stage: String,
    /// The failed actions and why, as `Action: message`.
    pub failures: Vec<String>,
}

/// One thing the caller must do after saving the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect")]
pub enum Effect {
    /// Publish a CodePipeline-shaped state-change event.
    Publish(PublicEvent),
    /// Run an action attempt.
    RequestAction(Box<ActionRequest>),
    /// Evaluate a rule that asks a service.
    RequestRule(Box<RuleRequest>),
    /// Tell people an execution failed.
    NotifyFailure(FailureNotice),
}
