//! A validated pipeline, in the shape the engine runs: stages with their actions grouped by
//! `runOrder`, regions resolved, timeouts filled in.
//!
//! A [`Plan`] can only be made from a declaration that passed [`crate::declaration::validate`],
//! so the engine never meets a dangling artifact, an unknown mode or an empty stage.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::declaration::Condition;
use crate::declaration::{ActionDeclaration, PipelineDeclaration, ValidationError, validate};
use crate::engine::ConditionKind;
use crate::rules::{ConditionPlan, ConditionResult, DEFAULT_RULE_TIMEOUT_MINUTES, RulePlan};

/// How executions of one pipeline share its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionMode {
    /// One execution per stage; a newer waiting execution supersedes an older one.
    Superseded,
    /// One execution per stage; waiting executions go first in, first out.
    Queued,
    /// No stage locks: executions run independently.
    Parallel,
}

impl ExecutionMode {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superseded => "SUPERSEDED",
            Self::Queued => "QUEUED",
            Self::Parallel => "PARALLEL",
        }
    }
}

/// How a stage is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetryMode {
    /// Re-run the failed actions; succeeded ones keep their results.
    FailedActions,
    /// Re-run the whole stage from its first action.
    AllActions,
}

/// Category, owner, provider and version of an action (CodePipeline's `actionTypeId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActionType {
    #[allow(missing_docs)]
    pub category: String,
    #[allow(missing_docs)]
    pub owner: String,
    #[allow(missing_docs)]
    pub provider: String,
    #[allow(missing_docs)]
    pub version: String,
}

impl ActionType {
    /// Whether this is CodePipeline's manual approval.
    pub fn is_manual_approval(&self) -> bool {
        self.category == "Approval" && self.provider == "Manual"
    }

    /// One string naming the type, for keys and messages: `Build/Custom/Jenkins/1`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}/{}", self.category, self.owner, self.provider, self.version)
    }
}

/// One action, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionPlan {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub action_type: ActionType,
    #[allow(missing_docs)]
    pub run_order: u32,
    /// As declared; references are resolved when the action starts.
    pub configuration: IndexMap<String, String>,
    /// Commands of the `Commands` action.
    pub commands: Vec<String>,
    /// Names of the consumed artifacts.
    pub input_artifacts: Vec<String>,
    /// Names of the produced artifacts.
    pub output_artifacts: Vec<String>,
    /// Where the action's output variables are published.
    pub namespace: Option<String>,
    /// The region the action runs in (the pipeline's unless declared).
    pub region: String,
    /// Role to assume, for actions in another account.
    pub role_arn: Option<String>,
    /// How long the action may run.
    pub timeout_minutes: u32,
    /// Files the `Commands` action keeps in each output artifact, by artifact name.
    pub output_artifact_files: Vec<(String, Vec<String>)>,
    /// Variables the `Commands` action exports.
    pub output_variables: Vec<String>,
    /// Environment of the `Commands` action, as (name, value, type).
    pub environment_variables: Vec<(String, String, String)>,
}

impl ActionPlan {
    /// Whether this waiting manual approval gives way to a newer execution (Baton's
    /// `"SupersedeWaitingApproval": "true"`, SUPERSEDED mode only).
    pub fn gives_way_to_newer(&self) -> bool {
        self.action_type.is_manual_approval()
            && self
                .configuration
                .get("SupersedeWaitingApproval")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// One stage, with its actions and their `runOrder` groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    #[allow(missing_docs)]
    pub name: String,
    /// In declaration order.
    pub actions: Vec<ActionPlan>,
    /// Indices into `actions`, one group per distinct `runOrder`, lowest first.
    pub groups: Vec<Vec<usize>>,
    /// `onFailure: {result: RETRY}`: one automatic retry in this mode.
    pub auto_retry: Option<RetryMode>,
    /// Its conditions (V2).
    #[serde(default)]
    pub conditions: StageConditions,
}

/// A stage's conditions, as the engine runs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StageConditions {
    /// `beforeEntry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<ConditionPlan>,
    /// `onSuccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<ConditionPlan>,
    /// `onFailure`'s conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<ConditionPlan>,
    /// `onFailure: {result: ROLLBACK}` with no conditions: every failure rolls back.
    #[serde(default)]
    pub rollback_on_failure: bool,
}

impl StageConditions {
    /// The condition of `kind`.
    pub fn get(&self, kind: ConditionKind) -> Option<&ConditionPlan> {
        match kind {
            ConditionKind::BeforeEntry => self.before_entry.as_ref(),
            ConditionKind::OnSuccess => self.on_success.as_ref(),
            ConditionKind::OnFailure => self.on_failure.as_ref(),
        }
    }

    /// Whether a failure here may roll back, so the last success must be remembered.
    pub fn may_roll_back(&self) -> bool {
        self.rollback_on_failure
            || [&self.on_success, &self.on_failure]
                .into_iter()
                .flatten()
                .any(|c| c.result == ConditionResult::Rollback)
    }

    /// Every rule with the condition it belongs to.
    pub fn rules(&self) -> impl Iterator<Item = (ConditionKind, &RulePlan)> {
        [ConditionKind::BeforeEntry, ConditionKind::OnSuccess, ConditionKind::OnFailure]
            .into_iter()
            .filter_map(|k| self.get(k).map(|c| (k, c)))
            .flat_map(|(k, c)| c.rules.iter().map(move |r| (k, r)))
    }
}

/// A pipeline ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[allow(missing_docs)]
    pub name: String,
    /// The structure version executions record.
    pub version: i64,
    #[allow(missing_docs)]
    pub mode: ExecutionMode,
    /// The account the pipeline lives in; goes into events and ARNs.
    pub account: String,
    /// The pipeline's home region.
    pub region: String,
    /// `source` of the public events; CodePipeline's is `aws.codepipeline`.
    pub event_source: String,
    /// Declared pipeline variables and their defaults.
    pub variables: Vec<(String, Option<String>)>,
    #[allow(missing_docs)]
    pub stages: Vec<StagePlan>,
    /// The pipeline's service role (`roleArn`): what its actions and rules without a role of
    /// their own run as, where the host assumes roles for them (AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The declared `artifactStore` (in the home region) or `artifactStores`: where a host
    /// that keeps artifacts in the pipeline's own buckets (AWS, when its deployment allows
    /// them) puts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_stores: Vec<DeclaredStore>,
}

/// An artifact store a declaration names: a bucket in a region, and the KMS key objects there
/// are encrypted with (none: the host's own key for that region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredStore {
    #[allow(missing_docs)]
    pub region: String,
    #[allow(missing_docs)]
    pub bucket: String,
    /// `encryptionKey.id`: a key id, key ARN or alias ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl DeclaredStore {
    /// The stores `pipeline` declares, with `home` as the region of a single `artifactStore`.
    pub fn of(pipeline: &PipelineDeclaration, home: &str) -> Vec<Self> {
        let store = |region: &str, s: &crate::declaration::ArtifactStore| Self {
            region: region.to_owned(),
            bucket: s.location.clone(),
            kms_key: s.encryption_key.as_ref().map(|k| k.id.clone()).filter(|k| !k.is_empty()),
        };
        match (&pipeline.artifact_store, &pipeline.artifact_stores) {
            (Some(s), _) => vec![store(home, s)],
            (None, Some(stores)) => stores.iter().map(|(r, s)| store(r, s)).collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// Where a pipeline lives: the parts of its identity that are not in its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// 12-digit account id.
    pub account: String,
    /// The home region.
    pub region: String,
    /// `source` of the public events.
    pub event_source: String,
}

/// The watch key of every pipeline with a polled source: see [`Plan::watched_sources`].
pub const POLLED_SOURCES: &str = "poll";

/// The watch key of a change to `name` (a repository, a bucket) in `service` (`codecommit`,
/// `s3`, `ecr`, `git`): see [`Plan::watched_sources`].
pub fn watch_key(service: &str, name: &str) -> String {
    format!("{service}:{name}")
}

impl Plan {
    /// What a change must touch to start this pipeline: a [`watch_key`] per source action of
    /// its first stage (its repository or bucket), and [`POLLED_SOURCES`] when one of them
    /// polls. A store indexes pipelines by them, so a change reads only the pipelines it may
    /// start; which branch, object key or tag starts one is checked on the pipeline itself.
    pub fn watched_sources(&self) -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        let Some(first) = self.stages.first() else { return keys };
        for action in &first.actions {
            let config = |k: &str| action.configuration.get(k).map(String::as_str);
            let (category, provider) = (&action.action_type.category, &action.action_type.provider);
            let watched = match (category.as_str(), provider.as_str()) {
                ("Source", "CodeCommit") => config("RepositoryName").map(|r| ("codecommit", r)),
                ("Source", "S3") => config("S3Bucket").map(|b| ("s3", b)),
                ("Source", "ECR") => config("RepositoryName").map(|r| ("ecr", r)),
                ("Source", "CodeStarSourceConnection") => {
                    config("FullRepositoryId").map(|r| ("git", r))
                }
                _ => None,
            };
            keys.extend(watched.map(|(service, name)| watch_key(service, name)));
            if config("PollForSourceChanges").is_some_and(|p| p.eq_ignore_ascii_case("true")) {
                keys.insert(POLLED_SOURCES.to_owned());
            }
        }
        keys
    }

    /// Validates `pipeline` and turns it into a plan.
    ///
    /// # Errors
    /// Every rule the declaration breaks.
    pub fn from_declaration(
        pipeline: &PipelineDeclaration,
        placement: &Placement,
    ) -> Result<Self, Vec<ValidationError>> {
        let errors = validate(pipeline, &placement.region);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mode = match pipeline.execution_mode.as_deref() {
            Some("QUEUED") => ExecutionMode::Queued,
            Some("PARALLEL") => ExecutionMode::Parallel,
            _ => ExecutionMode::Superseded,
        };
        let stages = pipeline
            .stages
            .iter()
            .map(|stage| {
                let actions: Vec<ActionPlan> =
                    stage.actions.iter().map(|a| action_plan(a, &placement.region)).collect();
                let auto_retry = stage
                    .on_failure
                    .as_ref()
                    .filter(|f| f.result.as_deref() == Some("RETRY"))
                    .map(|f| {
                        match f.retry_configuration.as_ref().and_then(|r| r.retry_mode.as_deref()) {
                            Some("ALL_ACTIONS") => RetryMode::AllActions,
                            _ => RetryMode::FailedActions,
                        }
                    });
                let on_failure = stage.on_failure.as_ref();
                let conditions = StageConditions {
                    before_entry: stage
                        .before_entry
                        .as_ref()
                        .and_then(|c| condition(&c.conditions)),
                    on_success: stage.on_success.as_ref().and_then(|c| condition(&c.conditions)),
                    on_failure: on_failure
                        .and_then(|f| f.conditions.as_deref())
                        .and_then(condition),
                    rollback_on_failure: on_failure.is_some_and(|f| {
                        f.result.as_deref() == Some("ROLLBACK") && f.conditions.is_none()
                    }),
                };
                StagePlan {
                    name: stage.name.clone(),
                    groups: groups(&actions),
                    actions,
                    auto_retry,
                    conditions,
                }
            })
            .collect();
        let variables = pipeline
            .variables
            .iter()
            .flatten()
            .map(|v| (v.name.clone(), v.default_value.clone()))
            .collect();
        Ok(Self {
            name: pipeline.name.clone(),
            version: pipeline.version.unwrap_or(1),
            mode,
            account: placement.account.clone(),
            region: placement.region.clone(),
            event_source: placement.event_source.clone(),
            variables,
            stages,
            role_arn: pipeline.role_arn.clone().filter(|r| !r.trim().is_empty()),
            artifact_stores: DeclaredStore::of(pipeline, &placement.region),
        })
    }

    /// Whether any manual approval gives way to newer executions: stage-advance then loads the
    /// executions holding stages too, not only those waiting for them.
    pub fn replaces_waiting_approvals(&self) -> bool {
        self.stages.iter().flat_map(|s| &s.actions).any(ActionPlan::gives_way_to_newer)
    }

    /// The pipeline's ARN, as CodePipeline forms it.
    pub fn arn(&self) -> String {
        format!("arn:aws:codepipeline:{}:{}:{}", self.region, self.account, self.name)
    }

    /// The index of the stage called `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The indices of the stage called `stage` and of its action called `action`.
    pub fn action_position(&self, stage: &str, action: &str) -> Option<(usize, usize)> {
        let s = self.stage_index(stage)?;
        Some((s, self.stages[s].action_index(action)?))
    }
}

impl ActionPlan {
    /// An action of the given type and `runOrder`, in the home region, with no configuration,
    /// artifacts or variables, and its provider's default timeout.
    pub fn new(name: &str, category: &str, owner: &str, provider: &str, run_order: u32) -> Self {
        Self {
            name: name.into(),
            action_type: ActionType {
                category: category.into(),
                owner: owner.into(),
                provider: provider.into(),
                version: "1".into(),
            },
            run_order,
            configuration: IndexMap::new(),
            commands: vec![],
            input_artifacts: vec![],
            output_artifacts: vec![],
            namespace: None,
            region: String::new(),
            role_arn: None,
            timeout_minutes: catalog::default_timeout_minutes(category, provider),
            output_artifact_files: vec![],
            output_variables: vec![],
            environment_variables: vec![],
        }
    }
}

impl StagePlan {
    /// The index of the action called `name`.
    pub fn action_index(&self, name: &str) -> Option<usize> {
        self.actions.iter().position(|a| a.name == name)
    }
}

/// Groups action indices by `runOrder`, lowest first; declaration order inside a group.
pub fn groups(actions: &[ActionPlan]) -> Vec<Vec<usize>> {
    let mut orders: Vec<u32> = actions.iter().map(|a| a.run_order).collect();
    orders.sort_unstable();
    orders.dedup();
    orders
        .into_iter()
        .map(|order| (0..actions.len()).filter(|&i| actions[i].run_order == order).collect())
        .collect()
}

/// The one condition a validated condition list holds.
fn condition(conditions: &[Condition]) -> Option<ConditionPlan> {
    let c = conditions.first()?;
    Some(ConditionPlan {
        result: c
            .result
            .as_deref()
            .and_then(ConditionResult::parse)
            .unwrap_or(ConditionResult::Fail),
        rules: c
            .rules
            .iter()
            .map(|r| RulePlan {
                name: r.name.clone(),
                provider: r.rule_type_id.provider.clone(),
                configuration: r.configuration.clone().unwrap_or_default(),
                timeout_minutes: r
                    .timeout_in_minutes
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(if r.rule_type_id.provider == "Commands" {
                        // CodeBuild's limit for the Commands action and rule.
                        55
                    } else {
                        DEFAULT_RULE_TIMEOUT_MINUTES
                    }),
                commands: r.commands.clone().unwrap_or_default(),
                input_artifacts: r
                    .input_artifacts
                    .iter()
                    .flatten()
                    .map(|a| a.name.clone())
                    .collect(),
                region: r.region.clone(),
                role_arn: r.role_arn.clone(),
            })
            .collect(),
    })
}

fn action_plan(action: &ActionDeclaration, home_region: &str) -> ActionPlan {
    let t = &action.action_type_id;
    let timeout = action
        .timeout_in_minutes
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or_else(|| catalog::default_timeout_minutes(&t.category, &t.provider));
    ActionPlan {
        name: action.name.clone(),
        action_type: ActionType {
            category: t.category.clone(),
            owner: t.owner.clone(),
            provider: t.provider.clone(),
            version: t.version.clone(),
        },
        run_order: action.run_order.and_then(|r| u32::try_from(r).ok()).unwrap_or(1),
        configuration: action.configuration.clone().unwrap_or_default(),
        commands: action.commands.clone().unwrap_or_default(),
        input_artifacts: action.input_artifacts.iter().flatten().map(|a| a.name.clone()).collect(),
        output_artifacts: action
            .output_artifacts
            .iter()
            .flatten()
            .map(|a| a.name.clone())
            .collect(),
        namespace: action.namespace.clone(),
        region: action.region.clone().unwrap_or_else(|| home_region.to_string()),
        role_arn: action.role_arn.clone(),
        timeout_minutes: timeout,
        output_artifact_files: action
            .output_artifacts
            .iter()
            .flatten()
            .filter_map(|a| a.files.clone().map(|f| (a.name.clone(), f)))
            .collect(),
        output_variables: action.output_variables.clone().unwrap_or_default(),
        environment_variables: action
            .environment_variables
            .iter()
            .flatten()
            .map(|v| {
                (
                    v.name.clone(),
                    v.value.clone(),
                    v.var_type.clone().unwrap_or_else(|| "PLAINTEXT".into()),
                )
            })
            .collect(),
    }
}
