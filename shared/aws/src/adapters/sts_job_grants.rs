//! Job workers' artifacts on AWS: the attempt's own S3 objects, lent with credentials from the
//! job role (`BATON_JOB_ROLE_ARN`) narrowed by a session policy to exactly those objects (read
//! the inputs, write the outputs) and the region's artifact key, as CodePipeline's job
//! credentials are. Outputs are written in place, so nothing is collected.
//!
//! STS credentials cannot be revoked: they end with their session (at most an hour, at least
//! STS's fifteen minutes), which is why the session is cut to the action's time left.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use baton_core::engine::{ArtifactLocation, Millis};
use serde_json::json;

use baton_app::ports::BoxError;
use baton_app::ports::job_artifacts::{ArtifactGrant, JobArtifacts, S3Place, SessionCredentials};
use baton_app::ports::provider::{Job, LocalArtifact};

/// STS's shortest and Baton's longest session for a job's credentials.
const MIN_SESSION_SECS: i64 = 900;
const MAX_SESSION_SECS: i64 = 3600;

/// Grants through STS.
pub struct StsJobGrants {
    sts: aws_sdk_sts::Client,
    role_arn: String,
}

impl StsJobGrants {
    /// Grants as `role_arn`, which the caller may assume and which may read and write the
    /// artifact buckets and use their keys.
    pub fn new(sdk: &SdkConfig, role_arn: String) -> Self {
        Self { sts: aws_sdk_sts::Client::new(sdk), role_arn }
    }
}

fn place(l: &ArtifactLocation) -> S3Place {
    S3Place { bucket_name: l.bucket.clone(), object_key: l.key.clone() }
}

fn object_arn(l: &ArtifactLocation) -> String {
    format!("arn:aws:s3:::{}/{}", l.bucket, l.key)
}

/// The session policy of a grant: its inputs readable, its outputs writable, its key usable.
pub fn session_policy(
    inputs: &[&ArtifactLocation],
    outputs: &[&ArtifactLocation],
    kms_key_arn: &str,
) -> serde_json::Value {
    let mut statements = Vec::new();
    if !inputs.is_empty() {
        statements
            .push(json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": inputs.iter().map(|l| object_arn(l)).collect::<Vec<_>>()}));
    }
    if !outputs.is_empty() {
        statements.push(json!({"Effect": "Allow", "Action": ["s3:PutObject"],
            "Resource": outputs.iter().map(|l| object_arn(l)).collect::<Vec<_>>()}));
    }
    statements.push(json!({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": kms_key_arn}));
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[async_trait]
impl JobArtifacts for StsJobGrants {
    async fn grant(
        &self,
        grant_id: &str,
        job: &Job,
        until: Millis,
    ) -> Result<ArtifactGrant, BoxError> {
        let Some(p) = &job.in_place else {
            return Err("the artifact store did not say where the job's artifacts are".into());
        };
        let inputs: Vec<&ArtifactLocation> = p.inputs.iter().map(|(_, l)| l).collect();
        let outputs: Vec<&ArtifactLocation> = p.outputs.iter().map(|(_, l)| l).collect();
        let policy = session_policy(&inputs, &outputs, &p.kms_key_arn).to_string();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let left = until / 1000 - i64::try_from(now).unwrap_or(i64::MAX);
        let seconds = left.clamp(MIN_SESSION_SECS, MAX_SESSION_SECS);
        let session: String = format!("baton-job-{grant_id}").chars().take(64).collect();
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session)
            .policy(policy)
            .duration_seconds(i32::try_from(seconds).unwrap_or(3600))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot assume the job role: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                )
            })?;
        let c = out.credentials.ok_or("STS answered without credentials")?;
        Ok(ArtifactGrant {
            inputs: p.inputs.iter().map(|(n, l)| (n.clone(), place(l))).collect(),
            outputs: p.outputs.iter().map(|(n, l)| (n.clone(), place(l))).collect(),
            credentials: SessionCredentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
            },
            encryption_key: Some(p.kms_key_arn.clone()),
        })
    }

    async fn collect(&self, grant_id: &str, job: &Job) -> Result<Vec<LocalArtifact>, BoxError> {
        let _ = (grant_id, job);
        Ok(Vec::new())
    }

    async fn revoke(&self, grant_id: &str) -> Result<(), BoxError> {
        let _ = grant_id;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_policy_names_exactly_the_jobs_objects_and_key() {
        let input = ArtifactLocation { bucket: "b".into(), key: "p/Src/1.zip".into() };
        let output = ArtifactLocation { bucket: "b".into(), key: "p/Out/1.zip".into() };
        let policy = session_policy(&[&input], &[&output], "arn:aws:kms:us-east-1:1:key/k");
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Resource"], json!(["arn:aws:s3:::b/p/Src/1.zip"]));
        assert_eq!(statements[0]["Action"], json!(["s3:GetObject", "s3:GetObjectVersion"]));
        assert_eq!(statements[1]["Resource"], json!(["arn:aws:s3:::b/p/Out/1.zip"]));
        assert_eq!(statements[1]["Action"], json!(["s3:PutObject"]));
        assert_eq!(statements[2]["Resource"], "arn:aws:kms:us-east-1:1:key/k");
    }
}
