//! `AWS/Deploy/AppConfig`: the file `InputArtifactConfigurationPath` of the input artifact
//! deployed to an AppConfig environment with a deployment strategy.
//!
//! # Contract
//!
//! CodePipeline's own profiles point at the pipeline (`codepipeline://<pipeline>`), and AppConfig
//! then reads the configuration from CodePipeline itself, which Baton is not. So the file is
//! written as a new version of the profile in AppConfig's hosted store
//! (`CreateHostedConfigurationVersion`, content type from its extension), and that version is
//! deployed (`StartDeployment`, with `DeploymentStrategy`, AppConfig's `AppConfig.AllAtOnce`
//! when none is given). A profile stored anywhere else is refused, saying to use a hosted one.
//! The deployment is followed to `COMPLETE` (after its bake time); `ROLLED_BACK` or
//! `REVERTED` fails the action with AppConfig's event log; one still going at the time-out, or
//! whose attempt no longer counts, is stopped. Everything AppConfig is asked goes through
//! [`AppConfigApi`], so the parts moto lacks (environments, deployments) are tested with a fake.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_appconfig::Client;
use aws_sdk_appconfig::primitives::Blob;
use aws_sdk_appconfig::types::DeploymentState;
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;

use super::credentials::RoleCredentials;
use super::{
    Apis, Failure, Stop, blocking, finish, now_ms, optional, read_zip_entry, required, sdk_stop,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// AppConfig's limit on a hosted configuration.
const MAX_HOSTED: u64 = 2 * 1024 * 1024;
/// The strategy used when the action names none: everything at once, no bake.
const DEFAULT_STRATEGY: &str = "AppConfig.AllAtOnce";

/// A deployment as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployment {
    /// `DEPLOYING`, `BAKING`, `COMPLETE`, `ROLLING_BACK`, `ROLLED_BACK`, `REVERTED`...
    pub state: String,
    /// AppConfig's event log, newest first, as it gives it.
    pub events: Vec<String>,
}

/// The ids a deployment is made of.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    #[allow(missing_docs)]
    pub application: &'a str,
    #[allow(missing_docs)]
    pub environment: &'a str,
    #[allow(missing_docs)]
    pub profile: &'a str,
}

/// What the action asks AppConfig.
#[async_trait]
pub trait AppConfigApi: Send + Sync {
    /// Where the profile keeps its configurations (`hosted`, `codepipeline://…`, `s3://…`).
    async fn profile_location(&self, t: Target<'_>) -> Result<String, Stop>;
    /// Writes `content` as the profile's next hosted version; returns its number.
    async fn create_hosted_version(
        &self,
        t: Target<'_>,
        content: Vec<u8>,
        content_type: &str,
    ) -> Result<String, Stop>;
    /// Starts deploying `version` with `strategy`; returns the deployment's number.
    async fn start_deployment(
        &self,
        t: Target<'_>,
        strategy: &str,
        version: &str,
        description: &str,
    ) -> Result<i32, Stop>;
    /// The deployment `number`.
    async fn deployment(&self, t: Target<'_>, number: i32) -> Result<Deployment, Stop>;
    /// Stops the deployment `number` (best effort).
    async fn stop_deployment(&self, t: Target<'_>, number: i32);
}

/// [`AppConfigApi`] through the SDK.
pub struct SdkAppConfig {
    client: Client,
}

impl SdkAppConfig {
    #[allow(missing_docs)]
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl AppConfigApi for SdkAppConfig {
    async fn profile_location(&self, t: Target<'_>) -> Result<String, Stop> {
        let profile = self
            .client
            .get_configuration_profile()
            .application_id(t.application)
            .configuration_profile_id(t.profile)
            .send()
            .await
            .map_err(sdk_stop("GetConfigurationProfile"))?;
        Ok(profile.location_uri().unwrap_or_default().to_owned())
    }

    async fn create_hosted_version(
        &self,
        t: Target<'_>,
        content: Vec<u8>,
        content_type: &str,
    ) -> Result<String, Stop> {
        let created = self
            .client
            .create_hosted_configuration_version()
            .application_id(t.application)
            .configuration_profile_id(t.profile)
            .content(Blob::new(content))
            .content_type(content_type)
            .send()
            .await
            .map_err(sdk_stop("CreateHostedConfigurationVersion"))?;
        Ok(created.version_number().to_string())
    }

    async fn start_deployment(
        &self,
        t: Target<'_>,
        strategy: &str,
        version: &str,
        description: &str,
    ) -> Result<i32, Stop> {
        let started = self
            .client
            .start_deployment()
            .application_id(t.application)
            .environment_id(t.environment)
            .configuration_profile_id(t.profile)
            .deployment_strategy_id(strategy)
            .configuration_version(version)
            .description(description)
            .send()
            .await
            .map_err(sdk_stop("StartDeployment"))?;
        Ok(started.deployment_number())
    }

    async fn deployment(&self, t: Target<'_>, number: i32) -> Result<Deployment, Stop> {
        let got = self
            .client
            .get_deployment()
            .application_id(t.application)
            .environment_id(t.environment)
            .deployment_number(number)
            .send()
            .await
            .map_err(sdk_stop("GetDeployment"))?;
        Ok(Deployment {
            state: got.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            events: got
                .event_log()
                .iter()
                .filter_map(|e| e.description().map(str::to_owned))
                .collect(),
        })
    }

    async fn stop_deployment(&self, t: Target<'_>, number: i32) {
        let stopped = self
            .client
            .stop_deployment()
            .application_id(t.application)
            .environment_id(t.environment)
            .deployment_number(number)
            .send()
            .await;
        if let Err(e) = stopped {
            tracing::warn!(deployment = number, error = %aws_sdk_appconfig::error::DisplayErrorContext(&e), "cannot stop an AppConfig deployment");
        }
    }
}

/// What a deployment's state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    #[allow(missing_docs)]
    Going,
    #[allow(missing_docs)]
    Complete,
    /// How it ended, with AppConfig's newest event.
    Failed(String),
}

/// Judges a deployment by its state.
pub fn judge(d: &Deployment) -> Judgement {
    let why = d.events.first().map(|e| format!(": {e}")).unwrap_or_default();
    match DeploymentState::from(d.state.as_str()) {
        DeploymentState::Complete => Judgement::Complete,
        DeploymentState::RolledBack => Judgement::Failed(format!("was rolled back{why}")),
        DeploymentState::Reverted => Judgement::Failed(format!("was reverted{why}")),
        _ => Judgement::Going,
    }
}

/// The content type AppConfig is told, from the file's extension.
pub fn content_type(path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        "application/json"
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        "application/x-yaml"
    } else {
        "text/plain"
    }
}

/// Deploys configurations with AppConfig.
pub struct AppConfigProvider {
    apis: Apis<dyn AppConfigApi>,
}

impl std::fmt::Debug for AppConfigProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfigProvider").finish_non_exhaustive()
    }
}

fn target(r: &ActionRequest) -> Result<Target<'_>, Failure> {
    Ok(Target {
        application: required(&r.configuration, "Application")?,
        environment: required(&r.configuration, "Environment")?,
        profile: required(&r.configuration, "ConfigurationProfile")?,
    })
}

impl AppConfigProvider {
    /// Calls AppConfig with the action's role and region.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { apis: Apis::Sdk(roles) }
    }

    /// Sends every call to `api` (a fake, in tests).
    pub fn with_api(api: Arc<dyn AppConfigApi>) -> Self {
        Self { apis: Apis::Fixed(api) }
    }

    async fn api(&self, request: &ActionRequest) -> Result<Arc<dyn AppConfigApi>, Stop> {
        self.apis.for_request(request, |c| Arc::new(SdkAppConfig::new(Client::new(c)))).await
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let t = target(r)?;
        let path = required(&r.configuration, "InputArtifactConfigurationPath")?.to_owned();
        let Some(input) = job.inputs.first() else {
            return Err(Failure::configuration(
                "The AppConfig action needs an input artifact holding the configuration.",
            )
            .into());
        };
        let api = self.api(r).await?;
        let location = api.profile_location(t).await?;
        if location != "hosted" {
            return Err(Failure::configuration(format!(
                "The configuration profile {} keeps its configurations at {location}; Baton writes each one as a version in AppConfig's hosted store, so use a profile whose location is \"hosted\".",
                t.profile
            ))
            .into());
        }
        let (zip, entry) = (input.clone(), path.clone());
        let content = blocking(move || read_zip_entry(&zip, &entry, MAX_HOSTED)).await?;
        let version = api.create_hosted_version(t, content, content_type(&path)).await?;
        let strategy = optional(&r.configuration, "DeploymentStrategy").unwrap_or(DEFAULT_STRATEGY);
        let description =
            format!("Pipeline {} execution {}, action {}", r.pipeline, r.execution_id, r.action);
        let number = api.start_deployment(t, strategy, &version, &description).await?;
        Ok(running(r, number))
    }

    async fn follow(&self, job: &Job, number: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let t = target(r)?;
        let number: i32 = number
            .parse()
            .map_err(|_| Failure::job(format!("The deployment number {number} is unreadable.")))?;
        let api = self.api(r).await?;
        let deployment = api.deployment(t, number).await?;
        match judge(&deployment) {
            Judgement::Complete => Ok(JobResult::Succeeded {
                output_artifacts: Vec::new(),
                output_variables: Default::default(),
                summary: Some(format!("Deployment {number} to {} is complete", t.environment)),
                external_id: Some(number.to_string()),
                external_url: Some(console_url(&r.region, t, number)),
            }),
            Judgement::Failed(why) => {
                Err(Failure::job(format!("Deployment {number} to {} {why}", t.environment)).into())
            }
            Judgement::Going if now_ms() < r.deadline => Ok(running(r, number)),
            Judgement::Going => {
                api.stop_deployment(t, number).await;
                Err(Failure::timed_out(format!(
                    "Deployment {number} did not end before the action's time-out; it was stopped."
                ))
                .into())
            }
        }
    }
}

fn console_url(region: &str, t: Target<'_>, number: i32) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/systems-manager/appconfig/applications/{}/environments/{}/deployments/{number}?region={region}",
        super::url_encode(t.application),
        super::url_encode(t.environment)
    )
}

fn running(r: &ActionRequest, number: i32) -> JobResult {
    JobResult::Running {
        external_id: number.to_string(),
        external_url: target(r).ok().map(|t| console_url(&r.region, t, number)),
    }
}

#[async_trait]
impl ActionProvider for AppConfigProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &[
                "Application",
                "Environment",
                "ConfigurationProfile",
                "InputArtifactConfigurationPath",
            ],
            "the AppConfig action",
        )
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.follow(job, external_id).await)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let (Ok(t), Ok(number)) = (target(request), external_id.parse::<i32>()) else {
            return Ok(());
        };
        let made = |c: &aws_config::SdkConfig| -> Arc<dyn AppConfigApi> {
            Arc::new(SdkAppConfig::new(Client::new(c)))
        };
        if let Some(api) = self.apis.for_cancel(request, made).await? {
            api.stop_deployment(t, number).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_is_judged_by_its_state_with_appconfigs_newest_event() {
        let d = |state: &str, events: &[&str]| Deployment {
            state: state.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        };
        for going in ["DEPLOYING", "BAKING", "VALIDATING", "ROLLING_BACK"] {
            assert_eq!(judge(&d(going, &[])), Judgement::Going, "{going}");
        }
        assert_eq!(judge(&d("COMPLETE", &[])), Judgement::Complete);
        assert_eq!(
            judge(&d("ROLLED_BACK", &["Alarm app-errors fired", "Deployment started"])),
            Judgement::Failed("was rolled back: Alarm app-errors fired".into())
        );
        assert_eq!(judge(&d("REVERTED", &[])), Judgement::Failed("was reverted".into()));
        assert_eq!(content_type("conf/app.JSON"), "application/json");
        assert_eq!(content_type("flags.yml"), "application/x-yaml");
        assert_eq!(content_type("settings.txt"), "text/plain");
    }
}
