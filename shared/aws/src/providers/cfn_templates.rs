//! CloudFormation templates too large for a request (over 51,200 bytes, up to CloudFormation's
//! 1 MB): put in the deployment's artifact bucket of the action's region, encrypted with its
//! key, and handed to CloudFormation as a presigned `TemplateURL`.
//!
//! `Fn::GetArtifactAtt`'s `URL` of an input artifact is presigned the same way.
//!
//! The worker presigns with its own role, so a deploy role in another account needs no grant on
//! the bucket or its key: CloudFormation fetches the URL when it is called, as the worker.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use baton_core::engine::{ActionRequest, ArtifactLocation};

use super::credentials::RoleCredentials;
use super::{Failure, Stop, sdk_stop};
use crate::adapters::sdk;

/// CloudFormation's limit on a template read from S3.
/// <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html>
pub const MAX_TEMPLATE_FROM_S3: u64 = 1024 * 1024;

/// How long a template's URL works: CloudFormation reads it during the call it is given to.
const URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Where a large template is put for CloudFormation to read.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Stores `template` for `request`'s attempt and gives the HTTPS URL CloudFormation reads
    /// it from.
    async fn url(&self, request: &ActionRequest, template: Vec<u8>) -> Result<String, Stop>;
    /// A presigned HTTPS URL of `location` (an input artifact, in the action's region), as
    /// `Fn::GetArtifactAtt`'s `URL` gives it.
    async fn artifact_url(
        &self,
        request: &ActionRequest,
        location: &ArtifactLocation,
    ) -> Result<String, Stop>;
}

/// [`TemplateStore`] in the deployment's artifact buckets.
pub struct S3Templates {
    roles: Arc<dyn RoleCredentials>,
    /// Region to (bucket, KMS key ARN).
    buckets: BTreeMap<String, (String, String)>,
}

impl fmt::Debug for S3Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Templates").field("buckets", &self.buckets).finish_non_exhaustive()
    }
}

impl S3Templates {
    /// Puts templates in `buckets` (region to bucket and key) with the worker's own role.
    pub fn new(
        roles: Arc<dyn RoleCredentials>,
        buckets: BTreeMap<String, (String, String)>,
    ) -> Self {
        Self { roles, buckets }
    }
}

/// The object a template of `r`'s attempt is kept as, beside the execution's artifacts.
pub fn template_key(r: &ActionRequest) -> String {
    format!("{}/{}/templates/{}.{}.{}", r.pipeline, r.execution_id, r.stage, r.action, r.attempt)
}

#[async_trait]
impl TemplateStore for S3Templates {
    async fn url(&self, request: &ActionRequest, template: Vec<u8>) -> Result<String, Stop> {
        let Some((bucket, key_arn)) = self.buckets.get(&request.region) else {
            return Err(Failure::configuration(format!(
                "The template is over 51,200 bytes, so it goes to CloudFormation through an artifact bucket, and this deployment has none in {}.",
                request.region
            ))
            .into());
        };
        let config = self.roles.config(None, &request.region, &request.execution_id).await?;
        let s3 = sdk::s3(&config);
        let key = template_key(request);
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(template))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(Some(key_arn.clone()).filter(|k| !k.is_empty()))
            .send()
            .await
            .map_err(sdk_stop("PutObject"))?;
        presign(&s3, bucket, &key).await
    }

    async fn artifact_url(
        &self,
        request: &ActionRequest,
        location: &ArtifactLocation,
    ) -> Result<String, Stop> {
        let config = self.roles.config(None, &request.region, &request.execution_id).await?;
        presign(&sdk::s3(&config), &location.bucket, &location.key).await
    }
}

/// A GET of `bucket`/`key` that works for [`URL_LIFETIME`] without other credentials.
async fn presign(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, Stop> {
    let unmade = |e: &dyn std::fmt::Display| Failure::job(format!("The URL cannot be made: {e}."));
    let lifetime = PresigningConfig::expires_in(URL_LIFETIME).map_err(|e| unmade(&e))?;
    let presigned = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(lifetime)
        .await
        .map_err(|e| unmade(&e))?;
    Ok(presigned.uri().to_owned())
}
