//! The job desk: CodePipeline's job protocol as its external workers use it. Owners register
//! custom action types; workers poll for the jobs of a type, acknowledge one with the nonce
//! they were given, and report success (possibly to be continued) or failure. A report makes
//! the waiting attempt due for a look at once, so it ends without waiting for the next check.

use std::sync::Arc;

use crate::ports::bus::EventBus;
use crate::ports::clock::{Clock, entropy};
use crate::ports::job_queue::{
    ActionType, CustomActionType, JobQueue, JobReport, JobStatus, PartnerClient, QueuedJob,
};
use crate::ports::jobs::RunningJobs;
use crate::ports::state::{StoreError, Versioned};
use baton_protocol::bus_events::BusEvent;

/// Custom action types a region may hold, as CodePipeline's quota.
pub const MAX_CUSTOM_ACTION_TYPES: usize = 50;

/// Why the desk refuses a request; each is one of CodePipeline's exceptions.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// `JobNotFoundException`.
    #[error("The job was specified in an invalid format or cannot be found.")]
    JobNotFound,
    /// `InvalidNonceException`.
    #[error("The nonce was specified in an invalid format.")]
    InvalidNonce,
    /// `InvalidJobStateException`: the job is not open to this report any more.
    #[error("The job state was specified in an invalid format: {0}")]
    InvalidJobState(String),
    /// `ActionTypeNotFoundException`.
    #[error("The specified action type cannot be found: {0}")]
    TypeNotFound(String),
    /// `InvalidClientTokenException`: not the token of the partner the job is for.
    #[error("The client token was specified in an invalid format")]
    InvalidClientToken,
    /// `ValidationException`.
    #[error("{0}")]
    Invalid(String),
    /// `LimitExceededException`.
    #[error("{0}")]
    Limit(String),
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The owner of custom action types, whose jobs workers take with `PollForJobs`.
pub const CUSTOM: &str = "Custom";
/// The owner of partners' action types, whose jobs partners take with `PollForThirdPartyJobs`
/// and prove with their client token.
pub const THIRD_PARTY: &str = "ThirdParty";

/// Who asks for a job: a worker of custom types (and Lambda functions), or a partner with its
/// client token. Each sees only its own kind of job.
#[derive(Debug, Clone, Copy)]
pub enum JobClient<'a> {
    /// `GetJobDetails`, `AcknowledgeJob`, `PutJob*Result`.
    Worker,
    /// The `*ThirdPartyJob*` operations, with their `clientToken`.
    Partner(&'a str),
}

/// A partner's type as registered, with the client token it was given: shown once.
#[derive(Debug, Clone)]
pub struct RegisteredPartner {
    #[allow(missing_docs)]
    pub action_type: CustomActionType,
    /// The token the partner's worker sends with each call; only its digest is kept.
    pub client_token: String,
}

/// The job protocol's service.
pub struct JobDesk {
    queue: Arc<dyn JobQueue>,
    running: Arc<dyn RunningJobs>,
    clock: Arc<dyn Clock>,
    /// Where a report is announced to the worker, on hosts whose worker does not look every
    /// second (AWS).
    bus: Option<Arc<dyn EventBus>>,
}

impl JobDesk {
    #[allow(missing_docs)]
    pub fn new(
        queue: Arc<dyn JobQueue>,
        running: Arc<dyn RunningJobs>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { queue, running, clock, bus: None }
    }

    /// Announces each report on `bus`, so the waiting attempt is looked at at once.
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Registers a custom action type. A live type of the same id is kept if the definition is
    /// the same; a deleted one comes back only with its old definition, as CodePipeline does.
    ///
    /// # Errors
    /// [`DeskError::Invalid`] for a definition CodePipeline refuses, [`DeskError::Limit`] past
    /// [`MAX_CUSTOM_ACTION_TYPES`].
    pub async fn create_type(
        &self,
        mut t: CustomActionType,
    ) -> Result<CustomActionType, DeskError> {
        check_definition(&t, CUSTOM)?;
        let all = self.queue.action_types().await?;
        if let Some(old) = all.iter().find(|o| o.id == t.id) {
            let same = CustomActionType { deleted: false, tags: old.tags.clone(), ..old.clone() }
                == CustomActionType { tags: old.tags.clone(), ..t.clone() };
            if !same {
                let what = if old.deleted { "was deleted" } else { "exists" };
                return Err(DeskError::Invalid(format!(
                    "Action type {} {what} with another definition; create a new version instead",
                    t.id.key()
                )));
            }
            if !old.deleted {
                return Ok(old.clone());
            }
        } else if all.iter().filter(|o| !o.deleted).count() >= MAX_CUSTOM_ACTION_TYPES {
            return Err(DeskError::Limit(format!(
                "The number of custom action types exceeds the limit of {MAX_CUSTOM_ACTION_TYPES}"
            )));
        }
        t.deleted = false;
        self.queue.put_action_type(&t).await?;
        Ok(t)
    }

    /// `UpdateActionType`: replaces the definition of a live custom action type, its tags kept.
    ///
    /// # Errors
    /// [`DeskError::TypeNotFound`] for a type that is not registered, [`DeskError::Invalid`]
    /// for a definition CodePipeline refuses.
    pub async fn update_type(&self, t: CustomActionType) -> Result<CustomActionType, DeskError> {
        check_definition(&t, CUSTOM)?;
        let all = self.queue.action_types().await?;
        let Some(old) = all.into_iter().find(|o| o.id == t.id && !o.deleted) else {
            return Err(DeskError::TypeNotFound(t.id.key()));
        };
        let updated = CustomActionType { tags: old.tags, deleted: false, ..t };
        self.queue.put_action_type(&updated).await?;
        Ok(updated)
    }

    /// Marks a custom action type deleted; deleting one that does not exist changes nothing.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn delete_type(&self, id: &ActionType) -> Result<(), DeskError> {
        let all = self.queue.action_types().await?;
        if let Some(t) = all.into_iter().find(|t| &t.id == id && !t.deleted) {
            self.queue.put_action_type(&CustomActionType { deleted: true, ..t }).await?;
        }
        Ok(())
    }

    /// The live custom action types.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn types(&self) -> Result<Vec<CustomActionType>, DeskError> {
        Ok(self.queue.action_types().await?.into_iter().filter(|t| !t.deleted).collect())
    }

    /// Hands up to `max` queued jobs of `type_id` (those whose queryable property has the
    /// value `query` names, if it names one) to the caller, each with a fresh nonce.
    /// `owner` is the kind of type the caller may poll for ([`CUSTOM`] or [`THIRD_PARTY`]).
    ///
    /// # Errors
    /// [`DeskError::TypeNotFound`] for a type of another owner, or not registered.
    pub async fn poll(
        &self,
        owner: &str,
        type_id: &ActionType,
        max: usize,
        query: Option<(&str, &str)>,
    ) -> Result<Vec<QueuedJob>, DeskError> {
        if type_id.owner != owner || !self.types().await?.iter().any(|t| &t.id == type_id) {
            return Err(DeskError::TypeNotFound(type_id.key()));
        }
        // Read past jobs another query wants, but hand out no more than asked.
        let queued = self.queue.queued_jobs(type_id, max.saturating_mul(4).max(16)).await?;
        let mut handed = Vec::new();
        for mut job in queued {
            if handed.len() >= max {
                break;
            }
            if let Some((key, value)) = query
                && job.value.query.get(key).map(String::as_str) != Some(value)
            {
                continue;
            }
            job.value.status = JobStatus::Dispatched;
            job.value.nonce = Some(new_nonce()?);
            match self.queue.put_job(&job).await {
                Ok(()) => handed.push(job.value),
                // Another poll took it first.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(handed)
    }

    /// Acknowledges the job with the nonce its poll gave: the worker is on it.
    ///
    /// # Errors
    /// [`DeskError::JobNotFound`], [`DeskError::InvalidNonce`].
    pub async fn acknowledge(
        &self,
        id: &str,
        nonce: &str,
        client: JobClient<'_>,
    ) -> Result<JobStatus, DeskError> {
        let mut job = self.job(id, client).await?;
        if job.value.nonce.as_deref() != Some(nonce) {
            return Err(DeskError::InvalidNonce);
        }
        if job.value.status == JobStatus::Dispatched {
            job.value.status = JobStatus::InProgress;
            self.queue.put_job(&job).await.map_err(conflict_as_state)?;
        }
        Ok(job.value.status)
    }

    /// The job `id`.
    ///
    /// # Errors
    /// [`DeskError::JobNotFound`]; [`DeskError::InvalidClientToken`] for a partner's job
    /// asked for without its token.
    pub async fn details(&self, id: &str, client: JobClient<'_>) -> Result<QueuedJob, DeskError> {
        Ok(self.job(id, client).await?.value)
    }

    /// The custom action type of a job, if it is still registered.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn type_of(&self, job: &QueuedJob) -> Result<Option<CustomActionType>, DeskError> {
        Ok(self.types().await?.into_iter().find(|t| t.id == job.action_type))
    }

    /// Records the worker's report on a job it was handed, and makes the waiting attempt due.
    ///
    /// # Errors
    /// [`DeskError::JobNotFound`]; [`DeskError::InvalidJobState`] for a job never handed out,
    /// already reported on, or that no attempt waits for any more.
    pub async fn report(
        &self,
        id: &str,
        client: JobClient<'_>,
        report: JobReport,
    ) -> Result<(), DeskError> {
        let mut job = self.job(id, client).await?;
        match job.value.status {
            JobStatus::Dispatched | JobStatus::InProgress => {}
            other => {
                return Err(DeskError::InvalidJobState(format!(
                    "job {id} is {}, not open to a result",
                    other.as_str()
                )));
            }
        }
        job.value.status = match report {
            JobReport::Succeeded { .. } => JobStatus::Succeeded,
            JobReport::Failed { .. } => JobStatus::Failed,
        };
        job.value.report = Some(report);
        self.queue.put_job(&job).await.map_err(conflict_as_state)?;
        // Looked at on the next check instead of a minute later; the attempt may be gone.
        if let Some(waiting) = self.running.get_job(&job.value.waiting).await? {
            let due = crate::ports::jobs::RunningJob { check_at: self.clock.now(), ..waiting };
            self.running.put_job(&due).await?;
            if let Some(bus) = &self.bus
                && let Err(e) = bus.publish(&[BusEvent::job_reported(&due.key)]).await
            {
                // The report is saved and due: the next periodic look finds it.
                tracing::warn!(job = %id, error = %e, "cannot announce a job's report");
            }
        }
        Ok(())
    }

    /// The job `id`, if `client` may see it: a partner's jobs only with that partner's
    /// token, other jobs only through the workers' operations.
    async fn job(
        &self,
        id: &str,
        client: JobClient<'_>,
    ) -> Result<Versioned<QueuedJob>, DeskError> {
        let job = self.queue.job(id).await?.ok_or(DeskError::JobNotFound)?;
        let partners = job.value.action_type.owner == THIRD_PARTY;
        match client {
            JobClient::Worker if partners => Err(DeskError::JobNotFound),
            JobClient::Worker => Ok(job),
            JobClient::Partner(_) if !partners => Err(DeskError::JobNotFound),
            JobClient::Partner(token) => {
                let Some(pair) = self.type_of(&job.value).await?.and_then(|t| t.client) else {
                    // Its partner was deregistered: nobody can prove to be it any more.
                    return Err(DeskError::InvalidClientToken);
                };
                if digest(token) == pair.token_sha256 {
                    Ok(job)
                } else {
                    Err(DeskError::InvalidClientToken)
                }
            }
        }
    }

    /// Registers a partner's action type (owner [`THIRD_PARTY`]) and gives it a new client
    /// token; registering it again keeps its client id and replaces the token, so a leaked
    /// token is revoked by registering again.
    ///
    /// # Errors
    /// [`DeskError::Invalid`] for a definition CodePipeline refuses or a type Baton runs itself.
    pub async fn register_partner(
        &self,
        mut t: CustomActionType,
    ) -> Result<RegisteredPartner, DeskError> {
        check_definition(&t, THIRD_PARTY)?;
        if t.id.category == "Source" && t.id.provider == "GitHub" {
            return Err(DeskError::Invalid(
                "ThirdParty/Source/GitHub is CodePipeline's own GitHub (v1) source, not a partner's action type".into(),
            ));
        }
        let all = self.queue.action_types().await?;
        let old = all.iter().find(|o| o.id == t.id);
        let id = match old.and_then(|o| o.client.as_ref()) {
            Some(pair) => pair.id.clone(),
            None => baton_core::events::format_uuid(new_bits()?),
        };
        let client_token = format!("{:032x}{:032x}", new_bits()?, new_bits()?);
        t.client = Some(PartnerClient { id, token_sha256: digest(&client_token) });
        t.deleted = false;
        if let Some(old) = old {
            t.tags = old.tags.clone();
        }
        self.queue.put_action_type(&t).await?;
        Ok(RegisteredPartner { action_type: t, client_token })
    }

    /// Deregisters a partner's type: its jobs can no longer be taken or reported on.
    ///
    /// # Errors
    /// [`DeskError::TypeNotFound`] for a partner type that is not registered.
    pub async fn deregister_partner(&self, id: &ActionType) -> Result<(), DeskError> {
        let all = self.queue.action_types().await?;
        let Some(t) =
            all.into_iter().find(|t| &t.id == id && !t.deleted && id.owner == THIRD_PARTY)
        else {
            return Err(DeskError::TypeNotFound(id.key()));
        };
        self.queue.put_action_type(&CustomActionType { deleted: true, client: None, ..t }).await?;
        Ok(())
    }
}

fn digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn conflict_as_state(e: StoreError) -> DeskError {
    match e {
        StoreError::Conflict(what) => {
            DeskError::InvalidJobState(format!("{what} changed while this request was applied"))
        }
        other => other.into(),
    }
}

fn new_nonce() -> Result<String, DeskError> {
    new_bits().map(|bits| format!("{bits:032x}"))
}

fn new_bits() -> Result<u128, DeskError> {
    entropy().map_err(|e| {
        DeskError::Store(StoreError::Unavailable(format!("no randomness: {e}").into()))
    })
}

/// CodePipeline's rules for a custom (or partner's) action type's definition.
fn check_definition(t: &CustomActionType, owner: &str) -> Result<(), DeskError> {
    let invalid = |m: String| Err(DeskError::Invalid(m));
    if t.id.owner != owner {
        return invalid(format!("These action types are owned by {owner}, not {}", t.id.owner));
    }
    let props = &t.configuration_properties;
    if props.len() > 10 {
        return invalid(format!(
            "A custom action type has at most 10 configuration properties, not {}",
            props.len()
        ));
    }
    let queryable: Vec<_> = props.iter().filter(|p| p.queryable == Some(true)).collect();
    if queryable.len() > 1 {
        return invalid("At most one configuration property can be queryable".into());
    }
    if let Some(p) = queryable.first()
        && (!p.required || p.secret)
    {
        return invalid(format!(
            "The queryable configuration property {} must be required and not secret",
            p.name
        ));
    }
    for (what, count) in
        [("input", t.input_artifact_details), ("output", t.output_artifact_details)]
    {
        if count.maximum_count > 5 || count.minimum_count > count.maximum_count {
            return invalid(format!(
                "The {what} artifact counts must satisfy 0 <= minimumCount <= maximumCount <= 5"
            ));
        }
    }
    Ok(())
}
