//! `AWS/Deploy/CloudFormationStackSet` and `AWS/Deploy/CloudFormationStackInstances`: a
//! stack set created or updated from the action's template, and its instances in the deployment
//! targets (accounts, or organizational units) and regions, with CodePipeline's configuration.
//!
//! # Contract
//!
//! `CloudFormationStackSet`: a stack set that does not exist is created (`CreateStackSet`),
//! then its instances in `DeploymentTargets` × `Regions`, if given (`CreateStackInstances`).
//! One that exists is updated: given targets first get their missing instances (which
//! CloudFormation starts on the stack set's current template, and leaves the others as they
//! are), then `UpdateStackSet` for those targets, or for every instance without targets.
//! `CloudFormationStackInstances` calls `CreateStackInstances` once, which creates missing
//! instances and brings existing ones up to date with its `ParameterOverrides`.
//!
//! Each operation is followed to its end ([`follow`]): a running one hands the attempt over
//! with a handle naming it and what comes after it, a failed or stopped one fails the action
//! with the instances CloudFormation reports as failed, and one still running at the action's
//! time-out is stopped. Only one operation runs on a stack set at a time: meeting another is
//! retried. Output variables `StackSetId` and `OperationId`.
//!
//! `Parameters`/`ParameterOverrides` are CloudFormation's shorthand (`ParameterKey=k,
//! ParameterValue=v,UsePreviousValue=false` per parameter, parameters apart by whitespace) or
//! `Artifact::file.json` holding a JSON array of such objects; `DeploymentTargets` is a comma
//! list, or `Artifact::file.json` holding a JSON array of account or OU ids; `Regions` a comma
//! list, deployed in that order.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::operation::describe_stack_set::DescribeStackSetError;
use aws_sdk_cloudformation::types::{
    AutoDeployment, Capability, DeploymentTargets, Parameter, PermissionModels,
    StackSetOperationPreferences, StackSetOperationStatus,
};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cfn_templates::{MAX_TEMPLATE_FROM_S3, TemplateStore};
use super::cloudformation::{MAX_TEMPLATE_BODY, artifact_file, parse_capabilities};
use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, config_for_cancel, finish, has_reference, now_ms, optional, required,
    sdk_config, sdk_stop,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// One parameter, as CloudFormation's shorthand and parameter files give it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StackSetParameter {
    #[allow(missing_docs)]
    pub parameter_key: String,
    #[allow(missing_docs)]
    #[serde(default)]
    pub parameter_value: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, deserialize_with = "flexible_bool")]
    pub use_previous_value: Option<bool>,
    /// Given back by CloudFormation for SSM parameters; ignored when sent.
    #[serde(default)]
    pub resolved_value: Option<String>,
}

fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => parse_bool(&s).map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!("{other} is not true or false"))),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("\"{other}\" is not true or false")),
    }
}

/// Parameters in CloudFormation's shorthand: `ParameterKey=k,ParameterValue=v` (with
/// `UsePreviousValue`, `ResolvedValue`), one parameter apart from the next by whitespace.
///
/// # Errors
/// A sentence naming what is wrong.
pub fn parse_shorthand(key: &str, text: &str) -> Result<Vec<StackSetParameter>, String> {
    text.split_whitespace()
        .map(|group| {
            let mut p = StackSetParameter::default();
            for field in group.split(',').filter(|f| !f.is_empty()) {
                let Some((name, value)) = field.split_once('=') else {
                    return Err(format!("{key}: \"{field}\" is not Name=value"));
                };
                match name {
                    "ParameterKey" => p.parameter_key = value.to_owned(),
                    "ParameterValue" => p.parameter_value = Some(value.to_owned()),
                    "UsePreviousValue" => {
                        p.use_previous_value =
                            Some(parse_bool(value).map_err(|e| format!("{key}: {e}"))?);
                    }
                    "ResolvedValue" => p.resolved_value = Some(value.to_owned()),
                    other => {
                        return Err(format!(
                            "{key}: \"{other}\" is not ParameterKey, ParameterValue, UsePreviousValue or ResolvedValue"
                        ));
                    }
                }
            }
            if p.parameter_key.is_empty() {
                return Err(format!("{key}: \"{group}\" has no ParameterKey"));
            }
            Ok(p)
        })
        .collect()
}

/// A comma list, trimmed, without empty items.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Whether a value names a file in an artifact (`Artifact::path`) rather than holding the
/// value itself.
fn names_file(value: &str) -> bool {
    value.contains("::") && !value.trim_start().starts_with("ParameterKey=")
}

/// A percentage setting, 0 to 100.
fn percent(config: &indexmap::IndexMap<String, String>, key: &str) -> Result<Option<i32>, String> {
    match optional(config, key) {
        None => Ok(None),
        Some(v) => match v.parse::<i32>() {
            Ok(n) if (0..=100).contains(&n) => Ok(Some(n)),
            _ => Err(format!("{key} must be a whole number from 0 to 100, not \"{v}\"")),
        },
    }
}

/// What follows the operation an attempt waits on; the handle is its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// The stack set's name.
    pub set: String,
    /// Its id (`name:uuid`), the `StackSetId` variable.
    pub id: String,
    /// The operation waited on.
    pub op: String,
    /// Whether `UpdateStackSet` comes once it succeeds (after new instances were added).
    #[serde(default)]
    pub then_update: bool,
}

/// Where a stack set operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationVerdict {
    #[allow(missing_docs)]
    Going,
    #[allow(missing_docs)]
    Succeeded,
    /// Failed or stopped: how, with CloudFormation's reason.
    Failed(String),
}

/// What a stack set operation's status means.
pub fn operation_verdict(
    status: Option<&StackSetOperationStatus>,
    reason: Option<&str>,
) -> OperationVerdict {
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    match status {
        Some(StackSetOperationStatus::Succeeded) => OperationVerdict::Succeeded,
        Some(StackSetOperationStatus::Failed) => OperationVerdict::Failed(format!("failed{why}")),
        Some(StackSetOperationStatus::Stopped) => {
            OperationVerdict::Failed(format!("was stopped{why}"))
        }
        // Queued, Running, Stopping.
        _ => OperationVerdict::Going,
    }
}

/// The settings both actions read.
struct Settings {
    set: String,
    service_managed: bool,
    targets: Vec<String>,
    regions: Vec<String>,
    parameters: Vec<StackSetParameter>,
    preferences: StackSetOperationPreferences,
}

impl Settings {
    async fn read(job: &Job, parameters_key: &str) -> Result<Self, Stop> {
        let config = &job.request.configuration;
        let set = required(config, "StackSetName")?.to_owned();
        let service_managed = match optional(config, "PermissionModel") {
            None | Some("SELF_MANAGED") => false,
            Some("SERVICE_MANAGED") => true,
            Some(other) => {
                return Err(Failure::configuration(format!(
                    "PermissionModel must be SELF_MANAGED or SERVICE_MANAGED, not \"{other}\"."
                ))
                .into());
            }
        };
        let targets = match optional(config, "DeploymentTargets") {
            Some(v) if names_file(v) => {
                let bytes = artifact_file(job, "DeploymentTargets", v, 1024 * 1024).await?;
                serde_json::from_slice::<Vec<String>>(&bytes).map_err(|e| {
                    Failure::configuration(format!(
                        "DeploymentTargets {v} is not a JSON array of account or OU ids: {e}."
                    ))
                })?
            }
            Some(v) => parse_list(v),
            None => Vec::new(),
        };
        let regions = optional(config, "Regions").map(parse_list).unwrap_or_default();
        if targets.is_empty() != regions.is_empty() {
            return Err(Failure::configuration(
                "DeploymentTargets and Regions go together: give both, or neither.",
            )
            .into());
        }
        let parameters = match optional(config, parameters_key) {
            Some(v) if names_file(v) => {
                let bytes = artifact_file(job, parameters_key, v, 1024 * 1024).await?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::configuration(format!(
                        "{parameters_key} {v} is not a JSON array of parameters: {e}."
                    ))
                })?
            }
            Some(v) => parse_shorthand(parameters_key, v).map_err(Failure::configuration)?,
            None => Vec::new(),
        };
        let tolerance =
            percent(config, "FailureTolerancePercentage").map_err(Failure::configuration)?;
        let concurrency =
            percent(config, "MaxConcurrentPercentage").map_err(Failure::configuration)?;
        let preferences = StackSetOperationPreferences::builder()
            .set_failure_tolerance_percentage(tolerance)
            .set_max_concurrent_percentage(concurrency)
            .set_region_order(Some(regions.clone()).filter(|r| !r.is_empty()))
            .build();
        Ok(Self { set, service_managed, targets, regions, parameters, preferences })
    }

    fn sdk_parameters(&self) -> Vec<Parameter> {
        self.parameters
            .iter()
            .map(|p| {
                Parameter::builder()
                    .parameter_key(&p.parameter_key)
                    .set_parameter_value(p.parameter_value.clone())
                    .set_use_previous_value(p.use_previous_value)
                    .build()
            })
            .collect()
    }

    /// Accounts (self-managed: the calls' own `Accounts`, which every StackSets API takes), or
    /// organizational units (service-managed).
    fn accounts_or_units(&self) -> (Option<Vec<String>>, Option<DeploymentTargets>) {
        let targets = Some(self.targets.clone());
        if self.service_managed {
            (None, Some(DeploymentTargets::builder().set_organizational_unit_ids(targets).build()))
        } else {
            (targets, None)
        }
    }
}

/// Runs the two StackSets actions.
pub struct StackSetProvider {
    roles: Arc<dyn RoleCredentials>,
    /// `CloudFormationStackInstances` (true) or `CloudFormationStackSet`.
    instances_only: bool,
    templates: Option<Arc<dyn TemplateStore>>,
}

impl std::fmt::Debug for StackSetProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackSetProvider")
            .field("instances_only", &self.instances_only)
            .finish_non_exhaustive()
    }
}

impl StackSetProvider {
    /// The `CloudFormationStackSet` action.
    pub fn stack_set(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles, instances_only: false, templates: None }
    }

    /// The `CloudFormationStackInstances` action.
    pub fn stack_instances(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles, instances_only: true, templates: None }
    }

    /// Puts templates over the request's limit in `store` for CloudFormation to read.
    pub fn with_templates(mut self, store: Arc<dyn TemplateStore>) -> Self {
        self.templates = Some(store);
        self
    }

    async fn client(&self, request: &ActionRequest) -> Result<Client, Stop> {
        Ok(Client::new(&sdk_config(&self.roles, request).await?))
    }

    /// The template as a body, or the URL CloudFormation reads a larger one from.
    async fn template(&self, job: &Job) -> Result<(Option<String>, Option<String>), Stop> {
        let path = required(&job.request.configuration, "TemplatePath")?;
        let bytes = artifact_file(job, "TemplatePath", path, MAX_TEMPLATE_FROM_S3).await?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Failure::configuration(format!("The template {path} is not UTF-8 text."))
        })?;
        if text.len() as u64 <= MAX_TEMPLATE_BODY {
            return Ok((Some(text), None));
        }
        match &self.templates {
            Some(store) => Ok((None, Some(store.url(&job.request, text.into()).await?))),
            None => Err(Failure::configuration(format!(
                "The template {path} is over {MAX_TEMPLATE_BODY} bytes, which goes to CloudFormation through an artifact bucket, and this runtime has none."
            ))
            .into()),
        }
    }

    async fn start(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let client = self.client(r).await?;
        if self.instances_only {
            let s = Settings::read(job, "ParameterOverrides").await?;
            if s.targets.is_empty() {
                return Err(Failure::configuration(
                    "The action needs DeploymentTargets and Regions: the instances to create or update.",
                )
                .into());
            }
            let id = stack_set_id(&client, &s.set).await?.ok_or_else(|| {
                Failure::configuration(format!("The stack set {} does not exist.", s.set))
            })?;
            let op = create_instances(&client, &s, true).await?;
            return Ok(running(r, Handle { set: s.set, id, op, then_update: false }));
        }
        let s = Settings::read(job, "Parameters").await?;
        let (body, url) = self.template(job).await?;
        let capabilities = capabilities(r)?;
        let Some(id) = stack_set_id(&client, &s.set).await? else {
            let auto = auto_deployment(optional(&r.configuration, "OrganizationsAutoDeployment"))?;
            let created = client
                .create_stack_set()
                .stack_set_name(&s.set)
                .set_template_body(body)
                .set_template_url(url)
                .set_parameters(Some(s.sdk_parameters()))
                .set_capabilities(Some(capabilities))
                .permission_model(if s.service_managed {
                    PermissionModels::ServiceManaged
                } else {
                    PermissionModels::SelfManaged
                })
                .set_administration_role_arn(
                    optional(&r.configuration, "AdministrationRoleArn").map(str::to_owned),
                )
                .set_execution_role_name(
                    optional(&r.configuration, "ExecutionRoleName").map(str::to_owned),
                )
                .set_auto_deployment(auto)
                .set_description(optional(&r.configuration, "Description").map(str::to_owned))
                .send()
                .await
                .map_err(sdk_stop("CreateStackSet"))?;
            let id = created.stack_set_id().unwrap_or(&s.set).to_owned();
            if s.targets.is_empty() {
                return Ok(succeeded(r, &id, None));
            }
            let op = create_instances(&client, &s, false).await?;
            return Ok(running(r, Handle { set: s.set, id, op, then_update: false }));
        };
        if !s.targets.is_empty() {
            // New targets get their instances first; the update then reaches them too.
            let op = create_instances(&client, &s, false).await?;
            return Ok(running(r, Handle { set: s.set, id, op, then_update: true }));
        }
        let op = update(&client, job, &s, (body, url), capabilities).await?;
        Ok(running(r, Handle { set: s.set, id, op, then_update: false }))
    }

    async fn follow(&self, job: &Job, handle: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let handle: Handle = serde_json::from_str(handle).map_err(|e| {
            Failure::job(format!("The stack set operation's handle is unreadable: {e}."))
        })?;
        let client = self.client(r).await?;
        let operation = client
            .describe_stack_set_operation()
            .stack_set_name(&handle.set)
            .operation_id(&handle.op)
            .send()
            .await
            .map_err(sdk_stop("DescribeStackSetOperation"))?;
        let op = operation.stack_set_operation();
        let verdict =
            operation_verdict(op.and_then(|o| o.status()), op.and_then(|o| o.status_reason()));
        match verdict {
            OperationVerdict::Succeeded if handle.then_update => {
                let s = Settings::read(job, "Parameters").await?;
                let template = self.template(job).await?;
                let op = update(&client, job, &s, template, capabilities(r)?).await?;
                Ok(running(r, Handle { op, then_update: false, ..handle }))
            }
            OperationVerdict::Succeeded => Ok(succeeded(r, &handle.id, Some(&handle.op))),
            OperationVerdict::Failed(how) => {
                let failed = failed_instances(&client, &handle).await;
                Err(Failure::job(format!(
                    "Stack set {} operation {} {how}{failed}",
                    handle.set, handle.op
                ))
                .into())
            }
            OperationVerdict::Going if now_ms() < r.deadline => Ok(running(r, handle)),
            OperationVerdict::Going => {
                stop(&client, &handle).await;
                Err(Failure::timed_out(format!(
                    "Stack set {} operation {} did not end before the action's time-out; it was stopped.",
                    handle.set, handle.op
                ))
                .into())
            }
        }
    }
}

/// `Capabilities`: a comma list of CloudFormation's.
fn capabilities(r: &ActionRequest) -> Result<Vec<Capability>, Failure> {
    let named = optional(&r.configuration, "Capabilities").map(parse_capabilities).transpose();
    let named = named.map_err(Failure::configuration)?.unwrap_or_default();
    Ok(named.iter().map(|c| Capability::from(c.as_str())).collect())
}

/// `OrganizationsAutoDeployment`: `Enabled`, `Disabled`, `EnabledWithStackRetention`.
fn auto_deployment(value: Option<&str>) -> Result<Option<AutoDeployment>, Stop> {
    let (enabled, retain) = match value {
        None => return Ok(None),
        Some("Enabled") => (true, false),
        Some("EnabledWithStackRetention") => (true, true),
        Some("Disabled") => (false, false),
        Some(other) => {
            return Err(Failure::configuration(format!(
                "OrganizationsAutoDeployment must be Enabled, Disabled or EnabledWithStackRetention, not \"{other}\"."
            ))
            .into());
        }
    };
    let auto = AutoDeployment::builder().enabled(enabled);
    Ok(Some(if enabled { auto.retain_stacks_on_account_removal(retain) } else { auto }.build()))
}

/// The stack set's id, `None` when there is no such stack set.
async fn stack_set_id(client: &Client, set: &str) -> Result<Option<String>, Stop> {
    match client.describe_stack_set().stack_set_name(set).send().await {
        Ok(found) => {
            Ok(Some(found.stack_set().and_then(|s| s.stack_set_id()).unwrap_or(set).to_owned()))
        }
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeStackSetError::StackSetNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_stop("DescribeStackSet")(e)),
    }
}

/// A stack set runs one operation at a time: meeting another is worth a later try.
fn busy_or<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> Stop
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        if e.code() == Some("OperationInProgressException") {
            Stop::Unavailable(Box::new(e))
        } else {
            sdk_stop(operation)(e)
        }
    }
}

async fn create_instances(client: &Client, s: &Settings, overrides: bool) -> Result<String, Stop> {
    let (accounts, units) = s.accounts_or_units();
    let created = client
        .create_stack_instances()
        .stack_set_name(&s.set)
        .set_accounts(accounts)
        .set_deployment_targets(units)
        .set_regions(Some(s.regions.clone()))
        .set_parameter_overrides(Some(s.sdk_parameters()).filter(|_| overrides))
        .operation_preferences(s.preferences.clone())
        .send()
        .await
        .map_err(busy_or("CreateStackInstances"))?;
    created
        .operation_id()
        .map(str::to_owned)
        .ok_or_else(|| Failure::job("CreateStackInstances gave no operation id.").into())
}

async fn update(
    client: &Client,
    job: &Job,
    s: &Settings,
    (body, url): (Option<String>, Option<String>),
    capabilities: Vec<Capability>,
) -> Result<String, Stop> {
    let config = &job.request.configuration;
    let mut call = client
        .update_stack_set()
        .stack_set_name(&s.set)
        .set_template_body(body)
        .set_template_url(url)
        .set_parameters(Some(s.sdk_parameters()))
        .set_capabilities(Some(capabilities))
        .set_administration_role_arn(optional(config, "AdministrationRoleArn").map(str::to_owned))
        .set_execution_role_name(optional(config, "ExecutionRoleName").map(str::to_owned))
        .set_description(optional(config, "Description").map(str::to_owned))
        .operation_preferences(s.preferences.clone());
    if !s.targets.is_empty() {
        let (accounts, units) = s.accounts_or_units();
        call = call
            .set_accounts(accounts)
            .set_deployment_targets(units)
            .set_regions(Some(s.regions.clone()));
    }
    let updated = call.send().await.map_err(busy_or("UpdateStackSet"))?;
    updated
        .operation_id()
        .map(str::to_owned)
        .ok_or_else(|| Failure::job("UpdateStackSet gave no operation id.").into())
}

/// The instances an operation failed in, as `; account in region: status: reason` lines.
async fn failed_instances(client: &Client, handle: &Handle) -> String {
    let Ok(results) = client
        .list_stack_set_operation_results()
        .stack_set_name(&handle.set)
        .operation_id(&handle.op)
        .send()
        .await
    else {
        return ".".into();
    };
    let failed: Vec<String> = results
        .summaries()
        .iter()
        .filter(|s| s.status().is_some_and(|st| st.as_str() != "SUCCEEDED"))
        .map(|s| {
            format!(
                "{} in {}: {}{}",
                s.account().unwrap_or("?"),
                s.region().unwrap_or("?"),
                s.status().map(|st| st.as_str()).unwrap_or_default(),
                s.status_reason().map(|r| format!(": {r}")).unwrap_or_default()
            )
        })
        .collect();
    if failed.is_empty() { ".".into() } else { format!(": {}.", failed.join("; ")) }
}

async fn stop(client: &Client, handle: &Handle) {
    let stopped = client
        .stop_stack_set_operation()
        .stack_set_name(&handle.set)
        .operation_id(&handle.op)
        .send()
        .await;
    if let Err(e) = stopped {
        tracing::warn!(stack_set = %handle.set, operation = %handle.op, error = %aws_sdk_cloudformation::error::DisplayErrorContext(&e), "cannot stop a stack set operation");
    }
}

fn console_url(region: &str, set: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacksets/{}/info",
        super::url_encode(set)
    )
}

fn running(r: &ActionRequest, handle: Handle) -> JobResult {
    JobResult::Running {
        external_url: Some(console_url(&r.region, &handle.set)),
        external_id: serde_json::to_string(&handle).unwrap_or_default(),
    }
}

fn succeeded(r: &ActionRequest, id: &str, op: Option<&str>) -> JobResult {
    let set = id.split_once(':').map_or(id, |(name, _)| name);
    let mut variables = BTreeMap::from([("StackSetId".to_owned(), id.to_owned())]);
    if let Some(op) = op {
        variables.insert("OperationId".to_owned(), op.to_owned());
    }
    JobResult::Succeeded {
        output_artifacts: Vec::new(),
        output_variables: variables,
        summary: Some(match op {
            Some(op) => format!("Stack set {set}: operation {op} succeeded"),
            None => format!("Stack set {set} created, with no instances yet"),
        }),
        external_id: Some(id.to_owned()),
        external_url: Some(console_url(&r.region, set)),
    }
}

#[async_trait]
impl ActionProvider for StackSetProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        let literal = |key: &str| {
            config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty() && !has_reference(v))
        };
        let mut needed = vec!["StackSetName"];
        if !self.instances_only {
            needed.push("TemplatePath");
        }
        super::check_required(config, &needed, "the action configuration")?;
        for key in ["Parameters", "ParameterOverrides"] {
            if let Some(v) = literal(key).filter(|v| !names_file(v)) {
                parse_shorthand(key, v)?;
            }
        }
        if let Some(c) = literal("Capabilities") {
            parse_capabilities(c)?;
        }
        for key in ["FailureTolerancePercentage", "MaxConcurrentPercentage"] {
            if literal(key).is_some() {
                percent(config, key)?;
            }
        }
        Ok(())
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.start(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.follow(job, external_id).await)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let Ok(handle) = serde_json::from_str::<Handle>(external_id) else { return Ok(()) };
        if let Some(config) = config_for_cancel(&self.roles, request).await? {
            stop(&Client::new(&config), &handle).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_parameters_read_as_cloudformation_writes_them() {
        let text = "ParameterKey=Env,ParameterValue=prod\n  ParameterKey=Size,UsePreviousValue=true ParameterKey=Empty,ParameterValue=";
        let parsed = parse_shorthand("Parameters", text).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].parameter_key, "Env");
        assert_eq!(parsed[0].parameter_value.as_deref(), Some("prod"));
        assert_eq!(parsed[1].use_previous_value, Some(true));
        assert_eq!(parsed[2].parameter_value.as_deref(), Some(""));
        for (bad, says) in [
            ("ParameterValue=x", "has no ParameterKey"),
            ("ParameterKey=A,Value=x", "is not ParameterKey, ParameterValue"),
            ("ParameterKey=A,UsePreviousValue=maybe", "is not true or false"),
            ("ParameterKey", "is not Name=value"),
        ] {
            let e = parse_shorthand("Parameters", bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let file: Vec<StackSetParameter> = serde_json::from_str(
            r#"[{"ParameterKey": "Env", "ParameterValue": "prod", "UsePreviousValue": "false"}]"#,
        )
        .unwrap();
        assert_eq!(file[0].use_previous_value, Some(false));
    }

    #[test]
    fn lists_and_files_are_told_apart() {
        assert_eq!(parse_list(" us-east-1, eu-central-1 ,"), ["us-east-1", "eu-central-1"]);
        assert!(names_file("Src::targets.json"));
        assert!(!names_file("111111111111,222222222222"));
        assert!(!names_file("ParameterKey=Url,ParameterValue=a::b"));
    }

    #[test]
    fn an_operation_is_judged_by_its_status() {
        use StackSetOperationStatus::*;
        for going in [Queued, Running, Stopping] {
            assert_eq!(operation_verdict(Some(&going), None), OperationVerdict::Going);
        }
        assert_eq!(operation_verdict(Some(&Succeeded), None), OperationVerdict::Succeeded);
        assert_eq!(
            operation_verdict(Some(&Failed), Some("tolerance exceeded")),
            OperationVerdict::Failed("failed: tolerance exceeded".into())
        );
        assert_eq!(
            operation_verdict(Some(&Stopped), None),
            OperationVerdict::Failed("was stopped".into())
        );
    }
}
