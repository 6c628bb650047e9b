//! What the engine remembers: the executions of one pipeline and the lanes they share.

use std::collections::{BTreeMap, VecDeque};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Time only enters the engine with an input.
pub type Millis = i64;

/// An execution id (a UUID in CodePipeline's format).
pub type ExecutionId = String;

/// The API's `PipelineExecution.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    #[allow(missing_docs)]
    InProgress,
    /// A stop-and-wait was asked; in-progress actions are finishing.
    Stopping,
    /// Ended by a stop; its stage can be retried.
    Stopped,
    #[allow(missing_docs)]
    Succeeded,
    /// Replaced by a newer execution while waiting between stages; never resumes.
    Superseded,
    /// Ended by a failed stage; the stage can be retried.
    Failed,
    /// Ended because the pipeline changed underneath it.
    Cancelled,
}

impl ExecutionStatus {
    /// Whether nothing more happens unless someone retries a stage.
    pub fn is_ended(self) -> bool {
        !matches!(self, Self::InProgress | Self::Stopping)
    }

    /// Whether nothing can ever happen to the execution again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Superseded | Self::Cancelled)
    }
}

/// The API's `StageExecution.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    #[allow(missing_docs)]
    InProgress,
    #[allow(missing_docs)]
    Stopping,
    #[allow(missing_docs)]
    Stopped,
    #[allow(missing_docs)]
    Succeeded,
    #[allow(missing_docs)]
    Failed,
    #[allow(missing_docs)]
    Cancelled,
    /// Passed over by a `beforeEntry` condition with result SKIP; its actions did not run.
    Skipped,
}

/// The API's `ActionExecution.status`, plus `Pending` for an action not yet started in the
/// current stage attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionStatus {
    /// Waiting for its `runOrder` group (or never started).
    Pending,
    #[allow(missing_docs)]
    InProgress,
    #[allow(missing_docs)]
    Succeeded,
    #[allow(missing_docs)]
    Failed,
    /// Left running when the execution was stopped with abandon.
    Abandoned,
}

/// Where an execution is in its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    /// Waiting to enter this stage (behind a lock or a disabled transition).
    Waiting(usize),
    /// Running this stage.
    InStage(usize),
    /// Ended in this stage (failed or stopped there); a retry re-enters it.
    Halted(usize),
    /// Nothing more to run.
    Done,
}

/// How an execution stands and where: one value, so its status, its place and a stop in
/// progress cannot contradict each other (a succeeded execution still in a stage, a stopping
/// one with no stop asked). [`Execution::status`], [`Execution::place`] and
/// [`Execution::stop`] read it; the engine alone moves it.
///
/// Stored as the three fields it replaced (`status`, `place`, `stop`), so states saved before
/// read unchanged; a stored combination that means nothing is refused when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredPhase", into = "StoredPhase")]
pub enum Phase {
    /// Waiting to enter this stage (behind a lock or a disabled transition): `InProgress`.
    Waiting(usize),
    /// Running this stage: `InProgress`.
    Running(usize),
    /// A stop was asked while it ran this stage; in-progress actions finish: `Stopping`.
    Stopping(usize, StopRequest),
    /// Ended in this stage, failed or stopped there; a retry re-enters it.
    Halted(usize, Halt),
    /// Nothing more to run.
    Ended(Ending),
}

/// How an execution ended in a stage, where a retry may resume it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// A stage failed.
    Failed,
    /// A stop ended it; the request is kept for `stopTrigger`.
    Stopped(Option<StopRequest>),
}

/// How an execution ended with nothing more to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every stage succeeded.
    Succeeded,
    /// Replaced by a newer execution while waiting between stages.
    Superseded,
    /// The pipeline changed underneath it.
    Cancelled,
    /// Stopped while it waited to enter a stage, so no stage can resume it.
    Stopped(StopRequest),
}

impl Phase {
    /// The API's `PipelineExecution.status`.
    pub fn status(&self) -> ExecutionStatus {
        match self {
            Self::Waiting(_) | Self::Running(_) => ExecutionStatus::InProgress,
            Self::Stopping(..) => ExecutionStatus::Stopping,
            Self::Halted(_, Halt::Failed) => ExecutionStatus::Failed,
            Self::Halted(_, Halt::Stopped(_)) | Self::Ended(Ending::Stopped(_)) => {
                ExecutionStatus::Stopped
            }
            Self::Ended(Ending::Succeeded) => ExecutionStatus::Succeeded,
            Self::Ended(Ending::Superseded) => ExecutionStatus::Superseded,
            Self::Ended(Ending::Cancelled) => ExecutionStatus::Cancelled,
        }
    }

    /// Where it is.
    pub fn place(&self) -> Place {
        match self {
            Self::Waiting(s) => Place::Waiting(*s),
            Self::Running(s) | Self::Stopping(s, _) => Place::InStage(*s),
            Self::Halted(s, _) => Place::Halted(*s),
            Self::Ended(_) => Place::Done,
        }
    }

    /// The stop asked of it, while it stops and once it has stopped.
    pub fn stop(&self) -> Option<&StopRequest> {
        match self {
            Self::Stopping(_, stop)
            | Self::Halted(_, Halt::Stopped(Some(stop)))
            | Self::Ended(Ending::Stopped(stop)) => Some(stop),
            _ => None,
        }
    }
}

/// [`Phase`] as it is stored.
#[derive(Serialize, Deserialize)]
struct StoredPhase {
    status: ExecutionStatus,
    place: Place,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop: Option<StopRequest>,
}

impl From<Phase> for StoredPhase {
    fn from(phase: Phase) -> Self {
        Self { status: phase.status(), place: phase.place(), stop: phase.stop().cloned() }
    }
}

impl TryFrom<StoredPhase> for Phase {
    type Error = String;

    fn try_from(p: StoredPhase) -> Result<Self, String> {
        use ExecutionStatus as S;
        Ok(match (p.status, p.place, p.stop) {
            (S::InProgress, Place::Waiting(s), None) => Self::Waiting(s),
            (S::InProgress, Place::InStage(s), None) => Self::Running(s),
            (S::Stopping, Place::InStage(s), Some(stop)) => Self::Stopping(s, stop),
            // A stop asked before the stage failed is moot.
            (S::Failed, Place::Halted(s), _) => Self::Halted(s, Halt::Failed),
            (S::Stopped, Place::Halted(s), stop) => Self::Halted(s, Halt::Stopped(stop)),
            (S::Stopped, Place::Done, Some(stop)) => Self::Ended(Ending::Stopped(stop)),
            (S::Succeeded, Place::Done, None) => Self::Ended(Ending::Succeeded),
            (S::Superseded, Place::Done, None) => Self::Ended(Ending::Superseded),
            (S::Cancelled, Place::Done, None) => Self::Ended(Ending::Cancelled),
            (status, place, stop) => {
                return Err(format!(
                    "an execution cannot be {status:?} at {place:?} with stop {stop:?}"
                ));
            }
        })
    }
}

/// What started an execution: CodePipeline's `ExecutionTrigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Trigger {
    /// `StartPipelineExecution`, `CloudWatchEvent`, `Webhook`, ...
    pub trigger_type: String,
    /// Who or what: a user ARN, an event id...
    pub trigger_detail: String,
}

/// A source revision a start asks a source action to fetch instead of its latest:
/// `StartPipelineExecution`'s `sourceRevisions`, or the commit a push or webhook names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRevision {
    /// `COMMIT_ID`, `IMAGE_DIGEST`, `S3_OBJECT_VERSION_ID` or `S3_OBJECT_KEY`.
    pub revision_type: String,
    #[allow(missing_docs)]
    pub value: String,
    /// The branch a git event is on, when it is not the action's `BranchName` (a trigger's
    /// push to another branch, a pull request's source branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl SourceRevision {
    /// The revision types a source provider takes, as CodePipeline documents them.
    pub fn types_for(provider: &str) -> &'static [&'static str] {
        match provider {
            "CodeCommit" | "CodeStarSourceConnection" | "GitHub" => &["COMMIT_ID"],
            "S3" => &["S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"],
            "ECR" => &["IMAGE_DIGEST"],
            _ => &[],
        }
    }
}

/// Where an artifact is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactLocation {
    /// The bucket (or local store) it is in.
    pub bucket: String,
    /// The object key.
    pub key: String,
}

/// An artifact an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub location: ArtifactLocation,
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionError {
    /// `JobFailed`, `TimedOut`, `Rejected`, ...
    pub code: String,
    #[allow(missing_docs)]
    pub message: String,
}

/// One action in one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    #[allow(missing_docs)]
    pub status: ActionStatus,
    /// How many times the action was started in this execution; 0 = never.
    pub attempt: u32,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Millis>,
    /// When the running attempt times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    /// The approval token of a waiting manual approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The configuration with references resolved, as the provider received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_configuration: Option<IndexMap<String, String>>,
    /// The action's output variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_variables: BTreeMap<String, String>,
    /// What the provider said about the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The provider's id for the run (build id, stack id...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// A link to the run in the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Why the action failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ActionError>,
    /// Who approved or rejected a manual approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Artifacts consumed by the current attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Artifact>,
    /// Artifacts produced by the current attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Artifact>,
    /// What the current attempt's deploy reached (CodeDeploy's instances, functions, task
    /// sets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<super::DeployTarget>,
    /// The attempts before the current one, oldest first, as each ended (at most
    /// [`KEPT_ATTEMPTS`]: `ListActionExecutions` lists them, as CodePipeline lists every attempt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<ActionRun>,
}

/// How many of an action's earlier attempts an execution keeps: enough for every retry a
/// person makes, while an execution stays well inside a DynamoDB item.
pub const KEPT_ATTEMPTS: usize = 20;

impl ActionRun {
    pub(crate) fn new() -> Self {
        Self {
            status: ActionStatus::Pending,
            attempt: 0,
            started_at: None,
            updated_at: None,
            deadline: None,
            token: None,
            resolved_configuration: None,
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
            error: None,
            decided_by: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            targets: Vec::new(),
            earlier: Vec::new(),
        }
    }

    /// Keeps the attempt that ended among the earlier ones, before the action runs again.
    pub(crate) fn keep_ended_attempt(&mut self) {
        if self.attempt == 0 {
            return;
        }
        let mut earlier = std::mem::take(&mut self.earlier);
        let mut ended = self.clone();
        ended.token = None;
        ended.deadline = None;
        // Only the latest ended attempt keeps its targets: a deployment's can be many.
        if let Some(before) = earlier.last_mut() {
            before.targets.clear();
        }
        earlier.push(ended);
        if earlier.len() > KEPT_ATTEMPTS {
            earlier.remove(0);
        }
        self.earlier = earlier;
    }
}

/// One stage in one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    /// `None` until the execution enters the stage.
    pub status: Option<StageStatus>,
    /// 1 on entry, +1 per retry.
    pub attempt: u32,
    /// Whether the one automatic retry (`onFailure: RETRY`) was used.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_retried: bool,
    /// Manual retries so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub manual_retries: u32,
    /// In the order of the stage's actions.
    pub actions: Vec<ActionRun>,
    /// Its conditions' latest runs.
    #[serde(default, skip_serializing_if = "ConditionRuns::is_empty")]
    pub conditions: ConditionRuns,
    /// Rule evaluations asked of the worker in this stage so far, over every run of its
    /// conditions: each request's number, so a late answer to an earlier run is told apart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rule_requests: u32,
}

/// Which of a stage's conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionKind {
    /// Checked before the stage's actions run.
    BeforeEntry,
    /// Checked after every action succeeded.
    OnSuccess,
    /// Checked after the stage failed.
    OnFailure,
}

impl ConditionKind {
    /// The declaration's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeEntry => "beforeEntry",
            Self::OnSuccess => "onSuccess",
            Self::OnFailure => "onFailure",
        }
    }
}

/// The API's `ConditionExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// A rule waits (a closed window).
    InProgress,
    #[allow(missing_docs)]
    Succeeded,
    /// A rule failed: the condition's result was engaged.
    Failed,
    /// A person let the execution past it (`OverrideStageCondition`).
    Overridden,
    /// The execution stopped or was cancelled while it waited.
    Cancelled,
}

/// The API's `RuleExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleStatus {
    #[allow(missing_docs)]
    InProgress,
    #[allow(missing_docs)]
    Succeeded,
    #[allow(missing_docs)]
    Failed,
    /// Left when its condition was overridden or its execution stopped.
    Abandoned,
}

/// One evaluation of one rule, recorded with its input and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRun {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub status: RuleStatus,
    /// What the rule found.
    pub summary: String,
    /// Its configuration with references resolved.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub resolved_configuration: IndexMap<String, String>,
    #[allow(missing_docs)]
    pub started_at: Millis,
    #[allow(missing_docs)]
    pub updated_at: Millis,
    /// For a rule that asks a service: the number of its latest request
    /// ([`StageRun::rule_requests`]); the answer must name it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests: u32,
    /// Whether the latest request is unanswered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting: bool,
    /// An answer not yet judged with the condition's other rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<crate::rules::Verdict>,
    /// What the service's last answer left to pick up on the next request of this run of
    /// the condition (the build a `Commands` rule started): [`RuleRequest::handle`].
    ///
    /// [`RuleRequest::handle`]: crate::engine::RuleRequest::handle
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// The latest run of one condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionRun {
    #[allow(missing_docs)]
    pub status: ConditionStatus,
    /// Why it has its status.
    pub summary: String,
    #[allow(missing_docs)]
    pub started_at: Millis,
    #[allow(missing_docs)]
    pub updated_at: Millis,
    /// Until when a waiting rule may wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    /// Who overrode it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden_by: Option<String>,
    #[allow(missing_docs)]
    pub rules: Vec<RuleRun>,
}

impl ConditionRun {
    /// Whether the execution may go past it.
    pub fn lets_pass(&self) -> bool {
        matches!(self.status, ConditionStatus::Succeeded | ConditionStatus::Overridden)
    }
}

/// A stage's conditions' latest runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConditionRuns {
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<ConditionRun>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<ConditionRun>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<ConditionRun>,
}

impl ConditionRuns {
    fn is_empty(&self) -> bool {
        self.before_entry.is_none() && self.on_success.is_none() && self.on_failure.is_none()
    }

    /// The run of `kind`.
    pub fn get(&self, kind: ConditionKind) -> Option<&ConditionRun> {
        match kind {
            ConditionKind::BeforeEntry => self.before_entry.as_ref(),
            ConditionKind::OnSuccess => self.on_success.as_ref(),
            ConditionKind::OnFailure => self.on_failure.as_ref(),
        }
    }

    /// The run of `kind`, to change.
    pub fn slot(&mut self, kind: ConditionKind) -> &mut Option<ConditionRun> {
        match kind {
            ConditionKind::BeforeEntry => &mut self.before_entry,
            ConditionKind::OnSuccess => &mut self.on_success,
            ConditionKind::OnFailure => &mut self.on_failure,
        }
    }

    /// The condition an execution waits on, if any.
    pub fn waiting(&self) -> Option<ConditionKind> {
        [ConditionKind::BeforeEntry, ConditionKind::OnSuccess, ConditionKind::OnFailure]
            .into_iter()
            .find(|k| self.get(*k).is_some_and(|c| c.status == ConditionStatus::InProgress))
    }
}

/// What a rollback execution re-runs: the stage's inputs as an earlier execution that succeeded
/// in it had them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPoint {
    /// The execution rolled back to.
    pub execution_id: ExecutionId,
    /// The pipeline version it ran.
    pub pipeline_version: i64,
    /// Its pipeline variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Its output variables by namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// Its artifacts by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactLocation>,
    /// Its source revisions by artifact name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, String>,
}

impl RollbackPoint {
    /// The point to roll stage `s` back to, if `e` can be a rollback target for it: an
    /// execution (not itself a rollback) that succeeded in that stage.
    pub fn of(e: &Execution, s: usize) -> Option<Self> {
        let succeeded = e.stages.get(s).is_some_and(|r| r.status == Some(StageStatus::Succeeded));
        (succeeded && e.rollback.is_none()).then(|| Self {
            execution_id: e.id.clone(),
            pipeline_version: e.pipeline_version,
            variables: e.variables.clone(),
            outputs: e.outputs.clone(),
            artifacts: e.artifacts.clone(),
            revisions: e.revisions.clone(),
        })
    }
}

/// What a rollback execution rolls back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// `rollbackMetadata.rollbackTargetPipelineExecutionId`.
    pub target: ExecutionId,
    /// The stage it re-runs.
    pub stage: usize,
}

/// A stop someone asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// STOP_AND_ABANDON rather than STOP_AND_WAIT.
    pub abandon: bool,
    #[allow(missing_docs)]
    pub reason: String,
}

/// One run of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    #[allow(missing_docs)]
    pub id: ExecutionId,
    /// The pipeline structure version the execution runs.
    pub pipeline_version: i64,
    /// How it stands and where (stored as `status`, `place` and `stop`).
    #[serde(flatten)]
    pub phase: Phase,
    /// Why it ended, for `statusSummary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<String>,
    #[allow(missing_docs)]
    pub trigger: Trigger,
    /// Pipeline variables with their resolved values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Order of arrival among the pipeline's executions.
    pub arrival: u64,
    #[allow(missing_docs)]
    pub started_at: Millis,
    #[allow(missing_docs)]
    pub updated_at: Millis,
    /// In the order of the pipeline's stages.
    pub stages: Vec<StageRun>,
    /// Output variables by namespace, for `#{ns.key}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// Artifacts produced so far, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactLocation>,
    /// Set on an execution of type ROLLBACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// The source revision each source artifact holds (a commit id, an object version), by
    /// artifact name: `artifactRevisions`, and `CODEBUILD_RESOLVED_SOURCE_VERSION` downstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, String>,
    /// The revisions the start asked source actions to fetch, by action name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_revisions: BTreeMap<String, SourceRevision>,
}

/// A disabled inbound transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledTransition {
    #[allow(missing_docs)]
    pub reason: String,
    #[allow(missing_docs)]
    pub at: Millis,
    /// Who disabled it (CodePipeline's `lastChangedBy`), where the caller is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What executions of one pipeline share: stage locks, waiting lines, transitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Lanes {
    /// The execution that holds each stage (not used in PARALLEL mode).
    pub holders: Vec<Option<ExecutionId>>,
    /// Executions waiting to enter each stage, oldest first.
    pub waiting: Vec<VecDeque<ExecutionId>>,
    /// Disabled inbound transitions by stage.
    pub disabled: Vec<Option<DisabledTransition>>,
    /// The execution that entered each stage last (only it may retry the stage).
    pub latest: Vec<Option<ExecutionId>>,
    /// Arrivals so far; orders executions.
    pub arrivals: u64,
    /// For stages that roll back on failure: the last execution that succeeded in each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_points: Vec<Option<RollbackPoint>>,
}

/// Everything the engine knows about one pipeline's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PipelineState {
    #[allow(missing_docs)]
    pub lanes: Lanes,
    /// Executions by id. A store may keep only the ones an input touches: see
    /// [`crate::engine::Step::touched`].
    pub executions: BTreeMap<ExecutionId, Execution>,
}

impl PipelineState {
    /// A fresh state for a pipeline of `stages` stages.
    pub fn new(stages: usize) -> Self {
        Self {
            lanes: Lanes {
                holders: vec![None; stages],
                waiting: vec![VecDeque::new(); stages],
                disabled: vec![None; stages],
                latest: vec![None; stages],
                arrivals: 0,
                rollback_points: Vec::new(),
            },
            executions: BTreeMap::new(),
        }
    }
}

impl Execution {
    /// The API's `PipelineExecution.status`.
    pub fn status(&self) -> ExecutionStatus {
        self.phase.status()
    }

    /// Where it is in its pipeline.
    pub fn place(&self) -> Place {
        self.phase.place()
    }

    /// The stop asked of it, while it stops and once it has stopped.
    pub fn stop(&self) -> Option<&StopRequest> {
        self.phase.stop()
    }

    /// The revision source action `action` ran in this execution: the one the start pinned,
    /// else the one its output artifact holds; `None` until it is known.
    pub fn source_revision_of(&self, action: &crate::plan::ActionPlan) -> Option<&str> {
        match self.source_revisions.get(&action.name) {
            Some(pinned) => Some(&pinned.value),
            None => self.revisions.get(action.output_artifacts.first()?).map(String::as_str),
        }
    }

    /// Whether this execution ran `plan`'s declaration: only then do its stages and actions
    /// line up with the plan's. An execution of an older version (the pipeline was updated
    /// since) must not be read through the current plan.
    pub fn runs(&self, plan: &crate::plan::Plan) -> bool {
        self.pipeline_version == plan.version
            && self.stages.len() == plan.stages.len()
            && self
                .stages
                .iter()
                .zip(&plan.stages)
                .all(|(run, stage)| run.actions.len() == stage.actions.len())
    }
}

// Stored executions leave out what is empty or at its default: DynamoDB counts write units per
// kilobyte of item, and most fields of most actions are empty.
fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(phase: &Phase) -> serde_json::Value {
        serde_json::to_value(phase).unwrap_or_default()
    }

    /// The phase is stored as the three fields it replaced, so saved states read unchanged.
    #[test]
    fn a_phase_is_stored_as_status_place_and_stop() {
        let stop = StopRequest { abandon: false, reason: "hold".into() };
        let cases = [
            (
                Phase::Waiting(1),
                serde_json::json!({"status": "InProgress", "place": {"Waiting": 1}}),
            ),
            (
                Phase::Running(2),
                serde_json::json!({"status": "InProgress", "place": {"InStage": 2}}),
            ),
            (
                Phase::Stopping(0, stop.clone()),
                serde_json::json!({"status": "Stopping", "place": {"InStage": 0},
                    "stop": {"abandon": false, "reason": "hold"}}),
            ),
            (
                Phase::Halted(3, Halt::Failed),
                serde_json::json!({"status": "Failed", "place": {"Halted": 3}}),
            ),
            (
                Phase::Halted(3, Halt::Stopped(None)),
                serde_json::json!({"status": "Stopped", "place": {"Halted": 3}}),
            ),
            (
                Phase::Ended(Ending::Succeeded),
                serde_json::json!({"status": "Succeeded", "place": "Done"}),
            ),
            (
                Phase::Ended(Ending::Stopped(stop)),
                serde_json::json!({"status": "Stopped", "place": "Done",
                    "stop": {"abandon": false, "reason": "hold"}}),
            ),
        ];
        for (phase, json) in cases {
            assert_eq!(stored(&phase), json);
            let back: Phase = serde_json::from_value(json).unwrap_or(Phase::Waiting(99));
            assert_eq!(back, phase);
        }
    }

    /// What a stored state cannot mean is refused when read, not run.
    #[test]
    fn a_stored_combination_that_means_nothing_is_refused() {
        for json in [
            serde_json::json!({"status": "Succeeded", "place": {"InStage": 1}}),
            serde_json::json!({"status": "Stopping", "place": {"InStage": 1}}),
            serde_json::json!({"status": "InProgress", "place": "Done"}),
            serde_json::json!({"status": "Failed", "place": {"Waiting": 0}}),
        ] {
            let read = serde_json::from_value::<Phase>(json.clone());
            assert!(read.is_err(), "{json} was read as {read:?}");
        }
    }
}
