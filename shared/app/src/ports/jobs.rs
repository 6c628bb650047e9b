//! Running jobs: action attempts whose provider started work elsewhere (a CodeBuild build) that
//! ends long after the worker's invocation. The worker records the job; the service's own
//! "finished" event, or a periodic check when that event is lost, resumes it.

use async_trait::async_trait;
use baton_core::engine::{ActionRequest, Millis};
use serde::{Deserialize, Serialize};

use super::state::StoreError;

/// One attempt waiting for external work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    /// [`RunningJob::key_for`] of the provider and the external id: what a service's event
    /// names.
    pub key: String,
    /// The attempt, as the engine asked for it.
    pub request: ActionRequest,
    /// The provider's id for the work (a build id).
    pub external_id: String,
    /// Where people can watch it.
    pub external_url: Option<String>,
    /// When to ask the provider again if no event arrived first.
    pub check_at: Millis,
}

impl RunningJob {
    /// The key of the work `external_id` of `provider` (such as `CodeBuild`).
    pub fn key_for(provider: &str, external_id: &str) -> String {
        format!("{provider}#{external_id}")
    }
}

/// Where running jobs are kept.
#[async_trait]
pub trait RunningJobs: Send + Sync {
    /// Records `job`, replacing one with the same key.
    async fn put_job(&self, job: &RunningJob) -> Result<(), StoreError>;
    /// The job with `key`, if it still runs.
    async fn get_job(&self, key: &str) -> Result<Option<RunningJob>, StoreError>;
    /// Forgets a job; forgetting one that is gone is not an error.
    async fn remove_job(&self, key: &str) -> Result<(), StoreError>;
    /// Up to `limit` jobs whose `check_at` is at or before `now`, earliest first.
    async fn due_jobs(&self, now: Millis, limit: usize) -> Result<Vec<RunningJob>, StoreError>;
}
