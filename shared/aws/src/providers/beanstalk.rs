//! `AWS/Deploy/ElasticBeanstalk`: the input artifact, where it lies in the action region's
//! artifact bucket, becomes an application version of `ApplicationName`, and the environment
//! `EnvironmentName` is updated to it and followed until it is `Ready` on that version.
//!
//! # Contract
//!
//! The version's label names the attempt (`baton-<execution>-<attempt>`), so a worker that
//! starts again after creating it finds it instead of failing. After `UpdateEnvironment` the
//! attempt is handed over; each look ([`judge`]) reads the environment and the `ERROR` events
//! Elastic Beanstalk logged since the update began: `Ready` on the new version with no error is
//! success; `Ready` on another version (Elastic Beanstalk rolled back) or with errors fails the
//! action quoting them; a terminated environment fails it; an update still going at the
//! action's time-out is aborted (`AbortEnvironmentUpdate`), as is one whose attempt no longer
//! counts. Everything Elastic Beanstalk is asked goes through [`BeanstalkApi`], so the paths
//! moto cannot play (it has no `CreateApplicationVersion` or `UpdateEnvironment`) are tested
//! with a fake.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_elasticbeanstalk::Client;
use aws_sdk_elasticbeanstalk::error::ProvideErrorMetadata;
use aws_sdk_elasticbeanstalk::primitives::DateTime;
use aws_sdk_elasticbeanstalk::types::{EventSeverity, S3Location};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde::{Deserialize, Serialize};

use super::credentials::RoleCredentials;
use super::{Apis, Failure, Stop, finish, now_ms, required, sdk_stop};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// An environment as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Environment {
    /// `Launching`, `Updating`, `Ready`, `Terminating`, `Terminated`...
    pub status: String,
    /// The version it runs.
    pub version_label: Option<String>,
    /// `Green`, `Yellow`, `Red`, `Grey`.
    pub health: Option<String>,
}

/// What the action asks Elastic Beanstalk.
#[async_trait]
pub trait BeanstalkApi: Send + Sync {
    /// Creates version `label` of `application` from the zip at `bucket`/`key`; one that
    /// already exists is left as it is.
    async fn create_version(
        &self,
        application: &str,
        label: &str,
        (bucket, key): (&str, &str),
        description: &str,
    ) -> Result<(), Stop>;
    /// Starts deploying `label` to `environment`.
    async fn update_environment(
        &self,
        application: &str,
        environment: &str,
        label: &str,
    ) -> Result<(), Stop>;
    /// The environment, `None` when there is none of that name.
    async fn environment(
        &self,
        application: &str,
        environment: &str,
    ) -> Result<Option<Environment>, Stop>;
    /// The `ERROR` events of `environment` since `since_ms`, oldest first.
    async fn errors_since(
        &self,
        application: &str,
        environment: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, Stop>;
    /// Stops an update in progress (best effort).
    async fn abort(&self, environment: &str);
}

/// [`BeanstalkApi`] through the SDK.
pub struct SdkBeanstalk {
    client: Client,
}

impl SdkBeanstalk {
    #[allow(missing_docs)]
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl BeanstalkApi for SdkBeanstalk {
    async fn create_version(
        &self,
        application: &str,
        label: &str,
        (bucket, key): (&str, &str),
        description: &str,
    ) -> Result<(), Stop> {
        let bundle = S3Location::builder().s3_bucket(bucket).s3_key(key).build();
        let created = self
            .client
            .create_application_version()
            .application_name(application)
            .version_label(label)
            .source_bundle(bundle)
            .description(description)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // A worker that starts the attempt again finds the version it made.
            Err(e) if e.message().is_some_and(|m| m.contains("already exists")) => Ok(()),
            Err(e) => Err(sdk_stop("CreateApplicationVersion")(e)),
        }
    }

    async fn update_environment(
        &self,
        application: &str,
        environment: &str,
        label: &str,
    ) -> Result<(), Stop> {
        self.client
            .update_environment()
            .application_name(application)
            .environment_name(environment)
            .version_label(label)
            .send()
            .await
            .map_err(sdk_stop("UpdateEnvironment"))?;
        Ok(())
    }

    async fn environment(
        &self,
        application: &str,
        environment: &str,
    ) -> Result<Option<Environment>, Stop> {
        let described = self
            .client
            .describe_environments()
            .application_name(application)
            .environment_names(environment)
            .send()
            .await
            .map_err(sdk_stop("DescribeEnvironments"))?;
        // A terminated environment is kept an hour under its name; a live one comes first.
        let mut found: Vec<Environment> = described
            .environments()
            .iter()
            .filter(|e| e.environment_name() == Some(environment))
            .map(|e| Environment {
                status: e.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                version_label: e.version_label().map(str::to_owned),
                health: e.health().map(|h| h.as_str().to_owned()),
            })
            .collect();
        found.sort_by_key(|e| e.status == "Terminated");
        Ok(found.into_iter().next())
    }

    async fn errors_since(
        &self,
        application: &str,
        environment: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, Stop> {
        let events = self
            .client
            .describe_events()
            .application_name(application)
            .environment_name(environment)
            .severity(EventSeverity::Error)
            .start_time(DateTime::from_millis(since_ms))
            .max_records(20)
            .send()
            .await
            .map_err(sdk_stop("DescribeEvents"))?;
        // Newest first from the service.
        let mut messages: Vec<String> =
            events.events().iter().filter_map(|e| e.message().map(str::to_owned)).collect();
        messages.reverse();
        Ok(messages)
    }

    async fn abort(&self, environment: &str) {
        if let Err(e) =
            self.client.abort_environment_update().environment_name(environment).send().await
        {
            tracing::warn!(environment, error = %aws_sdk_elasticbeanstalk::error::DisplayErrorContext(&e), "cannot abort an environment update");
        }
    }
}

/// What an attempt waits on; the handle is its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// The version deployed.
    pub label: String,
    /// When the update began: errors from then on are this deployment's.
    pub since_ms: i64,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    #[allow(missing_docs)]
    Going,
    #[allow(missing_docs)]
    Deployed,
    /// Why it failed.
    Failed(String),
}

/// What the environment (`None`: gone) and the errors since the update began say of
/// deploying `label`.
pub fn judge(environment: Option<&Environment>, label: &str, errors: &[String]) -> Judgement {
    let errors_said = || {
        if errors.is_empty() { String::new() } else { format!(": {}", errors.join("; ")) }
    };
    let Some(env) = environment else {
        return Judgement::Failed("the environment does not exist".into());
    };
    match env.status.as_str() {
        "Terminating" | "Terminated" => {
            Judgement::Failed(format!("the environment is {}", env.status.to_lowercase()))
        }
        "Ready" if env.version_label.as_deref() != Some(label) => Judgement::Failed(format!(
            "the environment is back on version {}, not {label}{}",
            env.version_label.as_deref().unwrap_or("(none)"),
            errors_said()
        )),
        "Ready" if !errors.is_empty() => {
            Judgement::Failed(format!("the deployment completed with errors{}", errors_said()))
        }
        "Ready" => Judgement::Deployed,
        _ => Judgement::Going,
    }
}

/// The version label of `r`'s attempt (Elastic Beanstalk takes up to 100 characters).
pub fn version_label(r: &ActionRequest) -> String {
    format!("baton-{}-{}", r.execution_id, r.attempt)
}

/// Deploys to Elastic Beanstalk environments.
pub struct BeanstalkProvider {
    apis: Apis<dyn BeanstalkApi>,
}

impl std::fmt::Debug for BeanstalkProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeanstalkProvider").finish_non_exhaustive()
    }
}

impl BeanstalkProvider {
    /// Calls Elastic Beanstalk with the action's role and region.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { apis: Apis::Sdk(roles) }
    }

    /// Sends every call to `api` (a fake, in tests).
    pub fn with_api(api: Arc<dyn BeanstalkApi>) -> Self {
        Self { apis: Apis::Fixed(api) }
    }

    async fn api(&self, request: &ActionRequest) -> Result<Arc<dyn BeanstalkApi>, Stop> {
        self.apis.for_request(request, |c| Arc::new(SdkBeanstalk::new(Client::new(c)))).await
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let application = required(&r.configuration, "ApplicationName")?;
        let environment = required(&r.configuration, "EnvironmentName")?;
        let Some((_, bundle)) = job.in_place.as_ref().and_then(|p| p.inputs.first()) else {
            return Err(Failure::configuration(
                "Elastic Beanstalk reads the application version from S3: this host keeps artifacts in local files, so run this action from a Baton deployment on AWS.",
            )
            .into());
        };
        let api = self.api(r).await?;
        if api.environment(application, environment).await?.is_none() {
            return Err(Failure::configuration(format!(
                "The environment {environment} of {application} does not exist."
            ))
            .into());
        }
        let label = version_label(r);
        let description =
            format!("Pipeline {} execution {}, action {}", r.pipeline, r.execution_id, r.action);
        let since_ms = now_ms();
        api.create_version(application, &label, (&bundle.bucket, &bundle.key), &description)
            .await?;
        api.update_environment(application, environment, &label).await?;
        Ok(running(r, &Handle { label, since_ms }))
    }

    async fn follow(&self, job: &Job, handle: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let handle: Handle = serde_json::from_str(handle)
            .map_err(|e| Failure::job(format!("The deployment's handle is unreadable: {e}.")))?;
        let application = required(&r.configuration, "ApplicationName")?;
        let environment = required(&r.configuration, "EnvironmentName")?;
        let api = self.api(r).await?;
        let env = api.environment(application, environment).await?;
        let errors = api.errors_since(application, environment, handle.since_ms).await?;
        match judge(env.as_ref(), &handle.label, &errors) {
            Judgement::Deployed => Ok(JobResult::Succeeded {
                output_artifacts: Vec::new(),
                output_variables: Default::default(),
                summary: Some(format!("{environment} runs version {}", handle.label)),
                external_id: Some(handle.label.clone()),
                external_url: Some(console_url(&r.region, application, environment)),
            }),
            Judgement::Failed(why) => Err(Failure::job(format!(
                "Deploying version {} to {environment} failed: {why}.",
                handle.label
            ))
            .into()),
            Judgement::Going if now_ms() < r.deadline => Ok(running(r, &handle)),
            Judgement::Going => {
                api.abort(environment).await;
                Err(Failure::timed_out(format!(
                    "Deploying version {} to {environment} did not end before the action's time-out; the update was aborted.",
                    handle.label
                ))
                .into())
            }
        }
    }
}

fn running(r: &ActionRequest, handle: &Handle) -> JobResult {
    let config = &r.configuration;
    let (application, environment) = (
        config.get("ApplicationName").map(String::as_str).unwrap_or_default(),
        config.get("EnvironmentName").map(String::as_str).unwrap_or_default(),
    );
    JobResult::Running {
        external_id: serde_json::to_string(handle).unwrap_or_default(),
        external_url: Some(console_url(&r.region, application, environment)),
    }
}

fn console_url(region: &str, application: &str, environment: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/elasticbeanstalk/home?region={region}#/environment/dashboard?applicationName={}&environmentName={}",
        super::url_encode(application),
        super::url_encode(environment)
    )
}

#[async_trait]
impl ActionProvider for BeanstalkProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["ApplicationName", "EnvironmentName"],
            "the Elastic Beanstalk action",
        )?;
        Ok(())
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.follow(job, external_id).await)
    }

    async fn cancel(&self, request: &ActionRequest, _: &str) -> Result<(), ProviderError> {
        let Some(environment) = request.configuration.get("EnvironmentName") else {
            return Ok(());
        };
        let made = |c: &aws_config::SdkConfig| -> Arc<dyn BeanstalkApi> {
            Arc::new(SdkBeanstalk::new(Client::new(c)))
        };
        if let Some(api) = self.apis.for_cancel(request, made).await? {
            api.abort(environment).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(status: &str, version: &str) -> Environment {
        Environment {
            status: status.into(),
            version_label: Some(version.into()),
            health: Some("Green".into()),
        }
    }

    #[test]
    fn an_environment_is_judged_by_its_status_version_and_errors() {
        let v = "baton-e-1";
        assert_eq!(judge(Some(&env("Updating", "old")), v, &[]), Judgement::Going);
        assert_eq!(judge(Some(&env("Launching", v)), v, &[]), Judgement::Going);
        assert_eq!(judge(Some(&env("Ready", v)), v, &[]), Judgement::Deployed);
        let errors = vec!["Failed to deploy application.".to_owned()];
        assert_eq!(
            judge(Some(&env("Ready", "old")), v, &errors),
            Judgement::Failed(
                "the environment is back on version old, not baton-e-1: Failed to deploy application."
                    .into()
            )
        );
        assert_eq!(
            judge(Some(&env("Ready", v)), v, &errors),
            Judgement::Failed(
                "the deployment completed with errors: Failed to deploy application.".into()
            )
        );
        assert_eq!(
            judge(Some(&env("Terminated", v)), v, &[]),
            Judgement::Failed("the environment is terminated".into())
        );
        assert_eq!(judge(None, v, &[]), Judgement::Failed("the environment does not exist".into()));
    }
}
