//! `AWS/Build/CodeBuild` and `AWS/Test/CodeBuild`: starts a build of `ProjectName` in the
//! action's account and region, and finishes when the build ends.
//!
//! # Contract
//!
//! `run` calls `StartBuild` with `EnvironmentVariables` (CodePipeline's JSON array of `{name,
//! value, type}`) as overrides and answers `Running` with the build id at once: a build may
//! take hours, far past a Lambda invocation. The worker then calls `resume` when CodeBuild's
//! "Build State Change" event for that build arrives (or when its periodic check comes due);
//! `resume` reads the build with one `BatchGetBuilds`. Past the request's deadline a running
//! build is stopped (`StopBuild`) and the action times out; `cancel` stops the build of an
//! attempt that no longer counts. [`build_verdict`] decides what a build status means and, for a failure, quotes the
//! failed phase and CodeBuild's context for it; it is unit-tested for every failure status
//! since moto's CodeBuild always succeeds. A succeeded build's exported variables
//! (`env.exported-variables`) become the action's output variables.
//!
//! # Artifacts
//!
//! On AWS the worker hands the build the artifacts' places in the S3 artifact store
//! ([`Job::in_place`]) instead of files: the primary input (`PrimarySource`, else the first)
//! becomes the build's S3 source, the other inputs secondary sources, the outputs S3 artifacts
//! encrypted with the region's key (`encryptionKeyOverride`). The project's service role needs
//! read and write on the artifact bucket and use of that key. Without a store CodeBuild can
//! reach (one machine with `[aws]`), the project's own source is built and output artifacts are
//! refused.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::types::{
    ArtifactNamespace, ArtifactPackaging, ArtifactsType, Build, EnvironmentVariable,
    EnvironmentVariableType, ProjectArtifacts, ProjectSource, SourceAuth, SourceAuthType,
    SourceType,
};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde_json::Value;
use tracing::warn;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, finish, has_reference, optional, required, sdk_config, sdk_stop, time_left,
    url_encode,
};
use baton_app::ports::provider::{ActionProvider, InPlaceArtifacts, Job, JobResult, ProviderError};

/// A build as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildView {
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `STOPPED`, `TIMED_OUT`.
    pub status: String,
    /// In the order CodeBuild ran them.
    pub phases: Vec<PhaseView>,
}

/// One phase of a build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhaseView {
    /// `INSTALL`, `BUILD`...
    pub phase: String,
    /// `None` while the phase runs.
    pub status: Option<String>,
    /// CodeBuild's `statusCode: message` lines for the phase.
    pub contexts: Vec<String>,
}

/// What a build's status means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildVerdict {
    /// Still running: poll again.
    Running,
    #[allow(missing_docs)]
    Succeeded,
    /// The build failed; the message says how and where.
    Failed(String),
}

/// What a build status means, with the failed phase's context in a failure's message.
pub fn build_verdict(build: &BuildView) -> BuildVerdict {
    let how = match build.status.as_str() {
        "IN_PROGRESS" | "" => return BuildVerdict::Running,
        "SUCCEEDED" => return BuildVerdict::Succeeded,
        "FAILED" => "failed",
        "FAULT" => "failed with a CodeBuild fault",
        "STOPPED" => "was stopped",
        "TIMED_OUT" => "timed out",
        other => {
            return BuildVerdict::Failed(format!("The build ended in an unknown status {other}."));
        }
    };
    let failed_phase = build
        .phases
        .iter()
        .find(|p| p.status.as_deref().is_some_and(|s| s != "SUCCEEDED" && s != "IN_PROGRESS"));
    BuildVerdict::Failed(match failed_phase {
        Some(phase) if phase.contexts.is_empty() => format!(
            "The build {how}: phase {} {}.",
            phase.phase,
            phase.status.as_deref().unwrap_or_default()
        ),
        Some(phase) => format!(
            "The build {how}: phase {} {}: {}",
            phase.phase,
            phase.status.as_deref().unwrap_or_default(),
            phase.contexts.join("; ")
        ),
        None => format!("The build {how}."),
    })
}

fn view(build: &Build) -> BuildView {
    BuildView {
        status: build.build_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        phases: build
            .phases()
            .iter()
            .map(|p| PhaseView {
                phase: p.phase_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                status: p.phase_status().map(|s| s.as_str().to_owned()),
                contexts: p
                    .contexts()
                    .iter()
                    .filter_map(|c| {
                        let message = c.message().unwrap_or("").trim();
                        match c.status_code() {
                            Some(code) if !message.is_empty() => Some(format!("{code}: {message}")),
                            Some(code) => Some(code.to_owned()),
                            None if !message.is_empty() => Some(message.to_owned()),
                            None => None,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// `EnvironmentVariables`: a JSON array of `{"name", "value", "type"}`, type `PLAINTEXT` when
/// left out.
fn parse_environment(value: &str) -> Result<Vec<(String, String, String)>, String> {
    let parsed: Value = serde_json::from_str(value)
        .map_err(|e| format!("EnvironmentVariables is not valid JSON: {e}"))?;
    let Value::Array(items) = parsed else {
        return Err("EnvironmentVariables must be a JSON array".into());
    };
    items
        .iter()
        .map(|item| {
            let field = |key: &str| item.get(key).and_then(Value::as_str);
            let name = field("name").filter(|n| !n.is_empty()).ok_or_else(|| {
                "every EnvironmentVariables entry needs a \"name\" string".to_owned()
            })?;
            let value = field("value").ok_or_else(|| {
                format!("EnvironmentVariables entry {name} needs a \"value\" string")
            })?;
            let kind = field("type").unwrap_or("PLAINTEXT");
            if !["PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER"].contains(&kind) {
                return Err(format!(
                    "EnvironmentVariables entry {name}: type \"{kind}\" is not PLAINTEXT, \
                     PARAMETER_STORE or SECRETS_MANAGER"
                ));
            }
            Ok((name.to_owned(), value.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// What to build: the project, and what the action overrides in it.
pub(super) struct Start<'a> {
    pub(super) project: &'a str,
    /// The input artifact that is the build's source; the first when `None`.
    pub(super) primary_source: Option<&'a str>,
    /// `(name, value, type)`; CodeBuild resolves `PARAMETER_STORE` and `SECRETS_MANAGER`.
    pub(super) environment: &'a [(String, String, String)],
    pub(super) buildspec: Option<String>,
    pub(super) timeout_minutes: Option<i32>,
    /// A repository cloned through a connection, instead of an input artifact.
    pub(super) remote: Option<RemoteSource>,
}

/// A git repository a build clones with a CodeConnections connection's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RemoteSource {
    pub(super) kind: SourceType,
    /// The repository's clone URL.
    pub(super) location: String,
    pub(super) connection_arn: String,
    /// A commit id or a branch.
    pub(super) version: String,
    /// 0 for the whole history.
    pub(super) clone_depth: i32,
}

/// Runs CodeBuild builds.
#[derive(Clone)]
pub struct CodeBuildProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl fmt::Debug for CodeBuildProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeBuildProvider").finish_non_exhaustive()
    }
}

impl CodeBuildProvider {
    /// Starts builds with the action's role and region from `roles`.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn build(&self, job: &Job) -> Result<JobResult, Stop> {
        let config = &job.request.configuration;
        let environment = optional(config, "EnvironmentVariables")
            .map(parse_environment)
            .transpose()
            .map_err(Failure::configuration)?
            .unwrap_or_default();
        let build = Start {
            project: required(config, "ProjectName")?,
            primary_source: optional(config, "PrimarySource"),
            environment: &environment,
            buildspec: None,
            timeout_minutes: None,
            remote: None,
        };
        self.start(job, build).await
    }

    /// Starts a build of `build.project` on the attempt's artifacts, and answers `Running`.
    pub(super) async fn start(&self, job: &Job, build: Start<'_>) -> Result<JobResult, Stop> {
        let places = match &job.in_place {
            Some(places) => Some(build_places(places, build.primary_source)?),
            None if !job.request.output_artifacts.is_empty() => {
                return Err(Failure::configuration(OUTPUTS_REFUSED).into());
            }
            None => None,
        };
        let overrides = build
            .environment
            .iter()
            .map(|(name, value, kind)| {
                EnvironmentVariable::builder()
                    .name(name)
                    .value(value)
                    .r#type(EnvironmentVariableType::from(kind.as_str()))
                    .build()
                    .map_err(|e| Failure::configuration(format!("EnvironmentVariables: {e}.")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client::new(&sdk_config(&self.roles, &job.request).await?);
        let mut start = client
            .start_build()
            .project_name(build.project)
            .set_environment_variables_override(Some(overrides).filter(|o| !o.is_empty()))
            .set_buildspec_override(build.buildspec)
            .set_timeout_in_minutes_override(build.timeout_minutes);
        if let Some(places) = places {
            start = start
                .set_source_type_override(places.source.as_ref().map(|_| SourceType::S3))
                .set_source_location_override(places.source)
                .set_secondary_sources_override(Some(places.secondary_sources))
                .set_artifacts_override(places.artifacts)
                .set_secondary_artifacts_override(Some(places.secondary_artifacts))
                .encryption_key_override(places.kms_key_arn);
        }
        if let Some(remote) = build.remote {
            let auth = SourceAuth::builder()
                .r#type(SourceAuthType::Codeconnections)
                .resource(remote.connection_arn)
                .build()
                .map_err(|e| Failure::configuration(format!("The connection: {e}.")))?;
            start = start
                .source_type_override(remote.kind)
                .source_location_override(remote.location)
                .source_auth_override(auth)
                .source_version(remote.version)
                .git_clone_depth_override(remote.clone_depth);
        }
        let started = start.send().await.map_err(sdk_stop("StartBuild"))?;
        let id = started
            .build_value()
            .and_then(Build::id)
            .ok_or_else(|| Failure::job("StartBuild answered without a build id."))?
            .to_owned();
        let external_url = Some(console_url(&job.request.region, &id));
        Ok(JobResult::Running { external_id: id, external_url })
    }

    /// One look at build `id`: its verdict, or `Running`; past the deadline, stopped.
    pub(super) async fn look(&self, request: &ActionRequest, id: &str) -> Result<JobResult, Stop> {
        self.look_with(request, id, |build, url| {
            let variables: BTreeMap<String, String> = build
                .exported_environment_variables()
                .iter()
                .filter_map(|v| Some((v.name()?.to_owned(), v.value().unwrap_or("").to_owned())))
                .collect();
            Ok(JobResult::Succeeded {
                output_artifacts: Vec::new(),
                output_variables: variables,
                summary: Some(format!("Build {id} succeeded")),
                external_id: Some(id.to_owned()),
                external_url: Some(url),
            })
        })
        .await
    }

    /// One look at build `id`, as [`look`](Self::look), with `succeeded` saying what a
    /// succeeded build (and its console link) gives the action.
    pub(super) async fn look_with(
        &self,
        request: &ActionRequest,
        id: &str,
        succeeded: impl FnOnce(&Build, String) -> Result<JobResult, Stop>,
    ) -> Result<JobResult, Stop> {
        let client = Client::new(&sdk_config(&self.roles, request).await?);
        let builds =
            client.batch_get_builds().ids(id).send().await.map_err(sdk_stop("BatchGetBuilds"))?;
        let build = builds
            .builds()
            .first()
            .ok_or_else(|| Failure::job(format!("The build {id} is not found.")))?;
        let url = console_url(&request.region, id);
        match build_verdict(&view(build)) {
            BuildVerdict::Succeeded => succeeded(build, url),
            BuildVerdict::Failed(message) => Err(Failure::job(format!("{message} ({url})")).into()),
            BuildVerdict::Running if time_left(request.deadline).is_zero() => {
                // The build would go on (and be billed) with no one waiting for it.
                stop(&client, id).await;
                Err(Failure::timed_out(format!(
                    "The build {id} was stopped: the action's deadline passed."
                ))
                .into())
            }
            BuildVerdict::Running => {
                Ok(JobResult::Running { external_id: id.to_owned(), external_url: Some(url) })
            }
        }
    }
}

/// The running-job keys ([`RunningJob::key_for`](baton_app::ports::jobs::RunningJob::key_for))
/// the build a "CodeBuild Build State Change" event's `detail` is about may be waited on under:
/// one per provider that runs builds (CodeBuild actions, Commands, connection sources). Its
/// `build-id` is the build's ARN, `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`.
///
/// # Errors
/// A sentence saying what the detail lacks.
pub fn finished_build_keys(detail: &Value) -> Result<Vec<String>, String> {
    let arn = detail
        .get("build-id")
        .and_then(Value::as_str)
        .ok_or("the CodeBuild event has no build-id")?;
    let id = arn
        .split_once(":build/")
        .map(|(_, id)| id)
        .filter(|id| id.contains(':'))
        .ok_or_else(|| format!("the CodeBuild event's build-id {arn} is not a build ARN"))?;
    let key = |provider| baton_app::ports::jobs::RunningJob::key_for(provider, id);
    Ok(vec![key("CodeBuild"), key("Commands"), key("CodeStarSourceConnection")])
}

/// The build's page in the CodeBuild console, the action's external link.
fn console_url(region: &str, id: &str) -> String {
    let project = id.split_once(':').map_or(id, |(p, _)| p);
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/{}/?region={region}",
        url_encode(id)
    )
}

async fn stop(client: &Client, id: &str) {
    if let Err(e) = client.stop_build().id(id).send().await {
        warn!(build = id, error = %aws_sdk_codebuild::error::DisplayErrorContext(&e), "StopBuild failed");
    }
}

const OUTPUTS_REFUSED: &str = "A CodeBuild build writes its output artifacts to the S3 \
    artifact store, which this runtime does not use; remove the action's output artifacts or \
    run it on AWS.";

/// What a build is told of the attempt's artifacts, CodePipeline's way: the primary input is
/// the build's source, the other inputs secondary sources named after their artifacts (so
/// `CODEBUILD_SRC_DIR_<name>` finds them), the first output the build's artifacts and the
/// others secondary artifacts whose identifiers are the artifacts' names.
#[derive(Debug, Default, PartialEq)]
struct BuildPlaces {
    source: Option<String>,
    secondary_sources: Vec<ProjectSource>,
    artifacts: Option<ProjectArtifacts>,
    secondary_artifacts: Vec<ProjectArtifacts>,
    kms_key_arn: String,
}

fn build_places(places: &InPlaceArtifacts, primary: Option<&str>) -> Result<BuildPlaces, Failure> {
    let invalid = |e: aws_sdk_codebuild::error::BuildError| {
        Failure::configuration(format!("The build's artifacts cannot be described: {e}."))
    };
    let primary = match primary {
        Some(name) => Some(places.inputs.iter().find(|(n, _)| n == name).ok_or_else(|| {
            Failure::configuration(format!(
                "PrimarySource {name} is not one of the action's input artifacts."
            ))
        })?),
        None => places.inputs.first(),
    };
    let primary_name = primary.map(|(name, _)| name.as_str());
    let mut out = BuildPlaces {
        source: primary.map(|(_, at)| format!("{}/{}", at.bucket, at.key)),
        kms_key_arn: places.kms_key_arn.clone(),
        ..BuildPlaces::default()
    };
    for (name, location) in places.inputs.iter().filter(|(n, _)| Some(n.as_str()) != primary_name) {
        out.secondary_sources.push(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location(format!("{}/{}", location.bucket, location.key))
                .source_identifier(name)
                .build()
                .map_err(invalid)?,
        );
    }
    for (i, (name, location)) in places.outputs.iter().enumerate() {
        let (path, file) = location.key.rsplit_once('/').unwrap_or(("", location.key.as_str()));
        let artifacts = ProjectArtifacts::builder()
            .r#type(ArtifactsType::S3)
            .location(&location.bucket)
            .path(path)
            .name(file)
            .namespace_type(ArtifactNamespace::None)
            .packaging(ArtifactPackaging::Zip)
            .encryption_disabled(false)
            .override_artifact_name(false);
        if i == 0 {
            out.artifacts = Some(artifacts.build().map_err(invalid)?);
        } else {
            out.secondary_artifacts
                .push(artifacts.artifact_identifier(name).build().map_err(invalid)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl ActionProvider for CodeBuildProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        if config.get("ProjectName").is_none_or(|v| v.trim().is_empty()) {
            return Err("the action configuration needs ProjectName".into());
        }
        if let Some(env) = config.get("EnvironmentVariables").filter(|v| !has_reference(v)) {
            parse_environment(env)?;
        }
        if config.get("BatchEnabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Err("batch builds (BatchEnabled) are not supported by this provider".into());
        }
        if let Some(primary) = config.get("PrimarySource").filter(|p| !has_reference(p))
            && !action.input_artifacts.iter().any(|a| a == primary)
        {
            return Err(format!(
                "PrimarySource {primary} is not one of the action's input artifacts"
            ));
        }
        Ok(())
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.build(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.look(&job.request, external_id).await)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        match sdk_config(&self.roles, request).await {
            Ok(config) => stop(&Client::new(&config), external_id).await,
            Err(e) => {
                warn!(build = external_id, error = ?e, "cannot reach CodeBuild to stop a build")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use baton_core::engine::ArtifactLocation;

    use super::*;

    fn build(status: &str, phases: &[(&str, Option<&str>, &[&str])]) -> BuildView {
        BuildView {
            status: status.into(),
            phases: phases
                .iter()
                .map(|(phase, status, contexts)| PhaseView {
                    phase: (*phase).into(),
                    status: status.map(str::to_owned),
                    contexts: contexts.iter().map(|c| (*c).to_owned()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_running_build_is_polled_again_and_a_succeeded_one_succeeds() {
        assert_eq!(build_verdict(&build("IN_PROGRESS", &[])), BuildVerdict::Running);
        assert_eq!(
            build_verdict(&build("SUCCEEDED", &[("BUILD", Some("SUCCEEDED"), &[])])),
            BuildVerdict::Succeeded
        );
    }

    #[test]
    fn every_failure_status_fails_with_the_failed_phase_and_its_context() {
        for (status, how) in [
            ("FAILED", "failed"),
            ("FAULT", "CodeBuild fault"),
            ("STOPPED", "was stopped"),
            ("TIMED_OUT", "timed out"),
        ] {
            let b = build(
                status,
                &[
                    ("INSTALL", Some("SUCCEEDED"), &[]),
                    (
                        "BUILD",
                        Some(if status == "STOPPED" { "STOPPED" } else { "FAILED" }),
                        &["COMMAND_EXECUTION_ERROR: Error while executing command: make"],
                    ),
                    ("POST_BUILD", None, &[]),
                ],
            );
            let BuildVerdict::Failed(message) = build_verdict(&b) else {
                panic!("{status} did not fail");
            };
            assert!(message.contains(how), "{message}");
            assert!(message.contains("phase BUILD"), "{message}");
            assert!(message.contains("COMMAND_EXECUTION_ERROR"), "{message}");
        }
    }

    #[test]
    fn a_failure_without_phase_details_still_says_how_it_ended() {
        assert_eq!(
            build_verdict(&build("FAULT", &[])),
            BuildVerdict::Failed("The build failed with a CodeBuild fault.".into())
        );
        assert!(matches!(build_verdict(&build("EXPLODED", &[])), BuildVerdict::Failed(_)));
    }

    fn places(inputs: &[&str], outputs: &[&str]) -> InPlaceArtifacts {
        let at = |name: &str| ArtifactLocation {
            bucket: "artifacts-east".into(),
            key: format!("app/e-1/{name}/1.zip"),
        };
        InPlaceArtifacts {
            inputs: inputs.iter().map(|n| ((*n).to_owned(), at(n))).collect(),
            outputs: outputs.iter().map(|n| ((*n).to_owned(), at(n))).collect(),
            kms_key_arn: "arn:aws:kms:us-east-1:111111111111:key/k".into(),
        }
    }

    #[test]
    fn the_first_input_is_the_source_and_the_others_secondary_sources_named_after_them() {
        let built = build_places(&places(&["Src", "Tools"], &["Site", "Docs"]), None).unwrap();
        assert_eq!(built.source.as_deref(), Some("artifacts-east/app/e-1/Src/1.zip"));
        assert_eq!(built.secondary_sources.len(), 1);
        assert_eq!(built.secondary_sources[0].source_identifier(), Some("Tools"));
        assert_eq!(
            built.secondary_sources[0].location(),
            Some("artifacts-east/app/e-1/Tools/1.zip")
        );
        let artifacts = built.artifacts.expect("the first output is the build's artifacts");
        assert_eq!(artifacts.location(), Some("artifacts-east"));
        assert_eq!(artifacts.path(), Some("app/e-1/Site"));
        assert_eq!(artifacts.name(), Some("1.zip"));
        assert_eq!(artifacts.packaging(), Some(&ArtifactPackaging::Zip));
        assert_eq!(artifacts.namespace_type(), Some(&ArtifactNamespace::None));
        assert_eq!(built.secondary_artifacts.len(), 1);
        assert_eq!(built.secondary_artifacts[0].artifact_identifier(), Some("Docs"));
        assert_eq!(built.kms_key_arn, "arn:aws:kms:us-east-1:111111111111:key/k");
    }

    #[test]
    fn primary_source_picks_the_source_and_must_name_an_input() {
        let built = build_places(&places(&["Src", "Tools"], &[]), Some("Tools")).unwrap();
        assert_eq!(built.source.as_deref(), Some("artifacts-east/app/e-1/Tools/1.zip"));
        assert_eq!(built.secondary_sources[0].source_identifier(), Some("Src"));
        assert!(built.artifacts.is_none());
        let refused = build_places(&places(&["Src"], &[]), Some("Nope")).unwrap_err();
        assert_eq!(refused.code, "ConfigurationError");
        assert!(refused.message.contains("PrimarySource Nope"), "{}", refused.message);
        // No inputs: the project's own source is built.
        assert_eq!(build_places(&places(&[], &[]), None).unwrap().source, None);
    }

    #[test]
    fn a_build_state_change_names_the_running_job_of_its_build() {
        let detail = serde_json::json!({"build-status": "SUCCEEDED", "project-name": "app",
            "build-id": "arn:aws:codebuild:us-east-1:111111111111:build/app:8c1e-42"});
        let keys = [
            "CodeBuild#app:8c1e-42",
            "Commands#app:8c1e-42",
            "CodeStarSourceConnection#app:8c1e-42",
        ];
        assert_eq!(finished_build_keys(&detail), Ok(keys.map(str::to_owned).to_vec()));
        for bad in [
            serde_json::json!({"build-status": "SUCCEEDED"}),
            serde_json::json!({"build-id": "arn:aws:codebuild:us-east-1:1:project/app"}),
            serde_json::json!({"build-id": "arn:aws:codebuild:us-east-1:1:build/no-uuid"}),
        ] {
            assert!(finished_build_keys(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_variables_follow_codepipelines_format() {
        let parsed = parse_environment(
            r#"[{"name":"STAGE","value":"prod"},{"name":"TOKEN","value":"/p/t","type":"PARAMETER_STORE"}]"#,
        );
        assert_eq!(
            parsed,
            Ok(vec![
                ("STAGE".into(), "prod".into(), "PLAINTEXT".into()),
                ("TOKEN".into(), "/p/t".into(), "PARAMETER_STORE".into()),
            ])
        );
        assert!(parse_environment(r#"[{"name":"X","value":"1","type":"SECRET"}]"#).is_err());
        assert!(parse_environment(r#"{"name":"X"}"#).is_err());
        assert!(parse_environment(r#"[{"value":"1"}]"#).is_err());
    }
}
