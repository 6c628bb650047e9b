//! The `LambdaInvoke` rule: the function `FunctionName` is invoked synchronously, as the rule's
//! role in its region, with a `CodePipeline.job`-shaped event (the rule's configuration,
//! `UserParameters` included, and where its input artifacts are); the function decides. It
//! passes by returning, and fails the rule by raising an error, whose message becomes the
//! rule's. A function Lambda refuses to run (unknown, no permission) fails the rule with
//! Lambda's words.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use baton_core::engine::RuleRequest;
use baton_core::rules::{RulePlan, Verdict};
use serde_json::{Value, json};

use super::credentials::{RoleCredentials, RoleError};
use super::{SdkFault, classify, has_reference, optional};
use baton_app::ports::provider::{ProviderError, RuleCheck, RuleProvider};

/// Evaluates `LambdaInvoke` rules.
#[derive(Debug)]
pub struct LambdaRule {
    roles: Arc<dyn RoleCredentials>,
    account: String,
}

impl LambdaRule {
    /// Invokes functions with credentials from `roles`; `account` is the job event's
    /// `accountId`.
    pub fn new(roles: Arc<dyn RoleCredentials>, account: String) -> Self {
        Self { roles, account }
    }
}

/// The event the function receives: CodePipeline's job shape, for one evaluation.
pub fn rule_event(r: &RuleRequest, account: &str) -> Value {
    let artifacts: Vec<Value> = r
        .input_artifacts
        .iter()
        .map(|a| {
            json!({"name": a.name, "location": {"type": "S3", "s3Location": {
                "bucketName": a.location.bucket, "objectKey": a.location.key}}})
        })
        .collect();
    json!({"CodePipeline.job": {
        "id": format!("{}-{}-{}-{}", r.execution_id, r.stage, r.rule, r.request),
        "accountId": account,
        "data": {
            "actionConfiguration": {"configuration": r.configuration},
            "inputArtifacts": artifacts,
            "pipelineContext": {"pipelineName": r.pipeline, "stage": {"name": r.stage},
                "action": {"name": r.rule}, "pipelineExecutionId": r.execution_id}
        }
    }})
}

#[async_trait]
impl RuleProvider for LambdaRule {
    async fn check(&self, rule: &RulePlan) -> Result<(), String> {
        match rule.configuration.get("FunctionName").map(|v| v.trim()) {
            Some(name) if !name.is_empty() => Ok(()),
            _ => Err("a LambdaInvoke rule needs FunctionName".into()),
        }
    }

    async fn evaluate(&self, check: &RuleCheck) -> Result<Verdict, ProviderError> {
        let r = &check.request;
        let Some(function) = optional(&r.configuration, "FunctionName") else {
            return Ok(Verdict::Fail("The rule configuration needs FunctionName.".into()));
        };
        if has_reference(function) {
            return Ok(Verdict::Fail(format!(
                "FunctionName {function} still holds a variable reference after resolution."
            )));
        }
        let config =
            match self.roles.config(r.role_arn.as_deref(), &r.region, &r.execution_id).await {
                Ok(config) => config,
                Err(e @ RoleError::Denied { .. }) => return Ok(Verdict::Fail(e.to_string())),
                Err(e) => return Err(ProviderError::Unavailable(Box::new(e))),
            };
        let payload = serde_json::to_vec(&rule_event(r, &self.account)).unwrap_or_default();
        let answer = Client::new(&config)
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                return match classify("Invoke", e) {
                    SdkFault::Refused { code, message } => {
                        Ok(Verdict::Fail(format!("Invoke of {function} failed: {code}: {message}")))
                    }
                    SdkFault::Unavailable(source) => Err(ProviderError::Unavailable(source)),
                };
            }
        };
        let returned = out.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
        let returned: Value = serde_json::from_slice(&returned).unwrap_or(Value::Null);
        Ok(match out.function_error() {
            Some(kind) => Verdict::Fail(
                returned["errorMessage"]
                    .as_str()
                    .map_or_else(|| format!("{function} raised an error ({kind})"), str::to_owned),
            ),
            None => Verdict::Pass(format!("{function} returned")),
        })
    }
}
