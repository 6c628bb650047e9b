//! Providers that call AWS: CodePipeline's actions done by the services themselves, in the
//! action's account and region.
//!
//! - [`cloudformation`] runs `AWS/Deploy/CloudFormation`, every action mode (templates over
//!   the request's limit through [`cfn_templates`]).
//! - [`s3_deploy`] runs `AWS/Deploy/S3`, extracted or as one object.
//! - [`s3_source`] runs `AWS/Source/S3`.
//! - [`ecr_source`] runs `AWS/Source/ECR`.
//! - [`appconfig`] runs `AWS/Deploy/AppConfig` (through the hosted store).
//! - [`beanstalk`] runs `AWS/Deploy/ElasticBeanstalk`.
//! - [`codedeploy`] runs `AWS/Deploy/CodeDeploy` (EC2/on-premises and Lambda platforms).
//! - [`ecs_blue_green`] runs `AWS/Deploy/CodeDeployToECS` (with [`ecs_taskdef`]).
//! - [`ecs_deploy`] runs `AWS/Deploy/ECS` (rolling updates of a service).
//! - [`codebuild`] runs `AWS/Build/CodeBuild` and `AWS/Test/CodeBuild`.
//! - [`commands`] runs `AWS/Compute/Commands` and [`connection_source`]
//!   `AWS/Source/CodeStarSourceConnection`, as builds of the deployment's build project.
//! - [`stack_sets`] runs `AWS/Deploy/CloudFormationStackSet` and `CloudFormationStackInstances`.
//! - [`step_functions`] runs `AWS/Invoke/StepFunctions`.
//! - [`lambda_deploy`] runs `AWS/Deploy/Lambda` (a new version, the alias shifted to it).
//! - [`lambda_invoke`] runs `AWS/Invoke/Lambda` (with the job protocol; see [`register_invoke`]).
//! - [`lambda_rule`] and [`cloudwatch_alarm`] evaluate the `LambdaInvoke` and `CloudWatchAlarm`
//!   rules of stage conditions.
//!
//! Contract shared by all: clients come from [`RoleCredentials`] for the action's `roleArn` and
//! region, so a cross-account action acts in the other account; inputs arrive as local zips
//! (the action worker fetched them) and outputs leave as local zips. What a pipeline's users
//! must see (a refused template, a failed build, a denied role) becomes
//! [`JobResult::Failed`](baton_app::ports::provider::JobResult::Failed) with AWS's own message; only what a later try could fix (throttling,
//! an unreachable service) becomes
//! [`ProviderError::Unavailable`](baton_app::ports::provider::ProviderError::Unavailable), so the worker retries it.
//! [`register`] puts them all in a [`ProviderRegistry`].

pub mod appconfig;
pub mod beanstalk;
pub mod cfn_templates;
pub mod cloudformation;
pub mod cloudwatch_alarm;
pub mod codebuild;
pub mod codecommit_source;
pub mod codedeploy;
pub mod commands;
pub mod connection_source;
pub mod credentials;
pub mod ecr_source;
pub mod ecs_blue_green;
pub mod ecs_deploy;
pub mod ecs_taskdef;
pub mod github_source;
pub mod lambda_deploy;
pub mod lambda_invoke;
pub mod lambda_rule;
pub mod s3_deploy;
pub mod s3_source;
pub mod stack_sets;
pub mod step_functions;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use indexmap::IndexMap;
use tracing::warn;

use baton_app::ports::BoxError;
use baton_app::ports::provider::{LocalArtifact, ProviderError, ProviderRegistry};
use credentials::{RoleCredentials, RoleError};

/// Registers every AWS provider under CodePipeline's category, owner and provider names,
/// replacing local providers registered under the same names.
pub fn register(registry: &mut ProviderRegistry, roles: Arc<dyn RoleCredentials>) {
    let codebuild = Arc::new(codebuild::CodeBuildProvider::new(roles.clone()));
    registry.register(
        "Deploy",
        "AWS",
        "CloudFormation",
        Arc::new(cloudformation::CloudFormationProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "S3",
        Arc::new(s3_deploy::S3DeployProvider::new(roles.clone())),
    );
    registry.register(
        "Source",
        "AWS",
        "CodeCommit",
        Arc::new(codecommit_source::CodeCommitSourceProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "ECS",
        Arc::new(ecs_deploy::EcsDeployProvider::new(roles.clone())),
    );
    registry.register(
        "Source",
        "AWS",
        "ECR",
        Arc::new(ecr_source::EcrSourceProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "CodeDeployToECS",
        Arc::new(ecs_blue_green::EcsBlueGreenProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "CodeDeploy",
        Arc::new(codedeploy::CodeDeployProvider::new(roles.clone())),
    );
    registry.register(
        "Invoke",
        "AWS",
        "StepFunctions",
        Arc::new(step_functions::StepFunctionsProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "AppConfig",
        Arc::new(appconfig::AppConfigProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "Lambda",
        Arc::new(lambda_deploy::LambdaDeployProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "ElasticBeanstalk",
        Arc::new(beanstalk::BeanstalkProvider::new(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "CloudFormationStackSet",
        Arc::new(stack_sets::StackSetProvider::stack_set(roles.clone())),
    );
    registry.register(
        "Deploy",
        "AWS",
        "CloudFormationStackInstances",
        Arc::new(stack_sets::StackSetProvider::stack_instances(roles.clone())),
    );
    registry.register("Source", "AWS", "S3", Arc::new(s3_source::S3SourceProvider::new(roles)));
    registry.register("Build", "AWS", "CodeBuild", codebuild.clone());
    registry.register("Test", "AWS", "CodeBuild", codebuild);
}

/// Registers the AWS providers that work through CodePipeline's job protocol (`AWS/Invoke/Lambda`):
/// they need the host's job queue and a way to lend artifacts; and the rules, as
/// [`register_rules`].
pub fn register_invoke(
    registry: &mut ProviderRegistry,
    roles: Arc<dyn RoleCredentials>,
    queue: Arc<dyn baton_app::ports::job_queue::JobQueue>,
    artifacts: Arc<dyn baton_app::ports::job_artifacts::JobArtifacts>,
    clock: Arc<dyn baton_app::ports::clock::Clock>,
    account: String,
) {
    register_rules(registry, roles.clone(), account.clone());
    let lambda = lambda_invoke::provider(roles, queue, artifacts, clock, account);
    registry.register("Invoke", "AWS", "Lambda", Arc::new(lambda));
}

/// Lets CloudFormation and stack set actions deploy templates over 51,200 bytes, read by CloudFormation from
/// `buckets` (region to bucket and KMS key ARN: the deployment's artifact buckets).
pub fn register_large_templates(
    registry: &mut ProviderRegistry,
    roles: Arc<dyn RoleCredentials>,
    buckets: std::collections::BTreeMap<String, (String, String)>,
) {
    let templates: Arc<dyn cfn_templates::TemplateStore> =
        Arc::new(cfn_templates::S3Templates::new(roles.clone(), buckets));
    let stacks = cloudformation::CloudFormationProvider::new(roles.clone())
        .with_templates(templates.clone());
    registry.register("Deploy", "AWS", "CloudFormation", Arc::new(stacks));
    let sets = stack_sets::StackSetProvider::stack_set(roles).with_templates(templates);
    registry.register("Deploy", "AWS", "CloudFormationStackSet", Arc::new(sets));
}

/// Registers what runs as builds of the CodeBuild project `project` (the deployment's
/// Commands project): `AWS/Compute/Commands`, the `Commands` rule, and
/// `AWS/Source/CodeStarSourceConnection` (the build clones through the connection).
pub fn register_commands(
    registry: &mut ProviderRegistry,
    roles: Arc<dyn RoleCredentials>,
    project: &str,
) {
    let builds = codebuild::CodeBuildProvider::new(roles.clone());
    let connections = Arc::new(connection_source::CodeConnections::new(roles));
    registry.register(
        "Source",
        "AWS",
        "CodeStarSourceConnection",
        Arc::new(connection_source::ConnectionSourceProvider::new(
            builds.clone(),
            project,
            connections,
        )),
    );
    registry.register(
        "Compute",
        "AWS",
        "Commands",
        Arc::new(commands::CommandsProvider::new(builds.clone(), project)),
    );
    registry.register_rule("Commands", Arc::new(commands::CommandsRule::new(builds, project)));
}

/// Registers the GitHub (v1) source, fetched through GitHub's API at `api`.
pub fn register_github(
    registry: &mut ProviderRegistry,
    api: Arc<baton_app::adapters::github::GitHubApi>,
) {
    let github = Arc::new(github_source::GitHubSourceProvider::new(api));
    registry.register("Source", "ThirdParty", "GitHub", github);
}

/// Registers the stage-condition rules that ask AWS (`LambdaInvoke`, `CloudWatchAlarm`);
/// `account` is the one Lambda rules' events name.
pub fn register_rules(
    registry: &mut ProviderRegistry,
    roles: Arc<dyn RoleCredentials>,
    account: String,
) {
    let alarm = cloudwatch_alarm::CloudWatchAlarmRule::new(roles.clone());
    registry.register_rule("CloudWatchAlarm", Arc::new(alarm));
    registry.register_rule("LambdaInvoke", Arc::new(lambda_rule::LambdaRule::new(roles, account)));
}

/// How long to wait between two polls of a long-running operation (a stack, a build): the
/// first wait, doubled after each poll up to the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    #[allow(missing_docs)]
    pub first: Duration,
    #[allow(missing_docs)]
    pub longest: Duration,
}

impl Default for Backoff {
    /// 2 s doubling to 30 s: stacks and builds take minutes, and each `Describe*` call counts
    /// against an account-wide API rate that the console and other tools share.
    fn default() -> Self {
        Self { first: Duration::from_secs(2), longest: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The wait after `current`.
    fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.longest)
    }
}

pub(crate) use baton_app::providers::{Failure, Stop, finish};

impl From<RoleError> for Stop {
    fn from(e: RoleError) -> Self {
        match e {
            RoleError::Denied { .. } => Self::Failed(Failure::job(e.to_string())),
            RoleError::Unavailable { .. } => Self::Unavailable(Box::new(e)),
        }
    }
}

/// The SDK configuration for the action's role and region.
async fn sdk_config(
    roles: &Arc<dyn RoleCredentials>,
    request: &ActionRequest,
) -> Result<SdkConfig, Stop> {
    Ok(roles.config(request.role_arn.as_deref(), &request.region, &request.execution_id).await?)
}

/// Where a provider's service API comes from: the SDK, with the action's role and region, or
/// one API for every action (a fake, in tests).
pub(crate) enum Apis<T: ?Sized> {
    Sdk(Arc<dyn RoleCredentials>),
    Fixed(Arc<T>),
}

impl<T: ?Sized> Clone for Apis<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Sdk(roles) => Self::Sdk(roles.clone()),
            Self::Fixed(api) => Self::Fixed(api.clone()),
        }
    }
}

impl<T: ?Sized> Apis<T> {
    /// The API for `request`'s action, made by `make` from its SDK configuration.
    async fn for_request(
        &self,
        request: &ActionRequest,
        make: impl FnOnce(&SdkConfig) -> Arc<T>,
    ) -> Result<Arc<T>, Stop> {
        match self {
            Self::Fixed(api) => Ok(api.clone()),
            Self::Sdk(roles) => Ok(make(&sdk_config(roles, request).await?)),
        }
    }

    /// The API for `action`, polled (see [`poll_config`]).
    async fn for_poll(
        &self,
        action: &ActionPlan,
        make: impl FnOnce(&SdkConfig) -> Arc<T>,
    ) -> Option<Arc<T>> {
        match self {
            Self::Fixed(api) => Some(api.clone()),
            Self::Sdk(roles) => Some(make(&poll_config(roles, action).await?)),
        }
    }

    /// The API to stop `request`'s work with; `None` when its role is refused.
    async fn for_cancel(
        &self,
        request: &ActionRequest,
        make: impl FnOnce(&SdkConfig) -> Arc<T>,
    ) -> Result<Option<Arc<T>>, ProviderError> {
        match self {
            Self::Fixed(api) => Ok(Some(api.clone())),
            Self::Sdk(roles) => Ok(config_for_cancel(roles, request).await?.map(|c| make(&c))),
        }
    }
}

/// The SDK configuration a poller reads an action's source with (`PollForSourceChanges`): the
/// action's role (the poller puts the pipeline's in where the action has none) and region;
/// `None` when the role is refused or STS is unavailable, so the next poll tries again.
async fn poll_config(roles: &Arc<dyn RoleCredentials>, action: &ActionPlan) -> Option<SdkConfig> {
    match roles.config(action.role_arn.as_deref(), &action.region, "poll").await {
        Ok(config) => Some(config),
        Err(e) => {
            warn!(action = %action.name, error = %e, "cannot read the source to poll it");
            None
        }
    }
}

/// The SDK configuration for stopping an action's work: `None` when the role is refused (there
/// is nothing this role could stop); unavailable STS is retried.
async fn config_for_cancel(
    roles: &Arc<dyn RoleCredentials>,
    request: &ActionRequest,
) -> Result<Option<SdkConfig>, ProviderError> {
    match sdk_config(roles, request).await {
        Ok(config) => Ok(Some(config)),
        Err(Stop::Unavailable(e)) => Err(ProviderError::Unavailable(e)),
        Err(Stop::Failed(_)) => Ok(None),
    }
}

/// How an SDK call failed, classified once at the boundary.
#[derive(Debug)]
enum SdkFault {
    /// The service refused the request (4xx other than throttling): AWS's code and message,
    /// for the pipeline's users.
    Refused { code: String, message: String },
    /// The service could not be used now; retrying later may work.
    Unavailable(BoxError),
}

/// Error codes that mean "too many requests": retryable even though they come as 4xx.
fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "SlowDown"
            | "AccountLimitExceededException"
    )
}

/// Classifies an SDK error, logging its full context once.
fn classify<E>(operation: &str, e: SdkError<E, HttpResponse>) -> SdkFault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    warn!(operation, error = %DisplayErrorContext(&e), "AWS call failed");
    let status = match &e {
        SdkError::ServiceError(context) => Some(context.raw().status().as_u16()),
        _ => None,
    };
    match (status, e.code()) {
        (Some(400..=499), Some(code)) if !is_throttling(code) => SdkFault::Refused {
            code: code.to_owned(),
            message: e.message().unwrap_or("(no message)").to_owned(),
        },
        _ => SdkFault::Unavailable(Box::new(e)),
    }
}

/// Maps an SDK error of `operation` to a [`Stop`]: a refusal fails the action with AWS's
/// message, anything else is retryable.
fn sdk_stop<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> Stop
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| match classify(operation, e) {
        SdkFault::Refused { code, message } => {
            Stop::Failed(Failure::job(format!("{operation} failed: {code}: {message}")))
        }
        SdkFault::Unavailable(source) => Stop::Unavailable(source),
    }
}

/// The value of a required configuration key, or a failure naming it.
fn required<'a>(config: &'a IndexMap<String, String>, key: &str) -> Result<&'a str, Failure> {
    optional(config, key)
        .ok_or_else(|| Failure::configuration(format!("The action configuration needs {key}.")))
}

/// A declaration check: every one of `keys` is set, else `"<subject> needs <key>"` for the
/// first missing.
fn check_required(
    config: &IndexMap<String, String>,
    keys: &[&str],
    subject: &str,
) -> Result<(), String> {
    match keys.iter().find(|k| optional(config, k).is_none()) {
        Some(key) => Err(format!("{subject} needs {key}")),
        None => Ok(()),
    }
}

/// The trimmed value of a configuration key, `None` when absent or blank.
fn optional<'a>(config: &'a IndexMap<String, String>, key: &str) -> Option<&'a str> {
    config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

pub(crate) use baton_app::providers::{blocking, has_reference};

/// Milliseconds since the epoch, the unit of [`ActionRequest::deadline`].
fn now_ms() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Time left until `deadline_ms`, zero once passed.
fn time_left(deadline_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(deadline_ms.saturating_sub(now_ms())).unwrap_or(0))
}

/// Reads one file of a zip, refusing one larger than `limit` bytes.
fn read_zip_entry(zip: &LocalArtifact, entry: &str, limit: u64) -> Result<Vec<u8>, Failure> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Failure::job(format!("Could not read the artifact {}: {e}.", zip.name))
    };
    let reader = zip.open().map_err(|e| unreadable(&e))?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| unreadable(&e))?;
    let wanted = entry.trim_start_matches("./");
    let index = (0..archive.len())
        .find(|&i| archive.name_for_index(i).is_some_and(|n| n.trim_start_matches("./") == wanted));
    let Some(index) = index else {
        return Err(Failure::configuration(format!("The artifact has no file {entry}.")));
    };
    let file = archive.by_index(index).map_err(|e| unreadable(&e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::configuration(format!(
            "The file {entry} is larger than the {limit} bytes allowed."
        )));
    }
    Ok(bytes)
}

/// Writes a zip holding one file `name` with `contents` (or nothing, with no name).
fn write_zip(dest: &Path, file: Option<(&str, &[u8])>) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| {
        Failure::job(format!("Could not write the output artifact {}: {e}.", dest.display()))
    };
    let out = File::create(dest).map_err(|e| fail(&e))?;
    let mut zip = zip::ZipWriter::new(out);
    if let Some((name, contents)) = file {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        zip.write_all(contents).map_err(|e| fail(&e))?;
    }
    zip.finish().map_err(|e| fail(&e))?.sync_all().map_err(|e| fail(&e))
}

/// Percent-encodes everything but unreserved characters, for console URLs.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_longest_wait() {
        let b = Backoff::default();
        assert_eq!(b.next(Duration::from_secs(2)), Duration::from_secs(4));
        assert_eq!(b.next(Duration::from_secs(20)), Duration::from_secs(30));
    }

    #[test]
    fn throttling_is_retryable() {
        assert!(is_throttling("Throttling"));
        assert!(is_throttling("SlowDown"));
        assert!(!is_throttling("ValidationError"));
    }

    #[test]
    fn urls_encode_everything_but_unreserved_characters() {
        assert_eq!(url_encode("arn:aws:x/y z"), "arn%3Aaws%3Ax%2Fy%20z");
    }
}
