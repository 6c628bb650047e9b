//! `AWS/Compute/Commands` (V2 pipelines): runs the action's `commands` in its unpacked first
//! input, as CodePipeline does on CodeBuild compute, through the same shared-shell runner as
//! the CodeBuild provider. Its `outputVariables` become output variables and each output
//! artifact is zipped from that artifact's `files` patterns.

use std::sync::Arc;

use async_trait::async_trait;
use baton_core::plan::ActionPlan;

use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_app::ports::secrets::Secrets;

use super::Failure;
use super::buildspec::Phase;
use super::glob::Selection;
use super::shell::{BuildEnd, Runner, RunnerConfig};
use super::workspace::{
    ResolvedEnv, Workspace, check_env_pair, check_env_source, check_identifier, mask,
};

/// Runs the `Commands` action locally.
#[derive(Debug, Clone, Default)]
pub struct CommandsProvider {
    secrets: Option<Arc<dyn Secrets>>,
}

impl CommandsProvider {
    /// The provider, with no secret store: `PARAMETER_STORE` and `SECRETS_MANAGER` variables
    /// fail the action, saying so.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves `PARAMETER_STORE` and `SECRETS_MANAGER` variables from `secrets`.
    pub fn with_secrets(secrets: Option<Arc<dyn Secrets>>) -> Self {
        Self { secrets }
    }

    async fn execute(&self, job: &Job) -> Result<JobResult, Failure> {
        let request = &job.request;
        if request.commands.is_empty() {
            return Err(Failure::configuration("The Commands action needs at least one command."));
        }
        for name in &request.output_variables {
            check_identifier(name)?;
        }
        let ws = Workspace::prepare(job, None).await?;
        let mut env = vec![
            ("AWS_REGION".to_string(), request.region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), request.region.clone()),
        ];
        let mut resolved = ResolvedEnv::default();
        for (name, value, kind) in &request.environment_variables {
            resolved.add(self.secrets.as_ref(), name, value, kind).await?;
        }
        env.extend(resolved.pairs);
        env.extend(ws.source_env(&request.input_revisions));
        env.push(("CODEBUILD_INITIATOR".to_string(), format!("codepipeline/{}", request.pipeline)));
        for (name, value) in &env {
            check_env_pair(name, value)?;
        }
        let mut runner = Runner::start(RunnerConfig {
            shell: Default::default(),
            dir: ws.src.clone(),
            env,
            scratch: ws.scratch.clone(),
            exported: request.output_variables.clone(),
            log: job.log_path.clone(),
            deadline: request.deadline,
            masked: resolved.masked.clone(),
        })
        .map_err(|e| Failure::job(format!("The commands could not start: {e}.")))?;
        let log_err =
            |e: std::io::Error| Failure::job(format!("The action log could not be written: {e}."));
        let phase = Phase { commands: request.commands.clone(), ..Phase::default() };
        let end = runner.run_phases(&[("BUILD", &phase)]).await.map_err(log_err)?;
        let variables = runner.exported_values().map_err(log_err)?;
        let variables =
            variables.into_iter().map(|(k, v)| (k, mask(&v, &resolved.masked))).collect();
        // Dropping the runner kills anything the commands left in the background.
        drop(runner);
        match end {
            BuildEnd::Succeeded => {}
            BuildEnd::Failed(message) => return Err(Failure::job(message)),
            BuildEnd::TimedOut => {
                return Err(Failure::timed_out(
                    "The commands timed out: the action's deadline passed and every process they started was stopped.",
                ));
            }
        }
        Ok(JobResult::Succeeded {
            output_artifacts: outputs(&ws, job).await?,
            output_variables: variables,
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

/// Zips each output artifact from its `files` patterns, relative to the primary source.
async fn outputs(ws: &Workspace, job: &Job) -> Result<Vec<LocalArtifact>, Failure> {
    let mut packed = Vec::new();
    for name in &job.request.output_artifacts {
        let files = job
            .request
            .output_artifact_files
            .iter()
            .find(|(artifact, _)| artifact == name)
            .map(|(_, files)| files.clone())
            .filter(|files| !files.is_empty())
            .ok_or_else(|| {
                Failure::configuration(format!(
                    "The output artifact {name} lists no files to keep."
                ))
            })?;
        packed.push(ws.package(name, Selection { files, ..Selection::default() }).await?);
    }
    Ok(packed)
}

#[async_trait]
impl ActionProvider for CommandsProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        action
            .environment_variables
            .iter()
            .try_for_each(|(name, _, kind)| check_env_source(name, kind, self.secrets.is_some()))
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.execute(job).await.unwrap_or_else(JobResult::from))
    }
}
