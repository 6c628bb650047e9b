//! trigger: starts executions, from the API or from a source change (a push, an upload).

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::engine::{Input, SourceRevision, Trigger as ExecutionTrigger};
use baton_core::events::{format_uuid, uuid_from};
use baton_core::plan::{POLLED_SOURCES, watch_key};

use super::ServiceError;
use super::stage_advance::{Outcome, StageAdvance};
use crate::ports::clock::entropy;
use crate::ports::provider::ProviderRegistry;
use crate::ports::state::{PipelineRecord, StateStore};
use baton_protocol::bus_events::{BusEvent, PipelineInput};
use tracing::warn;

/// A change in a source: a push to a branch of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePush {
    /// The CodeCommit repository name.
    pub repository: String,
    /// The branch pushed to.
    pub branch: String,
    /// The commit pushed, if known.
    pub commit: Option<String>,
}

/// A change in a source that may start pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChange {
    /// A push to a CodeCommit branch.
    Push(SourcePush),
    /// An object written to an S3 bucket.
    Upload {
        #[allow(missing_docs)]
        bucket: String,
        #[allow(missing_docs)]
        key: String,
        /// The object version, if the bucket is versioned.
        version: Option<String>,
    },
    /// An image pushed to an ECR repository with a tag.
    ImagePush {
        #[allow(missing_docs)]
        repository: String,
        #[allow(missing_docs)]
        tag: String,
        /// `sha256:...`: what the started execution fetches, whatever the tag points to later.
        digest: String,
    },
}

impl SourceChange {
    /// The [`watch_key`] of what changed: its repository or bucket.
    pub fn watch_key(&self) -> String {
        match self {
            Self::Push(p) => watch_key("codecommit", &p.repository),
            Self::Upload { bucket, .. } => watch_key("s3", bucket),
            Self::ImagePush { repository, .. } => watch_key("ecr", repository),
        }
    }

    /// Reads CodeCommit's "Repository State Change" (branch created or updated), S3's
    /// "Object Created" or ECR's "ECR Image Action" (a successful push of a tagged image) event.
    ///
    /// # Errors
    /// A sentence saying why the event is not a source change.
    pub fn from_event(event: &BusEvent) -> Result<Self, String> {
        let d = &event.detail;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.codecommit", "CodeCommit Repository State Change") => {
                if d["referenceType"] != "branch" {
                    return Err("the change is not to a branch".into());
                }
                Ok(Self::Push(SourcePush {
                    repository: text(&d["repositoryName"])
                        .ok_or("the event has no repositoryName")?,
                    branch: text(&d["referenceName"]).ok_or("the event has no referenceName")?,
                    commit: text(&d["commitId"]),
                }))
            }
            ("aws.s3", "Object Created") => Ok(Self::Upload {
                bucket: text(&d["bucket"]["name"]).ok_or("the event has no bucket name")?,
                key: text(&d["object"]["key"]).ok_or("the event has no object key")?,
                version: text(&d["object"]["version-id"]),
            }),
            ("aws.ecr", "ECR Image Action") => {
                if d["action-type"] != "PUSH" || d["result"] != "SUCCESS" {
                    return Err("the image action is not a successful push".into());
                }
                Ok(Self::ImagePush {
                    repository: text(&d["repository-name"])
                        .ok_or("the event has no repository-name")?,
                    tag: text(&d["image-tag"]).ok_or("the pushed image has no tag")?,
                    digest: text(&d["image-digest"]).ok_or("the event has no image-digest")?,
                })
            }
            (source, kind) => Err(format!("\"{kind}\" from {source} is not a source change")),
        }
    }
}

/// The trigger service.
pub struct Trigger {
    store: Arc<dyn StateStore>,
    /// Starts are applied here, as the control API applies its commands: no event carries them.
    stage_advance: Arc<StageAdvance>,
    /// What this host runs, where starts are refused before anything runs (one machine); on
    /// AWS the worker has every provider the API accepts a start for.
    providers: Option<ProviderRegistry>,
    /// Whether a polled action without a `roleArn` is read as its pipeline's role, as the
    /// worker runs it.
    pipeline_roles: bool,
}

impl Trigger {
    /// Starts pipelines of `store` through `stage_advance`, whose clock times them.
    pub fn new(store: Arc<dyn StateStore>, stage_advance: Arc<StageAdvance>) -> Self {
        Self { store, stage_advance, providers: None, pipeline_roles: false }
    }

    /// Refuses to start a pipeline with an action `providers` cannot run.
    pub fn with_providers(mut self, providers: ProviderRegistry) -> Self {
        self.providers = Some(providers);
        self
    }

    /// Polls sources without a `roleArn` as their pipeline's role (on AWS, where the worker
    /// runs them so).
    pub fn with_pipeline_roles(mut self) -> Self {
        self.pipeline_roles = true;
        self
    }

    /// Why `pipeline`, planned as `plan` (a record already read), cannot start on this host.
    async fn refusal_of(&self, pipeline: &str, plan: &baton_core::plan::Plan) -> Option<String> {
        let providers = self.providers.as_ref()?;
        let why = super::pipelines::runnable(providers, plan).await.err()?;
        Some(format!("{pipeline} cannot run here: {why}"))
    }

    /// Starts an execution of `pipeline`; returns its id.
    ///
    /// # Errors
    /// [`ServiceError::Permanent`] when the pipeline does not exist; retryable errors when the
    /// bus is unavailable.
    pub async fn start(
        &self,
        pipeline: &str,
        trigger: ExecutionTrigger,
        variables: BTreeMap<String, String>,
    ) -> Result<String, ServiceError> {
        let bits = entropy().map_err(|e| ServiceError::Permanent(format!("no randomness: {e}")))?;
        self.start_as(pipeline, format_uuid(bits), trigger, variables, BTreeMap::new()).await
    }

    /// Starts an execution of `pipeline` with the id `execution_id`: a second start with the
    /// same id starts nothing (a redelivered webhook).
    ///
    /// # Errors
    /// As [`Trigger::start`].
    pub async fn start_with_id(
        &self,
        pipeline: &str,
        execution_id: String,
        trigger: ExecutionTrigger,
        variables: BTreeMap<String, String>,
    ) -> Result<String, ServiceError> {
        self.start_as(pipeline, execution_id, trigger, variables, BTreeMap::new()).await
    }

    async fn start_as(
        &self,
        pipeline: &str,
        execution_id: String,
        trigger: ExecutionTrigger,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, SourceRevision>,
    ) -> Result<String, ServiceError> {
        // An unknown pipeline is refused by stage-advance (Permanent).
        let start = Start { execution_id, trigger, variables, source_revisions };
        let Some(record) = self.store.get_pipeline(pipeline).await? else {
            return self.start_checked(pipeline, start, None).await;
        };
        if let Some(why) = self.refusal_of(pipeline, &record.plan).await {
            return Err(ServiceError::Permanent(why));
        }
        self.start_checked(pipeline, start, Some(record)).await
    }

    /// [`Self::start_as`] for a pipeline whose record (`read`) was just read and found
    /// runnable: it is not read again.
    async fn start_checked(
        &self,
        pipeline: &str,
        start: Start,
        read: Option<PipelineRecord>,
    ) -> Result<String, ServiceError> {
        let Start { execution_id, trigger, variables, source_revisions } = start;
        let input = Input::Start {
            execution_id: execution_id.clone(),
            trigger,
            variables,
            source_revisions,
        };
        let message = PipelineInput { pipeline: pipeline.into(), input };
        let outcome = match read {
            Some(record) => self.stage_advance.handle_read(message, record).await?,
            None => self.stage_advance.handle(message).await?,
        };
        if let Outcome::Rejected(why) = outcome {
            return Err(ServiceError::Permanent(format!("cannot start {pipeline}: {why}")));
        }
        Ok(execution_id)
    }

    /// Starts every pipeline whose CodeCommit source action watches the pushed branch, the way
    /// an EventBridge rule on CodeCommit's "Repository State Change" does. Returns the
    /// (pipeline, execution id) pairs started.
    ///
    /// # Errors
    /// As [`Trigger::start`].
    pub async fn on_push(&self, push: &SourcePush) -> Result<Vec<(String, String)>, ServiceError> {
        self.on_change(&SourceChange::Push(push.clone()), None).await
    }

    /// Starts every pipeline whose source action watches what changed. With the id of the
    /// event that told of the change, each execution id is derived from it, so the same event
    /// delivered twice starts nothing the second time (the engine ignores a repeated start).
    ///
    /// # Errors
    /// As [`Trigger::start`].
    pub async fn on_change(
        &self,
        change: &SourceChange,
        event_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let mut started = Vec::new();
        for name in self.store.pipelines_watching(&change.watch_key()).await? {
            let Some(record) = self.store.get_pipeline(&name).await? else { continue };
            let Some(first) = record.plan.stages.first() else { continue };
            let watching: Vec<_> = first.actions.iter().filter(|a| watches(a, change)).collect();
            if !watching.is_empty() {
                if let Some(why) = self.refusal_of(&name, &record.plan).await {
                    warn!(pipeline = %name, reason = %why, "not started by the change");
                    continue;
                }
                let trigger = ExecutionTrigger {
                    trigger_type: "CloudWatchEvent".into(),
                    trigger_detail: describe(change),
                };
                // The change is the revision the execution runs, as CodePipeline runs it.
                let revisions = match pinned(change) {
                    Some(r) => watching.iter().map(|a| (a.name.clone(), r.clone())).collect(),
                    None => BTreeMap::new(),
                };
                let id = match event_id {
                    Some(event) => uuid_from(&format!("{name}\n{event}")),
                    None => format_uuid(
                        entropy()
                            .map_err(|e| ServiceError::Permanent(format!("no randomness: {e}")))?,
                    ),
                };
                let start = Start::new(id, trigger, revisions);
                let id = self.start_checked(&name, start, Some(record)).await?;
                started.push((name, id));
            }
        }
        Ok(started)
    }
}

impl Trigger {
    /// Starts every pipeline whose connection source action on `delivery`'s repository the
    /// event starts, under the pipeline's V2 triggers (or its `BranchName` without one), each
    /// on the event's commit. The execution id comes from the delivery's id, so a redelivery
    /// starts nothing twice. Returns the (pipeline, execution id) pairs started.
    ///
    /// # Errors
    /// As [`Trigger::start`].
    pub async fn on_git_event(
        &self,
        host: &str,
        delivery: &super::webhooks::Delivery,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let Some(event) = &delivery.event else { return Ok(Vec::new()) };
        let mut started = Vec::new();
        for name in self.store.pipelines_watching(&watch_key("git", &delivery.repository)).await? {
            let Some(record) = self.store.get_pipeline(&name).await? else { continue };
            let triggers = record.declaration.triggers.clone().unwrap_or_default();
            let Some(first) = record.plan.stages.first() else { continue };
            let config =
                |a: &baton_core::plan::ActionPlan, k: &str| a.configuration.get(k).cloned();
            let watching: Vec<_> = first
                .actions
                .iter()
                .filter(|a| {
                    a.action_type.provider == "CodeStarSourceConnection"
                        && config(a, "FullRepositoryId").as_deref()
                            == Some(delivery.repository.as_str())
                        && baton_core::triggers::starts(
                            &triggers,
                            &a.name,
                            config(a, "BranchName").as_deref(),
                            config(a, "DetectChanges")
                                .is_none_or(|d| !d.eq_ignore_ascii_case("false")),
                            event,
                        )
                })
                .collect();
            let Some(action) = watching.first() else { continue };
            if let Some(why) = self.refusal_of(&name, &record.plan).await {
                warn!(pipeline = %name, reason = %why, "not started by the webhook");
                continue;
            }
            let trigger = ExecutionTrigger {
                trigger_type: "WebhookV2".into(),
                trigger_detail: config(action, "ConnectionArn")
                    .unwrap_or_else(|| delivery.repository.clone()),
            };
            let revision = SourceRevision {
                revision_type: "COMMIT_ID".into(),
                value: event.commit.clone(),
                // The branch the event is on: the source reports it as its BranchName.
                branch: event.branch().map(str::to_owned),
            };
            let revisions = watching.iter().map(|a| (a.name.clone(), revision.clone())).collect();
            let id = uuid_from(&format!("{name}\n{host}\n{}", delivery.id));
            let start = Start::new(id, trigger, revisions);
            let id = self.start_checked(&name, start, Some(record)).await?;
            started.push((name, id));
        }
        Ok(started)
    }
}

impl Trigger {
    /// `PollForSourceChanges: "true"`: starts each pipeline whose polled source action has a
    /// revision the pipeline's latest execution did not run, pinned to it. The execution id
    /// comes from the revision, so one revision starts one execution however often it is
    /// polled. Returns the (pipeline, execution id) pairs started.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn poll(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let Some(providers) = &self.providers else { return Ok(Vec::new()) };
        let mut started = Vec::new();
        for name in self.store.pipelines_watching(POLLED_SOURCES).await? {
            let Some(record) = self.store.get_pipeline(&name).await? else { continue };
            let Some(first) = record.plan.stages.first() else { continue };
            let polled = first.actions.iter().filter(|a| {
                a.configuration
                    .get("PollForSourceChanges")
                    .is_some_and(|p| p.eq_ignore_ascii_case("true"))
            });
            for action in polled {
                let Some(provider) = providers.get(&action.action_type) else { continue };
                let mut read_as = action.clone();
                if self.pipeline_roles && read_as.role_arn.is_none() {
                    read_as.role_arn = record.plan.role_arn.clone();
                }
                let Some(revision) = provider.latest_revision(&read_as).await else { continue };
                let latest = self.store.executions(&name, 1).await?;
                // The latest execution ran this revision, or is about to fetch one: wait.
                let ran = latest.first().is_some_and(|e| match e.source_revision_of(action) {
                    Some(r) => r == revision.value,
                    None => !e.status().is_ended(),
                });
                if ran || self.refusal_of(&name, &record.plan).await.is_some() {
                    continue;
                }
                let trigger = ExecutionTrigger {
                    trigger_type: "PollForSourceChanges".into(),
                    trigger_detail: action.name.clone(),
                };
                let id = uuid_from(&format!("{name}\npoll\n{}\n{}", action.name, revision.value));
                let revisions = BTreeMap::from([(action.name.clone(), revision)]);
                let start = Start::new(id, trigger, revisions);
                let id = self.start_checked(&name, start, Some(record.clone())).await?;
                started.push((name.clone(), id));
                break; // one start per pipeline per look
            }
        }
        Ok(started)
    }
}

fn watches(action: &baton_core::plan::ActionPlan, change: &SourceChange) -> bool {
    let config = |k: &str| action.configuration.get(k).map(String::as_str);
    match change {
        SourceChange::Push(p) => {
            action.action_type.provider == "CodeCommit"
                && config("RepositoryName") == Some(p.repository.as_str())
                && config("BranchName") == Some(p.branch.as_str())
        }
        SourceChange::Upload { bucket, key, .. } => {
            action.action_type.provider == "S3"
                && action.action_type.category == "Source"
                && config("S3Bucket") == Some(bucket.as_str())
                && config("S3ObjectKey") == Some(key.as_str())
        }
        SourceChange::ImagePush { repository, tag, .. } => {
            action.action_type.provider == "ECR"
                && config("RepositoryName") == Some(repository.as_str())
                && config("ImageTag").unwrap_or("latest") == tag
        }
    }
}

/// Starts pipelines for the action that invokes one (`AWS/Invoke/CodePipeline`): its
/// trigger is set once the runtime has built it, since that trigger checks starts against the
/// very providers the invoking action is one of.
#[derive(Default)]
pub struct StarterSlot(std::sync::OnceLock<Trigger>);

impl StarterSlot {
    /// A slot holding `trigger` already.
    pub fn with(trigger: Trigger) -> Self {
        let slot = Self::default();
        slot.set(trigger);
        slot
    }

    /// Puts the trigger in; a second one is ignored.
    pub fn set(&self, trigger: Trigger) {
        let _ = self.0.set(trigger);
    }
}

#[async_trait::async_trait]
impl crate::ports::provider::PipelineStarter for StarterSlot {
    async fn start_pipeline(
        &self,
        pipeline: &str,
        execution_id: &str,
        started_by: &str,
        variables: BTreeMap<String, String>,
        source_revisions: BTreeMap<String, SourceRevision>,
    ) -> Result<(), crate::ports::provider::StartError> {
        use crate::ports::provider::StartError;
        let Some(trigger) = self.0.get() else {
            return Err(StartError::Unavailable("the runtime is still starting".into()));
        };
        let by = ExecutionTrigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: started_by.into(),
        };
        match trigger.start_as(pipeline, execution_id.into(), by, variables, source_revisions).await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == super::ErrorKind::Permanent => {
                Err(StartError::Refused(e.to_string()))
            }
            Err(e) => Err(StartError::Unavailable(Box::new(e))),
        }
    }
}

/// The revision a change names, if it names one.
fn pinned(change: &SourceChange) -> Option<SourceRevision> {
    let (revision_type, value) = match change {
        SourceChange::Push(SourcePush { commit: Some(c), .. }) => ("COMMIT_ID", c),
        SourceChange::Upload { version: Some(v), .. } => ("S3_OBJECT_VERSION_ID", v),
        SourceChange::ImagePush { digest, .. } => ("IMAGE_DIGEST", digest),
        _ => return None,
    };
    Some(SourceRevision { revision_type: revision_type.into(), value: value.clone(), branch: None })
}

fn describe(change: &SourceChange) -> String {
    match change {
        SourceChange::Push(p) => match &p.commit {
            Some(c) => format!("{}/{}@{c}", p.repository, p.branch),
            None => format!("{}/{}", p.repository, p.branch),
        },
        SourceChange::Upload { bucket, key, version } => match version {
            Some(v) => format!("s3://{bucket}/{key}?versionId={v}"),
            None => format!("s3://{bucket}/{key}"),
        },
        SourceChange::ImagePush { repository, tag, digest } => {
            format!("{repository}:{tag}@{digest}")
        }
    }
}

/// What starts an execution: its id, what triggered it, its variables and pinned revisions.
struct Start {
    execution_id: String,
    trigger: ExecutionTrigger,
    variables: BTreeMap<String, String>,
    source_revisions: BTreeMap<String, SourceRevision>,
}

impl Start {
    /// A start by a source change: no variables.
    fn new(
        execution_id: String,
        trigger: ExecutionTrigger,
        source_revisions: BTreeMap<String, SourceRevision>,
    ) -> Self {
        Self { execution_id, trigger, variables: BTreeMap::new(), source_revisions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, kind: &str, detail: serde_json::Value) -> BusEvent {
        BusEvent {
            source: source.into(),
            detail_type: kind.into(),
            resources: vec![],
            detail,
            trace: None,
        }
    }

    #[test]
    fn a_codecommit_branch_update_is_a_push() {
        let e = event(
            "aws.codecommit",
            "CodeCommit Repository State Change",
            json!({
            "event": "referenceUpdated", "repositoryName": "app", "referenceType": "branch",
            "referenceName": "main", "commitId": "abc"}),
        );
        assert_eq!(
            SourceChange::from_event(&e),
            Ok(SourceChange::Push(SourcePush {
                repository: "app".into(),
                branch: "main".into(),
                commit: Some("abc".into())
            }))
        );
    }

    #[test]
    fn a_tag_push_and_other_events_are_not_source_changes() {
        let tag = event(
            "aws.codecommit",
            "CodeCommit Repository State Change",
            json!({
            "repositoryName": "app", "referenceType": "tag", "referenceName": "v1"}),
        );
        assert!(SourceChange::from_event(&tag).is_err());
        assert!(SourceChange::from_event(&event("aws.ec2", "Whatever", json!({}))).is_err());
    }

    #[test]
    fn a_successful_ecr_push_of_a_tag_is_an_image_push_pinned_to_its_digest() {
        let detail = json!({"result": "SUCCESS", "repository-name": "web",
            "image-digest": "sha256:abc", "action-type": "PUSH", "image-tag": "latest"});
        let change =
            SourceChange::from_event(&event("aws.ecr", "ECR Image Action", detail.clone()));
        let expected = SourceChange::ImagePush {
            repository: "web".into(),
            tag: "latest".into(),
            digest: "sha256:abc".into(),
        };
        assert_eq!(change, Ok(expected.clone()));
        assert_eq!(
            pinned(&expected).map(|r| (r.revision_type, r.value)),
            Some(("IMAGE_DIGEST".into(), "sha256:abc".into()))
        );
        let mut failed = detail.clone();
        failed["result"] = json!("FAILURE");
        assert!(SourceChange::from_event(&event("aws.ecr", "ECR Image Action", failed)).is_err());
        let mut deleted = detail;
        deleted["action-type"] = json!("DELETE");
        assert!(SourceChange::from_event(&event("aws.ecr", "ECR Image Action", deleted)).is_err());
    }

    #[test]
    fn an_s3_object_created_is_an_upload() {
        let e = event(
            "aws.s3",
            "Object Created",
            json!({"bucket": {"name": "b"}, "object": {"key": "app.zip", "version-id": "v1"}}),
        );
        assert_eq!(
            SourceChange::from_event(&e),
            Ok(SourceChange::Upload {
                bucket: "b".into(),
                key: "app.zip".into(),
                version: Some("v1".into())
            })
        );
    }
}
