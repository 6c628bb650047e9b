//! `AWS/Invoke/Lambda`: the function `FunctionName` (a name, an ARN, or either with an alias
//! or version) is invoked asynchronously with CodePipeline's `CodePipeline.job` event, as the
//! action's role in its region; the function reports with `PutJobSuccessResult` or
//! `PutJobFailureResult` against Baton's API, and is invoked again with the job that goes on
//! when it gives a continuation token. The job's life is [`JobWorkerProvider`]'s.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde_json::Value;

use super::credentials::RoleCredentials;
use super::{SdkFault, Stop, classify, has_reference, optional, sdk_config};
use baton_app::ports::clock::Clock;
use baton_app::ports::job_artifacts::JobArtifacts;
use baton_app::ports::job_queue::JobQueue;
use baton_app::providers::job_worker::{HandoffError, JobHandoff, JobWorkerProvider};

/// Invokes the action's function with its job.
#[derive(Debug)]
pub struct LambdaHandoff {
    roles: Arc<dyn RoleCredentials>,
}

impl LambdaHandoff {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }
}

/// The `AWS/Invoke/Lambda` provider: jobs handed to functions.
pub fn provider(
    roles: Arc<dyn RoleCredentials>,
    queue: Arc<dyn JobQueue>,
    artifacts: Arc<dyn JobArtifacts>,
    clock: Arc<dyn Clock>,
    account: String,
) -> JobWorkerProvider {
    JobWorkerProvider::new(queue, artifacts, clock, account)
        .with_handoff(Arc::new(LambdaHandoff::new(roles)))
}

#[async_trait]
impl JobHandoff for LambdaHandoff {
    fn check(&self, action: &ActionPlan) -> Result<(), String> {
        match action.configuration.get("FunctionName").map(|v| v.trim()) {
            Some(name) if !name.is_empty() => Ok(()),
            _ => Err("the Lambda action needs FunctionName".into()),
        }
    }

    async fn hand_over(&self, event: &Value, request: &ActionRequest) -> Result<(), HandoffError> {
        let Some(function) = optional(&request.configuration, "FunctionName") else {
            return Err(HandoffError::Refused(
                "The action configuration needs FunctionName.".into(),
            ));
        };
        if has_reference(function) {
            return Err(HandoffError::Refused(format!(
                "FunctionName {function} still holds a variable reference after resolution."
            )));
        }
        let config = sdk_config(&self.roles, request).await.map_err(|stop| match stop {
            Stop::Failed(f) => HandoffError::Refused(f.message),
            Stop::Unavailable(e) => HandoffError::Unavailable(e),
        })?;
        let payload = serde_json::to_vec(event)
            .map_err(|e| HandoffError::Refused(format!("The job event cannot be written: {e}.")))?;
        Client::new(&config)
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match classify("Invoke", e) {
                SdkFault::Refused { code, message } => {
                    HandoffError::Refused(format!("Invoke of {function} failed: {code}: {message}"))
                }
                SdkFault::Unavailable(source) => HandoffError::Unavailable(source),
            })
    }
}
