//! What an external job worker is given to read an action's input artifacts and write its
//! outputs: S3 places and temporary credentials good for exactly those objects, as CodePipeline
//! gives them in a job's data.

use async_trait::async_trait;
use baton_core::engine::Millis;
use serde::{Deserialize, Serialize};

use super::BoxError;
use super::provider::{Job, LocalArtifact};

/// An object in S3 (or in a store that answers S3's protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Place {
    #[allow(missing_docs)]
    pub bucket_name: String,
    #[allow(missing_docs)]
    pub object_key: String,
}

/// Temporary credentials, as CodePipeline's `AWSSessionCredentials`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCredentials {
    #[allow(missing_docs)]
    pub access_key_id: String,
    #[allow(missing_docs)]
    pub secret_access_key: String,
    #[allow(missing_docs)]
    pub session_token: String,
}

impl std::fmt::Debug for SessionCredentials {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials").field("access_key_id", &self.access_key_id).finish()
    }
}

/// What one grant gives a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactGrant {
    /// Each input artifact by name, in declaration order: readable.
    pub inputs: Vec<(String, S3Place)>,
    /// Each output artifact by name: writable.
    pub outputs: Vec<(String, S3Place)>,
    #[allow(missing_docs)]
    pub credentials: SessionCredentials,
    /// The KMS key outputs must be encrypted with, where the store has one.
    pub encryption_key: Option<String>,
}

/// Lends an action attempt's artifacts to the worker of its jobs.
#[async_trait]
pub trait JobArtifacts: Send + Sync {
    /// Lets whoever holds the returned credentials read `job`'s inputs and write its outputs
    /// until `until` or [`JobArtifacts::revoke`]. `grant_id` names the grant (one per attempt,
    /// shared by the jobs that continue it).
    async fn grant(
        &self,
        grant_id: &str,
        job: &Job,
        until: Millis,
    ) -> Result<ArtifactGrant, BoxError>;
    /// The outputs the worker wrote, as zip files under `job.work_dir`; none when the worker
    /// wrote them in place, where the store keeps artifacts. A declared output the worker did
    /// not write is an error naming it.
    async fn collect(&self, grant_id: &str, job: &Job) -> Result<Vec<LocalArtifact>, BoxError>;
    /// Ends the grant: its credentials stop working and what it held is removed.
    async fn revoke(&self, grant_id: &str) -> Result<(), BoxError>;
}

/// Why a granted object cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The credentials are unknown, expired or revoked.
    #[error("the credentials are unknown or expired")]
    UnknownKey,
    /// The grant does not cover this object for this use.
    #[error("the grant does not cover this object")]
    Denied,
    /// The grant covers it for reading, but the worker has not put it (or nobody made it).
    #[error("no such object")]
    NoSuchKey,
    /// The store failed.
    #[error("the grant's objects cannot be reached")]
    Unavailable(#[source] BoxError),
}

/// The objects of this host's grants, for a server that answers S3's protocol for them
/// (`baton serve`): on AWS the grants are on real S3 objects and S3 serves them itself.
pub trait GrantedObjects: Send + Sync {
    /// The credentials of a live grant with this access key id.
    fn credentials(&self, access_key_id: &str, now: Millis) -> Option<SessionCredentials>;
    /// The file holding `bucket/key`, if the grant of `access_key_id` may read it.
    ///
    /// # Errors
    /// A [`GrantError`] saying why not.
    fn readable(
        &self,
        access_key_id: &str,
        bucket: &str,
        key: &str,
    ) -> Result<std::path::PathBuf, GrantError>;
    /// Stores `body` as `bucket/key`, if the grant of `access_key_id` may write it.
    ///
    /// # Errors
    /// A [`GrantError`] saying why not.
    fn write(
        &self,
        access_key_id: &str,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> Result<(), GrantError>;
}
