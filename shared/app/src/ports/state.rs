//! The state store: pipelines, executions and the outbox, with conditional writes.

use async_trait::async_trait;
use baton_core::declaration::PipelineDeclaration;
use baton_core::engine::{Execution, ExecutionId, Lanes, Millis};
use baton_core::plan::Plan;
use serde::{Deserialize, Serialize};

use super::BoxError;
use baton_protocol::bus_events::BusEvent;

/// A stored pipeline: its declaration as given and the plan the engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// The declaration, exactly as the user gave it (version set by the store).
    pub declaration: PipelineDeclaration,
    /// The validated plan.
    pub plan: Plan,
    /// When it was created.
    pub created: Millis,
    /// When it was last updated.
    pub updated: Millis,
    /// The pipeline's tags (`TagResource`), in the order they were added. Records written before
    /// tags existed read as untagged.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A resource tag, as CodePipeline's `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[allow(missing_docs)]
    pub key: String,
    #[allow(missing_docs)]
    pub value: String,
}

/// An item read with the version it had; saving it back requires that version to be current.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// 0 for an item that did not exist.
    pub version: u64,
    #[allow(missing_docs)]
    pub value: T,
}

/// Which executions an input needs besides the lanes and the ones waiting in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Just this one (it may not exist yet).
    One(ExecutionId),
    /// Every execution that has not ended (approvals by token, timeouts).
    Active,
    /// None besides those waiting in the lanes.
    LanesOnly,
}

/// What one input read: the lanes and the executions, each with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The pipeline's shared lanes.
    pub lanes: Versioned<Lanes>,
    /// The executions read.
    pub executions: Vec<Versioned<Execution>>,
}

/// What one input changed, to be written atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The lanes, with the version they were read at, when they changed.
    pub lanes: Option<Versioned<Lanes>>,
    /// Changed executions, each with the version it was read at (0 for a new one).
    pub executions: Vec<Versioned<Execution>>,
    /// Events to publish after the write; kept with the state until published.
    pub outbox: Vec<BusEvent>,
}

/// An outbox entry waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Store-assigned, increasing.
    pub seq: i64,
    #[allow(missing_docs)]
    pub event: BusEvent,
    /// When it was saved.
    pub saved_at: Millis,
}

/// How a state store fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed an item since it was read. Reload and apply the input again: the
    /// other write may already have made it a no-op. Never retry the same write.
    #[error("pipeline {0} changed since it was read")]
    Conflict(String),
    /// The item does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// An item exists already (creating a pipeline twice).
    #[error("{0} exists already")]
    Exists(String),
    /// The store could not be reached or its data could not be read. Safe to retry later.
    #[error("state store unavailable")]
    Unavailable(#[source] BoxError),
}

/// Pipelines, their executions and the outbox.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Creates a pipeline. [`StoreError::Exists`] if the name is taken.
    async fn create_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError>;
    /// Replaces a pipeline's declaration. [`StoreError::NotFound`] if there is none.
    async fn update_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError>;
    /// Reads a pipeline.
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError>;
    /// Reads a pipeline whose `version` the caller expects (the one an execution or a request
    /// it holds was made with). A store may answer it for less where the version is what was
    /// expected (DynamoDB: an eventually consistent read, half the read units, exactly
    /// again when it shows another version or none); it is the latest one either way.
    async fn get_pipeline_at(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<PipelineRecord>, StoreError> {
        let _ = version;
        self.get_pipeline(name).await
    }
    /// Every pipeline's name, sorted.
    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError>;
    /// The names, sorted, of the pipelines that watch `key` (one of a plan's
    /// [`watched_sources`](baton_core::plan::Plan::watched_sources)), and maybe others: the
    /// caller checks each record. A store that keeps no index answers every pipeline.
    async fn pipelines_watching(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let _ = key;
        self.list_pipelines().await
    }
    /// Deletes a pipeline and everything it ran.
    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError>;

    /// Reads the lanes, the executions waiting in them, and those `scope` names.
    async fn load(&self, pipeline: &str, scope: &Scope) -> Result<Snapshot, StoreError>;
    /// Writes `changes` atomically if every item still has the version it was read at;
    /// otherwise writes nothing and returns [`StoreError::Conflict`]. Returns the outbox
    /// sequence numbers of `changes.outbox`, in order, for [`StateStore::ack_outbox`].
    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError>;
    /// One execution.
    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError>;
    /// The pipeline's executions, newest first.
    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError>;

    /// Whether the store publishes saved events itself (through a change stream and a relay),
    /// so that its callers must not. Such a store keeps no outbox: nothing is pending and
    /// nothing needs acknowledging.
    fn relays_outbox(&self) -> bool {
        false
    }

    /// Outbox entries not yet published, oldest first; `older_than` skips recent ones, which
    /// their writer is still publishing.
    async fn pending_outbox(
        &self,
        older_than: Millis,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Marks entries published.
    async fn ack_outbox(&self, seqs: &[i64]) -> Result<(), StoreError>;
}

/// Claims on action attempts: the action-worker takes one before running an attempt, so a
/// request delivered twice while the first delivery is still running does not run it twice.
#[async_trait]
pub trait ActionClaims: Send + Sync {
    /// Claims `attempt` (a key naming pipeline, execution, stage, action and attempt) until
    /// `until`. `false` when a claim on it is still live at `now`: another worker has it. An
    /// expired claim is taken over, since its worker ran out of time without finishing.
    async fn claim(&self, attempt: &str, now: Millis, until: Millis) -> Result<bool, StoreError>;
    /// Gives up the claim on `attempt` taken until `until`, if it is still that one (not one
    /// another worker took over since), so the next delivery of the request runs it.
    async fn release(&self, attempt: &str, until: Millis) -> Result<(), StoreError>;
}
