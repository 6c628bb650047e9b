//! The artifact store: zip archives, per region, encrypted, streamed through files so memory
//! does not grow with an artifact's size.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::engine::ArtifactLocation;
use baton_core::plan::DeclaredStore;

use super::BoxError;

/// How an artifact store fails.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// There is no such artifact (or no store for that region).
    #[error("artifact {0} does not exist")]
    NotFound(String),
    /// The artifact was changed or corrupted since it was written, or the key is wrong. Never
    /// retry: the data cannot be trusted.
    #[error("artifact {0} failed its integrity check")]
    Tampered(String),
    /// The pipeline's declared store is not one this deployment may use. Never retry: only a
    /// change of the declaration or of the deployment helps.
    #[error("{0}")]
    Refused(String),
    /// The store could not be read or written. Safe to retry.
    #[error("artifact store unavailable")]
    Unavailable(#[source] BoxError),
}

/// Where an artifact is written: pipeline, execution and artifact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactKey {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub execution_id: String,
    #[allow(missing_docs)]
    pub artifact: String,
    /// The action attempt that produced it, so a retry never overwrites what an earlier
    /// attempt's consumers may still be reading.
    pub attempt: u32,
}

/// Encrypted, per-region artifact storage.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores the file at `source` as an artifact in `region`'s store.
    async fn put(
        &self,
        region: &str,
        key: &ArtifactKey,
        source: &Path,
    ) -> Result<ArtifactLocation, ArtifactError>;
    /// Writes the artifact's verified plaintext to `dest`.
    async fn get(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<(), ArtifactError>;
    /// The artifact's verified plaintext, in one read of the store: held in memory and
    /// returned when it is small (at most [`super::provider::SMALL_FILE_BYTES`] as stored),
    /// else written to `dest` as [`ArtifactStore::get`] does, and `None`.
    async fn get_or_hold(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<Option<Vec<u8>>, ArtifactError> {
        self.get(region, location, dest).await.map(|()| None)
    }
    /// Copies an artifact into another region's store, encrypted with that region's key.
    async fn copy_to_region(
        &self,
        from_region: &str,
        location: &ArtifactLocation,
        to_region: &str,
    ) -> Result<ArtifactLocation, ArtifactError>;
    /// The region whose store holds `location`, if this store knows it.
    fn region_of(&self, location: &ArtifactLocation) -> Option<String> {
        let _ = location;
        None
    }
    /// Where `key` lives in `region`'s store and the KMS key that encrypts it there, for an
    /// AWS service that reads and writes artifacts in place (a CodeBuild build); `None` where
    /// no AWS service can reach the store (files on one machine).
    fn in_place(&self, region: &str, key: &ArtifactKey) -> Option<InPlace> {
        let _ = (region, key);
        None
    }
    /// The store a pipeline's artifacts go to, given the stores its declaration names: `None`
    /// keeps them here, as a host that does not use declared stores does (files on one
    /// machine, or a deployment configured to keep every pipeline's artifacts in its own
    /// buckets).
    ///
    /// # Errors
    /// [`ArtifactError::Refused`] when a declared store is not one this host may use.
    fn for_pipeline(
        &self,
        declared: &[DeclaredStore],
    ) -> Result<Option<Arc<dyn ArtifactStore>>, ArtifactError> {
        let _ = declared;
        Ok(None)
    }
    /// Why the declared stores cannot be used, one sentence each naming the store: the check
    /// at create, so that a pipeline whose artifacts could not be written is refused then, not
    /// at its first action.
    async fn refusals(&self, declared: &[DeclaredStore]) -> Vec<String> {
        let _ = declared;
        Vec::new()
    }
}

/// An artifact's place in a store that AWS services can read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlace {
    /// The bucket and object key.
    pub location: ArtifactLocation,
    /// The ARN of the KMS key objects there are encrypted with.
    pub kms_key_arn: String,
}
