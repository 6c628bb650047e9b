//! `AWS/Deploy/CloudFormation`: creates, updates, replaces or deletes a stack, or creates and
//! executes change sets, in the action's account and region, and waits for the stack to
//! settle.
//!
//! # Contract
//!
//! | `ActionMode`          | stack absent          | stack present                                 |
//! |-----------------------|-----------------------|-----------------------------------------------|
//! | `CREATE_UPDATE`       | create                | update (a failed stack stays failed: CloudFormation refuses the update) |
//! | `REPLACE_ON_FAILURE`  | create                | in a failed state: delete, then create; otherwise update |
//! | `DELETE_ONLY`         | success               | delete                                        |
//! | `CHANGE_SET_REPLACE`  | change set `CREATE`   | delete a change set of that name, then change set `UPDATE` |
//! | `CHANGE_SET_EXECUTE`  | failure               | execute the change set                        |
//!
//! A stack still in an `*_IN_PROGRESS` state is waited for before acting. "No updates are to
//! be performed" (and a change set without changes) is success. After acting, `DescribeStacks`
//! is polled with a [`Backoff`] until the stack settles, for up to [`DEFAULT_WAIT_IN_WORKER`]:
//! an operation still going on then is handed over (`Running` with the stack's id) and `resume`
//! looks again on the worker's later checks, until it settles or the request's deadline passes;
//! [`stack_verdict`] decides what a status means, so every failure status is unit-tested
//! even though moto's CloudFormation never fails a stack. The stack's outputs become the
//! action's output variables and, with `OutputFileName`, a JSON file in the one output
//! artifact (which is an empty zip without it, so a declared output always exists for the
//! actions that consume it).
//!
//! Everything CloudFormation is asked goes through [`StackApi`], which the SDK implements and
//! a test fake can implement too (rollbacks, failures, slow stacks).
//!
//! A template over CloudFormation's request limit ([`MAX_TEMPLATE_BODY`]) is read by
//! CloudFormation from the deployment's artifact bucket
//! ([`cfn_templates`](super::cfn_templates)), up to its 1 MB limit; where there is no such
//! bucket (one machine), it is refused naming the limit.
//!
//! `ParameterOverrides` values are strings, numbers or booleans, `{"Fn::GetParam":
//! ["Artifact", "file.json", "key"]}` read from an input artifact, or `{"Fn::GetArtifactAtt":
//! ["Artifact", "BucketName" | "ObjectKey" | "URL"]}`: where the input lies in the action
//! region's store (the worker tells, [`Job::input_places`]), the URL presigned; with artifacts
//! in local files (one machine) it is refused, saying so.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde_json::Value;

use super::cfn_templates::{MAX_TEMPLATE_FROM_S3, TemplateStore};
use super::credentials::RoleCredentials;
use super::{
    Apis, Backoff, Failure, SdkFault, Stop, blocking, classify, finish, has_reference, optional,
    read_zip_entry, required, time_left, url_encode, write_zip,
};
use baton_app::ports::BoxError;
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// CloudFormation's limit on a template passed in the request body.
/// <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html>
pub const MAX_TEMPLATE_BODY: u64 = 51_200;
/// The most a template configuration file may hold: far more than any real one.
const MAX_CONFIGURATION_FILE: u64 = 1024 * 1024;

/// A stack as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The stack's ARN, which (unlike its name) still finds it once deleted.
    pub id: String,
    /// `CREATE_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`...
    pub status: String,
    #[allow(missing_docs)]
    pub reason: Option<String>,
    /// Output key to value.
    pub outputs: BTreeMap<String, String>,
}

/// A change set as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// `CREATE_PENDING`, `CREATE_COMPLETE`, `FAILED`...
    pub status: String,
    #[allow(missing_docs)]
    pub reason: Option<String>,
}

/// What a create, update or change set sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackInput {
    #[allow(missing_docs)]
    pub stack_name: String,
    /// The template itself, when it fits in a request ([`MAX_TEMPLATE_BODY`]).
    pub template_body: String,
    /// Where CloudFormation reads a larger template from, instead of the body.
    pub template_url: Option<String>,
    #[allow(missing_docs)]
    pub parameters: BTreeMap<String, String>,
    #[allow(missing_docs)]
    pub tags: BTreeMap<String, String>,
    /// `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`.
    pub capabilities: Vec<String>,
    /// The CloudFormation service role (`RoleArn`).
    pub role_arn: Option<String>,
    /// The stack policy, as JSON.
    pub stack_policy: Option<String>,
}

/// Whether an update started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    #[allow(missing_docs)]
    Started,
    /// CloudFormation found nothing to change.
    NoChanges,
}

/// How a CloudFormation call fails.
#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    /// CloudFormation refused the request (an invalid template, a missing capability, a stack
    /// in a state that forbids it). Fail the action with this message.
    #[error("{code}: {message}")]
    Refused {
        #[allow(missing_docs)]
        code: String,
        #[allow(missing_docs)]
        message: String,
    },
    /// CloudFormation could not be reached or throttled us. Retry later.
    #[error("CloudFormation unavailable")]
    Unavailable(#[source] BoxError),
}

/// What the action asks CloudFormation, by stack name or id.
#[async_trait]
pub trait StackApi: Send + Sync {
    /// The stack, `None` if there is none of that name (or id).
    async fn describe_stack(&self, stack: &str) -> Result<Option<Stack>, CfnError>;
    /// Starts creating a stack; returns its id.
    async fn create_stack(&self, input: &StackInput) -> Result<String, CfnError>;
    /// Starts updating a stack.
    async fn update_stack(&self, input: &StackInput) -> Result<Update, CfnError>;
    /// Starts deleting a stack.
    async fn delete_stack(&self, stack: &str, role_arn: Option<&str>) -> Result<(), CfnError>;
    /// Starts creating a change set of type `CREATE` (`create` true) or `UPDATE`.
    async fn create_change_set(
        &self,
        input: &StackInput,
        name: &str,
        create: bool,
    ) -> Result<(), CfnError>;
    /// The change set, `None` if there is none.
    async fn describe_change_set(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Option<ChangeSet>, CfnError>;
    #[allow(missing_docs)]
    async fn delete_change_set(&self, stack: &str, name: &str) -> Result<(), CfnError>;
    /// Starts executing a change set.
    async fn execute_change_set(&self, stack: &str, name: &str) -> Result<(), CfnError>;
}

// ---------------------------------------------------------------------------------------------
// What statuses mean

/// What a stack's status means once an operation was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackVerdict {
    /// Still moving: poll again.
    InProgress,
    /// Created, updated or imported.
    Deployed,
    /// Gone.
    Deleted,
    /// Holds only a change set never executed (`REVIEW_IN_PROGRESS`): settled, not deployed.
    Review,
    /// Failed or rolled back; the message names the status and CloudFormation's reason.
    Failed(String),
}

/// What a stack status means. `*_FAILED` and every rollback that completed are failures: the
/// stack is not what the template asked for.
pub fn stack_verdict(status: &str, reason: Option<&str>) -> StackVerdict {
    match status {
        "REVIEW_IN_PROGRESS" => StackVerdict::Review,
        s if s.ends_with("_IN_PROGRESS") => StackVerdict::InProgress,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => StackVerdict::Deployed,
        "DELETE_COMPLETE" => StackVerdict::Deleted,
        s if s.ends_with("_FAILED")
            || matches!(
                s,
                "ROLLBACK_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE"
            ) =>
        {
            StackVerdict::Failed(match reason.map(str::trim).filter(|r| !r.is_empty()) {
                Some(reason) => format!("The stack is in {status}: {reason}"),
                None => format!("The stack is in {status}."),
            })
        }
        other => StackVerdict::Failed(format!("The stack is in an unknown status {other}.")),
    }
}

/// Whether `REPLACE_ON_FAILURE` deletes the stack before creating it again: the failed states
/// CodePipeline documents for that mode.
pub fn needs_replacement(status: &str) -> bool {
    matches!(
        status,
        "ROLLBACK_COMPLETE"
            | "ROLLBACK_FAILED"
            | "CREATE_FAILED"
            | "DELETE_FAILED"
            | "UPDATE_ROLLBACK_FAILED"
    )
}

/// What a change set's status means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetVerdict {
    /// Still being computed: poll again.
    InProgress,
    /// Ready to execute.
    Ready,
    /// CloudFormation found nothing to change: success, nothing to execute.
    NoChanges,
    /// The change set cannot be used.
    Failed(String),
}

/// What a change set status means. A change set without changes ends `FAILED`, which the
/// action treats as success, as CodePipeline does.
pub fn change_set_verdict(status: &str, reason: Option<&str>) -> ChangeSetVerdict {
    let reason = reason.unwrap_or("");
    match status {
        "CREATE_PENDING" | "CREATE_IN_PROGRESS" => ChangeSetVerdict::InProgress,
        "CREATE_COMPLETE" => ChangeSetVerdict::Ready,
        "FAILED" if is_no_changes(reason) => ChangeSetVerdict::NoChanges,
        other if reason.is_empty() => {
            ChangeSetVerdict::Failed(format!("The change set is in {other}."))
        }
        other => ChangeSetVerdict::Failed(format!("The change set is in {other}: {reason}")),
    }
}

/// CloudFormation's two ways of saying there is nothing to do.
fn is_no_changes(message: &str) -> bool {
    message.contains("No updates are to be performed") || message.contains("didn't contain changes")
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// `ActionMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CreateUpdate,
    ReplaceOnFailure,
    DeleteOnly,
    ChangeSetReplace,
    ChangeSetExecute,
}

impl Mode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "CREATE_UPDATE" => Self::CreateUpdate,
            "REPLACE_ON_FAILURE" => Self::ReplaceOnFailure,
            "DELETE_ONLY" => Self::DeleteOnly,
            "CHANGE_SET_REPLACE" => Self::ChangeSetReplace,
            "CHANGE_SET_EXECUTE" => Self::ChangeSetExecute,
            other => {
                return Err(format!(
                    "ActionMode \"{other}\" is not one of CREATE_UPDATE, REPLACE_ON_FAILURE, \
                     DELETE_ONLY, CHANGE_SET_REPLACE, CHANGE_SET_EXECUTE"
                ));
            }
        })
    }

    /// Whether the mode sends a template.
    fn needs_template(self) -> bool {
        matches!(self, Self::CreateUpdate | Self::ReplaceOnFailure | Self::ChangeSetReplace)
    }
}

const CAPABILITIES: [&str; 3] =
    ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"];

pub(super) fn parse_capabilities(value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            if CAPABILITIES.contains(&c) {
                Ok(c.to_owned())
            } else {
                Err(format!("Capabilities: \"{c}\" is not one of {}", CAPABILITIES.join(", ")))
            }
        })
        .collect()
}

/// A stack name: a letter, then letters, digits and `-`, at most 128.
fn check_stack_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "StackName \"{name}\" must start with a letter and hold only letters, digits and '-' \
             (at most 128)"
        ))
    }
}

/// `Artifact::path/in/zip` as (artifact, path).
fn parse_artifact_path<'a>(key: &str, value: &'a str) -> Result<(&'a str, &'a str), String> {
    match value.split_once("::") {
        Some((artifact, path)) if !artifact.trim().is_empty() && !path.trim().is_empty() => {
            Ok((artifact.trim(), path.trim()))
        }
        _ => Err(format!("{key} \"{value}\" must have the form ArtifactName::path/in/artifact")),
    }
}

/// The action's configuration, checked.
#[derive(Debug, Clone)]
struct Settings {
    mode: Mode,
    stack_name: String,
    capabilities: Vec<String>,
    role_arn: Option<String>,
    change_set_name: Option<String>,
    output_file_name: Option<String>,
    template_path: Option<String>,
    template_configuration: Option<String>,
    parameter_overrides: Option<String>,
}

impl Settings {
    fn parse(job: &Job) -> Result<Self, Failure> {
        let config = &job.request.configuration;
        let mode = Mode::parse(required(config, "ActionMode")?).map_err(Failure::configuration)?;
        let stack_name = required(config, "StackName")?.to_owned();
        check_stack_name(&stack_name).map_err(Failure::configuration)?;
        let capabilities = optional(config, "Capabilities")
            .map(parse_capabilities)
            .transpose()
            .map_err(Failure::configuration)?
            .unwrap_or_default();
        let change_set_name = optional(config, "ChangeSetName").map(str::to_owned);
        if matches!(mode, Mode::ChangeSetReplace | Mode::ChangeSetExecute)
            && change_set_name.is_none()
        {
            return Err(Failure::configuration(
                "The action configuration needs ChangeSetName in this ActionMode.",
            ));
        }
        let template_path = optional(config, "TemplatePath").map(str::to_owned);
        if mode.needs_template() && template_path.is_none() {
            return Err(Failure::configuration(
                "The action configuration needs TemplatePath in this ActionMode.",
            ));
        }
        let output_file_name = optional(config, "OutputFileName").map(str::to_owned);
        if output_file_name.is_some() && job.request.output_artifacts.is_empty() {
            return Err(Failure::configuration(
                "OutputFileName needs an output artifact to write the file into.",
            ));
        }
        Ok(Self {
            mode,
            stack_name,
            capabilities,
            role_arn: optional(config, "RoleArn").map(str::to_owned),
            change_set_name,
            output_file_name,
            template_path,
            template_configuration: optional(config, "TemplateConfiguration").map(str::to_owned),
            parameter_overrides: optional(config, "ParameterOverrides").map(str::to_owned),
        })
    }
}

/// Reads `Artifact::path` from the job's input of that name.
pub(super) async fn artifact_file(
    job: &Job,
    key: &str,
    value: &str,
    limit: u64,
) -> Result<Vec<u8>, Failure> {
    let (artifact, path) = parse_artifact_path(key, value).map_err(Failure::configuration)?;
    let input = job.inputs.iter().find(|i| i.name == artifact).ok_or_else(|| {
        Failure::configuration(format!(
            "{key} names the artifact {artifact}, which is not an input of this action."
        ))
    })?;
    let (zip, path) = (input.clone(), path.to_owned());
    let (key, value) = (key.to_owned(), value.to_owned());
    blocking(move || {
        read_zip_entry(&zip, &path, limit)
            .map_err(|f| Failure { code: f.code, message: format!("{key} {value}: {}", f.message) })
    })
    .await
}

/// A JSON parameter or tag value as the string CloudFormation takes.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `{"k": "v"}` object from a configuration file as a map, refusing non-scalar values.
fn string_map(what: &str, value: Option<&Value>) -> Result<BTreeMap<String, String>, Failure> {
    let Some(value) = value else { return Ok(BTreeMap::new()) };
    let Value::Object(map) = value else {
        return Err(Failure::configuration(format!("{what} must be a JSON object.")));
    };
    map.iter()
        .map(|(k, v)| {
            scalar(v).map(|v| (k.clone(), v)).ok_or_else(|| {
                Failure::configuration(format!("{what}: the value of {k} must be a string."))
            })
        })
        .collect()
}

/// Builds what a create, update or change set sends: the template, then parameters, tags and
/// stack policy from `TemplateConfiguration`, then `ParameterOverrides` on top.
async fn stack_input(
    job: &Job,
    settings: &Settings,
    templates: Option<&dyn TemplateStore>,
) -> Result<StackInput, Stop> {
    let Some(template_path) = &settings.template_path else {
        return Err(Failure::configuration("The action configuration needs TemplatePath.").into());
    };
    let template = artifact_file(job, "TemplatePath", template_path, MAX_TEMPLATE_FROM_S3).await?;
    let template_body = String::from_utf8(template).map_err(|_| {
        Failure::configuration(format!("The template {template_path} is not UTF-8 text."))
    })?;
    // CloudFormation reads a template over its request limit from S3, as CodePipeline's does.
    let (template_body, template_url) = match templates {
        _ if template_body.len() as u64 <= MAX_TEMPLATE_BODY => (template_body, None),
        Some(store) => (String::new(), Some(store.url(&job.request, template_body.into()).await?)),
        None => {
            return Err(Failure::configuration(format!(
                "The template {template_path} is {} bytes; CloudFormation takes at most \
                 {MAX_TEMPLATE_BODY} bytes in a request, and a larger one goes through the \
                 artifact store's bucket, which this runtime does not have.",
                template_body.len()
            ))
            .into());
        }
    };
    let mut input = StackInput {
        stack_name: settings.stack_name.clone(),
        template_body,
        template_url,
        capabilities: settings.capabilities.clone(),
        role_arn: settings.role_arn.clone(),
        ..StackInput::default()
    };
    if let Some(path) = &settings.template_configuration {
        let bytes =
            artifact_file(job, "TemplateConfiguration", path, MAX_CONFIGURATION_FILE).await?;
        let document: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::configuration(format!("TemplateConfiguration {path} is not valid JSON: {e}."))
        })?;
        input.parameters =
            string_map("TemplateConfiguration Parameters", document.get("Parameters"))?;
        input.tags = string_map("TemplateConfiguration Tags", document.get("Tags"))?;
        input.stack_policy = document.get("StackPolicy").map(Value::to_string);
    }
    if let Some(overrides) = &settings.parameter_overrides {
        let overrides: Value = serde_json::from_str(overrides).map_err(|e| {
            Failure::configuration(format!("ParameterOverrides is not valid JSON: {e}."))
        })?;
        let Value::Object(overrides) = overrides else {
            return Err(Failure::configuration("ParameterOverrides must be a JSON object.").into());
        };
        for (name, value) in overrides {
            let value = override_value(job, &name, &value, templates).await?;
            input.parameters.insert(name, value);
        }
    }
    Ok(input)
}

/// One `ParameterOverrides` value: a scalar, or `Fn::GetParam` read from an input artifact.
async fn override_value(
    job: &Job,
    name: &str,
    value: &Value,
    templates: Option<&dyn TemplateStore>,
) -> Result<String, Stop> {
    if let Some(value) = scalar(value) {
        return Ok(value);
    }
    let refused = |why: &str| Failure::configuration(format!("ParameterOverrides {name}: {why}"));
    if let Some(args) = value.get("Fn::GetArtifactAtt") {
        return artifact_attribute(job, args, templates).await.map_err(|e| match e {
            Stop::Failed(f) if f.code == "ConfigurationError" => refused(&f.message).into(),
            other => other,
        });
    }
    let Some(Value::Array(args)) = value.get("Fn::GetParam") else {
        return Err(refused(
            "the value must be a string, {\"Fn::GetParam\": [...]} or {\"Fn::GetArtifactAtt\": [...]}.",
        )
        .into());
    };
    let [Value::String(artifact), Value::String(file), Value::String(key)] = args.as_slice() else {
        return Err(refused("Fn::GetParam takes [\"Artifact\", \"file.json\", \"key\"].").into());
    };
    let bytes = artifact_file(
        job,
        "ParameterOverrides",
        &format!("{artifact}::{file}"),
        MAX_CONFIGURATION_FILE,
    )
    .await?;
    let document: Value = serde_json::from_slice(&bytes)
        .map_err(|e| refused(&format!("{file} is not valid JSON: {e}.")))?;
    document
        .get(key)
        .and_then(scalar)
        .ok_or_else(|| refused(&format!("{file} has no string value {key}.")).into())
}

/// `Fn::GetArtifactAtt: ["Artifact", "BucketName" | "ObjectKey" | "URL"]`: where an input
/// artifact lies in the action region's store, as CodePipeline gives it (the URL presigned).
async fn artifact_attribute(
    job: &Job,
    args: &Value,
    templates: Option<&dyn TemplateStore>,
) -> Result<String, Stop> {
    let refused = |why: String| -> Stop { Failure::configuration(why).into() };
    let Some([Value::String(artifact), Value::String(attribute)]) =
        args.as_array().map(Vec::as_slice)
    else {
        return Err(refused(
            "Fn::GetArtifactAtt takes [\"Artifact\", \"BucketName\" | \"ObjectKey\" | \"URL\"]."
                .into(),
        ));
    };
    let Some((_, place)) = job.input_places.iter().find(|(name, _)| name == artifact) else {
        return Err(refused(if job.inputs.iter().any(|i| &i.name == artifact) {
            format!(
                "Fn::GetArtifactAtt names where {artifact} lies in S3, and this runtime keeps artifacts in local files."
            )
        } else {
            format!("Fn::GetArtifactAtt names {artifact}, which is not an input of this action.")
        }));
    };
    match attribute.as_str() {
        "BucketName" => Ok(place.bucket.clone()),
        "ObjectKey" => Ok(place.key.clone()),
        "URL" => match templates {
            Some(store) => store.artifact_url(&job.request, place).await,
            None => Err(refused("Fn::GetArtifactAtt URL needs the artifact store's bucket, which this runtime does not have.".into())),
        },
        other => Err(refused(format!(
            "Fn::GetArtifactAtt takes BucketName, ObjectKey or URL, not \"{other}\"."
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// The provider

/// Runs `AWS/Deploy/CloudFormation` actions.
#[derive(Clone)]
pub struct CloudFormationProvider {
    apis: Apis<dyn StackApi>,
    templates: Option<Arc<dyn TemplateStore>>,
    backoff: Backoff,
    /// How long the worker waits for a stack operation it started before handing it over.
    wait_in_worker: Duration,
}

/// A no-op update or a small stack settles within this; a longer operation is followed by the
/// worker's later looks (once a minute on AWS), so no stack is bounded by one Lambda
/// invocation's 15 minutes. Short because Lambda bills the wait: two minutes at the worker's
/// 512 MB would cost $0.001, fifty times what the rest of an action costs.
pub const DEFAULT_WAIT_IN_WORKER: Duration = Duration::from_secs(10);

impl fmt::Debug for CloudFormationProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudFormationProvider")
            .field("backoff", &self.backoff)
            .field("wait_in_worker", &self.wait_in_worker)
            .finish()
    }
}

impl CloudFormationProvider {
    /// Calls CloudFormation with the action's role and region.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self {
            apis: Apis::Sdk(roles),
            templates: None,
            backoff: Backoff::default(),
            wait_in_worker: DEFAULT_WAIT_IN_WORKER,
        }
    }

    /// Sends every call to `api`, whatever the action's role and region (a fake, in tests).
    pub fn with_api(api: Arc<dyn StackApi>) -> Self {
        Self {
            apis: Apis::Fixed(api),
            templates: None,
            backoff: Backoff::default(),
            wait_in_worker: DEFAULT_WAIT_IN_WORKER,
        }
    }

    /// Puts templates over [`MAX_TEMPLATE_BODY`] in `store` for CloudFormation to read; without
    /// one they are refused.
    pub fn with_templates(mut self, store: Arc<dyn TemplateStore>) -> Self {
        self.templates = Some(store);
        self
    }

    /// Polls with `backoff` instead of the default.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Hands a stack operation over after `wait` instead of [`DEFAULT_WAIT_IN_WORKER`].
    pub fn with_wait_in_worker(mut self, wait: Duration) -> Self {
        self.wait_in_worker = wait;
        self
    }

    async fn api(&self, job: &Job) -> Result<Arc<dyn StackApi>, Stop> {
        self.apis
            .for_request(&job.request, |c| Arc::new(SdkStacks { client: Client::new(c) }))
            .await
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let settings = Settings::parse(job)?;
        let api = self.api(job).await?;
        let run = Run {
            api: api.as_ref(),
            templates: self.templates.as_deref(),
            job,
            settings: &settings,
            backoff: self.backoff,
            hand_over_at: Instant::now() + self.wait_in_worker,
        };
        match settings.mode {
            Mode::CreateUpdate | Mode::ReplaceOnFailure => run.create_or_update().await,
            Mode::DeleteOnly => run.delete().await,
            Mode::ChangeSetReplace => run.replace_change_set().await,
            Mode::ChangeSetExecute => run.execute_change_set().await,
        }
    }

    /// One look at the stack operation `run` handed over (`stack_id`).
    async fn look(&self, job: &Job, stack_id: &str) -> Result<JobResult, Stop> {
        let settings = Settings::parse(job)?;
        let api = self.api(job).await?;
        // Already past its hand-over: `conclude` looks once and hands over again if need be.
        let run = Run {
            api: api.as_ref(),
            templates: self.templates.as_deref(),
            job,
            settings: &settings,
            backoff: self.backoff,
            hand_over_at: Instant::now(),
        };
        run.conclude(stack_id, settings.mode == Mode::DeleteOnly).await
    }
}

#[async_trait]
impl ActionProvider for CloudFormationProvider {
    fn wants_input_places(&self, request: &ActionRequest) -> bool {
        request
            .configuration
            .get("ParameterOverrides")
            .is_some_and(|o| o.contains("Fn::GetArtifactAtt"))
    }

    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        let literal = |key: &str| {
            config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty() && !has_reference(v))
        };
        let mode = literal("ActionMode").map(Mode::parse).transpose()?;
        if let Some(name) = literal("StackName") {
            check_stack_name(name)?;
        }
        if let Some(capabilities) = literal("Capabilities") {
            parse_capabilities(capabilities)?;
        }
        for key in ["TemplatePath", "TemplateConfiguration"] {
            if let Some(value) = literal(key) {
                parse_artifact_path(key, value)?;
            }
        }
        if let Some(mode) = mode
            && mode.needs_template()
            && config.get("TemplatePath").is_none_or(|v| v.trim().is_empty())
        {
            return Err("the action configuration needs TemplatePath in this ActionMode".into());
        }
        Ok(())
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    /// One look at the stack operation `run` handed over (`external_id` is the stack's id).
    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.look(job, external_id).await)
    }
}

/// One action attempt.
struct Run<'a> {
    api: &'a dyn StackApi,
    templates: Option<&'a dyn TemplateStore>,
    job: &'a Job,
    settings: &'a Settings,
    backoff: Backoff,
    /// When the final wait for a started operation stops and hands it over.
    hand_over_at: Instant,
}

/// The template body a request sends: none when CloudFormation reads it from a URL.
fn body(input: &StackInput) -> Option<String> {
    input.template_url.is_none().then(|| input.template_body.clone())
}

/// Maps a [`CfnError`] of `operation` to a [`Stop`].
fn cfn_stop(operation: &'static str) -> impl FnOnce(CfnError) -> Stop {
    move |e| match e {
        CfnError::Refused { code, message } => {
            Stop::Failed(Failure::job(format!("{operation} failed: {code}: {message}")))
        }
        CfnError::Unavailable(source) => Stop::Unavailable(source),
    }
}

impl Run<'_> {
    fn name(&self) -> &str {
        &self.settings.stack_name
    }

    fn deadline(&self) -> i64 {
        self.job.request.deadline
    }

    /// Sleeps `delay` (less if the deadline comes first); `false` once the deadline passed.
    async fn pause(&self, delay: Duration) -> bool {
        let left = time_left(self.deadline());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(delay.min(left)).await;
        true
    }

    /// Polls `stack` until its status is no longer in progress; `None` if it is gone.
    async fn settle(&self, stack: &str) -> Result<Option<Stack>, Stop> {
        let mut delay = self.backoff.first;
        loop {
            let Some(current) =
                self.api.describe_stack(stack).await.map_err(cfn_stop("DescribeStacks"))?
            else {
                return Ok(None);
            };
            if stack_verdict(&current.status, current.reason.as_deref()) != StackVerdict::InProgress
            {
                return Ok(Some(current));
            }
            if !self.pause(delay).await {
                return Err(Failure::timed_out(format!(
                    "The stack {} was still in {} when the action's deadline passed.",
                    self.name(),
                    current.status
                ))
                .into());
            }
            delay = self.backoff.next(delay);
        }
    }

    /// Polls the change set until it is computed.
    async fn settle_change_set(&self, name: &str) -> Result<ChangeSetVerdict, Stop> {
        let mut delay = self.backoff.first;
        loop {
            let Some(change_set) = self
                .api
                .describe_change_set(self.name(), name)
                .await
                .map_err(cfn_stop("DescribeChangeSet"))?
            else {
                return Err(Failure::job(format!(
                    "The change set {name} of stack {} does not exist.",
                    self.name()
                ))
                .into());
            };
            let verdict = change_set_verdict(&change_set.status, change_set.reason.as_deref());
            if verdict != ChangeSetVerdict::InProgress {
                return Ok(verdict);
            }
            if !self.pause(delay).await {
                return Err(Failure::timed_out(format!(
                    "The change set {name} was still in {} when the action's deadline passed.",
                    change_set.status
                ))
                .into());
            }
            delay = self.backoff.next(delay);
        }
    }

    /// Waits for the operation just started on `stack_id` until it ends (its result), the
    /// hand-over time (`Running`: the worker looks again later) or the deadline (timed out).
    async fn conclude(&self, stack_id: &str, want_deleted: bool) -> Result<JobResult, Stop> {
        let mut delay = self.backoff.first;
        let settled = loop {
            let current =
                self.api.describe_stack(stack_id).await.map_err(cfn_stop("DescribeStacks"))?;
            let Some(stack) = current else { break None };
            if stack_verdict(&stack.status, stack.reason.as_deref()) != StackVerdict::InProgress {
                break Some(stack);
            }
            if time_left(self.deadline()).is_zero() {
                return Err(Failure::timed_out(format!(
                    "The stack {} was still in {} when the action's deadline passed.",
                    self.name(),
                    stack.status
                ))
                .into());
            }
            if Instant::now() >= self.hand_over_at {
                return Ok(JobResult::Running {
                    external_id: stack.id.clone(),
                    external_url: Some(console_url(&self.job.request.region, &stack.id)),
                });
            }
            let until_hand_over = self.hand_over_at.saturating_duration_since(Instant::now());
            self.pause(delay.min(until_hand_over)).await;
            delay = self.backoff.next(delay);
        };
        let verdict = match &settled {
            None => StackVerdict::Deleted,
            Some(stack) => stack_verdict(&stack.status, stack.reason.as_deref()),
        };
        match (verdict, settled) {
            (StackVerdict::Failed(message), _) => {
                Err(Failure::job(format!("Stack {}: {message}", self.name())).into())
            }
            (StackVerdict::Deleted, settled) if want_deleted => {
                let status = settled.map_or("DELETE_COMPLETE".to_owned(), |s| s.status);
                Ok(self.succeeded(None, &status))
            }
            (StackVerdict::Deployed, Some(stack)) if !want_deleted => {
                let status = stack.status.clone();
                self.with_outputs(Some(stack), &status).await
            }
            (verdict, _) => Err(Failure::job(format!(
                "Stack {} ended in an unexpected state: {verdict:?}.",
                self.name()
            ))
            .into()),
        }
    }

    async fn create_or_update(&self) -> Result<JobResult, Stop> {
        let input = stack_input(self.job, self.settings, self.templates).await?;
        let mut existing = self.settle(self.name()).await?;
        if self.settings.mode == Mode::ReplaceOnFailure
            && let Some(stack) = &existing
            && needs_replacement(&stack.status)
        {
            self.api
                .delete_stack(&stack.id, self.settings.role_arn.as_deref())
                .await
                .map_err(cfn_stop("DeleteStack"))?;
            if let Some(left) = self.settle(&stack.id).await?
                && let StackVerdict::Failed(message) =
                    stack_verdict(&left.status, left.reason.as_deref())
            {
                return Err(Failure::job(format!(
                    "Stack {} could not be deleted to be replaced: {message}",
                    self.name()
                ))
                .into());
            }
            existing = None;
        }
        let stack_id = match existing {
            None => self.api.create_stack(&input).await.map_err(cfn_stop("CreateStack"))?,
            Some(stack) => match self.api.update_stack(&input).await {
                Ok(Update::Started) => stack.id,
                Ok(Update::NoChanges) => {
                    let status = stack.status.clone();
                    return self.with_outputs(Some(stack), &status).await;
                }
                Err(e) => return Err(cfn_stop("UpdateStack")(e)),
            },
        };
        self.conclude(&stack_id, false).await
    }

    async fn delete(&self) -> Result<JobResult, Stop> {
        let Some(stack) = self.settle(self.name()).await? else {
            return Ok(self.succeeded(None, "does not exist"));
        };
        self.api
            .delete_stack(&stack.id, self.settings.role_arn.as_deref())
            .await
            .map_err(cfn_stop("DeleteStack"))?;
        self.conclude(&stack.id, true).await
    }

    async fn replace_change_set(&self) -> Result<JobResult, Stop> {
        let name = self.change_set_name()?;
        let input = stack_input(self.job, self.settings, self.templates).await?;
        let existing = self.settle(self.name()).await?;
        let create = match &existing {
            None => true,
            Some(stack) => stack.status == "REVIEW_IN_PROGRESS",
        };
        // A change set of that name would make CreateChangeSet fail; this mode replaces it.
        if existing.is_some()
            && self
                .api
                .describe_change_set(self.name(), name)
                .await
                .map_err(cfn_stop("DescribeChangeSet"))?
                .is_some()
        {
            self.api
                .delete_change_set(self.name(), name)
                .await
                .map_err(cfn_stop("DeleteChangeSet"))?;
        }
        self.api
            .create_change_set(&input, name, create)
            .await
            .map_err(cfn_stop("CreateChangeSet"))?;
        match self.settle_change_set(name).await? {
            ChangeSetVerdict::Failed(message) => {
                Err(Failure::job(format!("Change set {name} of stack {}: {message}", self.name()))
                    .into())
            }
            verdict => {
                let summary =
                    if verdict == ChangeSetVerdict::NoChanges { "no changes" } else { "ready" };
                let deployed = existing.filter(|s| {
                    stack_verdict(&s.status, s.reason.as_deref()) == StackVerdict::Deployed
                });
                self.with_outputs(deployed, &format!("change set {name} {summary}")).await
            }
        }
    }

    async fn execute_change_set(&self) -> Result<JobResult, Stop> {
        let name = self.change_set_name()?;
        let Some(stack) = self.settle(self.name()).await? else {
            return Err(Failure::job(format!(
                "Stack {} does not exist, so its change set {name} cannot be executed.",
                self.name()
            ))
            .into());
        };
        match self.settle_change_set(name).await? {
            ChangeSetVerdict::Failed(message) => {
                return Err(Failure::job(format!(
                    "Change set {name} of stack {}: {message}",
                    self.name()
                ))
                .into());
            }
            ChangeSetVerdict::NoChanges => {
                let status = stack.status.clone();
                return self.with_outputs(Some(stack), &status).await;
            }
            ChangeSetVerdict::Ready | ChangeSetVerdict::InProgress => {}
        }
        self.api
            .execute_change_set(self.name(), name)
            .await
            .map_err(cfn_stop("ExecuteChangeSet"))?;
        self.conclude(&stack.id, false).await
    }

    fn change_set_name(&self) -> Result<&str, Stop> {
        self.settings.change_set_name.as_deref().ok_or_else(|| {
            Failure::configuration("The action configuration needs ChangeSetName.").into()
        })
    }

    /// Success with the stack's outputs as variables and, with `OutputFileName`, as a file.
    async fn with_outputs(&self, stack: Option<Stack>, status: &str) -> Result<JobResult, Stop> {
        let outputs = stack.as_ref().map(|s| s.outputs.clone()).unwrap_or_default();
        let mut result = self.succeeded(stack.as_ref().map(|s| s.id.as_str()), status);
        if let Some(name) = self.job.request.output_artifacts.first() {
            let path = self.job.work_dir.join(format!("{name}.zip"));
            let file = self.settings.output_file_name.clone();
            let json = serde_json::to_vec_pretty(&outputs)
                .map_err(|e| Failure::job(format!("Could not write the stack outputs: {e}.")))?;
            let dest = path.clone();
            blocking(move || write_zip(&dest, file.as_deref().map(|f| (f, json.as_slice()))))
                .await?;
            if let JobResult::Succeeded { output_artifacts, .. } = &mut result {
                output_artifacts.push(LocalArtifact::file(name.clone(), path));
            }
        }
        if let JobResult::Succeeded { output_variables, .. } = &mut result {
            *output_variables = outputs;
        }
        Ok(result)
    }

    fn succeeded(&self, stack_id: Option<&str>, status: &str) -> JobResult {
        let external_url = stack_id.map(|id| console_url(&self.job.request.region, id));
        JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            summary: Some(format!("Stack {}: {status}", self.name())),
            external_id: stack_id.map(str::to_owned),
            external_url,
        }
    }
}

/// The stack's page in the CloudFormation console, the action's external link.
fn console_url(region: &str, stack_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}\
         #/stacks/stackinfo?stackId={}",
        url_encode(stack_id)
    )
}

// ---------------------------------------------------------------------------------------------
// The SDK

/// [`StackApi`] on the CloudFormation SDK.
struct SdkStacks {
    client: Client,
}

/// Maps an SDK error once at the boundary.
fn sdk_cfn<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> CfnError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| match classify(operation, e) {
        SdkFault::Refused { code, message } => CfnError::Refused { code, message },
        SdkFault::Unavailable(source) => CfnError::Unavailable(source),
    }
}

/// Whether an error says the stack or change set does not exist (CloudFormation answers a
/// `ValidationError` for stacks).
fn is_missing<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    matches!(e.code(), Some("ChangeSetNotFound" | "ChangeSetNotFoundException"))
        || (e.code() == Some("ValidationError")
            && e.message().is_some_and(|m| m.contains("does not exist")))
}

fn parameters(input: &StackInput) -> Vec<Parameter> {
    input
        .parameters
        .iter()
        .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
        .collect()
}

fn tags(input: &StackInput) -> Vec<Tag> {
    input.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn capabilities(input: &StackInput) -> Vec<Capability> {
    input.capabilities.iter().map(|c| Capability::from(c.as_str())).collect()
}

#[async_trait]
impl StackApi for SdkStacks {
    async fn describe_stack(&self, stack: &str) -> Result<Option<Stack>, CfnError> {
        let output = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(output) => output,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(sdk_cfn("DescribeStacks")(e)),
        };
        Ok(output.stacks().first().map(|s| Stack {
            id: s.stack_id().unwrap_or(stack).to_owned(),
            status: s.stack_status().map(|st| st.as_str().to_owned()).unwrap_or_default(),
            reason: s.stack_status_reason().map(str::to_owned),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| {
                    Some((o.output_key()?.to_owned(), o.output_value().unwrap_or("").to_owned()))
                })
                .collect(),
        }))
    }

    async fn create_stack(&self, input: &StackInput) -> Result<String, CfnError> {
        let output = self
            .client
            .create_stack()
            .stack_name(&input.stack_name)
            .set_template_body(body(input))
            .set_template_url(input.template_url.clone())
            .set_parameters(Some(parameters(input)))
            .set_tags(Some(tags(input)))
            .set_capabilities(Some(capabilities(input)))
            .set_role_arn(input.role_arn.clone())
            .set_stack_policy_body(input.stack_policy.clone())
            .send()
            .await
            .map_err(sdk_cfn("CreateStack"))?;
        Ok(output.stack_id().unwrap_or(&input.stack_name).to_owned())
    }

    async fn update_stack(&self, input: &StackInput) -> Result<Update, CfnError> {
        let sent = self
            .client
            .update_stack()
            .stack_name(&input.stack_name)
            .set_template_body(body(input))
            .set_template_url(input.template_url.clone())
            .set_parameters(Some(parameters(input)))
            .set_tags(Some(tags(input)))
            .set_capabilities(Some(capabilities(input)))
            .set_role_arn(input.role_arn.clone())
            .set_stack_policy_body(input.stack_policy.clone())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Update::Started),
            Err(e) if e.message().is_some_and(is_no_changes) => Ok(Update::NoChanges),
            Err(e) => Err(sdk_cfn("UpdateStack")(e)),
        }
    }

    async fn delete_stack(&self, stack: &str, role_arn: Option<&str>) -> Result<(), CfnError> {
        self.client
            .delete_stack()
            .stack_name(stack)
            .set_role_arn(role_arn.map(str::to_owned))
            .send()
            .await
            .map_err(sdk_cfn("DeleteStack"))?;
        Ok(())
    }

    async fn create_change_set(
        &self,
        input: &StackInput,
        name: &str,
        create: bool,
    ) -> Result<(), CfnError> {
        let kind = if create { ChangeSetType::Create } else { ChangeSetType::Update };
        self.client
            .create_change_set()
            .stack_name(&input.stack_name)
            .change_set_name(name)
            .change_set_type(kind)
            .set_template_body(body(input))
            .set_template_url(input.template_url.clone())
            .set_parameters(Some(parameters(input)))
            .set_tags(Some(tags(input)))
            .set_capabilities(Some(capabilities(input)))
            .set_role_arn(input.role_arn.clone())
            .send()
            .await
            .map_err(sdk_cfn("CreateChangeSet"))?;
        Ok(())
    }

    async fn describe_change_set(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<Option<ChangeSet>, CfnError> {
        match self.client.describe_change_set().stack_name(stack).change_set_name(name).send().await
        {
            Ok(output) => Ok(Some(ChangeSet {
                status: output.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                reason: output.status_reason().map(str::to_owned),
            })),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(sdk_cfn("DescribeChangeSet")(e)),
        }
    }

    async fn delete_change_set(&self, stack: &str, name: &str) -> Result<(), CfnError> {
        self.client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(sdk_cfn("DeleteChangeSet"))?;
        Ok(())
    }

    async fn execute_change_set(&self, stack: &str, name: &str) -> Result<(), CfnError> {
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(sdk_cfn("ExecuteChangeSet"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: &str, reason: Option<&str>) -> String {
        match stack_verdict(status, reason) {
            StackVerdict::Failed(message) => message,
            other => panic!("{status} gave {other:?}, not a failure"),
        }
    }

    #[test]
    fn every_failed_and_rolled_back_status_is_a_failure_with_its_reason() {
        for status in [
            "CREATE_FAILED",
            "ROLLBACK_FAILED",
            "ROLLBACK_COMPLETE",
            "DELETE_FAILED",
            "UPDATE_FAILED",
            "UPDATE_ROLLBACK_FAILED",
            "UPDATE_ROLLBACK_COMPLETE",
            "IMPORT_ROLLBACK_FAILED",
            "IMPORT_ROLLBACK_COMPLETE",
        ] {
            let message = failed(status, Some("Resource Topic failed"));
            assert!(message.contains(status), "{message}");
            assert!(message.contains("Resource Topic failed"), "{message}");
        }
        assert_eq!(failed("ROLLBACK_COMPLETE", None), "The stack is in ROLLBACK_COMPLETE.");
        assert!(failed("SOMETHING_NEW", None).contains("unknown status"));
    }

    #[test]
    fn in_progress_statuses_are_polled_again() {
        for status in [
            "CREATE_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "IMPORT_IN_PROGRESS",
            "IMPORT_ROLLBACK_IN_PROGRESS",
        ] {
            assert_eq!(stack_verdict(status, None), StackVerdict::InProgress, "{status}");
        }
    }

    #[test]
    fn completed_statuses_are_successes() {
        for status in ["CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"] {
            assert_eq!(stack_verdict(status, None), StackVerdict::Deployed);
        }
        assert_eq!(stack_verdict("DELETE_COMPLETE", None), StackVerdict::Deleted);
        assert_eq!(stack_verdict("REVIEW_IN_PROGRESS", None), StackVerdict::Review);
    }

    #[test]
    fn only_the_documented_failed_states_are_replaced() {
        for status in [
            "ROLLBACK_COMPLETE",
            "ROLLBACK_FAILED",
            "CREATE_FAILED",
            "DELETE_FAILED",
            "UPDATE_ROLLBACK_FAILED",
        ] {
            assert!(needs_replacement(status), "{status}");
        }
        for status in ["UPDATE_ROLLBACK_COMPLETE", "CREATE_COMPLETE", "UPDATE_COMPLETE"] {
            assert!(!needs_replacement(status), "{status}");
        }
    }

    #[test]
    fn a_change_set_without_changes_is_success() {
        let reason = "The submitted information didn't contain changes. Submit different \
                      information to create a change set.";
        assert_eq!(change_set_verdict("FAILED", Some(reason)), ChangeSetVerdict::NoChanges);
        assert_eq!(
            change_set_verdict("FAILED", Some("No updates are to be performed.")),
            ChangeSetVerdict::NoChanges
        );
        assert_eq!(change_set_verdict("CREATE_COMPLETE", None), ChangeSetVerdict::Ready);
        assert_eq!(change_set_verdict("CREATE_PENDING", None), ChangeSetVerdict::InProgress);
        assert_eq!(
            change_set_verdict("FAILED", Some("Template error: bad ref")),
            ChangeSetVerdict::Failed("The change set is in FAILED: Template error: bad ref".into())
        );
    }

    #[test]
    fn configuration_values_are_checked() {
        assert!(check_stack_name("my-stack-1").is_ok());
        assert!(check_stack_name("1stack").is_err());
        assert!(check_stack_name("my_stack").is_err());
        assert_eq!(
            parse_capabilities("CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND").ok(),
            Some(vec!["CAPABILITY_IAM".to_owned(), "CAPABILITY_AUTO_EXPAND".to_owned()])
        );
        assert!(parse_capabilities("CAPABILITY_EVERYTHING").is_err());
        assert_eq!(parse_artifact_path("TemplatePath", "Src::a/b.yaml"), Ok(("Src", "a/b.yaml")));
        assert!(parse_artifact_path("TemplatePath", "a/b.yaml").is_err());
        assert!(Mode::parse("CREATE_UPDATE").is_ok());
        assert!(Mode::parse("create_update").is_err());
    }
}
