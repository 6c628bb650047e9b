//! A rule answered by an action provider: the `Commands` rule runs its commands as the
//! `Commands` action does (same shell, same input artifact, same time limit), and passes when
//! they succeed.

use std::sync::Arc;

use async_trait::async_trait;
use baton_core::engine::{ActionRequest, RuleRequest};
use baton_core::plan::ActionType;
use baton_core::rules::{RulePlan, Verdict};

use crate::ports::provider::{
    ActionProvider, Job, JobResult, ProviderError, RuleCheck, RuleProvider,
};

/// Evaluates a rule by running an action of `action_type` with the rule's configuration,
/// commands and inputs.
pub struct ActionRule {
    action_type: ActionType,
    provider: Arc<dyn ActionProvider>,
}

impl ActionRule {
    /// The `Commands` rule over the `Commands` action's provider.
    pub fn commands(provider: Arc<dyn ActionProvider>) -> Self {
        Self { action_type: commands_type(), provider }
    }
}

/// The action attempt of `action_type` that stands for one evaluation of the rule `r`: its
/// configuration, commands and inputs, numbered by the rule's request.
pub fn action_of(r: &RuleRequest, action_type: &ActionType) -> ActionRequest {
    ActionRequest {
        pipeline: r.pipeline.clone(),
        pipeline_version: r.pipeline_version,
        execution_id: r.execution_id.clone(),
        stage: r.stage.clone(),
        action: r.rule.clone(),
        attempt: r.request,
        action_type: action_type.clone(),
        configuration: r.configuration.clone(),
        commands: r.commands.clone(),
        input_artifacts: r.input_artifacts.clone(),
        source_revision: None,
        input_revisions: Vec::new(),
        output_artifacts: Vec::new(),
        region: r.region.clone(),
        role_arn: r.role_arn.clone(),
        pipeline_role_arn: r.pipeline_role_arn.clone(),
        artifact_stores: r.artifact_stores.clone(),
        deadline: r.deadline,
        token: None,
        output_artifact_files: Vec::new(),
        output_variables: Vec::new(),
        environment_variables: Vec::new(),
        announce: Default::default(),
    }
}

/// The `Commands` action's type, which the `Commands` rule runs as.
pub fn commands_type() -> ActionType {
    ActionType {
        category: "Compute".into(),
        owner: "AWS".into(),
        provider: "Commands".into(),
        version: "1".into(),
    }
}

#[async_trait]
impl RuleProvider for ActionRule {
    async fn check(&self, rule: &RulePlan) -> Result<(), String> {
        if self.action_type.provider == "Commands" && rule.commands.is_empty() {
            return Err("a Commands rule needs at least one command".into());
        }
        Ok(())
    }

    async fn evaluate(&self, check: &RuleCheck) -> Result<Verdict, ProviderError> {
        let job = Job {
            request: action_of(&check.request, &self.action_type),
            inputs: check.inputs.clone(),
            work_dir: check.work_dir.clone(),
            log_path: check.log_path.clone(),
            in_place: None,
            input_places: Vec::new(),
        };
        Ok(match self.provider.run(&job).await? {
            JobResult::Succeeded { summary, .. } => {
                Verdict::Pass(summary.unwrap_or_else(|| format!("The {} succeeded", self.noun())))
            }
            JobResult::Failed { message, .. } => Verdict::Fail(message),
            JobResult::Running { .. } => {
                Verdict::Fail(format!("The {} did not finish in one run", self.noun()))
            }
        })
    }
}

impl ActionRule {
    fn noun(&self) -> &'static str {
        if self.action_type.provider == "Commands" { "commands" } else { "rule's action" }
    }
}
