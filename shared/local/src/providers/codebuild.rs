//! `AWS/Build/CodeBuild` and `AWS/Test/CodeBuild`: runs the primary source's buildspec on this
//! machine, with CodeBuild's environment variables, phase transitions, log lines, exported
//! variables and artifacts, so a pipeline's build behaves as it would in CodeBuild.
//!
//! The build runs directly on the host (no container image): `bash`, in a fresh work folder,
//! with a clean environment. Parameter Store and Secrets Manager values come from the home's
//! secret store (`baton secrets put`) and are masked in the build's log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::plan::ActionPlan;
use serde::Deserialize;

use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_app::ports::secrets::Secrets;

use super::buildspec::{self, Artifacts, Buildspec, PHASE_NAMES};
use super::shell::{BuildEnd, Runner, RunnerConfig};
use super::workspace::{
    ResolvedEnv, Workspace, check_env_pair, check_env_source, check_identifier, mask,
};
use super::{Failure, has_reference, required};

/// Runs CodeBuild projects locally; a project is known only by the buildspec it uses.
#[derive(Debug, Clone, Default)]
pub struct CodeBuildProvider {
    projects: HashMap<String, PathBuf>,
    secrets: Option<Arc<dyn Secrets>>,
    /// Where each project's builds are counted (`CODEBUILD_BUILD_NUMBER`).
    numbers: Option<PathBuf>,
}

impl CodeBuildProvider {
    /// `projects` maps a `ProjectName` to its buildspec file (absolute, or relative to the
    /// primary source like CodeBuild's buildspec override); any other project uses
    /// `buildspec.yml` at the root of the primary source.
    pub fn new(projects: HashMap<String, PathBuf>) -> Self {
        Self { projects, secrets: None, numbers: None }
    }

    /// Resolves `PARAMETER_STORE` and `SECRETS_MANAGER` variables (the action's, and a
    /// buildspec's `env/parameter-store` and `env/secrets-manager`) from `secrets`.
    pub fn with_secrets(self, secrets: Option<Arc<dyn Secrets>>) -> Self {
        Self { secrets, ..self }
    }

    /// Counts each project's builds under `dir`, for `CODEBUILD_BUILD_NUMBER`.
    pub fn with_build_numbers(self, dir: PathBuf) -> Self {
        Self { numbers: Some(dir), ..self }
    }

    /// The project's next build number: 1, 2, ... per project, over every build this home ran,
    /// drawn once each even by builds running at the same time (a file created per number).
    fn next_number(&self, project: &str) -> Result<u64, Failure> {
        let Some(root) = &self.numbers else { return Ok(1) };
        let dir = root.join(project.replace(['/', '\\'], "_"));
        let unavailable =
            |e: std::io::Error| Failure::job(format!("The build number cannot be drawn: {e}."));
        std::fs::create_dir_all(&dir).map_err(unavailable)?;
        let taken = std::fs::read_dir(&dir).map_err(unavailable)?.count() as u64;
        for n in taken + 1.. {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(n.to_string()))
            {
                Ok(_) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        unreachable!("the numbers do not run out")
    }

    async fn build(&self, job: &Job) -> Result<JobResult, Failure> {
        let request = &job.request;
        let config = &request.configuration;
        let project = required(config, "ProjectName")?;
        let overrides =
            parse_env_json(config.get("EnvironmentVariables").map_or("", String::as_str))
                .map_err(Failure::configuration)?;
        let primary = config.get("PrimarySource").map(|s| s.trim()).filter(|s| !s.is_empty());
        let ws = Workspace::prepare(job, primary).await?;
        let spec_path = self.buildspec_path(project, &ws.src);
        let spec = read_buildspec(&spec_path).await?;
        for name in &spec.exported {
            check_identifier(name)?;
        }
        // One id per build, as CodeBuild's: two actions of one execution may use one project.
        let attempt = baton_app::ports::action_execution_id(
            &request.execution_id,
            &request.stage,
            &request.action,
            request.attempt,
        );
        let build_id = format!("{project}:{attempt}");
        let mut env = vec![
            ("AWS_REGION".to_string(), request.region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), request.region.clone()),
        ];
        // CodeBuild's precedence: the action's variables over the buildspec's, secrets
        // resolved where the build runs and masked in its log.
        let mut resolved = ResolvedEnv::default();
        for (name, value) in &spec.variables {
            resolved.add(None, name, value, "PLAINTEXT").await?;
        }
        for (name, kind, reference) in &spec.secrets {
            resolved.add(self.secrets.as_ref(), name, reference, kind.type_name()).await?;
        }
        for v in &overrides {
            let kind = v.kind.as_deref().unwrap_or("");
            resolved.add(self.secrets.as_ref(), &v.name, &v.value, kind).await?;
        }
        let masked = resolved.masked.clone();
        env.extend(resolved.pairs);
        env.extend(ws.source_env(&request.input_revisions));
        // CodeBuild's documented variables that mean something on one machine.
        let account = Some(request.announce.account.as_str()).filter(|a| !a.is_empty());
        let arn = format!(
            "arn:aws:codebuild:{}:{}:build/{build_id}",
            request.region,
            account.unwrap_or("000000000000")
        );
        let primary =
            request.input_artifacts.iter().find(|a| Some(a.name.as_str()) == ws.primary());
        if let Some(input) = primary {
            let object = format!("arn:aws:s3:::{}/{}", input.location.bucket, input.location.key);
            env.push(("CODEBUILD_SOURCE_VERSION".to_string(), object));
        }
        env.push(("CODEBUILD_BUILD_ID".to_string(), build_id.clone()));
        env.push(("CODEBUILD_BUILD_ARN".to_string(), arn));
        env.push(("CODEBUILD_BUILD_NUMBER".to_string(), self.next_number(project)?.to_string()));
        env.push(("CODEBUILD_INITIATOR".to_string(), format!("codepipeline/{}", request.pipeline)));
        env.push(("CODEBUILD_START_TIME".to_string(), now_millis().to_string()));
        env.push(("CODEBUILD_LOG_PATH".to_string(), job.log_path.to_string_lossy().into_owned()));
        for (name, value) in &env {
            check_env_pair(name, value)?;
        }
        let mut runner = Runner::start(RunnerConfig {
            shell: spec.shell,
            dir: ws.src.clone(),
            env,
            scratch: ws.scratch.clone(),
            exported: spec.exported.clone(),
            log: job.log_path.clone(),
            deadline: request.deadline,
            masked: masked.clone(),
        })
        .map_err(|e| Failure::job(format!("The build could not start: {e}.")))?;
        let log_err =
            |e: std::io::Error| Failure::job(format!("The build log could not be written: {e}."));
        log_download_source(&mut runner, &ws, &spec_path).map_err(log_err)?;
        let phases: Vec<(&str, &buildspec::Phase)> =
            PHASE_NAMES.iter().copied().zip(spec.phases.iter()).collect();
        let end = runner.run_phases(&phases).await.map_err(log_err)?;
        let exported = runner.exported_values().map_err(log_err)?;
        let exported = exported.into_iter().map(|(k, v)| (k, mask(&v, &masked))).collect();
        match end {
            BuildEnd::Succeeded => {}
            BuildEnd::Failed(message) => return Err(Failure::job(message)),
            BuildEnd::TimedOut => {
                return Err(Failure::timed_out(
                    "Build timed out: the action's deadline passed and every process of the build was stopped.",
                ));
            }
        }
        runner.log("Entering phase UPLOAD_ARTIFACTS").map_err(log_err)?;
        let outputs =
            package_outputs(&ws, &request.output_artifacts, spec.artifacts.as_ref()).await;
        let state = if outputs.is_ok() { "SUCCEEDED" } else { "FAILED" };
        runner.log(&format!("Phase complete: UPLOAD_ARTIFACTS State: {state}")).map_err(log_err)?;
        // Dropping the runner kills anything the build left in the background.
        drop(runner);
        Ok(JobResult::Succeeded {
            output_artifacts: outputs?,
            output_variables: exported,
            summary: None,
            external_id: Some(build_id),
            external_url: None,
        })
    }

    /// The project's buildspec file, else `buildspec.yml` in the primary source.
    fn buildspec_path(&self, project: &str, src: &Path) -> PathBuf {
        match self.projects.get(project) {
            Some(path) if path.is_absolute() => path.clone(),
            Some(path) => src.join(path),
            None => src.join("buildspec.yml"),
        }
    }
}

#[async_trait]
impl ActionProvider for CodeBuildProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let Some(raw) = action.configuration.get("EnvironmentVariables") else {
            return Ok(());
        };
        match parse_env_json(raw) {
            Ok(vars) => vars.iter().try_for_each(|v| {
                check_env_source(&v.name, v.kind.as_deref().unwrap_or(""), self.secrets.is_some())
            }),
            // A `#{...}` reference may stand for part of the JSON; judge it once resolved.
            Err(_) if has_reference(raw) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.build(job).await.unwrap_or_else(JobResult::from))
    }
}

/// One entry of the action's `EnvironmentVariables` JSON.
#[derive(Debug, Deserialize)]
struct EnvVar {
    name: String,
    #[serde(default)]
    value: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn parse_env_json(raw: &str) -> Result<Vec<EnvVar>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(raw).map_err(|e| {
        format!("EnvironmentVariables must be a JSON array of {{name, value, type}} objects: {e}")
    })
}

async fn read_buildspec(path: &Path) -> Result<Buildspec, Failure> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Failure::job(format!(
            "YAML_FILE_ERROR: the buildspec {} cannot be read: {e}",
            path.display()
        ))
    })?;
    buildspec::parse(&text)
        .map_err(|e| Failure::job(format!("YAML_FILE_ERROR: {e} ({})", path.display())))
}

/// The lines CodeBuild logs while it fetches sources, so logs read the same.
fn log_download_source(runner: &mut Runner, ws: &Workspace, spec: &Path) -> std::io::Result<()> {
    runner.log("Running on Baton's local CodeBuild (the host, no container)")?;
    runner.log("Phase is DOWNLOAD_SOURCE")?;
    runner.log(&format!("CODEBUILD_SRC_DIR={}", ws.src.display()))?;
    runner.log(&format!("YAML location is {}", spec.display()))?;
    runner.log("Processing environment variables")?;
    runner.log(&format!("Moving to directory {}", ws.src.display()))?;
    runner.log("Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED")?;
    runner.log("Phase context status code:  Message: ")
}

/// The action's output artifacts: each name uses the `secondary-artifacts` entry with that
/// identifier, and the first falls back to the primary `artifacts`.
async fn package_outputs(
    ws: &Workspace,
    outputs: &[String],
    artifacts: Option<&Artifacts>,
) -> Result<Vec<LocalArtifact>, Failure> {
    if outputs.is_empty() {
        return Ok(Vec::new());
    }
    let Some(artifacts) = artifacts else {
        return Err(Failure::job(format!(
            "The action declares output artifact {}, but the buildspec has no artifacts section.",
            outputs.join(", ")
        )));
    };
    let mut packed = Vec::with_capacity(outputs.len());
    for (i, name) in outputs.iter().enumerate() {
        let selection = match (artifacts.secondary.get(name), i) {
            (Some(s), _) => s.clone(),
            (None, 0) => artifacts.primary.clone(),
            (None, _) => {
                return Err(Failure::job(format!(
                    "The buildspec has no secondary-artifacts entry named {name} \
                     for the action's output artifact {name}."
                )));
            }
        };
        packed.push(ws.package(name, selection).await?);
    }
    Ok(packed)
}

fn now_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}
