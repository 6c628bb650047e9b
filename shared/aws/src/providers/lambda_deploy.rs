//! `AWS/Deploy/Lambda` (V2 pipelines): a function's new version, and its alias shifted to it
//! all at once, by a canary, or linearly, watched by CloudWatch alarms.
//!
//! # Contract
//!
//! With an input artifact, its zip becomes the function's code (`UpdateFunctionCode`, waited
//! for) and a version is published; without one, `PublishedTargetVersion` is the version.
//! Without `FunctionAlias` that is all (the action's output variable `FunctionVersion` names
//! it). With one, the alias's current version is the rollback target, and `DeployStrategy`
//! ([`parse_strategy`]) says how traffic moves: `AllAtOnce` (the default),
//! `Canary<P>Percent<M>Minutes` (P percent, then the rest M minutes later) or
//! `Linear<P>PercentEvery<M>Minute(s)` (P more percent every M minutes), at most two days in
//! all. Between steps the attempt is handed over and each look checks `Alarms` (up to 10): one
//! in `ALARM`, or the action's time-out, puts the alias back on the original version and
//! fails the action.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, LastUpdateStatus};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde::{Deserialize, Serialize};

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, finish, has_reference, now_ms, optional, required, sdk_config, sdk_stop,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// Lambda's limit on a zip sent in the request.
const MAX_DIRECT_ZIP: u64 = 50 * 1024 * 1024;
/// CodePipeline's limit on a strategy's total wait.
const MAX_TOTAL_MINUTES: u32 = 2 * 24 * 60;

/// One step of a traffic shift: the new version's share, then how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Percent of traffic on the new version.
    pub percent: u32,
    #[allow(missing_docs)]
    pub wait_minutes: u32,
}

/// The steps before all traffic moves: none for `AllAtOnce`.
///
/// # Errors
/// A sentence naming the accepted forms.
pub fn parse_strategy(strategy: &str) -> Result<Vec<Step>, String> {
    let bad = || {
        format!(
            "DeployStrategy \"{strategy}\" is not AllAtOnce, Canary<P>Percent<M>Minutes or Linear<P>PercentEvery<M>Minute(s)"
        )
    };
    let number = |s: &str| s.parse::<u32>().ok().filter(|n| *n > 0);
    let steps = if strategy == "AllAtOnce" {
        Vec::new()
    } else if let Some(rest) = strategy.strip_prefix("Canary") {
        let (p, m) = rest.split_once("Percent").ok_or_else(bad)?;
        let m = m.strip_suffix("Minutes").or_else(|| m.strip_suffix("Minute")).ok_or_else(bad)?;
        let (percent, wait_minutes) = (number(p).ok_or_else(bad)?, number(m).ok_or_else(bad)?);
        if percent >= 100 {
            return Err(bad());
        }
        vec![Step { percent, wait_minutes }]
    } else if let Some(rest) = strategy.strip_prefix("Linear") {
        let (p, m) = rest.split_once("PercentEvery").ok_or_else(bad)?;
        let m = m.strip_suffix("Minutes").or_else(|| m.strip_suffix("Minute")).ok_or_else(bad)?;
        let (step, wait_minutes) = (number(p).ok_or_else(bad)?, number(m).ok_or_else(bad)?);
        if step >= 100 {
            return Err(bad());
        }
        (1..)
            .map(|i| i * step)
            .take_while(|p| *p < 100)
            .map(|percent| Step { percent, wait_minutes })
            .collect()
    } else {
        return Err(bad());
    };
    let total: u32 = steps.iter().map(|s| s.wait_minutes).sum();
    if total > MAX_TOTAL_MINUTES {
        return Err(format!(
            "DeployStrategy \"{strategy}\" waits {total} minutes in all; CodePipeline allows at most two days"
        ));
    }
    Ok(steps)
}

/// `Alarms`: a comma list of at most 10 names.
fn parse_alarms(value: Option<&str>) -> Result<Vec<String>, String> {
    let names: Vec<String> = value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() > 10 {
        return Err(format!("Alarms names {} alarms; at most 10 are allowed", names.len()));
    }
    Ok(names)
}

/// Reads alarms' states (CloudWatch; a fake in tests).
#[async_trait]
pub trait AlarmStates: Send + Sync {
    /// The alarms of `names` that are in `ALARM` now.
    async fn firing(&self, request: &ActionRequest, names: &[String]) -> Result<Vec<String>, Stop>;
}

/// [`AlarmStates`] through CloudWatch, with the action's role and region.
pub struct CloudWatchAlarms {
    roles: Arc<dyn RoleCredentials>,
}

impl CloudWatchAlarms {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }
}

#[async_trait]
impl AlarmStates for CloudWatchAlarms {
    async fn firing(&self, request: &ActionRequest, names: &[String]) -> Result<Vec<String>, Stop> {
        use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
        let client = aws_sdk_cloudwatch::Client::new(&sdk_config(&self.roles, request).await?);
        let found = client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(sdk_stop("DescribeAlarms"))?;
        let metric = found.metric_alarms().iter().map(|a| (a.alarm_name(), a.state_value()));
        let composite = found.composite_alarms().iter().map(|a| (a.alarm_name(), a.state_value()));
        Ok(metric
            .chain(composite)
            .filter(|(_, state)| *state == Some(&StateValue::Alarm))
            .filter_map(|(name, _)| name.map(str::to_owned))
            .collect())
    }
}

/// What an attempt shifting traffic waits on; the handle is its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// The version traffic moves to.
    pub version: String,
    /// The version the alias was on: the rollback target.
    pub original: String,
    /// The steps, and the one the alias is on.
    pub steps: Vec<Step>,
    #[allow(missing_docs)]
    pub step: usize,
    /// When the current step's wait ends (milliseconds since the epoch).
    pub next_ms: i64,
}

/// Deploys Lambda functions.
pub struct LambdaDeployProvider {
    roles: Arc<dyn RoleCredentials>,
    alarms: Arc<dyn AlarmStates>,
    /// How long to wait for a code update before publishing (long in tests only on moto).
    settle: Duration,
}

impl std::fmt::Debug for LambdaDeployProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaDeployProvider").finish_non_exhaustive()
    }
}

impl LambdaDeployProvider {
    /// Deploys with the action's role and region; alarms read from CloudWatch.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        let alarms = Arc::new(CloudWatchAlarms::new(roles.clone()));
        Self { roles, alarms, settle: Duration::from_secs(60) }
    }

    /// Reads alarms from `alarms` instead (a fake, in tests).
    pub fn with_alarms(mut self, alarms: Arc<dyn AlarmStates>) -> Self {
        self.alarms = alarms;
        self
    }

    async fn client(&self, request: &ActionRequest) -> Result<Client, Stop> {
        Ok(Client::new(&sdk_config(&self.roles, request).await?))
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let config = &r.configuration;
        let function = required(config, "FunctionName")?;
        let alias = optional(config, "FunctionAlias");
        let steps = match (alias, optional(config, "DeployStrategy")) {
            (_, None) => Vec::new(),
            (Some(_), Some(s)) => parse_strategy(s).map_err(Failure::configuration)?,
            (None, Some(_)) => {
                return Err(Failure::configuration(
                    "DeployStrategy shifts an alias's traffic: it needs FunctionAlias.",
                )
                .into());
            }
        };
        let alarms = parse_alarms(optional(config, "Alarms")).map_err(Failure::configuration)?;
        let client = self.client(r).await?;
        let version = match job.inputs.first() {
            Some(code) => self.publish(&client, function, code).await?,
            None => required(config, "PublishedTargetVersion")
                .map_err(|_| {
                    Failure::configuration(
                        "Without an input artifact, the action needs PublishedTargetVersion: the version to deploy.",
                    )
                })?
                .to_owned(),
        };
        let Some(alias) = alias else { return Ok(succeeded(r, function, &version, None)) };
        let original = client
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await
            .map_err(sdk_stop("GetAlias"))?
            .function_version
            .ok_or_else(|| Failure::job(format!("The alias {alias} names no version.")))?;
        if steps.is_empty() || original == version {
            self.check_alarms(job, &alarms, &client, &original).await?;
            shift(&client, function, alias, &version, None).await?;
            return Ok(succeeded(r, function, &version, Some(alias)));
        }
        let first = steps[0];
        shift(&client, function, alias, &original, Some((&version, first.percent))).await?;
        let handle = Handle {
            version,
            original,
            steps,
            step: 0,
            next_ms: now_ms() + i64::from(first.wait_minutes) * 60_000,
        };
        Ok(running(r, &handle))
    }

    /// Puts the zip at `path` as the function's code and publishes a version of it.
    async fn publish(
        &self,
        client: &Client,
        function: &str,
        code: &LocalArtifact,
    ) -> Result<String, Stop> {
        let path = code.to_file().map_err(|e| {
            Failure::job(format!("Could not write the code artifact {}: {e}.", code.name))
        })?;
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
        if size > MAX_DIRECT_ZIP {
            return Err(Failure::configuration(format!(
                "The code zip is {size} bytes; Lambda takes at most {MAX_DIRECT_ZIP} in a request."
            ))
            .into());
        }
        let zip = tokio::fs::read(path)
            .await
            .map_err(|e| Failure::job(format!("Could not read the code artifact: {e}.")))?;
        client
            .update_function_code()
            .function_name(function)
            .zip_file(Blob::new(zip))
            .send()
            .await
            .map_err(sdk_stop("UpdateFunctionCode"))?;
        // A version can be published once the update has finished.
        let until = std::time::Instant::now() + self.settle;
        loop {
            let conf = client
                .get_function_configuration()
                .function_name(function)
                .send()
                .await
                .map_err(sdk_stop("GetFunctionConfiguration"))?;
            match conf.last_update_status() {
                Some(LastUpdateStatus::InProgress) if std::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Some(LastUpdateStatus::InProgress) => {
                    return Err(Stop::Unavailable("the code update is still in progress".into()));
                }
                Some(LastUpdateStatus::Failed) => {
                    return Err(Failure::job(format!(
                        "The code update of {function} failed: {}",
                        conf.last_update_status_reason().unwrap_or("no reason given")
                    ))
                    .into());
                }
                _ => break,
            }
        }
        let published = client
            .publish_version()
            .function_name(function)
            .send()
            .await
            .map_err(sdk_stop("PublishVersion"))?;
        published.version.ok_or_else(|| Failure::job("PublishVersion gave no version.").into())
    }

    /// Fails (after putting the alias back on `original`) when an alarm fires.
    async fn check_alarms(
        &self,
        job: &Job,
        alarms: &[String],
        client: &Client,
        original: &str,
    ) -> Result<(), Stop> {
        if alarms.is_empty() {
            return Ok(());
        }
        let firing = self.alarms.firing(&job.request, alarms).await?;
        if firing.is_empty() {
            return Ok(());
        }
        let config = &job.request.configuration;
        if let (Some(function), Some(alias)) =
            (optional(config, "FunctionName"), optional(config, "FunctionAlias"))
        {
            shift(client, function, alias, original, None).await?;
        }
        Err(Failure::job(format!(
            "Alarm {} is in ALARM; the alias is back on version {original}.",
            firing.join(", ")
        ))
        .into())
    }

    async fn follow(&self, job: &Job, handle: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let mut handle: Handle = serde_json::from_str(handle)
            .map_err(|e| Failure::job(format!("The deployment's handle is unreadable: {e}.")))?;
        let function = required(&r.configuration, "FunctionName")?;
        let alias = required(&r.configuration, "FunctionAlias")?;
        let alarms =
            parse_alarms(optional(&r.configuration, "Alarms")).map_err(Failure::configuration)?;
        let client = self.client(r).await?;
        self.check_alarms(job, &alarms, &client, &handle.original).await?;
        if now_ms() >= r.deadline {
            shift(&client, function, alias, &handle.original, None).await?;
            return Err(Failure::timed_out(format!(
                "The traffic shift to version {} did not end before the action's time-out; the alias is back on version {}.",
                handle.version, handle.original
            ))
            .into());
        }
        if now_ms() < handle.next_ms {
            return Ok(running(r, &handle));
        }
        handle.step += 1;
        match handle.steps.get(handle.step).copied() {
            Some(step) => {
                let weight = Some((handle.version.as_str(), step.percent));
                shift(&client, function, alias, &handle.original, weight).await?;
                handle.next_ms = now_ms() + i64::from(step.wait_minutes) * 60_000;
                Ok(running(r, &handle))
            }
            None => {
                shift(&client, function, alias, &handle.version, None).await?;
                Ok(succeeded(r, function, &handle.version, Some(alias)))
            }
        }
    }
}

/// Points `alias` at `version`, with `extra` (another version and its percent of traffic).
async fn shift(
    client: &Client,
    function: &str,
    alias: &str,
    version: &str,
    extra: Option<(&str, u32)>,
) -> Result<(), Stop> {
    let weights: HashMap<String, f64> =
        extra.map(|(v, percent)| (v.to_owned(), f64::from(percent) / 100.0)).into_iter().collect();
    let routing =
        AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build();
    client
        .update_alias()
        .function_name(function)
        .name(alias)
        .function_version(version)
        .routing_config(routing)
        .send()
        .await
        .map_err(sdk_stop("UpdateAlias"))?;
    Ok(())
}

fn console_url(region: &str, function: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/lambda/home?region={region}#/functions/{}",
        super::url_encode(function)
    )
}

fn running(r: &ActionRequest, handle: &Handle) -> JobResult {
    let function = r.configuration.get("FunctionName").map(String::as_str).unwrap_or_default();
    JobResult::Running {
        external_id: serde_json::to_string(handle).unwrap_or_default(),
        external_url: Some(console_url(&r.region, function)),
    }
}

fn succeeded(r: &ActionRequest, function: &str, version: &str, alias: Option<&str>) -> JobResult {
    JobResult::Succeeded {
        output_artifacts: Vec::new(),
        output_variables: BTreeMap::from([("FunctionVersion".to_owned(), version.to_owned())]),
        summary: Some(match alias {
            Some(alias) => format!("{function}:{alias} is on version {version}"),
            None => format!("{function} version {version} published"),
        }),
        external_id: Some(version.to_owned()),
        external_url: Some(console_url(&r.region, function)),
    }
}

#[async_trait]
impl ActionProvider for LambdaDeployProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        let literal = |k: &str| {
            config.get(k).map(|v| v.trim()).filter(|v| !v.is_empty() && !has_reference(v))
        };
        if config.get("FunctionName").is_none_or(|v| v.trim().is_empty()) {
            return Err("the Lambda deploy action needs FunctionName".into());
        }
        if let Some(strategy) = literal("DeployStrategy") {
            if config.get("FunctionAlias").is_none_or(|v| v.trim().is_empty()) {
                return Err("DeployStrategy needs FunctionAlias".into());
            }
            parse_strategy(strategy)?;
        }
        parse_alarms(literal("Alarms"))?;
        if action.input_artifacts.is_empty() && config.get("PublishedTargetVersion").is_none() {
            return Err("without an input artifact the action needs PublishedTargetVersion".into());
        }
        Ok(())
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
        // An abandoned shift puts the alias back where it was.
        let Ok(handle) = serde_json::from_str::<Handle>(external_id) else { return Ok(()) };
        let config = &request.configuration;
        let (Some(function), Some(alias)) =
            (config.get("FunctionName"), config.get("FunctionAlias"))
        else {
            return Ok(());
        };
        if let Some(sdk) = super::config_for_cancel(&self.roles, request).await?
            && let Err(e) = shift(&Client::new(&sdk), function, alias, &handle.original, None).await
        {
            tracing::warn!(function = %function, error = ?e, "cannot put an alias back");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_read_as_codepipeline_writes_them() {
        assert_eq!(parse_strategy("AllAtOnce"), Ok(vec![]));
        assert_eq!(
            parse_strategy("Canary10Percent5Minutes"),
            Ok(vec![Step { percent: 10, wait_minutes: 5 }])
        );
        assert_eq!(
            parse_strategy("Linear25PercentEvery1Minute"),
            Ok(vec![
                Step { percent: 25, wait_minutes: 1 },
                Step { percent: 50, wait_minutes: 1 },
                Step { percent: 75, wait_minutes: 1 },
            ])
        );
        assert_eq!(parse_strategy("Linear10PercentEvery2Minutes").unwrap().len(), 9);
        for bad in
            ["Canary100Percent5Minutes", "Canary10Percent", "Linear0PercentEvery1Minute", "Blue"]
        {
            assert!(parse_strategy(bad).unwrap_err().contains("is not AllAtOnce"), "{bad}");
        }
        assert!(parse_strategy("Canary10Percent2881Minutes").unwrap_err().contains("two days"));
        assert!(parse_alarms(Some("a,b,c,d,e,f,g,h,i,j,k")).unwrap_err().contains("at most 10"));
    }
}
