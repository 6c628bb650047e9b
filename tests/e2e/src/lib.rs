//! Baton on emulated AWS, end to end: `template.yaml`'s resources on moto, the four built
//! function binaries behind a local Lambda Runtime API, each EventBridge rule delivered through
//! an SQS queue, and every AWS request the functions make counted on its way to moto.

pub mod approval;
pub mod codebuild;
pub mod codecommit;
pub mod console;
pub mod delivery;
pub mod figures;
pub mod function_url;
pub mod proxy;
pub mod runtime;
pub mod scenario;
pub mod stack;
pub mod streams;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
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
    /// Deliver the two completions of this stage at the same instant.
    pub simultaneous_completions_of: Option<String>,
    /// Kill the stage-advance that applies the first event of this detail-type it is sent,
    /// between its save and its publish.
    pub kill_on: Option<String>,
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
}

impl Harness {
    /// Stands up the stack, starts `instances` processes per function and the delivery loop.
    pub async fn start(instances: usize, plan: FaultPlan) -> Result<Self> {
        let root = workspace();
        let endpoint = endpoint()?;
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
        let stack =
            Stack::up(&template, &endpoint).await.context("standing up template.yaml on moto")?;
        let proxy = Proxy::new(&endpoint)?;
        let records: Arc<Mutex<Vec<Record>>> = Arc::default();
        let scratch = root.join("target/e2e").join(&stack.name);
        let mut launches = BTreeMap::new();
        let mut pools = BTreeMap::new();
        for f in &functions {
            let launch = Launch {
                binary: runtime::binary(&root, &f.binary),
                env: function_env(&stack, &proxy.listen(&f.binary).await?, &scratch),
                log_dir: scratch.join("logs"),
                memory_mb: f.memory_mb,
                timeout: Duration::from_secs(f.timeout_secs.min(120)),
            };
            let pool = Pool::start(&f.binary, &launch, instances, records.clone()).await?;
            pools.insert(f.binary.clone(), Arc::new(pool));
            launches.insert(f.binary.clone(), launch);
        }
        let kill = match &plan.kill_on {
            None => None,
            Some(detail_type) => {
                let base = launches
                    .get("stage-advance")
                    .ok_or_else(|| anyhow!("no stage-advance function"))?;
                let mut launch = base.clone();
                // The save (one UpdateItem of the lanes item) lands, and its answer never
                // comes: the function dies having saved and published nothing.
                let endpoint =
                    proxy.listen_hanging("stage-advance-doomed", Some("UpdateItem")).await?;
                launch.env = function_env(&stack, &endpoint, &scratch);
                let pool = Pool::start("stage-advance-doomed", &launch, 1, Arc::default()).await?;
                Some(Arc::new(Kill {
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
            simultaneous_completions_of: plan.simultaneous_completions_of.clone(),
            kill: kill.clone(),
        };
        let delivery = Delivery::start(&stack, pools.clone(), faults).await?;
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
        })
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

/// A function's environment: the template's variables, the pipeline account's static
/// credentials, the home region, and the AWS endpoint (the function's proxy listener).
fn function_env(
    stack: &Stack,
    endpoint: &str,
    scratch: &std::path::Path,
) -> BTreeMap<String, String> {
    let mut env = stack.env.clone();
    let tmp = scratch.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    for (k, v) in [
        ("AWS_REGION", stack::HOME.to_owned()),
        ("AWS_DEFAULT_REGION", stack::HOME.to_owned()),
        ("AWS_ACCESS_KEY_ID", stack.keys.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", stack.keys.secret_key.clone()),
        ("AWS_SESSION_TOKEN", stack.keys.session_token.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("BATON_AWS_ENDPOINT", endpoint.to_owned()),
        ("TMPDIR", tmp.display().to_string()),
        ("RUST_LOG", "info".to_owned()),
    ] {
        env.insert(k.into(), v);
    }
    env
}
