//! The pipeline's service role (`roleArn`). CodePipeline refuses, at create and update, a
//! pipeline whose role it cannot assume; a host that runs actions as that role refuses the
//! same way, so a role its worker could never use is found before the first execution fails.

use async_trait::async_trait;

/// Whether this host can act as a pipeline's role.
#[async_trait]
pub trait PipelineRoles: Send + Sync {
    /// Why `role_arn` could not be assumed for the pipeline's actions, in CodePipeline's words
    /// ([`not_assumable`]); `None` when it can, or when that cannot be known now (the worker's
    /// own attempt is the real check).
    async fn refusal(&self, role_arn: &str) -> Option<String>;
}

/// CodePipeline's message for a role it cannot assume, then why.
pub fn not_assumable(role_arn: &str, why: &str) -> String {
    format!("CodePipeline is not authorized to perform AssumeRole on role {role_arn}. {why}")
}
