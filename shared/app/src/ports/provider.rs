//! Action providers: the code that does an action's work (a build, a deploy, a checkout).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::engine::{ActionRequest, ArtifactLocation, DeployTarget, RuleRequest};
use baton_core::plan::{ActionPlan, ActionType};
use baton_core::rules::{RulePlan, Verdict};

use super::BoxError;

/// Files up to this size are read or extracted on the async thread that needs them, and an
/// input artifact up to this size is held in memory ([`LocalArtifact::in_memory`]).
pub const SMALL_FILE_BYTES: u64 = 256 * 1024;

/// Whether `path` is a file small enough to work on where it is needed (at most
/// [`SMALL_FILE_BYTES`]): its work takes tens of microseconds, less than waking a blocking
/// thread and being woken again, which were two of the hops between one action and the next.
pub fn is_small_file(path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= SMALL_FILE_BYTES)
}

/// An artifact as a local zip archive: a file, or a small input held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalArtifact {
    #[allow(missing_docs)]
    pub name: String,
    /// Where the zip file is. For an input held in memory, where it goes once something needs
    /// a file ([`LocalArtifact::to_file`]); read an input through [`LocalArtifact::open`].
    pub path: PathBuf,
    /// A small input's archive, when it was read into memory rather than written to `path`:
    /// creating and removing a file per action is most of a short action's cost on ext4.
    pub held: Option<Arc<[u8]>>,
}

impl LocalArtifact {
    /// An artifact in the zip file at `path`.
    pub fn file(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), path: path.into(), held: None }
    }

    /// An artifact whose archive is `bytes`, written to `spill` only if a file is asked for.
    pub fn in_memory(name: impl Into<String>, bytes: Vec<u8>, spill: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), path: spill.into(), held: Some(bytes.into()) }
    }

    /// A reader of the archive.
    pub fn open(&self) -> std::io::Result<Box<dyn ZipSource>> {
        Ok(match &self.held {
            Some(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
            None => Box::new(std::io::BufReader::new(std::fs::File::open(&self.path)?)),
        })
    }

    /// Writes the archive to `dest` (a copy of the file, or the bytes held).
    pub fn copy_to(&self, dest: &std::path::Path) -> std::io::Result<()> {
        match &self.held {
            Some(bytes) => std::fs::write(dest, bytes),
            None => std::fs::copy(&self.path, dest).map(drop),
        }
    }

    /// The archive as a file, for what must name one (an upload, a copy): `path`, written
    /// first when the archive is held in memory (each time: whatever is at `path` was not
    /// checked, what is held was).
    pub fn to_file(&self) -> std::io::Result<&std::path::Path> {
        if let Some(bytes) = &self.held {
            std::fs::write(&self.path, bytes)?;
        }
        Ok(&self.path)
    }

    /// Whether the archive is small enough to work on where it is needed, without a
    /// blocking thread ([`is_small_file`]).
    pub fn is_small(&self) -> bool {
        match &self.held {
            Some(bytes) => bytes.len() as u64 <= SMALL_FILE_BYTES,
            None => is_small_file(&self.path),
        }
    }
}

/// What reads a [`LocalArtifact`]'s archive: its file, or the bytes held.
pub trait ZipSource: std::io::Read + std::io::Seek + Send {}

impl<T: std::io::Read + std::io::Seek + Send> ZipSource for T {}

/// One action attempt, prepared for a provider.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the engine asked for, configuration resolved.
    pub request: ActionRequest,
    /// The input artifacts, downloaded and verified, in declaration order.
    pub inputs: Vec<LocalArtifact>,
    /// A fresh folder the provider owns for this attempt.
    pub work_dir: PathBuf,
    /// Where the provider writes the action's log.
    pub log_path: PathBuf,
    /// For a provider that works on artifacts in place
    /// ([`ActionProvider::works_in_place`]), where they are, when the store can tell; its
    /// `inputs` are then left undownloaded.
    pub in_place: Option<InPlaceArtifacts>,
    /// Where each input artifact lies in the action region's store, by name, beside the
    /// downloaded files, for a provider that asks ([`ActionProvider::wants_input_places`])
    /// when the store can tell; empty otherwise.
    pub input_places: Vec<(String, baton_core::engine::ArtifactLocation)>,
}

/// The attempt's artifacts in a store an AWS service reads and writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlaceArtifacts {
    /// Each input artifact by name, in the action's region, in declaration order.
    pub inputs: Vec<(String, ArtifactLocation)>,
    /// Where each declared output artifact is to be written, by name.
    pub outputs: Vec<(String, ArtifactLocation)>,
    /// The KMS key of the action's region's store: what the service encrypts outputs with.
    pub kms_key_arn: String,
}

/// How an action attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// The action did its work; outputs are zip files to store.
    Succeeded {
        #[allow(missing_docs)]
        output_artifacts: Vec<LocalArtifact>,
        #[allow(missing_docs)]
        output_variables: BTreeMap<String, String>,
        #[allow(missing_docs)]
        summary: Option<String>,
        #[allow(missing_docs)]
        external_id: Option<String>,
        #[allow(missing_docs)]
        external_url: Option<String>,
    },
    /// The provider started work elsewhere that goes on after this call (a build): the worker
    /// records it and asks [`ActionProvider::resume`] later, when the service says it ended or
    /// when a periodic check comes due.
    Running {
        /// The provider's id for the work, which the service's events name too.
        external_id: String,
        #[allow(missing_docs)]
        external_url: Option<String>,
    },
    /// The action failed for a reason the pipeline's users must see.
    Failed {
        /// `JobFailed`, `TimedOut`, `ConfigurationError`...
        code: String,
        #[allow(missing_docs)]
        message: String,
    },
}

/// How a provider fails to run at all (not a failed action).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider's service could not be reached. Retry later.
    #[error("provider unavailable")]
    Unavailable(#[source] BoxError),
}

/// Does the work of one kind of action.
#[async_trait]
pub trait ActionProvider: Send + Sync {
    /// Refuses, before a run starts, an action this provider cannot run here. The message
    /// names what to configure.
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let _ = action;
        Ok(())
    }
    /// Whether the provider hands its service the artifacts' places instead of files: its
    /// inputs are not downloaded when [`Job::in_place`] is given, and on success its outputs
    /// are taken to be at the places [`InPlaceArtifacts::outputs`] named.
    fn works_in_place(&self) -> bool {
        false
    }
    /// Whether `request`'s attempt needs to know where its inputs lie in the store as well as
    /// their files ([`Job::input_places`]), as CloudFormation's `Fn::GetArtifactAtt` does.
    fn wants_input_places(&self, request: &ActionRequest) -> bool {
        let _ = request;
        false
    }
    /// For a source: the revision a run would fetch now, so a poller can tell a new one
    /// (`PollForSourceChanges`); `None` when this provider cannot tell.
    async fn latest_revision(
        &self,
        action: &ActionPlan,
    ) -> Option<baton_core::engine::SourceRevision> {
        let _ = action;
        None
    }
    /// Runs one attempt.
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError>;
    /// Asks how work that [`ActionProvider::run`] left [`JobResult::Running`] stands:
    /// `Running` again while it goes on. Called past the request's deadline, it stops the work
    /// and fails the attempt as timed out.
    ///
    /// `job` has the request, a fresh work folder for outputs and the log path, but no
    /// inputs: what the work needs from them was handed over when it started.
    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        let _ = (job, external_id);
        Ok(JobResult::Failed {
            code: "JobFailed".into(),
            message: "This provider cannot follow work that outlives its run.".into(),
        })
    }
    /// What the ended work `external_id` of `job`'s attempt reached (a deployment's
    /// instances, functions, task sets), for `ListDeployActionExecutionTargets`. Asked once,
    /// when [`ActionProvider::resume`] gives the work's end; it is only read, so a provider that
    /// cannot tell logs why and answers none rather than failing the action.
    async fn targets(&self, job: &Job, external_id: &str) -> Vec<DeployTarget> {
        let _ = (job, external_id);
        Vec::new()
    }
    /// Stops running work whose attempt no longer counts (the execution was stopped, or the
    /// action timed out): nobody waits for it, and it would go on being billed.
    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let _ = (request, external_id);
        Ok(())
    }
}

/// One evaluation of a rule that asks a service, prepared for its provider.
#[derive(Debug, Clone)]
pub struct RuleCheck {
    /// What the engine asked for, configuration and commands resolved.
    pub request: RuleRequest,
    /// The input artifacts, downloaded and verified, in declaration order.
    pub inputs: Vec<LocalArtifact>,
    /// A fresh folder the provider owns for this evaluation.
    pub work_dir: PathBuf,
    /// Where the provider writes the rule's log.
    pub log_path: PathBuf,
    /// Now, by the worker's clock (what `WaitTime`-style rules count with).
    pub now: i64,
    /// For a provider that works in place ([`RuleProvider::works_in_place`]): where the input
    /// artifacts are, instead of `inputs`.
    pub in_place: Option<InPlaceArtifacts>,
}

/// Evaluates one kind of rule (`ruleTypeId.provider`) that asks a service.
#[async_trait]
pub trait RuleProvider: Send + Sync {
    /// Refuses, before a run starts, a rule this provider cannot evaluate here. The message
    /// names what to configure.
    async fn check(&self, rule: &RulePlan) -> Result<(), String> {
        let _ = rule;
        Ok(())
    }
    /// Evaluates the rule once: `Pass`, `Fail`, or `Wait` to be asked again later.
    async fn evaluate(&self, check: &RuleCheck) -> Result<Verdict, ProviderError>;
    /// Evaluates the rule once, going on with what the previous `Wait` of this run of its
    /// condition left (`check.request.handle`), and returns what the next evaluation is to
    /// pick up: for a rule whose work outlives one evaluation (a build).
    async fn evaluate_held(
        &self,
        check: &RuleCheck,
    ) -> Result<(Verdict, Option<String>), ProviderError> {
        Ok((self.evaluate(check).await?, None))
    }
    /// Whether the rule's service reads the input artifacts where the store keeps them
    /// ([`RuleCheck::in_place`]) rather than as downloaded files.
    fn works_in_place(&self) -> bool {
        false
    }
}

/// Providers by category, owner and provider name.
#[derive(Default, Clone)]
pub struct ProviderRegistry {
    providers: HashMap<(String, String, String), Arc<dyn ActionProvider>>,
    /// Rule providers by `ruleTypeId.provider`.
    rules: HashMap<String, Arc<dyn RuleProvider>>,
    /// Whether these are a deployment's providers on AWS, where refusals name what to deploy
    /// or set rather than what to put in `baton.toml`.
    on_aws: bool,
    /// Whether this host can be given AWS providers by configuration (a `baton` built with
    /// them), so a refusal says what to configure rather than what to build.
    aws_configurable: bool,
    /// Providers for every type of an owner not registered by name (`Custom` types, which
    /// their owners register at run time and external workers run).
    by_owner: HashMap<String, Arc<dyn ActionProvider>>,
}

impl ProviderRegistry {
    /// Registers `provider` for actions of this category, owner and provider name.
    pub fn register(
        &mut self,
        category: &str,
        owner: &str,
        provider: &str,
        implementation: Arc<dyn ActionProvider>,
    ) {
        self.providers.insert((category.into(), owner.into(), provider.into()), implementation);
    }

    /// Registers `provider` for every action type of `owner` not registered by name.
    pub fn register_owner(&mut self, owner: &str, implementation: Arc<dyn ActionProvider>) {
        self.by_owner.insert(owner.into(), implementation);
    }

    /// Marks these as the providers of a deployment on AWS (see [`Self::refusals`]).
    pub fn on_aws(mut self) -> Self {
        self.on_aws = true;
        self
    }

    /// Marks a host that takes AWS providers when `baton.toml` has an `[aws]` section.
    pub fn aws_configurable(mut self) -> Self {
        self.aws_configurable = true;
        self
    }

    /// Registers `implementation` for rules of `provider`.
    pub fn register_rule(&mut self, provider: &str, implementation: Arc<dyn RuleProvider>) {
        self.rules.insert(provider.into(), implementation);
    }

    /// Adds every provider of `other`, replacing those registered under the same names.
    pub fn extend(&mut self, other: ProviderRegistry) {
        self.providers.extend(other.providers);
        self.by_owner.extend(other.by_owner);
        self.rules.extend(other.rules);
    }

    /// The provider for rules of `provider`.
    pub fn rule(&self, provider: &str) -> Option<&Arc<dyn RuleProvider>> {
        self.rules.get(provider)
    }

    /// The provider for `action_type`.
    pub fn get(&self, t: &ActionType) -> Option<&Arc<dyn ActionProvider>> {
        self.providers
            .get(&(t.category.clone(), t.owner.clone(), t.provider.clone()))
            .or_else(|| self.by_owner.get(&t.owner))
    }

    /// Every action of `plan` that cannot run here, as one sentence each.
    pub async fn refusals(&self, plan: &baton_core::plan::Plan) -> Vec<String> {
        let mut refusals = Vec::new();
        for stage in &plan.stages {
            for action in &stage.actions {
                if action.action_type.is_manual_approval() {
                    continue;
                }
                let t = &action.action_type;
                let why = match self.get(t) {
                    None if self.on_aws => Err(missing_on_aws(t)),
                    None => Err(missing_provider(t, self.aws_configurable)),
                    Some(p) => p.check(action).await,
                };
                if let Err(why) = why {
                    refusals.push(format!(
                        "stage \"{}\", action \"{}\": {why}",
                        stage.name, action.name
                    ));
                }
            }
            for (kind, rule) in stage.conditions.rules() {
                if rule.is_decided_by_engine() {
                    continue;
                }
                let why = match self.rules.get(&rule.provider) {
                    None => Err(missing_rule_provider(&rule.provider, self.aws_configurable)),
                    Some(p) => p.check(rule).await,
                };
                if let Err(why) = why {
                    refusals.push(format!(
                        "stage \"{}\", {} rule \"{}\": {why}",
                        stage.name,
                        kind.as_str(),
                        rule.name,
                    ));
                }
            }
        }
        refusals
    }
}

/// The action types Baton's AWS providers run (against AWS, or the endpoint `[aws]` names).
pub const AWS_PROVIDED: [(&str, &str, &str); 17] = [
    ("Deploy", "AWS", "CloudFormation"),
    ("Deploy", "AWS", "CloudFormationStackSet"),
    ("Deploy", "AWS", "CloudFormationStackInstances"),
    ("Deploy", "AWS", "CodeDeploy"),
    ("Deploy", "AWS", "CodeDeployToECS"),
    ("Deploy", "AWS", "ECS"),
    ("Deploy", "AWS", "ElasticBeanstalk"),
    ("Deploy", "AWS", "Lambda"),
    ("Deploy", "AWS", "AppConfig"),
    ("Deploy", "AWS", "S3"),
    ("Invoke", "AWS", "Lambda"),
    ("Invoke", "AWS", "StepFunctions"),
    ("Source", "AWS", "CodeCommit"),
    ("Source", "AWS", "ECR"),
    ("Source", "AWS", "S3"),
    ("Build", "AWS", "CodeBuild"),
    ("Test", "AWS", "CodeBuild"),
];

/// Why an action of type `t` cannot run on a deployment on AWS, and what would let it.
fn missing_on_aws(t: &ActionType) -> String {
    let name = format!("{}/{}/{}", t.owner, t.category, t.provider);
    match (t.owner.as_str(), t.provider.as_str()) {
        ("ThirdParty", "GitHub") => format!(
            "Baton has no provider for {name} (GitHub v1) sources on AWS yet: run the pipeline on one machine, or move it to a CodeStarSourceConnection source"
        ),
        ("Custom" | "ThirdParty", _) | ("AWS", "Lambda") => format!(
            "{name} runs through the job protocol, which needs the deployment's job role: set BATON_JOB_ROLE_ARN on the functions (template.yaml sets it to JobArtifactsRole)"
        ),
        ("AWS", "Commands" | "CodeStarSourceConnection") => format!(
            "{name} runs as a build of the deployment's Commands project: set BATON_COMMANDS_PROJECT on the functions (template.yaml sets it to CommandsProject)"
        ),
        _ => format!(
            "Baton has no provider for {name} actions yet, so this pipeline can be created and kept here but not run"
        ),
    }
}

/// Why a rule of `provider` cannot be evaluated on this host, and what would let it.
fn missing_rule_provider(provider: &str, aws_configurable: bool) -> String {
    if provider == "Commands" {
        // Registered on one machine always; on AWS with the deployment's Commands project.
        return "Commands rules run as builds of the deployment's Commands project: set BATON_COMMANDS_PROJECT on the functions (template.yaml sets it to CommandsProject)".into();
    }
    if !baton_core::rules::SERVICE_RULES.contains(&provider) {
        return format!(
            "Baton has no provider for {provider} rules, so this pipeline can be created and kept here but not run"
        );
    }
    if aws_configurable {
        format!(
            "{provider} rules ask AWS: add an [aws] section to baton.toml naming the region (and the endpoint, for an emulator)"
        )
    } else {
        format!(
            "{provider} rules ask AWS: use a baton built with `cargo build -p baton-cli --features aws`, with an [aws] section in baton.toml"
        )
    }
}

/// Why an action of type `t` cannot run on this host, and what would let it: never a build
/// flag or a setting that would not help.
fn missing_provider(t: &ActionType, aws_configurable: bool) -> String {
    let name = format!("{}/{}/{}", t.owner, t.category, t.provider);
    let ours = AWS_PROVIDED.iter().any(|(c, o, p)| {
        (*c, *o, *p) == (t.category.as_str(), t.owner.as_str(), t.provider.as_str())
    });
    if !ours {
        return format!(
            "Baton has no provider for {name} actions yet, so this pipeline can be created and kept here but not run"
        );
    }
    if aws_configurable {
        format!(
            "{name} runs against AWS: add an [aws] section to baton.toml naming the region (and the endpoint, for an emulator)"
        )
    } else {
        format!(
            "{name} runs against AWS: use a baton built with `cargo build -p baton-cli --features aws`, with an [aws] section in baton.toml"
        )
    }
}

/// Why a pipeline could not be started by [`PipelineStarter`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The start is refused for good (no such pipeline, an action that cannot run here).
    #[error("{0}")]
    Refused(String),
    /// The state could not be reached; a later try may work.
    #[error("cannot start a pipeline now")]
    Unavailable(#[source] BoxError),
}

/// Starts executions of this host's pipelines: what the action that invokes another pipeline
/// (`AWS/Invoke/CodePipeline`) needs.
#[async_trait]
pub trait PipelineStarter: Send + Sync {
    /// Starts `pipeline` as execution `execution_id` (starting one that exists changes
    /// nothing), with `variables` and each source action's pinned revision.
    async fn start_pipeline(
        &self,
        pipeline: &str,
        execution_id: &str,
        started_by: &str,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, baton_core::engine::SourceRevision>,
    ) -> Result<(), StartError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(actions: &str) -> baton_core::plan::Plan {
        let text = format!(
            r#"{{"name": "p", "roleArn": "arn:aws:iam::111111111111:role/p", "pipelineType": "V2",
            "artifactStore": {{"type": "S3", "location": "artifacts"}},
            "stages": [{{"name": "Source", "actions": [{{"name": "Src",
                "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}},
                "configuration": {{"S3Bucket": "b", "S3ObjectKey": "k"}}, "outputArtifacts": [{{"name": "Out"}}]}}]}},
              {{"name": "Run", "actions": [{actions}]}}]}}"#
        );
        let doc = baton_core::declaration::PipelineDocument::parse(&text).unwrap();
        let placement = baton_core::plan::Placement {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            event_source: "baton.codepipeline".into(),
        };
        baton_core::plan::Plan::from_declaration(&doc.pipeline, &placement).unwrap()
    }

    /// On AWS a refusal says what to deploy or set there, never to edit `baton.toml`.
    #[tokio::test]
    async fn refusals_on_aws_name_what_a_deployment_needs() {
        let p = plan(
            r#"{"name": "Fn", "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                "configuration": {"FunctionName": "f"}},
               {"name": "Cmd", "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["true"], "inputArtifacts": [{"name": "Out"}]}"#,
        );
        let mut aws = ProviderRegistry::default().on_aws();
        aws.register("Source", "AWS", "S3", Arc::new(Nothing));
        let refusals = aws.refusals(&p).await;
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert!(refusals[0].contains("BATON_JOB_ROLE_ARN"), "{}", refusals[0]);
        assert!(refusals[1].contains("BATON_COMMANDS_PROJECT"), "{}", refusals[1]);
        assert!(refusals.iter().all(|r| !r.contains("baton.toml")), "{refusals:?}");

        let mut local = ProviderRegistry::default();
        local.register("Source", "AWS", "S3", Arc::new(Nothing));
        let refusals = local.refusals(&p).await;
        assert!(refusals[0].contains("baton.toml") || refusals[0].contains("--features aws"));
    }

    struct Nothing;

    #[async_trait]
    impl ActionProvider for Nothing {
        async fn run(&self, _: &Job) -> Result<JobResult, ProviderError> {
            unreachable!("refusals run nothing")
        }
    }
}
