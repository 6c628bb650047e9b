//! The embedded runtime: the four handlers in one process, on SQLite, encrypted files and the
//! in-process bus, rooted in one folder (the Baton home).
//!
//! Any `baton` process may apply commands to the state; one process per home (the holder of
//! `runtime.lock`) dispatches deliveries. After a crash, the next dispatcher takes every queued
//! delivery again and re-sends outbox entries that were saved but never published.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionRequest, Input};
use baton_core::plan::Placement;
use tokio::sync::{Semaphore, watch};
use tracing::{error, warn};

use crate::adapters::console_notifier::ConsoleNotifier;
use crate::adapters::file_artifacts::FileArtifactStore;
use crate::adapters::job_grants::LocalJobArtifacts;
use crate::adapters::local_bus::{Delivery, LocalBus};
use crate::adapters::memory_claims::MemoryClaims;
use crate::adapters::smtp_notifier::{SmtpNotifier, SmtpSettings};
use crate::adapters::sql_state::SqlStateStore;
use crate::providers::{LocalProviderConfig, registry};
use baton_api::{ApiParts, ControlApi, Credentials};
use baton_app::ports::clock::{Clock, SystemClock};
use baton_app::ports::notices::{AllOf, Notifier};
use baton_app::ports::provider::ProviderRegistry;
use baton_app::ports::state::{PipelineRecord, StoreError};
use baton_app::providers::job_worker::JobWorkerProvider;
use baton_app::providers::pipeline_invoke::PipelineInvokeProvider;
use baton_app::service::{
    ActionWorker, AdminError, ApprovalSettings, Approvals, ErrorKind, JobDesk, Notices, Outcome,
    PipelineAdmin, ServiceError, StageAdvance, StarterSlot, Trigger,
};
use baton_protocol::bus_events::{BusEvent, PipelineInput};
use baton_protocol::routing::Target;

/// `baton serve`'s port unless told otherwise.
pub const DEFAULT_SERVE_PORT: u16 = 8642;

/// How often this runtime looks at work running elsewhere (an AWS build started from here):
/// it hears no service events, so looking is how it learns the work ended.
const CHECK_RUNNING_EVERY_MILLIS: i64 = 5_000;
/// Where approval links point unless configured: `baton serve` on its default port.
pub const DEFAULT_APPROVAL_URL: &str = "http://127.0.0.1:8642";

/// How the embedded runtime is set up.
#[derive(Clone, Default)]
pub struct EmbeddedConfig {
    /// The Baton home.
    pub home: PathBuf,
    /// CodeCommit repository names mapped to local paths (default: `<home>/git/<name>`).
    pub repositories: HashMap<String, PathBuf>,
    /// CodeBuild project names mapped to buildspec files.
    pub projects: HashMap<String, PathBuf>,
    /// Connection repositories (`FullRepositoryId`) mapped to a folder or a git URL (default:
    /// `<home>/git/<owner>/<repo>`).
    pub connections: HashMap<String, String>,
    /// Keep notices off the terminal.
    pub quiet: bool,
    /// Actions run at once by this process.
    pub workers: usize,
    /// Providers to use instead of the local ones (benchmarks, tests).
    pub providers: Option<ProviderRegistry>,
    /// Mail for notices, besides the terminal.
    pub smtp: Option<SmtpSettings>,
    /// Where approval links point: `baton serve`'s address (default [`DEFAULT_APPROVAL_URL`]).
    pub approval_url: Option<String>,
    /// The clock (tests move time on; default the system's).
    pub clock: Option<Arc<dyn Clock>>,
    /// The account pipelines' ARNs and messages name (default [`DEFAULT_ACCOUNT`]).
    pub account: Option<String>,
    /// How often sources with `PollForSourceChanges: "true"` are looked at (default 30 s).
    pub poll_every: Option<Duration>,
    /// GitHub's API, where webhooks are registered with GitHub (default api.github.com).
    pub github_api: Option<String>,
    /// AWS to run the actions that have no local meaning (CloudFormation, CodeBuild projects in
    /// AWS...): the SDK configuration, endpoint included.
    #[cfg(feature = "aws")]
    pub aws: Option<aws_config::SdkConfig>,
}

/// Why the embedded runtime cannot do something, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The declaration breaks rules; one line per broken rule.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[allow(missing_docs)]
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The home folder cannot be used.
    #[error("cannot use the Baton home {path}: {source}")]
    Home {
        #[allow(missing_docs)]
        path: String,
        #[allow(missing_docs)]
        #[source]
        source: std::io::Error,
    },
}

/// The runtime's parts.
pub struct Embedded {
    #[allow(missing_docs)]
    pub home: PathBuf,
    #[allow(missing_docs)]
    pub store: Arc<SqlStateStore>,
    #[allow(missing_docs)]
    pub bus: Arc<LocalBus>,
    #[allow(missing_docs)]
    pub providers: ProviderRegistry,
    #[allow(missing_docs)]
    pub stage_advance: Arc<StageAdvance>,
    #[allow(missing_docs)]
    pub worker: Arc<ActionWorker>,
    #[allow(missing_docs)]
    pub trigger: Trigger,
    #[allow(missing_docs)]
    pub notices: Arc<Notices>,
    /// Approval notices and the pages behind their links.
    pub approvals: Arc<Approvals>,
    /// Custom action types and the jobs external workers poll for.
    pub jobs: Arc<JobDesk>,
    /// The home's encrypted artifacts.
    pub artifacts: Arc<FileArtifactStore>,
    /// The artifacts lent to job workers, which `baton serve` answers for under S3's protocol.
    pub granted: Arc<LocalJobArtifacts>,
    workers: usize,
    clock: Arc<dyn Clock>,
    account: String,
    poll_every_millis: i64,
    connections: crate::providers::connection::ConnectionSourceProvider,
    github: Arc<dyn baton_app::ports::repository_hooks::RepositoryHooks>,
}

/// Held by the one process that dispatches for a home; released when dropped.
pub struct RuntimeLock(#[allow(dead_code)] File);

/// Creates the home `0700`, or takes an existing one back to `0700`: it holds the approval
/// tokens, the links in `notices.log`, the artifact keys and the actions' logs, none of which
/// is for other users of the machine.
fn make_private_home(home: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(home)?;
    let mode = std::fs::metadata(home)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
        tracing::info!(home = %home.display(), "the Baton home is now private (mode 0700)");
    }
    Ok(())
}

impl Embedded {
    /// Opens (creating if needed) the runtime in `config.home`.
    ///
    /// # Errors
    /// When the home cannot be created or its database opened.
    pub fn open(config: &EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let home_error =
            |source| EmbeddedError::Home { path: config.home.display().to_string(), source };
        // Absolute, because providers run tools (git, build commands) in other folders.
        let home = std::path::absolute(&config.home).map_err(home_error)?;
        make_private_home(&home).map_err(home_error)?;
        let db = home.join("baton.db");
        let store = Arc::new(SqlStateStore::open(&db)?);
        let bus = Arc::new(LocalBus::shared(store.connection(), Some(home.join("events.jsonl")))?);
        store.relay_through(Arc::clone(&bus));
        let artifacts =
            Arc::new(FileArtifactStore::open(&home).map_err(|e| EmbeddedError::Service(e.into()))?);
        let mut providers = config.providers.clone().unwrap_or_else(|| local_providers(config));
        let clock: Arc<dyn Clock> = config.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let account = config.account.clone().unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned());
        let granted = Arc::new(LocalJobArtifacts::new(&home));
        // Custom and partners' action types are registered at run time; external workers run
        // their jobs.
        let job_workers: Arc<JobWorkerProvider> = Arc::new(JobWorkerProvider::new(
            store.clone(),
            granted.clone(),
            clock.clone(),
            account.clone(),
        ));
        providers.register_owner("Custom", job_workers.clone());
        providers.register_owner("ThirdParty", job_workers);
        #[cfg(feature = "aws")]
        if let (Some(sdk), None) = (&config.aws, &config.providers) {
            let roles = Arc::new(baton_aws::adapters::sts_roles::RoleAssumer::new(sdk.clone()));
            baton_aws::providers::register_invoke(
                &mut providers,
                roles,
                store.clone(),
                granted.clone(),
                clock.clone(),
                account.clone(),
            );
        }
        // Invoking another pipeline starts it through the trigger, which is built below with
        // these very providers.
        let starter = Arc::new(StarterSlot::default());
        providers.register(
            "Invoke",
            "AWS",
            "CodePipeline",
            Arc::new(PipelineInvokeProvider::new(starter.clone())),
        );
        let jobs = Arc::new(JobDesk::new(store.clone(), store.clone(), clock.clone()));
        let stage_advance = Arc::new(StageAdvance::new(store.clone(), bus.clone(), clock.clone()));
        let worker = Arc::new(
            ActionWorker::new(
                store.clone(),
                bus.clone(),
                artifacts.clone(),
                providers.clone(),
                store.clone(),
                home.clone(),
            )
            .with_check_interval(CHECK_RUNNING_EVERY_MILLIS)
            .with_clock(clock.clone())
            // The outbox may send a request twice after a crash between publishing and
            // acknowledging it, and both copies could be handed to workers at once.
            .with_claims(Arc::new(MemoryClaims::default())),
            // No `with_advance`: here the bus is in-process, so an end costs no hop, and
            // stage-advance saves the ends that arrive together in one transaction, where a
            // worker's own save is one of its own (W4: 6,100-6,700 transitions/s against
            // 3,600-4,000 once PARALLEL executions stopped conflicting on the lanes).
        );
        let trigger =
            Trigger::new(store.clone(), stage_advance.clone()).with_providers(providers.clone());
        starter.set(
            Trigger::new(store.clone(), stage_advance.clone()).with_providers(providers.clone()),
        );
        let mut notifiers: Vec<Arc<dyn Notifier>> =
            vec![Arc::new(ConsoleNotifier::new(home.join("notices.log"), config.quiet))];
        if let Some(smtp) = &config.smtp {
            let mail = SmtpNotifier::new(smtp)
                .map_err(|e| EmbeddedError::Invalid(vec![format!("[smtp] {e}")]))?;
            notifiers.push(Arc::new(mail));
        }
        let notifier: Arc<dyn Notifier> = Arc::new(AllOf(notifiers));
        let notices = Arc::new(Notices::new(notifier.clone()));
        let approvals = Arc::new(Approvals::new(
            store.clone(),
            store.clone(),
            bus.clone(),
            notifier,
            clock.clone(),
            ApprovalSettings {
                base_url: config
                    .approval_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_APPROVAL_URL.to_owned()),
            },
        ));
        Ok(Self {
            artifacts,
            home,
            store,
            bus,
            providers,
            stage_advance,
            worker,
            trigger,
            notices,
            approvals,
            workers: config.workers.max(1),
            clock,
            account,
            jobs,
            granted,
            connections: local_config(config).connection_source(),
            github: Arc::new(baton_app::adapters::github::GitHubHooks::new(
                config.github_api.as_deref().unwrap_or(baton_app::adapters::github::GITHUB_API),
            )),
            poll_every_millis: config
                .poll_every
                .map_or(30_000, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        })
    }

    /// Takes the dispatcher's lock, if no other process of this home holds it.
    pub fn try_lock(&self) -> Option<RuntimeLock> {
        let file = File::create(self.home.join("runtime.lock")).ok()?;
        file.try_lock().ok()?;
        Some(RuntimeLock(file))
    }

    /// Creates the pipeline, or updates it (version + 1) if its declaration changed.
    ///
    /// # Errors
    /// [`EmbeddedError::Invalid`] with every broken rule, and every action that cannot run on
    /// this machine; store errors.
    pub async fn put_pipeline(
        &self,
        doc: &PipelineDocument,
        region: &str,
    ) -> Result<PipelineRecord, EmbeddedError> {
        self.pipeline_admin(region).put(doc.pipeline.clone()).await.map_err(|e| match e {
            AdminError::Invalid(messages) => EmbeddedError::Invalid(messages),
            AdminError::Store(e) => EmbeddedError::Store(e),
            other => EmbeddedError::Invalid(vec![other.to_string()]),
        })
    }

    /// Creates and updates this home's pipelines in `region`.
    pub fn pipeline_admin(&self, region: &str) -> PipelineAdmin {
        PipelineAdmin::new(
            self.store.clone(),
            self.stage_advance.clone(),
            placement(&self.account, region),
            self.clock.clone(),
        )
    }

    /// CodePipeline's webhooks (GitHub v1 sources) of this home.
    pub fn webhooks(&self) -> baton_app::service::webhooks::v1::Webhooks {
        baton_app::service::webhooks::v1::Webhooks::new(
            self.store.clone(),
            self.store.clone(),
            self.clock.clone(),
        )
        .with_repository_hooks(Some(self.github.clone()))
    }

    /// CodePipeline's API over this home, creating pipelines in `region`.
    pub fn control_api(&self, region: &str, credentials: Credentials) -> ControlApi {
        ControlApi::new(ApiParts {
            store: self.store.clone(),
            stage_advance: self.stage_advance.clone(),
            providers: self.providers.clone(),
            placement: placement(&self.account, region),
            credentials,
            jobs: Some(self.jobs.clone()),
            // Artifacts stay in the home's store, whatever store a declaration names.
            declared_stores: None,
            pipeline_roles: None,
            webhooks: Some(Arc::new(self.webhooks())),
        })
        .with_clock(self.clock.clone())
    }

    /// Applies an input now, in this process (commands from the CLI).
    ///
    /// # Errors
    /// As [`StageAdvance::handle`].
    pub async fn apply(&self, pipeline: &str, input: Input) -> Result<Outcome, EmbeddedError> {
        Ok(self.stage_advance.handle(PipelineInput { pipeline: pipeline.into(), input }).await?)
    }

    /// Dispatches deliveries until `stop` turns true. Call only while holding the lock.
    pub async fn dispatch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        reap_orphans(&self.home.join("work"));
        if let Err(e) = self.bus.reset_claims() {
            error!(error = %e, "cannot reset delivery claims");
        }
        let permits = Arc::new(Semaphore::new(self.workers));
        let queued = self.bus.queued();
        let mut last_sweep = 0;
        let mut last_poll = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut handled = Arc::clone(&self).advance(256).await;
            handled += self.drain(Target::Notices, 16).await;
            handled += self.drain(Target::Approval, 16).await;
            handled += self.spawn_workers(&permits);
            let now = SystemClock.now();
            if now - last_sweep >= 1_000 {
                last_sweep = now;
                self.sweep().await;
            }
            if now - last_poll >= self.poll_every_millis {
                last_poll = now;
                match self.trigger.poll().await {
                    Ok(started) => {
                        for (pipeline, id) in started {
                            tracing::info!(%pipeline, execution = %id, "a polled source changed");
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot poll sources"),
                }
            }
            if handled == 0 {
                tokio::select! {
                    _ = queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Handles the due stage-advance deliveries: one execution's in the order they were
    /// queued, different executions' at once. Each saves under its execution's version, so two
    /// that meet (on a pipeline's lanes) are applied again in turn, as on AWS, where EventBridge
    /// keeps no order either; the one dispatcher loop had left a core idle.
    async fn advance(self: Arc<Self>, limit: usize) -> usize {
        let deliveries = self.due(Target::StageAdvance, limit);
        let n = deliveries.len();
        let mut queues: Vec<Vec<Delivery>> = Vec::new();
        let mut by_execution: HashMap<(String, String), usize> = HashMap::new();
        for d in deliveries {
            let execution = d.event.pipeline_input().ok().and_then(|p| {
                p.input.execution_id().map(|id| (p.pipeline.clone(), id.to_string()))
            });
            match execution {
                Some(key) => {
                    let i = *by_execution.entry(key).or_insert_with(|| {
                        queues.push(Vec::new());
                        queues.len() - 1
                    });
                    queues[i].push(d);
                }
                None => queues.push(vec![d]),
            }
        }
        let handles: Vec<_> = queues
            .into_iter()
            .map(|queue| {
                let this = Arc::clone(&self);
                tokio::spawn(async move {
                    let events: Vec<&BusEvent> = queue.iter().map(|d| &d.event).collect();
                    let results = this.stage_advance.handle_events(&events).await;
                    let mut handled = Vec::with_capacity(queue.len());
                    for (d, result) in queue.iter().zip(results) {
                        match result {
                            Ok(outcome) => {
                                if let Outcome::Rejected(r) = outcome {
                                    warn!(reason = %r, "input rejected");
                                }
                                handled.push(d.seq);
                            }
                            Err(e) => settle(&this.bus, d, Err(e)),
                        }
                    }
                    if let Err(e) = this.bus.complete_all(&handled) {
                        error!(error = %e, "cannot update the delivery queue");
                    }
                })
            })
            .collect();
        for handle in handles {
            if let Err(e) = handle.await {
                error!(error = %e, "a stage advance stopped");
            }
        }
        n
    }

    /// Handles the due deliveries of a quick target one by one.
    async fn drain(&self, target: Target, limit: usize) -> usize {
        let deliveries = self.due(target, limit);
        let n = deliveries.len();
        for d in deliveries {
            let result = match target {
                Target::Approval => self.approvals.handle(&d.event).await,
                _ => self.notices.handle(&d.event).await,
            };
            settle(&self.bus, &d, result);
        }
        n
    }

    /// Claims up to `limit` due deliveries for `target`; none when the queue cannot be read
    /// (logged), so the loop tries again on its next turn.
    fn due(&self, target: Target, limit: usize) -> Vec<Delivery> {
        self.bus.claim(target, limit).unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the delivery queue");
            Vec::new()
        })
    }

    /// Starts as many action deliveries as there are free workers.
    fn spawn_workers(self: &Arc<Self>, permits: &Arc<Semaphore>) -> usize {
        let free = permits.available_permits();
        if free == 0 {
            return 0;
        }
        let deliveries = self.due(Target::ActionWorker, free);
        let n = deliveries.len();
        for d in deliveries {
            let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
                let _ = self.bus.retry_later(d.seq, 0);
                continue;
            };
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let result = match (d.event.reported_job(), d.event.action_request()) {
                    (Some(key), _) => this.worker.resume(key).await,
                    (None, Err(_)) if d.event.rule_request().is_some() => {
                        this.evaluate_rule(&d.event).await
                    }
                    (None, Ok(request)) => this.run_action(request).await,
                    (None, Err(e)) => Err(e.into()),
                };
                settle(&this.bus, &d, result);
                drop(permit);
            });
        }
        n
    }

    async fn evaluate_rule(
        &self,
        event: &baton_protocol::bus_events::BusEvent,
    ) -> Result<(), ServiceError> {
        match event.rule_request() {
            Some(Ok(request)) => self.worker.evaluate_rule(request).await,
            Some(Err(e)) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn run_action(&self, request: ActionRequest) -> Result<(), ServiceError> {
        // Claimed until the attempt's own deadline: this process runs it to its end or dies,
        // and the claims die with it.
        let until = request.deadline;
        self.worker.run_once(request, until).await
    }

    /// Re-sends outbox entries a crashed writer left, and lets time pass for timeouts.
    async fn sweep(&self) {
        if let Err(e) = self.stage_advance.sweep_outbox(2_000).await {
            warn!(error = %e, "outbox sweep failed");
        }
        // No service events reach this machine: running work (builds on AWS) is looked at.
        if let Err(e) = self.worker.check_due(16).await {
            warn!(error = %e, "cannot look at running jobs");
        }
        if let Err(e) = self.stage_advance.tick_all().await {
            warn!(error = %e, "cannot list the pipelines to tick");
        }
    }

    /// Starts the pipelines a push to `branch` of the connection repository `repository` (as
    /// its local folder shows it) starts under their triggers, once per pushed commit.
    ///
    /// # Errors
    /// When git cannot list the changed files, or a start fails.
    pub async fn push_connection(
        &self,
        repository: &str,
        branch: &str,
        since: Option<&str>,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let event = self
            .connections
            .local_push(repository, branch, since)
            .await
            .map_err(ServiceError::Permanent)?;
        let Some(event) = event else { return Ok(Vec::new()) };
        let delivery = baton_app::service::webhooks::Delivery {
            // One start per pushed commit, however often it is told.
            id: format!("push:{branch}:{}", event.commit),
            repository: repository.to_string(),
            event: Some(event),
        };
        self.trigger.on_git_event("local", &delivery).await
    }

    /// The Baton home.
    pub fn home(&self) -> &Path {
        &self.home
    }
}

/// The account of a home that names none, as local AWS emulators default to.
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// Where pipelines of the embedded runtime live: one account, events under Baton's own
/// `source`.
pub fn placement(account: &str, region: &str) -> Placement {
    Placement {
        account: account.into(),
        region: region.into(),
        event_source: "baton.codepipeline".into(),
    }
}

/// Where the local providers find this home's repositories, buckets and projects.
fn local_config(config: &EmbeddedConfig) -> LocalProviderConfig {
    LocalProviderConfig {
        git_root: config.home.join("git"),
        s3_root: config.home.join("s3"),
        repositories: config.repositories.clone(),
        projects: config.projects.clone(),
        connections: config.connections.clone(),
        cache_root: config.home.join("cache/connections"),
        build_numbers: config.home.join("codebuild/numbers"),
        secrets: Some(secrets(config)),
    }
}

/// Where builds' secret variables resolve: the home's own store, then, with `[aws]`, Parameter
/// Store and Secrets Manager (a secret put in the home stands in for the account's).
fn secrets(config: &EmbeddedConfig) -> Arc<dyn baton_app::ports::secrets::Secrets> {
    let home = Arc::new(crate::adapters::secret_files::SecretFiles::new(&config.home));
    #[cfg(feature = "aws")]
    if let Some(sdk) = &config.aws {
        let aws = Arc::new(baton_aws::adapters::aws_secrets::AwsSecrets::new(sdk));
        return Arc::new(baton_app::ports::secrets::FirstOf(vec![home, aws]));
    }
    home
}

/// The local providers; with AWS configured, the AWS ones too for what has no local meaning.
fn local_providers(config: &EmbeddedConfig) -> ProviderRegistry {
    let local = registry(&local_config(config));
    #[cfg(feature = "aws")]
    if let Some(sdk) = &config.aws {
        let mut both = ProviderRegistry::default();
        let roles = Arc::new(baton_aws::adapters::sts_roles::RoleAssumer::new(sdk.clone()));
        baton_aws::providers::register(&mut both, roles);
        // Where a local meaning exists (S3 folders, buildspecs, git), it stays the local one.
        both.extend(local);
        return both.aws_configurable();
    }
    if cfg!(feature = "aws") { local.aws_configurable() } else { local }
}

/// Kills processes left running in action work folders by a dispatcher that died (`kill -9`
/// spares a build's process group): their attempts are about to run again, and the old run must
/// not finish beside the new one. Looks at each process's working directory in `/proc`.
fn reap_orphans(work: &Path) {
    let Ok(work) = work.canonicalize() else { return };
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    let me = std::process::id().to_string();
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let inside =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&work));
        if inside {
            warn!(pid = %pid, "stopping a process left by an interrupted action");
            if let Some(pid) = pid.parse().ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Deliveries are tried this many times (with back-off) before they are dead-lettered, as an
/// EventBridge target's retry policy does.
const MAX_ATTEMPTS: u32 = 10;

/// Completes, retries or dead-letters a delivery after its handler ran.
fn settle(bus: &LocalBus, d: &Delivery, result: Result<(), ServiceError>) {
    let outcome = match result {
        Ok(()) => bus.complete(d.seq),
        Err(e) if e.kind() == ErrorKind::Permanent || d.attempts + 1 >= MAX_ATTEMPTS => {
            warn!(target = d.target.name(), error = %e, "dead-lettering an event that can never succeed");
            bus.dead_letter(d.seq, &e.to_string())
        }
        Err(e) => {
            warn!(target = d.target.name(), error = %e, "handler failed; will retry");
            bus.retry_later(d.seq, d.attempts)
        }
    };
    if let Err(e) = outcome {
        error!(error = %e, "cannot update the delivery queue");
    }
}
