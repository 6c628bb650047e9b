//! CodePipeline's job protocol, as kept: custom action types registered by their owners, and
//! the jobs an action of such a type waits on until an external worker (the Jenkins plugin, a
//! poller of one's own, a Lambda function) polls for it, acknowledges it and reports its result.

use std::collections::BTreeMap;

use async_trait::async_trait;
use baton_core::engine::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{StoreError, Tag, Versioned};

/// `actionTypeId`: the plan's action type, which a job's action carries and workers poll by.
pub use baton_core::plan::ActionType;

/// One configuration property of a custom action type, as CodePipeline's
/// `ActionConfigurationProperty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationProperty {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub required: bool,
    #[allow(missing_docs)]
    pub key: bool,
    /// Kept out of `GetJobDetails` and of what workers see of other jobs.
    pub secret: bool,
    /// Workers may poll for jobs with one value of it (`queryParam`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queryable: Option<bool>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `String`, `Number` or `Boolean`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// How many artifacts an action of a type takes or makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactCount {
    #[allow(missing_docs)]
    pub minimum_count: u32,
    #[allow(missing_docs)]
    pub maximum_count: u32,
}

/// A custom action type (`CreateCustomActionType`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomActionType {
    #[allow(missing_docs)]
    pub id: ActionType,
    /// URL templates (`entityUrlTemplate`, `executionUrlTemplate`...), as given.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// `UpdateActionType`'s description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub configuration_properties: Vec<ConfigurationProperty>,
    #[allow(missing_docs)]
    pub input_artifact_details: ArtifactCount,
    #[allow(missing_docs)]
    pub output_artifact_details: ArtifactCount,
    #[allow(missing_docs)]
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Deleted types are kept: CodePipeline lets a deleted version be created again only with
    /// the same definition.
    #[serde(default)]
    pub deleted: bool,
    /// A partner's action type (owner `ThirdParty`): the client its jobs are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<PartnerClient>,
}

/// The `clientId` and `clientToken` pair a partner's worker proves itself with. Only the
/// token's digest is kept: the token is shown once, when the partner's type is registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerClient {
    /// A UUID, given with each of the partner's jobs (`PollForThirdPartyJobs`).
    pub id: String,
    /// SHA-256 of the client token, in lowercase hex.
    pub token_sha256: String,
}

/// Where a job is in CodePipeline's life of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting for a worker to poll.
    Queued,
    /// Handed to a worker, not yet acknowledged.
    Dispatched,
    /// Acknowledged: the worker is on it.
    InProgress,
    /// The worker reported success.
    Succeeded,
    /// The worker reported failure.
    Failed,
    /// Nobody finished it in time, or its action no longer waits for it.
    TimedOut,
}

impl JobStatus {
    /// CodePipeline's name of the status (`AcknowledgeJob`'s answer).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Dispatched => "Dispatched",
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::TimedOut => "TimedOut",
        }
    }

    /// Whether a worker may still report on the job.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Dispatched | Self::InProgress)
    }
}

/// What a worker reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobReport {
    /// `PutJobSuccessResult`.
    Succeeded {
        /// The action goes on: a new job carries the token to the next poll.
        continuation_token: Option<String>,
        #[allow(missing_docs)]
        output_variables: BTreeMap<String, String>,
        /// `executionDetails.summary`.
        summary: Option<String>,
        /// `executionDetails.externalExecutionId`.
        external_execution_id: Option<String>,
        /// `currentRevision.revision`, for a source.
        revision: Option<String>,
    },
    /// `PutJobFailureResult`.
    Failed {
        /// CodePipeline's `FailureType`: `JobFailed`, `ConfigurationError`...
        kind: String,
        #[allow(missing_docs)]
        message: String,
        #[allow(missing_docs)]
        external_execution_id: Option<String>,
    },
}

/// One job, as a worker sees it and as Baton follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedJob {
    /// A UUID, as CodePipeline's job ids.
    pub id: String,
    /// The action type the job is for; workers poll by it.
    pub action_type: ActionType,
    #[allow(missing_docs)]
    pub status: JobStatus,
    /// Given to the worker that polled it; acknowledging needs it.
    pub nonce: Option<String>,
    /// CodePipeline's `JobData`: configuration, pipeline context, artifacts, credentials,
    /// continuation token.
    pub data: Value,
    /// The action's configuration values of its type's queryable property, matched against
    /// `queryParam`.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The worker's report, once made.
    pub report: Option<JobReport>,
    /// When the job was queued.
    pub created: Millis,
    /// The running-job key of the action attempt that waits on it, so a report is looked at
    /// at once.
    pub waiting: String,
    /// The artifact grant its credentials come from: one per attempt, kept by the jobs that
    /// continue it.
    pub grant: String,
    /// Handed to what does the work (a Lambda function) rather than polled for: its id alone
    /// proves a report on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handed_over: bool,
}

/// Where custom action types and jobs are kept.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Records `action_type`, replacing one of the same id.
    async fn put_action_type(&self, action_type: &CustomActionType) -> Result<(), StoreError>;
    /// Every custom action type ever created, deleted ones included, by id.
    async fn action_types(&self) -> Result<Vec<CustomActionType>, StoreError>;

    /// Writes `job` if it still has the version it was read at (0: a new job); otherwise
    /// writes nothing and returns [`StoreError::Conflict`].
    async fn put_job(&self, job: &Versioned<QueuedJob>) -> Result<(), StoreError>;
    /// The job `id`, with its version.
    async fn job(&self, id: &str) -> Result<Option<Versioned<QueuedJob>>, StoreError>;
    /// Up to `limit` queued jobs of `action_type`, oldest first.
    async fn queued_jobs(
        &self,
        action_type: &ActionType,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedJob>>, StoreError>;
}
