//! `AWS/Compute/Commands` on AWS: the action's `commands` run as a build of the deployment's
//! Commands project, as CodePipeline runs them on CodeBuild compute.
//!
//! # Contract
//!
//! The build is started with a buildspec made from the action ([`buildspec`]): its commands in
//! the build phase, its `outputVariables` as exported variables, and each output artifact's
//! `files`. The first input artifact is the build's source (so the commands run in it), the
//! others secondary sources named after their artifacts; outputs are written in place, to the
//! artifact store, as for the CodeBuild action. Environment variables go to the build as
//! overrides, so CodeBuild resolves `PARAMETER_STORE` and `SECRETS_MANAGER` ones with the
//! project's role. The build's time-out is the action's time left (CodeBuild takes 5 to 2160
//! minutes). Following and stopping the build is the CodeBuild action's.
//!
//! The `Commands` rule ([`CommandsRule`]) runs the same way: its first evaluation starts the
//! build and answers `Wait`, holding the build's id for the next one, which looks at it until
//! it ends. The rule passes when the build succeeds and fails with its failure.

use std::fmt;

use async_trait::async_trait;
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use baton_core::rules::{RulePlan, Verdict};
use serde_json::{Map, Value, json};

use super::codebuild::{CodeBuildProvider, Start};
use super::{Failure, finish, time_left};
use baton_app::ports::provider::{
    ActionProvider, Job, JobResult, ProviderError, RuleCheck, RuleProvider,
};
use baton_app::providers::action_rule::{action_of, commands_type};

/// Runs `Commands` actions as builds of one CodeBuild project.
#[derive(Clone)]
pub struct CommandsProvider {
    builds: CodeBuildProvider,
    project: String,
}

impl fmt::Debug for CommandsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandsProvider").field("project", &self.project).finish_non_exhaustive()
    }
}

impl CommandsProvider {
    /// Runs commands as builds of `project`, started and followed by `builds`.
    pub fn new(builds: CodeBuildProvider, project: impl Into<String>) -> Self {
        Self { builds, project: project.into() }
    }
}

/// The buildspec (JSON, which CodeBuild reads as YAML) that runs `r`'s commands, exports its
/// output variables and keeps each output artifact's files: the first output is the build's
/// primary artifact, the others secondary artifacts named after themselves.
pub fn buildspec(r: &ActionRequest) -> String {
    let files = |name: &str| -> Vec<String> {
        r.output_artifact_files
            .iter()
            .find(|(artifact, _)| artifact == name)
            .map(|(_, files)| files.clone())
            .unwrap_or_default()
    };
    let mut spec = json!({
        "version": "0.2",
        "phases": {"build": {"commands": r.commands}},
    });
    if !r.output_variables.is_empty() {
        spec["env"] = json!({"exported-variables": r.output_variables});
    }
    if let Some((first, others)) = r.output_artifacts.split_first() {
        let mut artifacts = json!({"files": files(first)});
        if !others.is_empty() {
            let secondary: Map<String, Value> =
                others.iter().map(|name| (name.clone(), json!({"files": files(name)}))).collect();
            artifacts["secondary-artifacts"] = Value::Object(secondary);
        }
        spec["artifacts"] = artifacts;
    }
    spec.to_string()
}

/// The build's time-out: the action's time left, in the range CodeBuild takes.
pub(super) fn timeout_minutes(deadline: i64) -> i32 {
    let minutes = time_left(deadline).as_secs().div_ceil(60);
    i32::try_from(minutes.clamp(5, 2160)).unwrap_or(2160)
}

#[async_trait]
impl ActionProvider for CommandsProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        if action.commands.is_empty() {
            return Err("the Commands action needs at least one command".into());
        }
        for name in &action.output_artifacts {
            let listed =
                action.output_artifact_files.iter().any(|(a, f)| a == name && !f.is_empty());
            if !listed {
                return Err(format!("the output artifact {name} lists no files to keep"));
            }
        }
        Ok(())
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let r = &job.request;
        if r.commands.is_empty() {
            return finish(Err(Failure::configuration(
                "The Commands action needs at least one command.",
            )
            .into()));
        }
        let build = Start {
            project: &self.project,
            primary_source: None,
            environment: &r.environment_variables,
            buildspec: Some(buildspec(r)),
            timeout_minutes: Some(timeout_minutes(r.deadline)),
            remote: None,
        };
        finish(self.builds.start(job, build).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        self.builds.resume(job, external_id).await
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        self.builds.cancel(request, external_id).await
    }
}

/// Runs `Commands` rules as builds of one CodeBuild project, one build per run of the rule's
/// condition.
#[derive(Clone)]
pub struct CommandsRule(CommandsProvider);

impl fmt::Debug for CommandsRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CommandsRule").field(&self.0.project).finish()
    }
}

impl CommandsRule {
    /// Runs the rules' commands as builds of `project`, started and followed by `builds`.
    pub fn new(builds: CodeBuildProvider, project: impl Into<String>) -> Self {
        Self(CommandsProvider::new(builds, project))
    }
}

#[async_trait]
impl RuleProvider for CommandsRule {
    async fn check(&self, rule: &RulePlan) -> Result<(), String> {
        if rule.commands.is_empty() {
            return Err("a Commands rule needs at least one command".into());
        }
        Ok(())
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn evaluate(&self, check: &RuleCheck) -> Result<Verdict, ProviderError> {
        Ok(self.evaluate_held(check).await?.0)
    }

    async fn evaluate_held(
        &self,
        check: &RuleCheck,
    ) -> Result<(Verdict, Option<String>), ProviderError> {
        let job = Job {
            request: action_of(&check.request, &commands_type()),
            inputs: Vec::new(),
            work_dir: check.work_dir.clone(),
            log_path: check.log_path.clone(),
            in_place: check.in_place.clone(),
            input_places: Vec::new(),
        };
        let result = match &check.request.handle {
            None => self.0.run(&job).await?,
            Some(build) => self.0.resume(&job, build).await?,
        };
        Ok(match result {
            JobResult::Running { external_id, .. } => {
                (Verdict::Wait(format!("Build {external_id} is running")), Some(external_id))
            }
            JobResult::Succeeded { summary, .. } => {
                (Verdict::Pass(summary.unwrap_or_else(|| "The commands succeeded".into())), None)
            }
            JobResult::Failed { message, .. } => (Verdict::Fail(message), None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ActionRequest {
        let mut r: ActionRequest = serde_json::from_value(json!({
            "pipeline": "p", "pipeline_version": 1, "execution_id": "e", "stage": "Build",
            "action": "Cmd", "attempt": 1,
            "action_type": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "configuration": {}, "commands": [], "input_artifacts": [], "output_artifacts": [],
            "region": "us-east-1", "role_arn": null, "deadline": 0, "token": null,
            "output_artifact_files": [], "output_variables": [], "environment_variables": []
        }))
        .unwrap();
        r.commands = vec!["make test".into(), "echo \"done: $X\"".into()];
        r
    }

    #[test]
    fn the_buildspec_runs_the_commands_in_the_build_phase() {
        let spec: Value = serde_json::from_str(&buildspec(&request())).unwrap();
        assert_eq!(
            spec,
            json!({"version": "0.2",
                   "phases": {"build": {"commands": ["make test", "echo \"done: $X\""]}}})
        );
    }

    #[test]
    fn the_buildspec_exports_the_variables_and_keeps_each_outputs_files() {
        let mut r = request();
        r.output_variables = vec!["VERSION".into()];
        r.output_artifacts = vec!["Site".into(), "Report".into()];
        r.output_artifact_files = vec![
            ("Site".into(), vec!["dist/**/*".into()]),
            ("Report".into(), vec!["report.xml".into()]),
        ];
        let spec: Value = serde_json::from_str(&buildspec(&r)).unwrap();
        assert_eq!(spec["env"], json!({"exported-variables": ["VERSION"]}));
        assert_eq!(
            spec["artifacts"],
            json!({"files": ["dist/**/*"],
                   "secondary-artifacts": {"Report": {"files": ["report.xml"]}}})
        );
    }

    #[test]
    fn the_builds_time_out_is_the_actions_time_left_within_codebuilds_range() {
        let now = super::super::now_ms();
        assert_eq!(timeout_minutes(now + 55 * 60_000), 55);
        assert_eq!(timeout_minutes(now + 61_000), 5, "at least CodeBuild's 5 minutes");
        assert_eq!(timeout_minutes(now + 90 * 24 * 3_600_000), 2160, "at most its 36 hours");
    }
}
