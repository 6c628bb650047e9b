//! Baton on emulated AWS, end to end: `template.yaml`'s resources on moto, the four built
//! function binaries behind a local Lambda Runtime API, each EventBridge rule delivered through
//! an SQS queue, and every AWS request the functions make counted on its way to moto.

pub mod appconfig;
pub mod approval;
pub mod beanstalk;
pub mod cloudwatch;
pub mod codebuild;
pub mod codecommit;
pub mod connections;
pub mod console;
pub mod delivery;
pub mod figures;
pub mod function_url;
pub mod iam;
pub mod proxy;
pub mod runtime;
pub mod scenario;
pub mod stack;
pub mod streams;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::Notify;

use crate::delivery::{Delivery, Faults, Kill};
use crate::proxy::Proxy;
use crate::runtime::{Launch, Pool, Record};
use crate::stack::Stack;
use crate::template::{Function, Template};

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// moto's endpoint: `BATON_TEST_AWS_ENDPOINT`, as `make test` and `make bench` export it.
pub fn endpoint() -> Result<String> {
    std::env::var("BATON_TEST_AWS_ENDPOINT").map_err(|_| {
        anyhow!("BATON_TEST_AWS_ENDPOINT is not set: run with `make test`, or start moto with `bash scripts/emulators.sh start` and export what `bash scripts/emulators.sh env` prints")
    })
}

/// Which faults a scenario injects.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Deliver every event twice.
    pub duplicate: bool,
    /// Start two actions of this stage at the same instant, so their ends race.
    pub racing_actions_of: Option<String>,
    /// Kill the function (by binary name) handling the first event of this detail-type it is
    /// sent, once its save landed and before it is answered.
    pub kill_on: Option<(String, String)>,
}

/// Everything of one scenario.
pub struct Harness {
    /// The parsed template.
    pub template: Template,
    #[allow(missing_docs)]
    pub stack: Stack,
    #[allow(missing_docs)]
    pub proxy: Proxy,
    /// The functions by binary name.
    pub pools: BTreeMap<String, Arc<Pool>>,
    /// The template's functions.
    pub functions: Vec<Function>,
    #[allow(missing_docs)]
    pub delivery: Delivery,
    /// Every invocation made.
    pub records: Arc<Mutex<Vec<Record>>>,
    /// The kill fault's state, when planned.
    pub kill: Option<Arc<Kill>>,
    launches: BTreeMap<String, Launch>,
    /// CodeBuild's part: builds' ends announced on the default bus.
    _builds: codebuild::BuildAnnouncer,
    /// With IAM enforced: the scenario's own moto and the declared roles.
    pub iam: Option<iam::Iam>,
    /// Checks a test made after the measured work, by function: its invocations and requests
    /// from these counts on are not part of what a release costs.
    probes: Mutex<BTreeMap<String, (usize, usize)>>,
}

impl Harness {
    /// Stands up the stack on a moto of its own where each function runs as the role the
    /// template declares (IAM enforced from [`Self::enforce`] on), starts `instances` processes
    /// per function and the delivery loop.
    pub async fn start(instances: usize, plan: FaultPlan) -> Result<Self> {
        Self::start_with(instances, plan, true).await
    }

    /// Like [`Self::start`]; without `iam`, on the shared moto (`BATON_TEST_AWS_ENDPOINT`) with
    /// every function as one role and nothing enforced: a failure can be tried with IAM out of
    /// the picture.
    pub async fn start_with(instances: usize, plan: FaultPlan, iam: bool) -> Result<Self> {
        Self::start_with_parameters(instances, plan, iam, &[]).await
    }

    /// Like [`Self::start_with`], with some of the template's parameters given other values
    /// than their defaults (`AssumePipelineRoles`...).
    pub async fn start_with_parameters(
        instances: usize,
        plan: FaultPlan,
        iam: bool,
        parameters: &[(&str, &str)],
    ) -> Result<Self> {
        let root = workspace();
        let moto = match iam {
            true => Some(iam::EnforcedMoto::start(&root.join("target/e2e")).await?),
            false => None,
        };
        let endpoint = match &moto {
            Some(m) => m.endpoint.clone(),
            None => endpoint()?,
        };
        let template = Template::load(&root.join("template.yaml"))?;
        let functions = template.functions()?;
        // Fail before standing anything up if a binary is missing.
        for f in &functions {
            let bin = runtime::binary(&root, &f.binary);
            anyhow::ensure!(
                bin.is_file(),
                "{} is missing: build the functions first with `cargo build --workspace --bins` (`make test` does)",
                bin.display()
            );
        }
        let stack = Stack::up(&template, &endpoint, parameters)
            .await
            .context("standing up template.yaml on moto")?;
        let iam = match moto {
            Some(moto) => Some(iam::declared_roles(&template, &functions, &stack, moto).await?),
            None => None,
        };
        let keys_of = |logical_id: &str| {
            iam.as_ref()
                .and_then(|i| i.roles.iter().find(|(r, _)| r.holder == logical_id))
                .map_or_else(|| stack.keys.clone(), |(_, k)| k.clone())
        };
        let proxy = match &iam {
            Some(i) => Proxy::resigning(
                &endpoint,
                i.roles.iter().map(|(_, k)| (k.access_key.clone(), k.secret_key.clone())),
            )?
            // Both topics, the dead-letter queue and the webhook secret are encrypted with the
            // home region's artifact key (template.yaml).
            .with_topic_keys(
                [&stack.approval_topic, &stack.failure_topic]
                    .map(|topic| (topic.clone(), stack.keys_by_region[stack::HOME].clone())),
            )
            .with_own_keys(stack.keys_by_region.clone())
            .with_decisions(
                [
                    stack.dead_letter_queue.rsplit('/').next().unwrap_or_default().to_owned(),
                    stack.bindings.refs.get("WebhookSecrets").cloned().unwrap_or_default(),
                ]
                .map(|name| (name, stack.keys_by_region[stack::HOME].clone())),
                declared_decisions(i),
            ),
            None => Proxy::new(&endpoint)?,
        };
        let records: Arc<Mutex<Vec<Record>>> = Arc::default();
        let scratch = root.join("target/e2e").join(&stack.name);
        let mut launches = BTreeMap::new();
        let mut pools = BTreeMap::new();
        for f in &functions {
            // A second function of the same binary (the approval pages) runs apart, as its
            // own role: `approval-pages`.
            let name = match pools.contains_key(&f.binary) {
                false => f.binary.clone(),
                true => kebab(f.logical_id.trim_end_matches("Function")),
            };
            let launch = Launch {
                binary: runtime::binary(&root, &f.binary),
                env: function_env(
                    &stack,
                    &proxy.listen(&name).await?,
                    &scratch,
                    &keys_of(&f.logical_id),
                )
                .into_iter()
                .chain(template.own_environment(&f.logical_id, &stack.bindings)?)
                .collect(),
                log_dir: scratch.join("logs"),
                memory_mb: f.memory_mb,
                timeout: Duration::from_secs(f.timeout_secs.min(120)),
            };
            let pool = Pool::start(&name, &launch, instances, records.clone()).await?;
            pools.insert(name.clone(), Arc::new(pool));
            launches.insert(name, launch);
        }
        let kill = match &plan.kill_on {
            None => None,
            Some((function, detail_type)) => {
                let f = functions
                    .iter()
                    .find(|f| &f.binary == function)
                    .ok_or_else(|| anyhow!("no {function} function"))?;
                let mut launch = launches[function].clone();
                // The save (one UpdateItem of the lanes item) lands, and its answer never
                // comes: the function dies having saved and published nothing.
                let doomed = format!("{function}-doomed");
                let endpoint = proxy.listen_hanging(&doomed, Some("UpdateItem")).await?;
                launch.env = function_env(&stack, &endpoint, &scratch, &keys_of(&f.logical_id))
                    .into_iter()
                    .chain(template.own_environment(&f.logical_id, &stack.bindings)?)
                    .collect();
                let pool = Pool::start(&doomed, &launch, 1, Arc::default()).await?;
                Some(Arc::new(Kill {
                    function: function.clone(),
                    detail_type: detail_type.clone(),
                    pool: tokio::sync::Mutex::new(pool),
                    proxy: proxy.clone(),
                    done: AtomicBool::new(false),
                    notify: Notify::new(),
                    writes_at_kill: Mutex::new(0),
                }))
            }
        };
        let faults = Faults {
            duplicate: plan.duplicate,
            racing_actions_of: plan.racing_actions_of.clone(),
            kill: kill.clone(),
        };
        // With IAM enforced, a rule's SNS delivery (made here, as moto's rules cannot) goes
        // through a proxy of its own that signs its form as moto reads it (see the proxy).
        let sns = match &iam {
            Some(_) => {
                let keys = [(stack.keys.access_key.clone(), stack.keys.secret_key.clone())];
                Some(Proxy::resigning(&endpoint, keys)?.listen("eventbridge").await?)
            }
            None => None,
        };
        // The outbox relay's event source mapping reads the table's stream as Lambda does on
        // AWS: with the function's role. Its polls are recorded apart (`ESM_READER`) and are
        // left out of the figures, since Lambda's polling is not billed per request.
        let streams = match &iam {
            Some(_) => {
                let url = proxy.listen(ESM_READER).await?;
                Some(keys_of("StageAdvanceFunction").sdk(&url, stack::HOME).await)
            }
            None => None,
        };
        let delivery = Delivery::start(&stack, pools.clone(), faults, sns, streams).await?;
        let builds = codebuild::BuildAnnouncer::start(&stack, proxy.clone()).await;
        Ok(Self {
            template,
            stack,
            proxy,
            pools,
            functions,
            delivery,
            records,
            kill,
            launches,
            _builds: builds,
            iam,
            probes: Mutex::default(),
        })
    }

    /// Runs `check` (a test's own probe of `function`, such as opening a used approval link)
    /// and leaves the invocations and requests of `function` from now on out of the figures.
    pub async fn probe<T>(&self, function: &str, check: impl Future<Output = T>) -> T {
        let invoked = self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.function == function)
            .count();
        let requested = self.proxy.calls().iter().filter(|c| c.function == function).count();
        self.probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(function.to_owned())
            .or_insert((invoked, requested));
        check.await
    }

    /// The invocations and requests that measure the scenario's work: all but the probes'.
    pub fn measured(&self) -> (Vec<Record>, Vec<proxy::Call>) {
        let probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let calls = self.proxy.calls();
        (
            kept(records, &probes, |r| &r.function, |p| p.0),
            kept(calls, &probes, |c| &c.function, |p| p.1),
        )
    }

    /// Switches IAM enforcement on (a harness started with `iam`): from now on every request
    /// is checked against its caller's policies.
    pub async fn enforce(&self) -> Result<()> {
        let iam =
            self.iam.as_ref().ok_or_else(|| anyhow!("this harness was started without IAM"))?;
        iam.moto.enforce().await
    }

    /// The calls moto refused with 403.
    pub fn denied_calls(&self) -> Vec<String> {
        refused(&self.proxy)
    }

    /// A user calling CodePipeline's API through the API function's URL with the stack's
    /// keys, whom IAM names `caller`.
    pub async fn api_user(&self, caller: &str) -> Result<function_url::ApiUser> {
        let proxy = self.proxy.clone();
        let refused = move || refused(&proxy);
        function_url::ApiUser::start(self.pool("api")?, self.stack.keys.clone(), caller, refused)
            .await
    }

    /// Every declared statement (`Holder/Sid`), with the call only it allowed, if any call
    /// made with its role's credentials needed it.
    pub fn needed_statements(&self) -> BTreeMap<String, Option<String>> {
        let calls = self.proxy.calls();
        let mut out = BTreeMap::new();
        for (role, keys) in self.iam.iter().flat_map(|i| &i.roles) {
            let arn = role.arn();
            let mine: Vec<&proxy::Call> = calls
                .iter()
                .filter(|c| {
                    c.access_key == keys.access_key
                        || self.proxy.role_of(&c.access_key).is_some_and(|r| r == arn)
                })
                .collect();
            let mut needed = iam::needed_by(role, &mine);
            for i in 0..role.statements.len() {
                out.insert(role.statement_name(i), needed.remove(&i));
            }
        }
        out
    }

    /// The pool of `binary`.
    pub fn pool(&self, binary: &str) -> Result<Arc<Pool>> {
        self.pools.get(binary).cloned().ok_or_else(|| anyhow!("no function {binary}"))
    }

    /// How `binary` is launched (its environment, for a one-off process).
    pub fn launch(&self, binary: &str) -> Option<&Launch> {
        self.launches.get(binary)
    }

    /// The lines in CloudWatch's embedded metric format that the functions printed so far.
    pub fn metric_lines(&self) -> Vec<serde_json::Value> {
        let dirs: std::collections::BTreeSet<_> =
            self.launches.values().map(|l| l.log_dir.clone()).collect();
        let mut lines = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                lines.extend(
                    text.lines()
                        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .filter(|v| v.get("_aws").is_some()),
                );
            }
        }
        lines
    }
}

/// Decides a call against the declared statements of the role whose keys made it (or that
/// handed those keys out).
fn declared_decisions(iam: &iam::Iam) -> proxy::Decide {
    let mut roles: Vec<(iam::DeclaredRole, String)> =
        iam.roles.iter().map(|(r, k)| (r.clone(), k.access_key.clone())).collect();
    roles.push((iam.pipeline_role.clone(), String::new()));
    Arc::new(move |call: &proxy::Call, assumed: Option<&str>| {
        roles
            .iter()
            .filter(|(r, key)| {
                (!key.is_empty() && *key == call.access_key) || assumed == Some(r.arn().as_str())
            })
            .any(|(r, _)| r.statements.iter().any(|s| iam::allows_as_declared(s, call)))
    })
}

fn refused(proxy: &Proxy) -> Vec<String> {
    proxy
        .calls()
        .iter()
        .filter(|c| c.status == 403)
        .map(|c| format!("{} {} {} in {}", c.function, iam::action_of(c), c.resource, c.region))
        .collect()
}

/// The proxy listener the stream's event source mapping reads through, as the role of the
/// function it invokes.
pub const ESM_READER: &str = "event-source-mapping";

/// A function's environment: the template's variables, the pipeline account's static
/// credentials, the home region, and the AWS endpoint (the function's proxy listener).
/// `ApprovalPages` → `approval-pages`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn function_env(
    stack: &Stack,
    endpoint: &str,
    scratch: &std::path::Path,
    keys: &stack::AccountKeys,
) -> BTreeMap<String, String> {
    let mut env = stack.env.clone();
    let tmp = scratch.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    for (k, v) in [
        ("AWS_REGION", stack::HOME.to_owned()),
        ("AWS_DEFAULT_REGION", stack::HOME.to_owned()),
        ("AWS_ACCESS_KEY_ID", keys.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", keys.secret_key.clone()),
        ("AWS_SESSION_TOKEN", keys.session_token.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("BATON_AWS_ENDPOINT", endpoint.to_owned()),
        ("TMPDIR", tmp.display().to_string()),
        ("RUST_LOG", "info".to_owned()),
    ] {
        env.insert(k.into(), v);
    }
    env
}

/// `all` without each probed function's items from its count on.
fn kept<T>(
    all: Vec<T>,
    probes: &BTreeMap<String, (usize, usize)>,
    function: impl Fn(&T) -> &String,
    from: impl Fn(&(usize, usize)) -> usize,
) -> Vec<T> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    all.into_iter()
        .filter(|item| {
            let f = function(item);
            let Some(probe) = probes.get(f) else { return true };
            let n = seen.entry(f.clone()).or_default();
            *n += 1;
            *n <= from(probe)
        })
        .collect()
}
