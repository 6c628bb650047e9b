//! Actions done outside Baton through CodePipeline's job protocol: the attempt makes a job with
//! its configuration, its artifacts' places and credentials for them, and the job is either
//! queued for a worker that polls for it (custom action types) or handed over at once (a Lambda
//! function invoked with the job, [`JobHandoff`]). Whoever does the work reports on the job;
//! the attempt then ends as reported, or goes on with a new job when the report carries a
//! continuation token.
//!
//! Host-independent: jobs live behind [`JobQueue`], artifacts are lent through
//! [`JobArtifacts`] (files served under S3's protocol on one machine, S3 itself on AWS).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::engine::ActionRequest;
use baton_core::events::format_uuid;
use baton_core::plan::ActionPlan;
use serde_json::{Value, json};
use tracing::warn;

use super::{Failure, Stop, finish};
use crate::ports::BoxError;
use crate::ports::clock::{Clock, entropy};
use crate::ports::job_artifacts::JobArtifacts;
use crate::ports::job_queue::{
    ActionType, CustomActionType, JobQueue, JobReport, JobStatus, QueuedJob,
};
use crate::ports::jobs::RunningJob;
use crate::ports::provider::{ActionProvider, Job, JobResult, ProviderError};
use crate::ports::state::{StoreError, Versioned};
use crate::service::THIRD_PARTY;

/// Hands a job over to what does its work, when that is not a worker that polls.
#[async_trait]
pub trait JobHandoff: Send + Sync {
    /// Refuses, before a run starts, an action that cannot be handed over (a missing setting).
    fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let _ = action;
        Ok(())
    }
    /// Hands over the job `event` (CodePipeline's `{"CodePipeline.job": ...}`) of `request`;
    /// the work reports through the job protocol.
    async fn hand_over(&self, event: &Value, request: &ActionRequest) -> Result<(), HandoffError>;
}

/// Why a job could not be handed over.
#[derive(Debug)]
pub enum HandoffError {
    /// Refused for good (no such function, access denied): fails the action with this message.
    Refused(String),
    /// Could not be reached now; the attempt is tried again.
    Unavailable(BoxError),
}

/// Runs actions through jobs: of registered custom types, for external workers to poll; or of
/// a type with a [`JobHandoff`] (`AWS/Invoke/Lambda`), handed over at once.
pub struct JobWorkerProvider {
    queue: Arc<dyn JobQueue>,
    artifacts: Arc<dyn JobArtifacts>,
    clock: Arc<dyn Clock>,
    /// The account jobs are said to belong to (`Job.accountId`).
    account: String,
    handoff: Option<Arc<dyn JobHandoff>>,
}

impl JobWorkerProvider {
    #[allow(missing_docs)]
    pub fn new(
        queue: Arc<dyn JobQueue>,
        artifacts: Arc<dyn JobArtifacts>,
        clock: Arc<dyn Clock>,
        account: String,
    ) -> Self {
        Self { queue, artifacts, clock, account, handoff: None }
    }

    /// Hands each job over with `handoff` instead of queuing it for polling workers; the
    /// action's type then needs no registration.
    pub fn with_handoff(mut self, handoff: Arc<dyn JobHandoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    async fn registered(&self, id: &ActionType) -> Result<Option<CustomActionType>, StoreError> {
        Ok(self.queue.action_types().await?.into_iter().find(|t| &t.id == id && !t.deleted))
    }

    async fn start(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let type_id = r.action_type.clone();
        let action_type = match &self.handoff {
            Some(_) => None,
            None => match self.registered(&type_id).await.map_err(unavailable)? {
                Some(t) => Some(t),
                None => return Err(Failure::configuration(not_registered(&type_id)).into()),
            },
        };
        let id = new_job_id()?;
        let grant = self.artifacts.grant(&id, job, r.deadline).await.map_err(|e| {
            Failure::job(format!("Cannot lend the artifacts to a job worker: {e}."))
        })?;
        let artifact = |(name, place): &(String, crate::ports::job_artifacts::S3Place)| {
            let revision = r.input_revisions.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let mut a = json!({"name": name, "location": {"type": "S3", "s3Location": place}});
            if let Some(revision) = revision {
                a["revision"] = json!(revision);
            }
            a
        };
        let mut data = json!({
            "actionTypeId": type_id,
            "actionConfiguration": {"configuration": r.configuration},
            "pipelineContext": {
                "pipelineName": r.pipeline,
                "stage": {"name": r.stage},
                "action": {
                    "name": r.action,
                    "actionExecutionId": crate::ports::action_execution_id(&r.execution_id, &r.stage, &r.action, r.attempt),
                },
                "pipelineArn": format!("arn:aws:codepipeline:{}:{}:{}", r.region, self.account, r.pipeline),
                "pipelineExecutionId": r.execution_id,
            },
            "inputArtifacts": grant.inputs.iter().map(artifact).collect::<Vec<_>>(),
            "outputArtifacts": grant.outputs.iter().map(artifact).collect::<Vec<_>>(),
            "artifactCredentials": grant.credentials,
        });
        if let Some(key) = &grant.encryption_key {
            data["encryptionKey"] = json!({"id": key, "type": "KMS"});
        }
        // CodePipeline tells partners less of the pipeline than its own account's workers.
        if type_id.owner == THIRD_PARTY
            && let Some(context) = data["pipelineContext"].as_object_mut()
        {
            context.remove("pipelineArn");
            context.remove("pipelineExecutionId");
        }
        let query = action_type
            .iter()
            .flat_map(|t| &t.configuration_properties)
            .filter(|p| p.queryable == Some(true))
            .filter_map(|p| Some((p.name.clone(), r.configuration.get(&p.name)?.clone())))
            .collect();
        let queued = QueuedJob {
            id: id.clone(),
            action_type: type_id,
            status: JobStatus::Queued,
            nonce: None,
            data,
            query,
            report: None,
            created: self.clock.now(),
            waiting: RunningJob::key_for(&r.action_type.provider, &id),
            grant: id.clone(),
            handed_over: false,
        };
        self.dispatch(queued, r).await
    }

    /// Records `job` and, with a hand-off, hands it over: queued for polling workers otherwise.
    async fn dispatch(&self, mut job: QueuedJob, r: &ActionRequest) -> Result<JobResult, Stop> {
        let id = job.id.clone();
        let Some(handoff) = &self.handoff else {
            self.queue.put_job(&Versioned { version: 0, value: job }).await.map_err(unavailable)?;
            return Ok(JobResult::Running { external_id: id, external_url: None });
        };
        // Handed over, the job is in progress at once: nobody polls or acknowledges it.
        job.status = JobStatus::InProgress;
        job.handed_over = true;
        let event = json!({"CodePipeline.job": {
            "id": job.id, "accountId": self.account, "data": job.data,
        }});
        self.queue.put_job(&Versioned { version: 0, value: job }).await.map_err(unavailable)?;
        match handoff.hand_over(&event, r).await {
            Ok(()) => Ok(JobResult::Running { external_id: id, external_url: None }),
            Err(e) => {
                if let Ok(Some(job)) = self.queue.job(&id).await {
                    self.time_out(job).await;
                }
                Err(match e {
                    HandoffError::Refused(message) => Stop::Failed(Failure::job(message)),
                    HandoffError::Unavailable(source) => Stop::Unavailable(source),
                })
            }
        }
    }

    async fn look(&self, job: &Job, id: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let Some(Versioned { version, value: queued }) =
            self.queue.job(id).await.map_err(unavailable)?
        else {
            return Err(Failure::job(format!("Job {id} is gone.")).into());
        };
        match (&queued.status, &queued.report) {
            (
                JobStatus::Succeeded,
                Some(JobReport::Succeeded { continuation_token: Some(token), .. }),
            ) => self.continue_with(&queued, token, r).await,
            (
                JobStatus::Succeeded,
                Some(JobReport::Succeeded {
                    output_variables, summary, external_execution_id, ..
                }),
            ) => {
                let outputs = self
                    .artifacts
                    .collect(&queued.grant, job)
                    .await
                    .map_err(|e| Failure::job(format!("{e}.")))?;
                self.revoke(&queued.grant).await;
                let external_url = match self.registered(&queued.action_type).await {
                    Ok(Some(t)) => execution_url(&t, r, external_execution_id.as_deref()),
                    _ => None,
                };
                Ok(JobResult::Succeeded {
                    output_artifacts: outputs,
                    output_variables: output_variables.clone(),
                    summary: summary.clone(),
                    external_id: external_execution_id.clone(),
                    external_url,
                })
            }
            (JobStatus::Failed, Some(JobReport::Failed { kind, message, .. })) => {
                self.revoke(&queued.grant).await;
                Ok(JobResult::Failed { code: kind.clone(), message: message.clone() })
            }
            (status, _) if status.is_open() && self.clock.now() >= r.deadline => {
                self.time_out(Versioned { version, value: queued }).await;
                Err(Failure::timed_out(format!(
                    "Job {id} of {} was not finished before the action's time-out.",
                    r.action_type.key()
                ))
                .into())
            }
            (status, _) if status.is_open() => {
                Ok(JobResult::Running { external_id: id.to_owned(), external_url: None })
            }
            _ => Err(Failure::timed_out(format!("Job {id} timed out.")).into()),
        }
    }

    /// Queues the job that goes on from `done`, with the worker's token: CodePipeline's way of
    /// letting a worker come back to long work without holding a job.
    async fn continue_with(
        &self,
        done: &QueuedJob,
        token: &str,
        r: &ActionRequest,
    ) -> Result<JobResult, Stop> {
        let id = new_job_id()?;
        let mut data = done.data.clone();
        data["continuationToken"] = json!(token);
        let next = QueuedJob {
            id: id.clone(),
            status: JobStatus::Queued,
            nonce: None,
            data,
            report: None,
            created: self.clock.now(),
            waiting: RunningJob::key_for(&r.action_type.provider, &id),
            ..done.clone()
        };
        self.dispatch(next, r).await
    }

    /// Closes a job nobody may report on any more, and ends its grant.
    async fn time_out(&self, mut job: Versioned<QueuedJob>) {
        let grant = job.value.grant.clone();
        if job.value.status.is_open() {
            job.value.status = JobStatus::TimedOut;
            if let Err(e) = self.queue.put_job(&job).await {
                warn!(job = %job.value.id, error = %e, "cannot mark a job timed out");
            }
        }
        self.revoke(&grant).await;
    }

    async fn revoke(&self, grant: &str) {
        if let Err(e) = self.artifacts.revoke(grant).await {
            warn!(%grant, error = %e, "cannot end a job's artifact grant; it expires with the action");
        }
    }
}

#[async_trait]
impl ActionProvider for JobWorkerProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        if let Some(handoff) = &self.handoff {
            return handoff.check(action);
        }
        let id = &action.action_type;
        match self.registered(id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(not_registered(id)),
            // Said again, with the cause, when the action runs.
            Err(_) => Ok(()),
        }
    }

    /// Where the store can tell (S3 on AWS), the job's credentials are for the artifacts
    /// themselves; elsewhere they are downloaded and lent as copies.
    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.start(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.look(job, external_id).await)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let _ = request;
        if let Ok(Some(job)) = self.queue.job(external_id).await {
            self.time_out(job).await;
        }
        Ok(())
    }
}

fn not_registered(id: &ActionType) -> String {
    match (id.owner.as_str(), id.category.as_str(), id.provider.as_str()) {
        (THIRD_PARTY, "Source", "GitHub") => format!(
            "Baton has no provider for {} (GitHub v1) sources on this host: run the pipeline on one machine, or move it to a CodeStarSourceConnection source",
            id.key()
        ),
        (THIRD_PARTY, ..) => format!(
            "the partner action type {} is not registered here: register it with `baton partner register {}/{}/{}` and give the partner the client id and token it prints",
            id.key(),
            id.category,
            id.provider,
            id.version
        ),
        _ => format!(
            "the custom action type {} is not registered here: create it with CreateCustomActionType (aws codepipeline create-custom-action-type) and run a job worker that polls for it",
            id.key()
        ),
    }
}

fn new_job_id() -> Result<String, Failure> {
    entropy()
        .map(format_uuid)
        .map_err(|e| Failure::job(format!("No randomness for a job id: {e}.")))
}

fn unavailable(e: StoreError) -> Stop {
    Stop::Unavailable(Box::new(e))
}

/// The type's `executionUrlTemplate` with `{Config:Name}` and `{ExternalExecutionId}` filled
/// in, as CodePipeline links a custom action's run.
fn execution_url(
    t: &CustomActionType,
    r: &ActionRequest,
    external_execution_id: Option<&str>,
) -> Option<String> {
    let template = t.settings.get("executionUrlTemplate")?;
    Some(fill_template(template, &r.configuration, external_execution_id))
}

fn fill_template(
    template: &str,
    configuration: &indexmap::IndexMap<String, String>,
    external_execution_id: Option<&str>,
) -> String {
    let mut values: BTreeMap<String, &str> =
        configuration.iter().map(|(k, v)| (format!("{{Config:{k}}}"), v.as_str())).collect();
    values.insert("{ExternalExecutionId}".into(), external_execution_id.unwrap_or_default());
    let mut out = template.to_owned();
    for (placeholder, value) in values {
        out = out.replace(&placeholder, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_url_fills_configuration_and_the_external_id() {
        let configuration =
            indexmap::IndexMap::from([("ProjectName".to_owned(), "app".to_owned())]);
        assert_eq!(
            fill_template(
                "https://ci.example/job/{Config:ProjectName}/{ExternalExecutionId}/",
                &configuration,
                Some("42")
            ),
            "https://ci.example/job/app/42/"
        );
    }
}
