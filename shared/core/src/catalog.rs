//! What CodePipeline knows about each action provider: default timeouts, artifact counts,
//! required configuration keys, V2-only providers, and the rule providers of stage conditions.
//!
//! Only AWS-owned providers are catalogued: ThirdParty and Custom action types are declared by
//! partners or by the account itself, so any well-formed name may be valid there.

/// The action categories of `ActionTypeId.category`.
pub const CATEGORIES: [&str; 7] =
    ["Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute"];

/// The owners of `ActionTypeId.owner`.
pub const OWNERS: [&str; 3] = ["AWS", "ThirdParty", "Custom"];

/// How many artifacts an action may take or produce, both bounds included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Fewest allowed.
    pub min: usize,
    /// Most allowed.
    pub max: usize,
}

impl Count {
    /// Whether `n` is within the bounds.
    pub fn allows(self, n: usize) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

/// One AWS-owned action provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// `ActionTypeId.category`.
    pub category: &'static str,
    /// `ActionTypeId.owner`: always `AWS` in this catalogue.
    pub owner: &'static str,
    /// `ActionTypeId.provider`.
    pub provider: &'static str,
    /// Allowed number of input artifacts.
    pub inputs: Count,
    /// Allowed number of output artifacts.
    pub outputs: Count,
    /// Configuration keys that must always be present. Conditionally required keys
    /// (CodeBuild `PrimarySource`, S3 deploy `ObjectKey`) are rules of validation, not data.
    pub required: &'static [&'static str],
    /// Whether only V2 pipelines may use it.
    pub v2_only: bool,
}

const fn aws(
    category: &'static str,
    provider: &'static str,
    inputs: (usize, usize),
    outputs: (usize, usize),
    required: &'static [&'static str],
    v2_only: bool,
) -> ProviderSpec {
    ProviderSpec {
        category,
        owner: "AWS",
        provider,
        inputs: Count { min: inputs.0, max: inputs.1 },
        outputs: Count { min: outputs.0, max: outputs.1 },
        required,
        v2_only,
    }
}

const CODEBUILD: &[&str] = &["ProjectName"];
const STEP_FUNCTIONS: &[&str] = &["StateMachineArn"];
const CODEDEPLOY_ECS: &[&str] = &[
    "ApplicationName",
    "DeploymentGroupName",
    "TaskDefinitionTemplateArtifact",
    "AppSpecTemplateArtifact",
];
const DEVICE_FARM: &[&str] =
    &["AppType", "ProjectId", "App", "AppiumVersion", "DevicePoolArn", "TestType"];
const APPCONFIG: &[&str] =
    &["Application", "Environment", "ConfigurationProfile", "InputArtifactConfigurationPath"];
const EC2: &[&str] = &["InstanceTagKey", "InstanceType"];

/// The AWS providers of the user guide's provider reference. Where a page was vague the bounds
/// are the wider reading, because refusing a pipeline CodePipeline accepts is the worse mistake:
/// Lambda deploy may omit its input (it then needs `PublishedTargetVersion`), EKS may take its
/// Helm chart from a registry instead of an artifact, EC2 needs `TargetDirectory` only with
/// scripts (not with a `DeploySpec`), and `CloudFormationStackInstances` and `InspectorScan`
/// have undocumented counts.
static AWS_PROVIDERS: [ProviderSpec; 28] = [
    aws("Source", "S3", (0, 0), (1, 1), &["S3Bucket", "S3ObjectKey"], false),
    aws("Source", "CodeCommit", (0, 0), (1, 1), &["RepositoryName", "BranchName"], false),
    aws("Source", "ECR", (0, 0), (1, 1), &["RepositoryName"], false),
    aws(
        "Source",
        "CodeStarSourceConnection",
        (0, 0),
        (1, 1),
        &["ConnectionArn", "FullRepositoryId", "BranchName"],
        false,
    ),
    aws("Build", "CodeBuild", (1, 5), (0, 5), CODEBUILD, false),
    aws("Test", "CodeBuild", (1, 5), (0, 5), CODEBUILD, false),
    aws("Build", "ECRBuildAndPublish", (1, 1), (0, 0), &["ECRRepositoryName"], true),
    aws("Compute", "Commands", (1, 10), (0, 1), &[], true),
    aws("Test", "DeviceFarm", (1, 1), (0, 0), DEVICE_FARM, false),
    aws("Deploy", "S3", (1, 1), (0, 0), &["BucketName", "Extract"], false),
    aws("Deploy", "CloudFormation", (0, 10), (0, 1), &["ActionMode", "StackName"], false),
    aws(
        "Deploy",
        "CloudFormationStackSet",
        (1, 3),
        (0, 0),
        &["StackSetName", "TemplatePath"],
        false,
    ),
    aws("Deploy", "CloudFormationStackInstances", (0, 3), (0, 0), &["StackSetName"], false),
    aws("Deploy", "CodeDeploy", (1, 1), (0, 0), &["ApplicationName", "DeploymentGroupName"], false),
    aws("Deploy", "CodeDeployToECS", (1, 5), (0, 0), CODEDEPLOY_ECS, false),
    aws("Deploy", "ECS", (1, 1), (0, 0), &["ClusterName", "ServiceName"], false),
    aws(
        "Deploy",
        "ElasticBeanstalk",
        (1, 1),
        (0, 0),
        &["ApplicationName", "EnvironmentName"],
        false,
    ),
    aws("Deploy", "OpsWorks", (1, 1), (0, 0), &[], false),
    aws("Deploy", "ServiceCatalog", (1, 1), (0, 0), &["ProductId"], false),
    aws("Deploy", "AppConfig", (1, 1), (0, 0), APPCONFIG, false),
    aws("Deploy", "EC2", (1, 1), (0, 0), EC2, true),
    aws("Deploy", "EKS", (0, 1), (0, 0), &["ClusterName"], true),
    aws("Deploy", "Lambda", (0, 1), (0, 0), &["FunctionName"], true),
    aws("Approval", "Manual", (0, 0), (0, 0), &[], false),
    aws("Invoke", "Lambda", (0, 5), (0, 5), &["FunctionName"], false),
    aws("Invoke", "StepFunctions", (0, 1), (0, 1), STEP_FUNCTIONS, false),
    aws("Invoke", "CodePipeline", (0, 0), (0, 0), &["PipelineName"], false),
    aws("Invoke", "InspectorScan", (0, 1), (0, 1), &["InspectorRunMode"], false),
];

/// The catalogue entry of an action type, or `None` when it is not an AWS provider of that
/// category (every ThirdParty and Custom provider is `None`).
pub fn provider(category: &str, owner: &str, provider: &str) -> Option<&'static ProviderSpec> {
    AWS_PROVIDERS
        .iter()
        .find(|p| p.category == category && p.owner == owner && p.provider == provider)
}

/// Every catalogued AWS provider.
pub fn aws_providers() -> &'static [ProviderSpec] {
    &AWS_PROVIDERS
}

/// One rule provider of stage conditions (category `Rule`, owner `AWS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// `RuleTypeId.provider`.
    pub provider: &'static str,
    /// Configuration keys that must be present.
    pub required: &'static [&'static str],
    /// Whether a `beforeEntry` condition with result `SKIP` may use it.
    pub allows_skip: bool,
}

static RULE_PROVIDERS: [RuleSpec; 5] = [
    RuleSpec {
        provider: "VariableCheck",
        required: &["Variable", "Value", "Operator"],
        allows_skip: true,
    },
    RuleSpec { provider: "LambdaInvoke", required: &["FunctionName"], allows_skip: true },
    RuleSpec { provider: "CloudWatchAlarm", required: &["AlarmName"], allows_skip: false },
    RuleSpec { provider: "DeploymentWindow", required: &["Cron"], allows_skip: false },
    RuleSpec { provider: "Commands", required: &[], allows_skip: false },
];

/// The rule provider named `provider`, if CodePipeline has it.
pub fn rule_provider(provider: &str) -> Option<&'static RuleSpec> {
    RULE_PROVIDERS.iter().find(|r| r.provider == provider)
}

/// Every rule provider.
pub fn rule_providers() -> &'static [RuleSpec] {
    &RULE_PROVIDERS
}

/// The default timeout of an action of this category and provider, in minutes, as CodePipeline's
/// quotas page gives it. Manual approval: 7 days.
pub fn default_timeout_minutes(category: &str, provider: &str) -> u32 {
    match (category, provider) {
        ("Approval", "Manual") => 7 * 24 * 60,
        ("Deploy", "CloudFormation") => 3 * 24 * 60,
        ("Deploy", "CodeDeploy" | "CodeDeployToECS") => 5 * 24 * 60,
        ("Invoke", "Lambda") => 24 * 60,
        ("Deploy", "S3") => 90,
        ("Compute", "Commands") => 55,
        _ => 60,
    }
}
