//! CodePipeline's pipeline declaration, field for field as the API and `get-pipeline` spell it.
//!
//! Rule: these types hold the document, not its meaning. Enumerations stay strings and numbers
//! stay wide so that a wrong value is reported by validation with the stage and action it is in,
//! instead of failing the parse. Every object keeps the keys it does not know in `extra`, so a
//! parse followed by a serialize gives back the same document.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Keys of an object that this model does not know, kept verbatim.
pub type Extra = IndexMap<String, Value>;

/// A pipeline: `PipelineDeclaration` in the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDeclaration {
    /// Unique per account and region; 1-100 of `[A-Za-z0-9.@\-_]`.
    pub name: String,
    /// The service role; used for actions without a `roleArn` of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The artifact store of a single-region pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<ArtifactStore>,
    /// One artifact store per region, for pipelines with cross-region actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_stores: Option<IndexMap<String, ArtifactStore>>,
    /// The stages, in order.
    #[serde(default)]
    pub stages: Vec<StageDeclaration>,
    /// Server-managed structure version: 1 on create, +1 per update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `QUEUED`, `SUPERSEDED` (default) or `PARALLEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<String>,
    /// `V1` or `V2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<String>,
    /// Pipeline-level variables (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<VariableDeclaration>>,
    /// Git triggers on connection source actions (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<TriggerDeclaration>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// Where a region's artifacts are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    /// Always `S3`.
    #[serde(rename = "type", default)]
    pub store_type: String,
    /// The bucket name.
    #[serde(default)]
    pub location: String,
    /// The customer key; without it the provider's default key is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A KMS key reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncryptionKey {
    /// Key id, key ARN or alias ARN.
    #[serde(default)]
    pub id: String,
    /// Always `KMS`.
    #[serde(rename = "type", default)]
    pub key_type: String,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A stage: `StageDeclaration` in the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageDeclaration {
    /// Unique in the pipeline.
    pub name: String,
    /// Reserved by CodePipeline for future use; kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<Value>>,
    /// The actions, grouped by `runOrder`.
    #[serde(default)]
    pub actions: Vec<ActionDeclaration>,
    /// What happens when the stage fails (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailureConditions>,
    /// Conditions checked after every action succeeded (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Conditions>,
    /// Conditions checked before the stage is entered (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<Conditions>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// An action: `ActionDeclaration` in the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDeclaration {
    /// Unique in the stage.
    pub name: String,
    /// What kind of action this is.
    pub action_type_id: ActionTypeId,
    /// 1-999, default 1; equal values run in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_order: Option<i64>,
    /// Provider settings; values may hold `#{namespace.variable}` references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<IndexMap<String, String>>,
    /// Shell commands of the `Commands` action (V2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// Artifacts this action produces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_artifacts: Option<Vec<OutputArtifact>>,
    /// Artifacts this action consumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    /// Variables the `Commands` action exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<Vec<String>>,
    /// Role assumed to run the action: how an action reaches another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Region the action runs in, when not the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Namespace of the action's output variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// 5-86400 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i64>,
    /// Environment of the `Commands` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// `ActionTypeId`: category, owner, provider, version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionTypeId {
    /// Source, Build, Deploy, Test, Invoke, Approval or Compute.
    #[serde(default)]
    pub category: String,
    /// AWS, ThirdParty or Custom.
    #[serde(default)]
    pub owner: String,
    /// For example `CodeBuild`.
    #[serde(default)]
    pub provider: String,
    /// `1` for every AWS provider.
    #[serde(default)]
    pub version: String,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A consumed artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputArtifact {
    /// Name of an artifact produced earlier.
    pub name: String,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A produced artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputArtifact {
    /// Unique across the pipeline.
    pub name: String,
    /// Files kept by the `Commands` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// An environment variable of the `Commands` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    #[serde(default)]
    pub value: String,
    /// PLAINTEXT or SECRETS_MANAGER.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub var_type: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A pipeline-level variable (V2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableDeclaration {
    #[allow(missing_docs)]
    pub name: String,
    /// Used when a start does not override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// `beforeEntry` and `onSuccess`: a list of exactly one condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    #[allow(missing_docs)]
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// `onFailure`: a result (ROLLBACK or RETRY), a retry mode, or conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureConditions {
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_configuration: Option<RetryConfiguration>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// `retryConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfiguration {
    /// FAILED_ACTIONS or ALL_ACTIONS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_mode: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A condition: a result engaged when any of its rules fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub rules: Vec<RuleDeclaration>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A rule of a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDeclaration {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub rule_type_id: RuleTypeId,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<IndexMap<String, String>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i64>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// `RuleTypeId`: category `Rule`, owner `AWS`, a provider and a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleTypeId {
    #[allow(missing_docs)]
    #[serde(default)]
    pub category: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[allow(missing_docs)]
    #[serde(default)]
    pub provider: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A trigger (V2): git push and pull-request filters for one connection source action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerDeclaration {
    /// Always `CodeStarSourceConnection`.
    #[serde(default)]
    pub provider_type: String,
    #[allow(missing_docs)]
    pub git_configuration: GitConfiguration,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// The filters of a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    /// The source action the trigger starts.
    pub source_action_name: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Vec<GitFilter>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Vec<GitFilter>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// A push or pull-request filter; the fields inside one filter are ANDed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitFilter {
    /// Pull-request events: OPEN, UPDATED, CLOSED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<GlobCriteria>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<GlobCriteria>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<GlobCriteria>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}

/// Glob includes and excludes; an exclusion wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobCriteria {
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Vec<String>>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Vec<String>>,
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub extra: Extra,
}
