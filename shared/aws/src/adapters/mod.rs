//! The ports on AWS: DynamoDB, S3 with KMS, EventBridge, SNS, STS.
//!
//! Every SDK type and SDK error stays in this module; the ports see domain types only.

#[cfg(feature = "secrets")]
pub mod aws_secrets;
pub mod dynamodb_approvals;
pub mod dynamodb_job_queue;
pub mod dynamodb_jobs;
pub mod dynamodb_relay;
pub mod dynamodb_state;
pub mod dynamodb_webhooks;
mod dynamodb_writes;
pub mod emf_metrics;
pub mod eventbridge_bus;
pub mod iam_pipeline_roles;
pub mod s3_artifacts;
pub mod sdk;
pub mod sns_notifier;
pub mod sts_job_grants;
pub mod sts_roles;
