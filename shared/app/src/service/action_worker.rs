//! action-worker: runs one action attempt with its provider.
//!
//! Before running, it checks that the attempt is still the current one, so an event delivered
//! again after the action finished does not run it twice. Inputs are downloaded from the
//! region that made them, or, for a service that works in place, copied into the action's own
//! region first; outputs are stored in the action's region.
//!
//! A provider whose work outlives the invocation (a build) answers `Running`: the attempt is
//! recorded as a [`RunningJob`] and completed later by [`ActionWorker::resume`], when the
//! service's own event says the work ended, or by [`ActionWorker::check_due`], which asks
//! again every so often in case that event never comes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::engine::{
    ActionError, ActionOutcome, ActionRequest, ActionStatus, Artifact, ArtifactLocation, Millis,
};
use baton_core::plan::DeclaredStore;
use tracing::{debug, info, warn};

use super::work_folders::WorkFolders;
use super::{ServiceError, StageAdvance};
use crate::ports::artifacts::{ArtifactKey, ArtifactStore};
use crate::ports::bus::EventBus;
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::jobs::{RunningJob, RunningJobs};
use crate::ports::metrics::{Metric, Metrics};
use crate::ports::provider::{InPlaceArtifacts, Job, JobResult, LocalArtifact, ProviderRegistry};
use crate::ports::state::{ActionClaims, PipelineRecord, Snapshot, StateStore};
use baton_protocol::bus_events::BusEvent;

/// The action-worker service.
pub struct ActionWorker {
    pub(super) store: Arc<dyn StateStore>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) artifacts: Arc<dyn ArtifactStore>,
    pub(super) providers: ProviderRegistry,
    /// Work folders and logs live under here.
    pub(super) home: PathBuf,
    /// Where attempts are claimed, on runtimes that may deliver a request twice at once.
    claims: Option<Arc<dyn ActionClaims>>,
    /// Attempts whose work goes on elsewhere.
    jobs: Arc<dyn RunningJobs>,
    /// How long after a look at running work the next one is due, when no event came first.
    check_every: i64,
    /// Claims, running jobs' next looks and completions are timed by it.
    pub(super) clock: Arc<dyn Clock>,
    /// Whether an action (or rule) without a role of its own runs as its pipeline's role.
    pipeline_roles: bool,
    /// Where each attempt's end is measured, on hosts that chart them.
    metrics: Option<Arc<dyn Metrics>>,
    /// Emptied work folders of ended steps, reused by the next.
    pub(super) folders: WorkFolders,
    /// Applies an attempt's end here, when set, instead of announcing it for stage-advance.
    advance: Option<Arc<StageAdvance>>,
}

/// What the worker read of the pipeline before running an attempt: when it started, and the
/// state its end is applied to when nothing moved on meanwhile.
struct Current {
    started: Millis,
    record: PipelineRecord,
    snapshot: Snapshot,
}

/// The default pause between two looks at running work: AWS services announce the end of a
/// job on EventBridge, so this only bounds the delay when such an event is lost.
pub(crate) const DEFAULT_CHECK_EVERY_MILLIS: i64 = 60_000;

impl ActionWorker {
    #[allow(missing_docs)]
    pub fn new(
        store: Arc<dyn StateStore>,
        bus: Arc<dyn EventBus>,
        artifacts: Arc<dyn ArtifactStore>,
        providers: ProviderRegistry,
        jobs: Arc<dyn RunningJobs>,
        home: PathBuf,
    ) -> Self {
        Self {
            store,
            bus,
            artifacts,
            providers,
            claims: None,
            jobs,
            check_every: DEFAULT_CHECK_EVERY_MILLIS,
            clock: Arc::new(SystemClock),
            pipeline_roles: false,
            metrics: None,
            folders: WorkFolders::new(&home.join("work")),
            home,
            advance: None,
        }
    }

    /// Applies each attempt's end with `advance` to the state read before the attempt ran,
    /// saving the next step with it: the transition to the next action then takes no trip
    /// through the bus and no second read. When the state moved on meanwhile (another save
    /// came first), the end is announced on the bus as without it, for a fresh application.
    pub fn with_advance(mut self, advance: Arc<StageAdvance>) -> Self {
        self.advance = Some(advance);
        self
    }

    /// Records each attempt's end, with its provider and duration, in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs an action or rule that names no role as its pipeline's `roleArn`, as CodePipeline
    /// runs them as its service role: for the AWS host, where the worker's own role is not
    /// the user's. On one machine they run with the user's own credentials.
    pub fn with_pipeline_roles(mut self) -> Self {
        self.pipeline_roles = true;
        self
    }

    /// The role an action or rule declaring `own` runs as on this host.
    pub(super) fn role_for(&self, own: Option<&str>, pipeline: Option<&str>) -> Option<String> {
        own.or(pipeline.filter(|_| self.pipeline_roles)).map(str::to_owned)
    }

    /// Uses `clock` instead of the system's (the embedded runtime's, or a test's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Looks at running work every `millis` instead of [`DEFAULT_CHECK_EVERY_MILLIS`].
    pub fn with_check_interval(mut self, millis: i64) -> Self {
        self.check_every = millis.max(1);
        self
    }

    /// Claims each attempt before running it (EventBridge may deliver a request twice, and both
    /// copies would find the attempt current until its completion is applied).
    pub fn with_claims(mut self, claims: Arc<dyn ActionClaims>) -> Self {
        self.claims = Some(claims);
        self
    }

    /// Runs the attempt like [`Self::run`], once: it is claimed until `until` (the end of this
    /// invocation), and a copy of the request arriving meanwhile is dropped. A worker that
    /// fails gives the claim up, so the retry of its delivery runs the attempt; one that dies
    /// leaves the claim to expire, with the same effect later.
    ///
    /// # Errors
    /// As [`Self::run`].
    pub async fn run_once(&self, request: ActionRequest, until: i64) -> Result<(), ServiceError> {
        let Some(claims) = &self.claims else { return self.run(request).await };
        let key = format!(
            "{}/{}/{}/{}/{}",
            request.pipeline, request.execution_id, request.stage, request.action, request.attempt
        );
        if !claims.claim(&key, self.clock.now(), until).await? {
            info!(execution_id = %request.execution_id, action = %request.action, "attempt claimed by another delivery; not running it again");
            return Ok(());
        }
        let result = self.run(request).await;
        // Kept, the claim would drop the retry as a duplicate (Lambda retries well within an
        // invocation's time), and the attempt would wait for its time-out instead.
        if result.is_err()
            && let Err(e) = claims.release(&key, until).await
        {
            warn!(attempt = %key, error = %e, "cannot give up the claim; it expires at the invocation's end");
        }
        result
    }

    /// Where the log of an action attempt (or a rule evaluation) is written.
    pub fn log_path(home: &Path, r: &ActionRequest) -> PathBuf {
        Step::of(r).log_path(home)
    }

    /// `<home>/logs/<pipeline>/<execution>/<stage>.<action>.<attempt>.log`: where the log of
    /// an action's attempt (or a rule's evaluation) is written, for those who read it.
    pub fn attempt_log(
        home: &Path,
        pipeline: &str,
        execution_id: &str,
        stage: &str,
        action: &str,
        attempt: u32,
    ) -> PathBuf {
        home.join("logs")
            .join(pipeline)
            .join(execution_id)
            .join(format!("{stage}.{action}.{attempt}.log"))
    }

    /// Runs the attempt `request` names, unless it is no longer current.
    ///
    /// # Errors
    /// Retryable errors when a port is unavailable; the action's own failure is not an error but
    /// a `Failed` completion.
    pub async fn run(&self, mut request: ActionRequest) -> Result<(), ServiceError> {
        request.role_arn =
            self.role_for(request.role_arn.as_deref(), request.pipeline_role_arn.as_deref());
        let Some(current) = self.current_start(&request).await? else {
            info!(execution_id = %request.execution_id, action = %request.action, "attempt no longer current; not running it");
            return Ok(());
        };
        let outcome = match self.perform(&request).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == super::ErrorKind::Permanent => {
                failed("JobFailed", &e.to_string())
            }
            Err(e) => return Err(e),
        };
        let started = current.started;
        self.complete(&request, outcome, started, Some(current)).await
    }

    /// Picks up the running job `key` ([`RunningJob::key_for`]) because its service announced
    /// a change. A key that names no job (work Baton did not start, or already completed) is
    /// ignored.
    ///
    /// # Errors
    /// Retryable errors when a port or the provider's service is unavailable.
    pub async fn resume(&self, key: &str) -> Result<(), ServiceError> {
        match self.jobs.get_job(key).await? {
            Some(job) => self.follow(job).await,
            None => {
                info!(job = key, "no running job has this key; nothing to do");
                Ok(())
            }
        }
    }

    /// Looks at up to `limit` running jobs whose next look is due, one after the other, and
    /// returns how many. One job's failure is logged and leaves it for the next check.
    ///
    /// # Errors
    /// When the running jobs cannot be listed.
    pub async fn check_due(&self, limit: usize) -> Result<usize, ServiceError> {
        let due = self.jobs.due_jobs(self.clock.now(), limit).await?;
        let n = due.len();
        for job in due {
            let key = job.key.clone();
            if let Err(e) = self.follow(job).await {
                warn!(job = %key, error = %e, "cannot look at a running job; trying again later");
            }
        }
        Ok(n)
    }

    async fn follow(&self, job: RunningJob) -> Result<(), ServiceError> {
        let r = &job.request;
        let Some(provider) = self.providers.get(&r.action_type) else {
            warn!(job = %job.key, "no provider here for a running job; forgetting it");
            return Ok(self.jobs.remove_job(&job.key).await?);
        };
        let Some(current) = self.current_start(r).await? else {
            info!(job = %job.key, execution_id = %r.execution_id, "attempt no longer current; stopping its work");
            if let Err(e) = provider.cancel(r, &job.external_id).await {
                warn!(job = %job.key, error = %e, "cannot stop the work of a stale attempt");
            }
            return Ok(self.jobs.remove_job(&job.key).await?);
        };
        let (work_dir, log_path) = self.scratch(r, "resume")?;
        let artifacts = self.store_for(&r.artifact_stores)?;
        let in_place = if provider.works_in_place() {
            places_in_store(&*artifacts, &Piece::of(r), &[], &r.output_artifacts).await?
        } else {
            None
        };
        let look = Job {
            request: r.clone(),
            inputs: Vec::new(),
            work_dir: work_dir.clone(),
            log_path,
            in_place: in_place.clone(),
            input_places: Vec::new(),
        };
        let result = match provider.resume(&look, &job.external_id).await {
            Ok(JobResult::Running { external_id, external_url }) => {
                self.folders.give_back(&work_dir);
                let check_at = self.clock.now() + self.check_every;
                if external_id == job.external_id {
                    return Ok(self.jobs.put_job(&RunningJob { check_at, ..job }).await?);
                }
                // The work goes on under another id (a job continued by its worker): followed
                // under that id's key from now on, which is what its service names.
                let next = RunningJob {
                    key: RunningJob::key_for(&r.action_type.provider, &external_id),
                    request: r.clone(),
                    external_id,
                    external_url: external_url.or(job.external_url.clone()),
                    check_at,
                };
                self.jobs.put_job(&next).await?;
                return Ok(self.jobs.remove_job(&job.key).await?);
            }
            Ok(done) => {
                let targets = provider.targets(&look, &job.external_id).await;
                let outcome = self.outcome(&*artifacts, r, done, in_place.as_ref()).await;
                outcome.map(|o| o.map(|o| o.with_targets(targets)))
            }
            Err(e) => Err(e.into()),
        };
        self.folders.give_back(&work_dir);
        let Some(outcome) = result? else { return Ok(()) };
        // Read just before this look at the work, so its end is likely applied here too.
        let started = current.started;
        self.complete(r, outcome, started, Some(current)).await?;
        Ok(self.jobs.remove_job(&job.key).await?)
    }

    /// A fresh work folder for one step (`run`, `resume`) of an attempt, and its log's path.
    fn scratch(&self, r: &ActionRequest, step: &str) -> Result<(PathBuf, PathBuf), ServiceError> {
        self.scratch_for(&Step::of(r), step)
    }

    /// A fresh work folder for `step` of `s` (an action attempt, or a rule's evaluation), and
    /// its log's path.
    pub(super) fn scratch_for(
        &self,
        s: &Step<'_>,
        step: &str,
    ) -> Result<(PathBuf, PathBuf), ServiceError> {
        let work_dir = self
            .folders
            .path(&format!("{}.{}.{}.{}.{step}", s.execution_id, s.stage, s.name, s.number));
        if work_dir.exists() {
            std::fs::remove_dir_all(&work_dir)
                .map_err(|e| ServiceError::io("cannot clear the work folder", e))?;
        }
        self.folders
            .make(&work_dir)
            .map_err(|e| ServiceError::io("cannot create the work folder", e))?;
        let log_path = s.log_path(&self.home);
        if let Some(dir) = log_path.parent() {
            super::work_folders::ensure_dir(dir)
                .map_err(|e| ServiceError::io("cannot create the log folder", e))?;
        }
        Ok((work_dir, log_path))
    }

    /// Ends the attempt, which started at `started`: applied here to what was `read` before it
    /// ran (see [`Self::with_advance`]), or else announced for stage-advance.
    async fn complete(
        &self,
        r: &ActionRequest,
        outcome: ActionOutcome,
        started: Millis,
        read: Option<Current>,
    ) -> Result<(), ServiceError> {
        let succeeded = matches!(outcome, ActionOutcome::Succeeded { .. });
        if !self.apply_here(r, &outcome, read).await {
            // The public end of the attempt carries the result: one event, not two.
            self.bus.publish(&[BusEvent::action_completed(r, outcome, self.clock.now())]).await?;
        }
        if let Some(metrics) = &self.metrics {
            let t = &r.action_type;
            let provider = format!("{}/{}/{}", t.owner, t.category, t.provider);
            let now = self.clock.now();
            let duration = (now - started).max(0);
            metrics.record(&Metric::ActionEnded { provider, succeeded, duration }, now);
        }
        Ok(())
    }

    /// Whether the attempt's end was applied here, to the state `read` before it ran.
    async fn apply_here(
        &self,
        r: &ActionRequest,
        outcome: &ActionOutcome,
        read: Option<Current>,
    ) -> bool {
        let (Some(advance), Some(read)) = (&self.advance, read) else { return false };
        let input = r.completion(outcome.clone());
        match advance.apply_as_read(&read.record, read.snapshot, &input).await {
            Ok(Some(_)) => true,
            Ok(None) => {
                debug!(execution_id = %r.execution_id, action = %r.action, "the state moved on while the action ran; its end goes by the bus");
                false
            }
            Err(e) => {
                warn!(execution_id = %r.execution_id, action = %r.action, error = %e, "cannot apply the action's end here; it goes by the bus");
                false
            }
        }
    }

    /// When the attempt `r` names started, with what was read to know it, if it is still the
    /// current one and running.
    async fn current_start(&self, r: &ActionRequest) -> Result<Option<Current>, ServiceError> {
        let Some(record) = self.store.get_pipeline_at(&r.pipeline, r.pipeline_version).await?
        else {
            return Ok(None);
        };
        let Some((s, a)) = record.plan.action_position(&r.stage, &r.action) else {
            return Ok(None);
        };
        let scope = StageAdvance::execution_scope(&record.plan, &r.execution_id);
        let snapshot = self.store.load(&r.pipeline, &scope).await?;
        let Some(e) = snapshot.executions.iter().find(|e| e.value.id == r.execution_id) else {
            return Ok(None);
        };
        // An execution of an older declaration is being cancelled; nothing of it runs.
        if !e.value.runs(&record.plan) {
            return Ok(None);
        }
        let run = &e.value.stages[s].actions[a];
        if run.attempt != r.attempt || run.status != ActionStatus::InProgress {
            return Ok(None);
        }
        let started = run.started_at.unwrap_or_default();
        Ok(Some(Current { started, record, snapshot }))
    }

    /// Runs the attempt; `None` when its work goes on elsewhere and was recorded.
    async fn perform(&self, r: &ActionRequest) -> Result<Option<ActionOutcome>, ServiceError> {
        let Some(provider) = self.providers.get(&r.action_type) else {
            let t = &r.action_type;
            return Ok(Some(failed(
                "ConfigurationError",
                &format!(
                    "no provider for {}/{}/{} on this runtime",
                    t.owner, t.category, t.provider
                ),
            )));
        };
        let (work_dir, log_path) = self.scratch(r, "run")?;
        let artifacts = self.store_for(&r.artifact_stores)?;
        // Input zips (`<name>.zip`) go beside the job's own folder (`run`), out of its sight.
        let (in_place, inputs) = gather(
            &*artifacts,
            &Piece::of(r),
            (&r.input_artifacts, &r.output_artifacts),
            provider.works_in_place(),
            &work_dir,
        )
        .await?;
        let input_places = match &in_place {
            None if provider.wants_input_places(r) => {
                let placed =
                    places_in_store(&*artifacts, &Piece::of(r), &r.input_artifacts, &[]).await?;
                placed.map(|p| p.inputs).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let job = Job {
            request: r.clone(),
            inputs,
            work_dir: work_dir.join("run"),
            log_path,
            in_place: in_place.clone(),
            input_places,
        };
        std::fs::create_dir_all(&job.work_dir)
            .map_err(|e| ServiceError::io("cannot create the work folder", e))?;
        let result = provider.run(&job).await;
        let outcome = match result {
            Ok(result) => self.outcome(&*artifacts, r, result, in_place.as_ref()).await,
            Err(e) => Err(e.into()),
        };
        // The attempt's folder is scratch space; logs and artifacts live elsewhere.
        self.folders.give_back(&work_dir);
        outcome
    }

    /// What a provider's answer means for the attempt: outputs stored, or the running work
    /// recorded (`None`).
    async fn outcome(
        &self,
        artifacts: &dyn ArtifactStore,
        r: &ActionRequest,
        result: JobResult,
        in_place: Option<&InPlaceArtifacts>,
    ) -> Result<Option<ActionOutcome>, ServiceError> {
        Ok(Some(match result {
            JobResult::Failed { code, message } => failed(&code, &message),
            JobResult::Running { external_id, external_url } => {
                let job = RunningJob {
                    key: RunningJob::key_for(&r.action_type.provider, &external_id),
                    request: r.clone(),
                    external_id,
                    external_url,
                    check_at: self.clock.now() + self.check_every,
                };
                info!(job = %job.key, execution_id = %r.execution_id, "work started; following it");
                self.jobs.put_job(&job).await?;
                return Ok(None);
            }
            JobResult::Succeeded {
                output_artifacts,
                output_variables,
                summary,
                external_id,
                external_url,
            } => {
                let mut stored = Vec::with_capacity(output_artifacts.len());
                for out in output_artifacts {
                    let key = ArtifactKey {
                        pipeline: r.pipeline.clone(),
                        execution_id: r.execution_id.clone(),
                        artifact: out.name.clone(),
                        attempt: r.attempt,
                    };
                    // A provider may pass an input on as an output (one held in memory).
                    let file = out.to_file().map_err(|source| ServiceError::Io {
                        context: format!("could not write the output artifact {}", out.name),
                        source,
                    })?;
                    let location = artifacts.put(&r.region, &key, file).await?;
                    stored.push(Artifact { name: out.name, location });
                }
                // What the provider's service wrote in place (a build's artifacts).
                for (name, location) in in_place.map(|p| p.outputs.clone()).unwrap_or_default() {
                    if !stored.iter().any(|a| a.name == name) {
                        stored.push(Artifact { name, location });
                    }
                }
                ActionOutcome::Succeeded {
                    output_variables,
                    artifacts: stored,
                    summary,
                    external_id,
                    external_url,
                    targets: Vec::new(),
                }
            }
        }))
    }

    /// Where the artifacts of a pipeline with `declared` stores go: its own stores where this
    /// host uses them, else this worker's.
    pub(super) fn store_for(
        &self,
        declared: &[DeclaredStore],
    ) -> Result<Arc<dyn ArtifactStore>, ServiceError> {
        Ok(self.artifacts.for_pipeline(declared)?.unwrap_or_else(|| self.artifacts.clone()))
    }
}

/// Whose artifacts are placed: an action attempt's, or a rule evaluation's.
pub(super) struct Piece<'a> {
    pub(super) pipeline: &'a str,
    pub(super) execution_id: &'a str,
    /// The attempt, or the rule's request.
    pub(super) attempt: u32,
    pub(super) region: &'a str,
}

impl<'a> Piece<'a> {
    fn of(r: &'a ActionRequest) -> Self {
        Piece {
            pipeline: &r.pipeline,
            execution_id: &r.execution_id,
            attempt: r.attempt,
            region: &r.region,
        }
    }
}

/// The `inputs` of `piece` as its provider takes them: in place with where its `outputs` go,
/// when it works in place and the store can tell; else downloaded into `dir`.
pub(super) async fn gather(
    artifacts: &dyn ArtifactStore,
    piece: &Piece<'_>,
    (inputs, outputs): (&[Artifact], &[String]),
    works_in_place: bool,
    dir: &Path,
) -> Result<(Option<InPlaceArtifacts>, Vec<LocalArtifact>), ServiceError> {
    if works_in_place
        && let Some(placed) = places_in_store(artifacts, piece, inputs, outputs).await?
    {
        return Ok((Some(placed), Vec::new()));
    }
    let mut fetched = Vec::with_capacity(inputs.len());
    for artifact in inputs {
        fetched.push(fetch(artifacts, piece.region, artifact, dir).await?);
    }
    Ok((None, fetched))
}

/// The artifacts of `piece` in place, when the store can tell: `inputs` (copied into its region
/// first) and where `outputs` are to be written.
async fn places_in_store(
    artifacts: &dyn ArtifactStore,
    piece: &Piece<'_>,
    inputs: &[Artifact],
    outputs: &[String],
) -> Result<Option<InPlaceArtifacts>, ServiceError> {
    let key = |artifact: &str| ArtifactKey {
        pipeline: piece.pipeline.to_owned(),
        execution_id: piece.execution_id.to_owned(),
        artifact: artifact.to_owned(),
        attempt: piece.attempt,
    };
    // The region's key comes with any place in it; this probe names no real artifact.
    let Some(probe) = artifacts.in_place(piece.region, &key("in-place")) else {
        return Ok(None);
    };
    let mut placed = Vec::with_capacity(inputs.len());
    for artifact in inputs {
        placed.push((artifact.name.clone(), in_region(artifacts, piece.region, artifact).await?));
    }
    let mut places = Vec::with_capacity(outputs.len());
    for name in outputs {
        let Some(place) = artifacts.in_place(piece.region, &key(name)) else {
            return Ok(None);
        };
        places.push((name.clone(), place.location));
    }
    Ok(Some(InPlaceArtifacts { inputs: placed, outputs: places, kms_key_arn: probe.kms_key_arn }))
}

/// Where `artifact` is in the action's region, copied there first if it was made elsewhere.
async fn in_region(
    artifacts: &dyn ArtifactStore,
    region: &str,
    artifact: &Artifact,
) -> Result<ArtifactLocation, ServiceError> {
    match artifacts.region_of(&artifact.location) {
        Some(home) if home != region => {
            Ok(artifacts.copy_to_region(&home, &artifact.location, region).await?)
        }
        _ => Ok(artifact.location.clone()),
    }
}

/// Downloads one input into `dir` (a small one into memory) from the store of the region that
/// made it. Only a service working in place needs the input in the action's region; a download
/// reads any region's store, and copying first would cost a billed copy and a second transfer
/// for nothing (the worker downloads wherever it runs).
async fn fetch(
    artifacts: &dyn ArtifactStore,
    region: &str,
    artifact: &Artifact,
    dir: &Path,
) -> Result<LocalArtifact, ServiceError> {
    let home = artifacts.region_of(&artifact.location).unwrap_or_else(|| region.to_owned());
    let path = dir.join(format!("{}.zip", artifact.name));
    Ok(match artifacts.get_or_hold(&home, &artifact.location, &path).await? {
        Some(bytes) => LocalArtifact::in_memory(artifact.name.clone(), bytes, path),
        None => LocalArtifact::file(artifact.name.clone(), path),
    })
}

fn failed(code: &str, message: &str) -> ActionOutcome {
    ActionOutcome::Failed {
        error: ActionError { code: code.into(), message: message.into() },
        external_id: None,
        external_url: None,
        targets: Vec::new(),
    }
}

/// One piece of a stage's work with a folder and a log of its own: an action attempt, or one
/// evaluation of a rule.
pub(super) struct Step<'a> {
    pub(super) pipeline: &'a str,
    pub(super) execution_id: &'a str,
    pub(super) stage: &'a str,
    /// The action's or the rule's name.
    pub(super) name: &'a str,
    /// The attempt, or the rule's request.
    pub(super) number: u32,
}

impl<'a> Step<'a> {
    fn of(r: &'a ActionRequest) -> Self {
        Step {
            pipeline: &r.pipeline,
            execution_id: &r.execution_id,
            stage: &r.stage,
            name: &r.action,
            number: r.attempt,
        }
    }

    fn log_path(&self, home: &Path) -> PathBuf {
        ActionWorker::attempt_log(
            home,
            self.pipeline,
            self.execution_id,
            self.stage,
            self.name,
            self.number,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::ports::artifacts::{ArtifactError, InPlace};

    /// Two regions' buckets; records every read and copy.
    #[derive(Default)]
    struct Store {
        calls: Mutex<Vec<String>>,
        in_place: bool,
        /// Holds every artifact in memory.
        small: bool,
    }

    fn bucket(region: &str) -> String {
        format!("artifacts-{region}")
    }

    #[async_trait]
    impl ArtifactStore for Store {
        async fn put(
            &self,
            region: &str,
            key: &ArtifactKey,
            _: &Path,
        ) -> Result<ArtifactLocation, ArtifactError> {
            Ok(ArtifactLocation { bucket: bucket(region), key: key.artifact.clone() })
        }
        async fn get(
            &self,
            region: &str,
            location: &ArtifactLocation,
            _: &Path,
        ) -> Result<(), ArtifactError> {
            self.calls.lock().unwrap().push(format!("get {region} {}", location.bucket));
            Ok(())
        }
        async fn get_or_hold(
            &self,
            region: &str,
            location: &ArtifactLocation,
            dest: &Path,
        ) -> Result<Option<Vec<u8>>, ArtifactError> {
            if self.small {
                self.calls.lock().unwrap().push(format!("hold {region} {}", location.bucket));
                return Ok(Some(b"PK zip".to_vec()));
            }
            self.get(region, location, dest).await.map(|()| None)
        }
        async fn copy_to_region(
            &self,
            from: &str,
            location: &ArtifactLocation,
            to: &str,
        ) -> Result<ArtifactLocation, ArtifactError> {
            self.calls.lock().unwrap().push(format!("copy {from} {to}"));
            Ok(ArtifactLocation { bucket: bucket(to), key: location.key.clone() })
        }
        fn region_of(&self, location: &ArtifactLocation) -> Option<String> {
            location.bucket.strip_prefix("artifacts-").map(str::to_owned)
        }
        fn in_place(&self, region: &str, key: &ArtifactKey) -> Option<InPlace> {
            self.in_place.then(|| InPlace {
                location: ArtifactLocation { bucket: bucket(region), key: key.artifact.clone() },
                kms_key_arn: format!("key-{region}"),
            })
        }
    }

    fn made_in_the_east() -> Artifact {
        Artifact {
            name: "Src".into(),
            location: ArtifactLocation { bucket: bucket("us-east-1"), key: "p/e/Src/1.zip".into() },
        }
    }

    const WEST: Piece<'static> =
        Piece { pipeline: "p", execution_id: "e", attempt: 1, region: "eu-west-1" };

    #[tokio::test]
    async fn a_download_in_another_region_reads_where_the_artifact_was_made() {
        let store = Store::default();
        let dir = tempfile::tempdir().unwrap();
        let inputs = [made_in_the_east()];
        let (placed, fetched) =
            gather(&store, &WEST, (&inputs, &[]), false, dir.path()).await.unwrap();
        assert!(placed.is_none());
        assert_eq!(fetched[0].path, dir.path().join("Src.zip"));
        assert_eq!(fetched[0].held, None);
        assert_eq!(*store.calls.lock().unwrap(), ["get us-east-1 artifacts-us-east-1"]);
    }

    #[tokio::test]
    async fn a_small_input_is_held_in_memory_and_written_only_when_a_file_is_asked_for() {
        let store = Store { small: true, ..Store::default() };
        let dir = tempfile::tempdir().unwrap();
        let inputs = [made_in_the_east()];
        let (_, fetched) = gather(&store, &WEST, (&inputs, &[]), false, dir.path()).await.unwrap();
        assert_eq!(*store.calls.lock().unwrap(), ["hold us-east-1 artifacts-us-east-1"]);
        let input = &fetched[0];
        assert_eq!(input.held.as_deref(), Some(&b"PK zip"[..]));
        assert!(!input.path.exists(), "no file made for it");
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut input.open().unwrap(), &mut read).unwrap();
        assert_eq!(read, b"PK zip");
        assert_eq!(input.to_file().unwrap(), dir.path().join("Src.zip"));
        assert_eq!(std::fs::read(&input.path).unwrap(), b"PK zip", "written when asked for");
    }

    #[tokio::test]
    async fn work_in_place_in_another_region_gets_a_copy_in_that_region() {
        let store = Store { in_place: true, ..Store::default() };
        let dir = tempfile::tempdir().unwrap();
        let inputs = [made_in_the_east()];
        let outputs = ["Out".to_owned()];
        let (placed, fetched) =
            gather(&store, &WEST, (&inputs, &outputs), true, dir.path()).await.unwrap();
        let placed = placed.expect("placed in the store");
        assert!(fetched.is_empty());
        assert_eq!(*store.calls.lock().unwrap(), ["copy us-east-1 eu-west-1"]);
        assert_eq!(placed.inputs[0].1.bucket, bucket("eu-west-1"));
        assert_eq!(placed.outputs[0].1.bucket, bucket("eu-west-1"));
        assert_eq!(placed.kms_key_arn, "key-eu-west-1");
    }
}
