//! `AWS/Source/S3`: the object `S3ObjectKey` of `S3Bucket`, which must be a zip, becomes the
//! action's output artifact; its `ETag` and `VersionId` become output variables.
//!
//! The object is streamed to a file in the work folder (memory does not grow with its size)
//! and checked to be a readable zip before the action succeeds, so a wrong object fails here
//! rather than in every later action. CodePipeline requires a versioned bucket for S3 sources;
//! an unversioned object is still fetched, with an empty `VersionId`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use baton_core::plan::ActionPlan;
use tokio::io::AsyncWriteExt;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, blocking, finish, has_reference, optional, required, sdk_config, sdk_stop,
};
use crate::adapters::sdk;
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_core::engine::SourceRevision;

/// Fetches a zip object from S3 as a source.
#[derive(Debug, Clone)]
pub struct S3SourceProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl S3SourceProvider {
    /// Reads objects with the action's role and region from `roles`.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Stop> {
        let config = &job.request.configuration;
        let bucket = required(config, "S3Bucket")?;
        let pinned = job.request.source_revision.as_ref();
        // `sourceRevisions` may name another key, or a version (as an upload's event does).
        let key = match pinned.filter(|r| r.revision_type == "S3_OBJECT_KEY") {
            Some(r) => r.value.as_str(),
            None => required(config, "S3ObjectKey")?,
        };
        let version = pinned.filter(|r| r.revision_type == "S3_OBJECT_VERSION_ID");
        let uri = format!("s3://{bucket}/{key}");
        let client = sdk::s3(&sdk_config(&self.roles, &job.request).await?);
        let get = client.get_object().bucket(bucket).key(key);
        let get = get.set_version_id(version.map(|v| v.value.clone()));
        let object = get.send().await.map_err(|e| {
            if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) {
                Stop::Failed(Failure::configuration(format!("The object {uri} does not exist.")))
            } else {
                sdk_stop("GetObject")(e)
            }
        })?;
        let etag = object.e_tag().unwrap_or_default().trim_matches('"').to_owned();
        let version = object.version_id().unwrap_or_default().to_owned();
        let dest = job.work_dir.join("source.zip");
        let mut file = tokio::fs::File::create(&dest).await.map_err(|e| write_failure(&dest, e))?;
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| Stop::Unavailable(Box::new(e)))? {
            file.write_all(&chunk).await.map_err(|e| write_failure(&dest, e))?;
        }
        file.flush().await.map_err(|e| write_failure(&dest, e))?;
        drop(file);
        let (zip, checked_uri) = (dest.clone(), uri.clone());
        blocking(move || {
            let file = File::open(&zip)
                .map_err(|e| Failure::job(format!("Could not read {checked_uri}: {e}.")))?;
            zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
                Failure::job(format!("The object {checked_uri} is not a zip archive: {e}."))
            })?;
            Ok(())
        })
        .await?;
        let output_artifacts = match job.request.output_artifacts.first() {
            Some(name) => vec![LocalArtifact::file(name.clone(), dest)],
            None => Vec::new(),
        };
        let region = &job.request.region;
        Ok(JobResult::Succeeded {
            output_artifacts,
            output_variables: BTreeMap::from([
                ("ETag".to_owned(), etag),
                ("VersionId".to_owned(), version.clone()),
            ]),
            summary: Some(format!("Fetched {uri}")),
            external_id: Some(version).filter(|v| !v.is_empty()),
            external_url: Some(format!(
                "https://{region}.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={}",
                super::url_encode(key)
            )),
        })
    }
}

fn write_failure(path: &Path, e: std::io::Error) -> Stop {
    Stop::Failed(Failure::job(format!("Could not write {}: {e}.", path.display())))
}

#[async_trait]
impl ActionProvider for S3SourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["S3Bucket", "S3ObjectKey"],
            "the action configuration",
        )?;
        Ok(())
    }

    /// The object's current version (`PollForSourceChanges`).
    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let (bucket, key) = (
            optional(&action.configuration, "S3Bucket")?,
            optional(&action.configuration, "S3ObjectKey")?,
        );
        if has_reference(bucket) || has_reference(key) {
            return None;
        }
        let client = sdk::s3(&super::poll_config(&self.roles, action).await?);
        let head = client.head_object().bucket(bucket).key(key).send().await.ok()?;
        Some(SourceRevision {
            revision_type: "S3_OBJECT_VERSION_ID".into(),
            value: head.version_id()?.to_owned(),
            branch: None,
        })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.fetch(job).await)
    }
}
