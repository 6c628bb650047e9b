//! A Baton home: its settings, the runtime opened on it, the control API answered in process
//! for the commands that drive pipelines ([`Home`]), and the commands that need the home itself
//! (run, wait, logs, push).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use baton::api::{ControlApi, Credentials};
use baton::embedded::{Embedded, EmbeddedConfig};
use baton::ports::clock::{Clock, SystemClock};
use baton::ports::state::{PipelineRecord, StateStore};
use baton::service::{ActionWorker, SourcePush};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionStatus, Execution, ExecutionStatus, Place, Trigger};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::control::Control;
use crate::names::nearest;
use crate::output::{note, result};
use crate::view::{Live, short};

/// `baton.toml` in the Baton home: local stand-ins for what AWS would define.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The account pipelines' ARNs name (12 digits; `BATON_ACCOUNT_ID` wins).
    account_id: Option<String>,
    /// CodeCommit repository name -> folder.
    #[serde(default)]
    repositories: std::collections::HashMap<String, PathBuf>,
    /// CodeBuild project name -> buildspec file.
    #[serde(default)]
    projects: std::collections::HashMap<String, PathBuf>,
    /// How often sources with `PollForSourceChanges: "true"` are looked at, in seconds.
    poll_seconds: Option<u64>,
    /// Connection repository (`FullRepositoryId`) -> folder or git URL.
    #[serde(default)]
    connections: std::collections::HashMap<String, String>,
    /// Secrets that webhook deliveries are signed with.
    #[serde(default)]
    pub(crate) webhooks: crate::webhooks::WebhookSettings,
    /// AWS for the providers with no local meaning (CloudFormation...): needs `--features aws`.
    aws: Option<AwsSettings>,
    /// The credentials of `baton serve`'s control API.
    pub(crate) api: Option<crate::serve::ApiSettings>,
    /// Mail for approval and failure notices, through an SMTP relay.
    smtp: Option<baton::adapters::local::smtp_notifier::SmtpSettings>,
    /// Where approval links point.
    approvals: Option<ApprovalLinkSettings>,
}

/// `[approvals]` in `baton.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalLinkSettings {
    /// The address people reach `baton serve` at (default `http://127.0.0.1:8642`).
    url: Option<String>,
}

/// `[aws]` in `baton.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
struct AwsSettings {
    /// The region of the SDK clients (default: the SDK's own chain).
    region: Option<String>,
    /// Another endpoint than AWS's, such as a local emulator.
    endpoint: Option<String>,
}

pub(crate) fn settings(home: &Path) -> Result<Settings> {
    let path = home.join("baton.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// `[smtp]` with its password: `BATON_SMTP_PASSWORD`, else `password` in `baton.toml`, which
/// must then be private.
fn smtp_with_password(
    smtp: Option<baton::adapters::local::smtp_notifier::SmtpSettings>,
    toml: &Path,
) -> Result<Option<baton::adapters::local::smtp_notifier::SmtpSettings>> {
    let Some(mut smtp) = smtp else { return Ok(None) };
    match std::env::var("BATON_SMTP_PASSWORD").ok().filter(|p| !p.is_empty()) {
        Some(password) => smtp.password = Some(password),
        None if smtp.password.is_some() => {
            crate::serve::refuse_if_others_can_read(toml, "the SMTP password")?;
        }
        None => {}
    }
    Ok(Some(smtp))
}

/// Opens the home, with every action runnable at once up to a sensible bound.
pub(crate) async fn open(home: &Path, quiet: bool) -> Result<Arc<Embedded>> {
    open_serving(home, quiet, None, None).await
}

/// The account this home's pipelines are in: `BATON_ACCOUNT_ID`, else `account_id` in
/// `baton.toml`, else `fallback` (a 12-digit access key id, as local AWS emulators take it),
/// else the default.
fn account(settings: &Settings, fallback: Option<&str>) -> Result<Option<String>> {
    let is_account = |id: &str| id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit());
    let given = std::env::var("BATON_ACCOUNT_ID").ok().or_else(|| settings.account_id.clone());
    if let Some(account) = given.as_deref().filter(|a| !is_account(a)) {
        bail!(
            "the account id must be 12 digits, not \"{account}\" (BATON_ACCOUNT_ID or account_id in baton.toml)"
        );
    }
    Ok(given.or_else(|| fallback.filter(|k| is_account(k)).map(str::to_owned)))
}

/// Opens the home for `baton serve`, whose own address is where approval links point unless
/// `[approvals] url` says otherwise, and whose API access key id names the account when it is
/// 12 digits and nothing else does.
pub(crate) async fn open_serving(
    home: &Path,
    quiet: bool,
    serving_at: Option<String>,
    access_key: Option<&str>,
) -> Result<Arc<Embedded>> {
    let settings = settings(home)?;
    let account = account(&settings, access_key)?;
    #[allow(unused_mut)]
    let mut config = EmbeddedConfig {
        home: home.to_path_buf(),
        repositories: settings.repositories,
        projects: settings.projects,
        connections: settings.connections,
        poll_every: settings.poll_seconds.map(Duration::from_secs),
        quiet,
        workers: 64,
        smtp: smtp_with_password(settings.smtp, &home.join("baton.toml"))?,
        approval_url: settings.approvals.and_then(|a| a.url).or(serving_at),
        github_api: settings.webhooks.github_api(),
        account,
        ..EmbeddedConfig::default()
    };
    match settings.aws {
        #[cfg(feature = "aws")]
        Some(aws) => {
            let sdk = baton::adapters::aws::sdk::load_with(
                aws.region.as_deref(),
                aws.endpoint.as_deref(),
            )
            .await;
            config.aws = Some(sdk);
        }
        #[cfg(not(feature = "aws"))]
        Some(_) => bail!(
            "baton.toml has an [aws] section, but this baton was built without AWS: build it with `cargo build -p baton-cli --features aws`"
        ),
        None => {}
    }
    Ok(Arc::new(Embedded::open(&config)?))
}

async fn record(rt: &Embedded, pipeline: &str) -> Result<PipelineRecord> {
    if let Some(record) = rt.store.get_pipeline(pipeline).await? {
        return Ok(record);
    }
    let names = rt.store.list_pipelines().await?;
    bail!(
        "there is no pipeline named \"{pipeline}\" in {}{}",
        rt.home.display(),
        nearest(pipeline, names.iter().map(String::as_str))
    )
}

/// `baton run FILE`.
pub(crate) async fn run(
    home: &Path,
    file: &Path,
    region: &str,
    vars: &[String],
    keep_running: bool,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = PipelineDocument::parse(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    // The live view says where an approval waits and how to decide it; the notice itself goes
    // to notices.log (and mail), not across the view.
    let rt = open(home, true).await?;
    let record =
        rt.put_pipeline(&doc, region).await.map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let name = record.plan.name.clone();
    let trigger = Trigger {
        trigger_type: "StartPipelineExecution".into(),
        trigger_detail: "baton run".into(),
    };
    let variables = crate::commands::variables(vars)?.into_iter().collect();
    let id = rt.trigger.start(&name, trigger, variables).await?;
    note(format_args!(
        "Started execution {id} of pipeline \"{name}\" (version {}).",
        record.plan.version
    ));
    let status = follow(&rt, &name, &id, keep_running).await?;
    if crate::output::json() {
        crate::commands::status_document(&Home::over(rt, region), &name, &id).await?;
    }
    Ok(exit_for(status))
}

/// A home, for the commands written over [`Control`]: calls are answered in process by the
/// same control API `baton serve` serves, as the user running the command.
pub(crate) struct Home {
    rt: Arc<Embedded>,
    api: ControlApi,
    caller: String,
}

impl Home {
    /// Opens `home`; `quiet` keeps notices off the terminal.
    pub(crate) async fn open(home: &Path, quiet: bool) -> Result<Self> {
        let rt = open(home, quiet).await?;
        let region = std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty());
        Ok(Self::over(rt, region.as_deref().unwrap_or("us-east-1")))
    }

    /// The API of the open home `rt`, answering for `region`.
    fn over(rt: Arc<Embedded>, region: &str) -> Self {
        let api = rt.control_api(region, Credentials::new());
        let caller = std::env::var("USER").unwrap_or_else(|_| "baton CLI".into());
        Self { rt, api, caller }
    }
}

impl Control for Home {
    async fn exchange(&self, operation: &str, input: &Value) -> Result<Result<Value, Value>> {
        let reply = self.api.call(operation, input.to_string().as_bytes(), &self.caller).await;
        Ok(if reply.status == 200 { Ok(reply.json()) } else { Err(reply.json()) })
    }

    fn no_pipeline(&self, name: &str, _refusal: &Value) -> String {
        format!("there is no pipeline named \"{name}\" in {}", self.rt.home.display())
    }

    async fn carry_on(&self, pipeline: &str, execution: &str) -> Result<ExitCode> {
        settle_or_leave(&self.rt, pipeline, execution).await
    }
}

/// Shows the execution live while this process dispatches, until it ends (or, with
/// `keep_running`, until interrupted). When another process dispatches for this home, only
/// watches.
async fn follow(
    rt: &Arc<Embedded>,
    pipeline: &str,
    id: &str,
    keep_running: bool,
) -> Result<ExecutionStatus> {
    let plan = record(rt, pipeline).await?.plan;
    let (stop_tx, stop_rx) = watch::channel(false);
    let lock = rt.try_lock();
    let dispatcher = lock.as_ref().map(|_| tokio::spawn(Arc::clone(rt).dispatch(stop_rx)));
    if lock.is_none() {
        note("Another baton process is running this home; watching its progress.");
    }
    let mut live = Live::new();
    let mut aftermath = Aftermath::default();
    let mut events = rt.bus.follow();
    let status = loop {
        if let Some(e) = rt.store.execution(pipeline, id).await? {
            live.show(&plan, &e, SystemClock.now());
            if e.status().is_ended() && aftermath.over(rt, pipeline, &e).await? {
                break e.status();
            }
        }
        tokio::select! {
            () = next_look(&mut events, id) => {}
            _ = tokio::signal::ctrl_c() => bail!("interrupted; the execution goes on when baton runs again in this home"),
        }
    };
    if keep_running && dispatcher.is_some() {
        note(
            "Execution ended; still running this home (pushes start new executions). Ctrl-C to stop.",
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(true);
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    Ok(status)
}

/// Waits until the live view is due to be drawn again (every 100 ms), or at once when the
/// execution's own state changes (it ends, say): its end is then seen when it happens, not up
/// to 100 ms later. Stages' and actions' events only wait for the next drawing, which would
/// otherwise be redrawn for each of them.
async fn next_look(
    events: &mut tokio::sync::broadcast::Receiver<baton::bus_events::BusEvent>,
    id: &str,
) {
    let execution_changed = async {
        loop {
            match events.recv().await {
                Ok(e)
                    if e.detail_type == baton_core::events::PIPELINE_DETAIL_TYPE
                        && e.detail["execution-id"] == id =>
                {
                    return;
                }
                Ok(_) => {}
                // Missed some: look now.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending().await
                }
            }
        }
    };
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
        () = execution_changed => {}
    }
}

/// After a command: when no other process dispatches for this home, carry the execution on
/// here until it ends or waits for a person.
async fn settle_or_leave(rt: &Arc<Embedded>, pipeline: &str, id: &str) -> Result<ExitCode> {
    let Some(lock) = rt.try_lock() else {
        note("The baton process running this home picks it up.");
        return Ok(ExitCode::SUCCESS);
    };
    let plan = record(rt, pipeline).await?.plan;
    let (stop_tx, stop_rx) = watch::channel(false);
    let dispatcher = tokio::spawn(Arc::clone(rt).dispatch(stop_rx));
    let mut live = Live::new();
    let mut aftermath = Aftermath::default();
    let mut events = rt.bus.follow();
    let last = loop {
        next_look(&mut events, id).await;
        let Some(e) = rt.store.execution(pipeline, id).await? else { continue };
        live.show(&plan, &e, SystemClock.now());
        if (e.status().is_ended() && aftermath.over(rt, pipeline, &e).await?)
            || waits_for_a_person(&e)
        {
            break e;
        }
    };
    let _ = stop_tx.send(true);
    let _ = dispatcher.await;
    drop(lock);
    if waits_for_a_person(&last) {
        note(format_args!(
            "Waiting for approval: baton approve {pipeline} STAGE ACTION (see baton status {pipeline})."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    Ok(exit_for(last.status()))
}

/// What an execution that ended still sets going: its `onFailure` condition deciding, then the
/// rollback it started. A run carries on (and says so) until that is over too, so the
/// rollback is not left for whichever baton next runs in the home.
#[derive(Default)]
struct Aftermath {
    rollback: Option<String>,
}

impl Aftermath {
    async fn over(&mut self, rt: &Embedded, pipeline: &str, e: &Execution) -> Result<bool> {
        if e.stages.iter().any(|s| s.conditions.waiting().is_some()) {
            return Ok(false);
        }
        // An automatic rollback starts only after a stage failed: a succeeded execution has
        // none to wait for, and the 20 latest executions need not be read to find it.
        if self.rollback.is_none() && e.status() == ExecutionStatus::Succeeded {
            return Ok(true);
        }
        if self.rollback.is_none() {
            let started = rt.store.executions(pipeline, 20).await?.into_iter().find(|r| {
                r.rollback.is_some()
                    && r.trigger.trigger_type == "AutomatedRollback"
                    && r.trigger.trigger_detail == e.id
            });
            let Some(rollback) = started else { return Ok(true) };
            let target = rollback.rollback.as_ref().map_or("", |r| r.target.as_str());
            note(format_args!("Rolling back to execution {target}: execution {}.", rollback.id));
            self.rollback = Some(rollback.id);
        }
        let id = self.rollback.as_deref().unwrap_or_default();
        let Some(rollback) = rt.store.execution(pipeline, id).await? else { return Ok(true) };
        if rollback.status().is_ended() {
            note(format_args!("Rollback {} {:?}.", rollback.id, rollback.status()));
        }
        Ok(rollback.status().is_ended())
    }
}

fn waits_for_a_person(e: &Execution) -> bool {
    let Place::InStage(s) = e.place() else { return false };
    let Some(stage) = e.stages.get(s) else { return false };
    let running: Vec<_> =
        stage.actions.iter().filter(|a| a.status == ActionStatus::InProgress).collect();
    !running.is_empty() && running.iter().all(|a| a.token.is_some())
}

fn exit_for(status: ExecutionStatus) -> ExitCode {
    if status == ExecutionStatus::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `baton wait PIPELINE [EXECUTION]`.
pub(crate) async fn wait(home: &Path, pipeline: &str, execution: Option<&str>) -> Result<ExitCode> {
    let home = Home::open(home, false).await?;
    let (_, e) = crate::commands::execution_detail(&home, pipeline, execution).await?;
    let status = follow(&home.rt, pipeline, &e.id, false).await?;
    if crate::output::json() {
        crate::commands::status_document(&home, pipeline, &e.id).await?;
    }
    Ok(exit_for(status))
}

/// Which actions' logs `baton logs` shows: every action's, one stage's, or one action's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogScope<'a> {
    pub(crate) stage: Option<&'a str>,
    pub(crate) action: Option<&'a str>,
}

impl LogScope<'_> {
    fn includes(&self, stage: &str, action: &str) -> bool {
        self.stage.is_none_or(|s| s == stage) && self.action.is_none_or(|a| a == action)
    }

    /// One action's log, printed without its name before each line.
    fn is_one_action(&self) -> bool {
        self.action.is_some()
    }

    /// An error naming the nearest stages or actions when the scope names one the plan lacks.
    fn check(&self, plan: &baton_core::plan::Plan, pipeline: &str) -> Result<()> {
        let Some(stage) = self.stage else { return Ok(()) };
        let Some(s) = plan.stages.iter().find(|s| s.name == stage) else {
            let names = plan.stages.iter().map(|s| s.name.as_str());
            bail!("pipeline \"{pipeline}\" has no stage \"{stage}\"{}", nearest(stage, names));
        };
        if let Some(action) = self.action
            && !s.actions.iter().any(|a| a.name == action)
        {
            let names = s.actions.iter().map(|a| a.name.as_str());
            bail!("stage \"{stage}\" has no action \"{action}\"{}", nearest(action, names));
        }
        Ok(())
    }
}

/// `baton logs PIPELINE EXECUTION [STAGE [ACTION]]`.
pub(crate) async fn logs(
    home: &Path,
    pipeline: &str,
    execution: &str,
    scope: LogScope<'_>,
) -> Result<ExitCode> {
    let home = Home::open(home, true).await?;
    let (plan, e) = crate::commands::execution_detail(&home, pipeline, Some(execution)).await?;
    let dir: PathBuf = home.rt.home.join("logs").join(pipeline).join(&e.id);
    scope.check(&plan, pipeline)?;
    let mut shown = 0;
    if !e.runs(&plan) {
        bail!(
            "execution {} ran version {} of \"{pipeline}\", which has changed since; its logs are in {}",
            short(&e.id),
            e.pipeline_version,
            dir.display()
        );
    }
    for (s, stage) in plan.stages.iter().enumerate() {
        for (a, act) in stage.actions.iter().enumerate() {
            if !scope.includes(&stage.name, &act.name) {
                continue;
            }
            let attempt = e.stages[s].actions[a].attempt;
            let path = ActionWorker::attempt_log(
                &home.rt.home,
                pipeline,
                &e.id,
                &stage.name,
                &act.name,
                attempt,
            );
            if let Ok(text) = std::fs::read_to_string(&path) {
                if crate::output::json() {
                    for line in text.lines() {
                        println!("{}", log_line(&stage.name, &act.name, attempt, line));
                    }
                } else {
                    println!("==> {}/{} (attempt {attempt}) <==\n{text}", stage.name, act.name);
                }
                shown += 1;
            }
        }
    }
    if shown == 0 {
        return Err(no_logs(pipeline, &e.id, scope));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of an action's log under `--output json`: a JSON object a line (JSON Lines), so
/// a script can follow the log as it comes.
fn log_line(stage: &str, action: &str, attempt: u32, line: &str) -> Value {
    json!({"stageName": stage, "actionName": action, "attempt": attempt, "line": line})
}

fn no_logs(pipeline: &str, execution: &str, scope: LogScope<'_>) -> anyhow::Error {
    let at = match (scope.stage, scope.action) {
        (Some(s), Some(a)) => format!(" at {s}/{a}"),
        (Some(s), None) => format!(" in stage {s}"),
        _ => String::new(),
    };
    anyhow!("no logs for execution {} of \"{pipeline}\"{at}", short(execution))
}

/// `baton logs ... --follow`: what the execution's actions (those of the scope) printed, then
/// what they print next, each line after its action's name when several are followed, until
/// the execution, or the one action, is no longer running. Another process runs the home
/// (`baton serve`, `baton run --watch`); this one only reads.
pub(crate) async fn follow_logs(
    home: &Path,
    pipeline: &str,
    execution: &str,
    scope: LogScope<'_>,
) -> Result<ExitCode> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let home = Home::open(home, true).await?;
    let mut read: HashMap<PathBuf, u64> = HashMap::new();
    let mut partial: HashMap<PathBuf, String> = HashMap::new();
    let mut out = std::io::stdout();
    loop {
        let (plan, e) = crate::commands::execution_detail(&home, pipeline, Some(execution)).await?;
        let execution_running = e.status() == ExecutionStatus::InProgress;
        let mut running = execution_running;
        scope.check(&plan, pipeline)?;
        for (s, stage) in plan.stages.iter().enumerate().filter(|_| e.runs(&plan)) {
            for (a, act) in stage.actions.iter().enumerate() {
                if !scope.includes(&stage.name, &act.name) {
                    continue;
                }
                let run = &e.stages[s].actions[a];
                if scope.is_one_action() {
                    // Not started yet counts as to come, while the execution may reach it.
                    running = execution_running
                        && matches!(run.status, ActionStatus::InProgress | ActionStatus::Pending);
                }
                // Earlier attempts' files too, so a retry's first lines are not skipped.
                for attempt in 1..=run.attempt {
                    let path = ActionWorker::attempt_log(
                        &home.rt.home,
                        pipeline,
                        &e.id,
                        &stage.name,
                        &act.name,
                        attempt,
                    );
                    let Ok(mut file) = std::fs::File::open(&path) else { continue };
                    let at = read.entry(path.clone()).or_insert(0);
                    let mut fresh = String::new();
                    if file.seek(SeekFrom::Start(*at)).is_ok() {
                        let mut bytes = Vec::new();
                        let n = file.read_to_end(&mut bytes).unwrap_or(0);
                        *at += n as u64;
                        fresh = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    let pending = partial.entry(path).or_default();
                    pending.push_str(&fresh);
                    // Whole lines only, unless nothing will be added to this one any more.
                    let cut = if running {
                        pending.rfind('\n').map_or(0, |i| i + 1)
                    } else {
                        pending.len()
                    };
                    let whole: String = pending.drain(..cut).collect();
                    for line in whole.lines() {
                        if crate::output::json() {
                            writeln!(out, "{}", log_line(&stage.name, &act.name, attempt, line))?;
                        } else if scope.is_one_action() {
                            writeln!(out, "{line}")?;
                        } else {
                            writeln!(out, "{}/{} | {line}", stage.name, act.name)?;
                        }
                    }
                }
            }
        }
        out.flush()?;
        if !running {
            if read.is_empty() {
                return Err(no_logs(pipeline, &e.id, scope));
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `baton push REPOSITORY [BRANCH]`.
pub(crate) async fn push(
    home: &Path,
    repository: &str,
    branch: &str,
    since: Option<&str>,
) -> Result<ExitCode> {
    let rt = open(home, false).await?;
    let push = SourcePush { repository: repository.into(), branch: branch.into(), commit: None };
    let mut started = rt.trigger.on_push(&push).await?;
    // The same repository as a connection's (GitHub, GitLab...): its triggers decide.
    started.extend(rt.push_connection(repository, branch, since).await?);
    if started.is_empty() {
        result(
            &json!({"started": []}),
            format_args!("No pipeline watches {repository} branch {branch}."),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut code = ExitCode::SUCCESS;
    for (pipeline, id) in &started {
        note(format_args!(
            "Push to {repository}/{branch} started execution {id} of \"{pipeline}\"."
        ));
        code = settle_or_leave(&rt, pipeline, id).await?;
    }
    if crate::output::json() {
        let started: Vec<Value> = started
            .iter()
            .map(|(p, id)| json!({"pipelineName": p, "pipelineExecutionId": id}))
            .collect();
        result(&json!({"started": started}), "");
    }
    Ok(code)
}
