//! Baton's test kit, a dev-dependency only: the contract suites every adapter of a port must
//! pass (run against the embedded adapters and, on a wire-protocol emulator, the AWS ones),
//! fixtures, and the harness of the Lambda handlers' tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set itself up should stop loudly

/// S3's types, for tests that make buckets through [`LambdaFixture::s3`].
pub use aws_sdk_s3::types as s3_types;
use baton_core::engine::{
    Ending, Execution, ExecutionStatus, Halt, Lanes, Phase, StopRequest, Trigger,
};
use serde_json::json;

use baton::bus_events::BusEvent;
use baton::ports::state::{Changes, Scope, StateStore, StoreError, Versioned};

/// An execution with nothing run yet, for store tests.
pub fn execution(id: &str, status: ExecutionStatus, arrival: u64) -> Execution {
    Execution {
        id: id.into(),
        pipeline_version: 1,
        phase: phase_of(status),
        status_summary: None,
        trigger: Trigger::default(),
        variables: Default::default(),
        arrival,
        started_at: 1_000 + arrival as i64,
        updated_at: 1_000,
        stages: vec![],
        outputs: Default::default(),
        artifacts: Default::default(),
        rollback: None,
        revisions: Default::default(),
        source_revisions: Default::default(),
    }
}

/// A phase with `status`, in the first stage where it has one.
pub fn phase_of(status: ExecutionStatus) -> Phase {
    let stop = || StopRequest { abandon: false, reason: "test".into() };
    match status {
        ExecutionStatus::InProgress => Phase::Waiting(0),
        ExecutionStatus::Stopping => Phase::Stopping(0, stop()),
        ExecutionStatus::Failed => Phase::Halted(0, Halt::Failed),
        ExecutionStatus::Stopped => Phase::Halted(0, Halt::Stopped(Some(stop()))),
        ExecutionStatus::Succeeded => Phase::Ended(Ending::Succeeded),
        ExecutionStatus::Superseded => Phase::Ended(Ending::Superseded),
        ExecutionStatus::Cancelled => Phase::Ended(Ending::Cancelled),
    }
}

/// A test event numbered `n`.
pub fn event(n: u32) -> BusEvent {
    BusEvent {
        source: "test".into(),
        detail_type: "Test".into(),
        resources: vec![],
        detail: json!({"n": n}),
        trace: None,
    }
}

/// Runs every state-store rule against `store`, on a pipeline named `pipeline` that the store
/// does not hold yet. Panics with the rule that broke.
pub async fn state_store_contract(store: &dyn StateStore, pipeline: &str) {
    // A fresh pipeline has empty lanes at version 0 and no executions.
    let snap = store.load(pipeline, &Scope::One("e1".into())).await.expect("load");
    assert_eq!(snap.lanes.version, 0);
    assert!(snap.executions.is_empty());

    // A store that relays its events itself keeps no outbox: its own suite checks the relay.
    let outbox = !store.relays_outbox();

    // The first save of new items wins; its outbox entries come back in order.
    let mut lanes = Lanes { holders: vec![Some("e1".into())], ..Lanes::default() };
    let first = Changes {
        lanes: Some(Versioned { version: 0, value: lanes.clone() }),
        executions: vec![Versioned {
            version: 0,
            value: execution("e1", ExecutionStatus::InProgress, 0),
        }],
        outbox: vec![event(1), event(2)],
    };
    let seqs = store.save(pipeline, first.clone()).await.expect("first save");
    if outbox {
        assert_eq!(seqs.len(), 2);
        assert!(seqs[0] < seqs[1]);
    }

    // The same write again (stale versions) conflicts and writes nothing.
    let again = store.save(pipeline, Changes { outbox: vec![event(3)], ..first }).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a stale save must conflict: {again:?}");
    if outbox {
        let pending = store.pending_outbox(i64::MAX, 10).await.expect("outbox");
        assert_eq!(
            pending.iter().map(|p| p.event.detail["n"].as_u64()).collect::<Vec<_>>(),
            vec![Some(1), Some(2)]
        );
    }

    // A save at the current versions wins and bumps them.
    let snap = store.load(pipeline, &Scope::One("e1".into())).await.expect("load");
    assert_eq!(snap.lanes.version, 1);
    assert_eq!(snap.executions.len(), 1);
    let mut e1 = snap.executions[0].clone();
    e1.value.phase = Phase::Ended(Ending::Succeeded);
    lanes.holders = vec![None];
    let next = Changes {
        lanes: Some(Versioned { version: 1, value: lanes.clone() }),
        executions: vec![e1.clone()],
        outbox: vec![],
    };
    store.save(pipeline, next).await.expect("save at current versions");

    // Two writers that read the same version: exactly one wins.
    let stale = Changes { lanes: None, executions: vec![e1], outbox: vec![] };
    assert!(matches!(store.save(pipeline, stale).await, Err(StoreError::Conflict(_))));

    // A conflict on one item leaves every other item of the write untouched. (Versions are
    // the store's own: only "the one read" and "an older one" mean anything.)
    let read = store.load(pipeline, &Scope::One("e1".into())).await.expect("load");
    let mixed = Changes {
        lanes: Some(Versioned { version: 2, value: Lanes::default() }),
        executions: vec![Versioned {
            version: read.executions[0].version - 1,
            value: execution("e1", ExecutionStatus::Failed, 0),
        }],
        outbox: vec![event(9)],
    };
    assert!(matches!(store.save(pipeline, mixed).await, Err(StoreError::Conflict(_))));
    let snap = store.load(pipeline, &Scope::Active).await.expect("load");
    assert_eq!(snap.lanes.version, 2, "the lanes were written by a failed save");
    assert_eq!(snap.lanes.value.holders, vec![None]);

    // Scopes: Active reads only executions that have not ended; waiting ones are always read.
    let more = Changes {
        lanes: Some(Versioned {
            version: 2,
            value: Lanes { waiting: vec![["e3".to_string()].into()], ..Lanes::default() },
        }),
        executions: vec![
            Versioned { version: 0, value: execution("e2", ExecutionStatus::InProgress, 1) },
            Versioned { version: 0, value: execution("e3", ExecutionStatus::InProgress, 2) },
        ],
        outbox: vec![],
    };
    store.save(pipeline, more).await.expect("save more");
    let active = store.load(pipeline, &Scope::Active).await.expect("load");
    let ids: Vec<&str> = active.executions.iter().map(|e| e.value.id.as_str()).collect();
    assert_eq!(ids, vec!["e2", "e3"], "ended executions are not active");
    let lanes_only = store.load(pipeline, &Scope::LanesOnly).await.expect("load");
    assert_eq!(lanes_only.executions.len(), 1, "waiting executions come with the lanes");
    let newest = store.executions(pipeline, 2).await.expect("list");
    assert_eq!(newest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["e3", "e2"]);

    // The outbox keeps entries until acknowledged, and only those.
    if !outbox {
        return;
    }
    store.ack_outbox(&seqs[..1]).await.expect("ack");
    let pending = store.pending_outbox(i64::MAX, 10).await.expect("outbox");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, seqs[1]);
    assert!(
        store.pending_outbox(0, 10).await.expect("outbox").is_empty(),
        "older_than filters recent entries"
    );
}

/// Runs every artifact-store rule against `store`, which must serve `home` and `other` regions.
/// Panics with the rule that broke.
pub async fn artifact_store_contract(
    store: &dyn baton::ports::artifacts::ArtifactStore,
    home: &str,
    other: &str,
    scratch: &std::path::Path,
) {
    use baton::ports::artifacts::{ArtifactError, ArtifactKey};
    let source = scratch.join("contract-source.zip");
    // Larger than one encryption chunk or upload part boundary is not needed for the contract;
    // a few hundred KiB of varied bytes is.
    let bytes: Vec<u8> =
        (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&source, &bytes).expect("write source");
    let key = ArtifactKey {
        pipeline: "contract".into(),
        execution_id: format!("e-{}", std::process::id()),
        artifact: "Out".into(),
        attempt: 1,
    };

    let location = store.put(home, &key, &source).await.expect("put");
    assert_eq!(
        store.region_of(&location).as_deref(),
        Some(home),
        "region_of names the writing region"
    );
    let back = scratch.join("contract-back.zip");
    store.get(home, &location, &back).await.expect("get");
    assert_eq!(
        std::fs::read(&back).expect("read back"),
        bytes,
        "a round trip returns the same bytes"
    );

    // Held in memory only when small, and then the same bytes with no file written.
    let large = scratch.join("contract-large.zip");
    let held = store.get_or_hold(home, &location, &large).await.expect("get_or_hold");
    assert_eq!(held, None, "too large to hold");
    assert_eq!(std::fs::read(&large).expect("written instead"), bytes);
    let small_key = ArtifactKey { artifact: "Small".into(), ..key.clone() };
    std::fs::write(&source, &bytes[..4096]).expect("write source");
    let small = store.put(home, &small_key, &source).await.expect("put");
    let not_written = scratch.join("contract-small.zip");
    let held = store.get_or_hold(home, &small, &not_written).await.expect("get_or_hold");
    assert_eq!(held.as_deref(), Some(&bytes[..4096]), "held in memory, the same bytes");
    assert!(!not_written.exists(), "a held artifact is not written");
    let r = store.get_or_hold(other, &small, &not_written).await;
    assert!(matches!(r, Err(ArtifactError::NotFound(_))), "{r:?}");
    std::fs::write(&source, &bytes).expect("write source");

    // Another attempt never overwrites what an earlier attempt's readers may be reading.
    let second =
        store.put(home, &ArtifactKey { attempt: 2, ..key.clone() }, &source).await.expect("put");
    assert_ne!(second, location, "attempts get their own locations");

    // The other region does not have it until it is copied there.
    let missing = store.get(other, &location, &scratch.join("contract-missing.zip")).await;
    assert!(matches!(missing, Err(ArtifactError::NotFound(_))), "{missing:?}");
    assert!(!scratch.join("contract-missing.zip").exists(), "a failed get leaves no file");
    let copied = store.copy_to_region(home, &location, other).await.expect("copy");
    assert_eq!(
        store.region_of(&copied).as_deref(),
        Some(other),
        "the copy lives in the other region"
    );
    let there = scratch.join("contract-there.zip");
    store.get(other, &copied, &there).await.expect("get the copy");
    assert_eq!(std::fs::read(&there).expect("read copy"), bytes);

    // Unknown artifacts are NotFound, not an I/O failure to retry.
    let unknown = baton_core::engine::ArtifactLocation {
        bucket: location.bucket.clone(),
        key: "contract/none/Out/1.zip".into(),
    };
    let r = store.get(home, &unknown, &scratch.join("contract-unknown.zip")).await;
    assert!(matches!(r, Err(ArtifactError::NotFound(_))), "{r:?}");
}

/// A start of execution `id` as `StartPipelineExecution` makes it, with no variables or pinned
/// revisions.
pub fn manual_start(id: &str) -> baton_core::engine::Input {
    baton_core::engine::Input::Start {
        execution_id: id.into(),
        trigger: baton_core::engine::Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: "t".into(),
        },
        variables: Default::default(),
        source_revisions: Default::default(),
    }
}

/// A bus that keeps every event published on it, for tests that look at what a service
/// published (an action's request, a worker's completion).
#[derive(Default)]
pub struct KeptEvents(pub std::sync::Mutex<Vec<BusEvent>>);

#[async_trait::async_trait]
impl baton::ports::bus::EventBus for KeptEvents {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), baton::ports::bus::BusError> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(events);
        Ok(())
    }
}

/// Runs the event-bus rules against `bus`, which must route by [`baton::routing::rules`].
/// `delivered(target, expected)` returns what reached `target` since its last call, waiting as
/// long as the adapter needs for `expected` events (and a moment, when `expected` is 0).
pub async fn event_bus_contract<F, Fut>(bus: &dyn baton::ports::bus::EventBus, mut delivered: F)
where
    F: FnMut(baton::routing::Target, usize) -> Fut,
    Fut: std::future::Future<Output = Vec<BusEvent>>,
{
    use baton::routing::Target;
    bus.publish(&[]).await.expect("publishing nothing is fine");

    // Inputs for stage-advance arrive whole, each once.
    let ticks: Vec<BusEvent> = (0..13)
        .map(|n| BusEvent {
            source: baton::bus_events::SOURCE.into(),
            detail_type: baton::bus_events::ACTION_COMPLETED.into(),
            resources: vec![],
            detail: serde_json::json!({"pipeline": format!("contract-{n}"), "input": {"type": "Tick"}}),
            trace: None,
        })
        .collect();
    bus.publish(&ticks).await.expect("publish");
    let mut got = delivered(Target::StageAdvance, 13).await;
    got.sort_by(|a, b| a.detail["pipeline"].as_str().cmp(&b.detail["pipeline"].as_str()));
    let mut want = ticks.clone();
    want.sort_by(|a, b| a.detail["pipeline"].as_str().cmp(&b.detail["pipeline"].as_str()));
    assert_eq!(got, want, "stage-advance gets every input, intact, once");

    // Action requests go by category: approvals to the approval function, the rest to workers.
    let request = |category: &str| BusEvent {
        source: baton::bus_events::PUBLIC_SOURCE.into(),
        detail_type: baton_core::events::ACTION_DETAIL_TYPE.into(),
        resources: vec!["arn:aws:codepipeline:us-east-1:111111111111:contract".into()],
        detail: json!({"state": "STARTED", baton::bus_events::REQUEST_FIELD: {"action_type":
            {"category": category, "owner": "AWS", "provider": "X", "version": "1"}}}),
        trace: None,
    };
    bus.publish(&[request("Build"), request("Approval")]).await.expect("publish");
    let workers = delivered(Target::ActionWorker, 1).await;
    let approvals = delivered(Target::Approval, 1).await;
    assert_eq!(workers, vec![request("Build")]);
    assert_eq!(approvals, vec![request("Approval")]);

    // Results and failure notices ride on public events: to stage-advance, and to the notices.
    let carried = |detail_type: &str, detail: serde_json::Value| BusEvent {
        source: baton::bus_events::PUBLIC_SOURCE.into(),
        detail_type: detail_type.into(),
        resources: vec!["arn:aws:codepipeline:us-east-1:111111111111:contract".into()],
        detail,
        trace: None,
    };
    let result = carried(
        baton_core::events::ACTION_DETAIL_TYPE,
        json!({"state": "FAILED", baton::bus_events::COMPLETION_FIELD: {"pipeline": "contract"}}),
    );
    let notice = carried(
        baton_core::events::PIPELINE_DETAIL_TYPE,
        json!({"state": "FAILED", baton::bus_events::FAILURE_FIELD: {"pipeline": "contract"}}),
    );
    bus.publish(&[result.clone(), notice.clone()]).await.expect("publish");
    assert_eq!(delivered(Target::StageAdvance, 1).await, vec![result]);
    assert_eq!(delivered(Target::Notices, 1).await, vec![notice]);

    // Public state changes that carry nothing have no internal consumer.
    let public = carried(baton_core::events::PIPELINE_DETAIL_TYPE, json!({"state": "FAILED"}));
    let started = carried(baton_core::events::ACTION_DETAIL_TYPE, json!({"state": "STARTED"}));
    bus.publish(&[public, started]).await.expect("publish");
    for target in [Target::StageAdvance, Target::ActionWorker, Target::Approval, Target::Notices] {
        assert!(delivered(target, 0).await.is_empty(), "{target:?} got a public event");
    }
}

/// The approval-links contract every [`ApprovalLinks`](baton::ports::approvals::ApprovalLinks)
/// adapter keeps: a record reads back as written; an unused record can be replaced (a request
/// delivered again) and a used one cannot; of two uses exactly one wins.
///
/// # Panics
/// When the adapter breaks the contract.
#[allow(clippy::unwrap_used)] // a broken contract should stop the test loudly
pub async fn approval_links_contract(links: &dyn baton::ports::approvals::ApprovalLinks) {
    use baton::ports::approvals::{ApprovalLink, LinkUse};
    let link = ApprovalLink {
        id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        approve_hash: "a".repeat(64),
        reject_hash: "b".repeat(64),
        pipeline: "p".into(),
        execution_id: "e1".into(),
        stage: "Approve".into(),
        action: "Gate".into(),
        attempt: 1,
        expires: 2_000_000_000_000,
        created: 1_000,
        used: None,
    };
    assert_eq!(links.get_link(&link.id).await.unwrap(), None);
    assert!(links.put_link(&link).await.unwrap());
    assert_eq!(links.get_link(&link.id).await.unwrap().as_ref(), Some(&link));
    let again = ApprovalLink { approve_hash: "c".repeat(64), ..link.clone() };
    assert!(links.put_link(&again).await.unwrap(), "an unused record is replaced");
    assert_eq!(links.get_link(&link.id).await.unwrap().unwrap().approve_hash, again.approve_hash);

    let first = LinkUse { by: "ana".into(), at: 5, approved: true };
    let second = LinkUse { by: "bo".into(), at: 6, approved: false };
    // The page followed `link`'s secrets; a request delivered again replaced them (`again`)
    // before the click's write: the secrets that decided are the ones kept.
    let (a, b) = tokio::join!(links.use_link(&link, &first), links.use_link(&link, &second));
    assert!(a.is_ok() ^ b.is_ok(), "exactly one use wins: {a:?} {b:?}");
    let winner = if a.is_ok() { first } else { second };
    let stored = links.get_link(&link.id).await.unwrap().unwrap();
    assert_eq!(stored.used.as_ref(), Some(&winner));
    assert_eq!(stored.approve_hash, link.approve_hash, "the links that decided still open");
    assert!(
        matches!(links.use_link(&again, &winner).await, Err(StoreError::Conflict(_))),
        "a used record cannot be used again"
    );
    assert_eq!(links.get_link(&link.id).await.unwrap().unwrap().approve_hash, link.approve_hash);
    assert!(!links.put_link(&link).await.unwrap(), "a used record is never replaced");
    assert_eq!(links.get_link(&link.id).await.unwrap().unwrap().used, Some(winner));
    assert!(matches!(
        links
            .use_link(
                &ApprovalLink { id: "BBBBBBBBBBBBBBBBBBBBBB".into(), ..link.clone() },
                &LinkUse { by: "x".into(), at: 1, approved: true }
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
}

/// The action-claims contract: a live claim keeps others out, an expired one is taken over,
/// and of two simultaneous claims exactly one wins.
///
/// # Panics
/// When the adapter breaks the contract.
#[allow(clippy::unwrap_used)] // a broken contract should stop the test loudly
pub async fn action_claims_contract(claims: &dyn baton::ports::state::ActionClaims) {
    let key = "p/e1/Build/Compile/1";
    assert!(claims.claim(key, 1_000, 61_000).await.unwrap(), "a fresh attempt is claimed");
    assert!(!claims.claim(key, 2_000, 62_000).await.unwrap(), "a live claim keeps others out");
    assert!(claims.claim(key, 61_000, 121_000).await.unwrap(), "an expired claim is taken over");
    assert!(claims.claim("p/e1/Build/Compile/2", 2_000, 62_000).await.unwrap());
    let (a, b) = tokio::join!(
        claims.claim("p/e2/Build/Compile/1", 5, 60_005),
        claims.claim("p/e2/Build/Compile/1", 5, 60_005)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one of two simultaneous claims wins");
    // A worker that fails gives its claim up, so the request's next delivery runs the attempt;
    // a release naming another claim's time leaves that claim alone.
    let key = "p/e3/Build/Compile/1";
    assert!(claims.claim(key, 1_000, 61_000).await.unwrap());
    claims.release(key, 99_000).await.unwrap();
    assert!(!claims.claim(key, 2_000, 62_000).await.unwrap(), "released someone else's claim");
    claims.release(key, 61_000).await.unwrap();
    assert!(claims.claim(key, 2_000, 62_000).await.unwrap(), "a released claim is free");
    claims.release("p/never/claimed/x/1", 1).await.unwrap();
}

/// A build action's request in execution `execution_id` of `pipeline`, attempt 1.
pub fn build_request(pipeline: &str, execution_id: &str) -> baton_core::engine::ActionRequest {
    baton_core::engine::ActionRequest {
        pipeline: pipeline.into(),
        pipeline_version: 1,
        execution_id: execution_id.into(),
        stage: "Build".into(),
        action: "Compile".into(),
        attempt: 1,
        action_type: baton_core::plan::ActionType {
            category: "Build".into(),
            owner: "AWS".into(),
            provider: "CodeBuild".into(),
            version: "1".into(),
        },
        configuration: Default::default(),
        commands: vec![],
        input_artifacts: vec![],
        input_revisions: vec![],
        source_revision: None,
        output_artifacts: vec![],
        region: "us-east-1".into(),
        role_arn: None,
        pipeline_role_arn: None,
        artifact_stores: Vec::new(),
        deadline: 0,
        token: None,
        output_artifact_files: vec![],
        output_variables: vec![],
        environment_variables: vec![],
        announce: baton_core::events::Announce {
            source: baton::bus_events::PUBLIC_SOURCE.into(),
            account: "111111111111".into(),
            home_region: "us-east-1".into(),
            execution_attempt: 1,
        },
    }
}

/// What every [`RunningJobs`](baton::ports::jobs::RunningJobs) must do: keep a job until it is
/// removed, replace it by key, and list the due ones earliest first. Expects a store with no
/// other jobs.
#[allow(clippy::unwrap_used)] // a broken contract should stop the test loudly
pub async fn running_jobs_contract(jobs: &dyn baton::ports::jobs::RunningJobs) {
    use baton::ports::jobs::RunningJob;
    let job = |n: u32, check_at: i64| RunningJob {
        key: RunningJob::key_for("CodeBuild", &format!("app:{n}")),
        request: build_request("p", &format!("e{n}")),
        external_id: format!("app:{n}"),
        external_url: Some(format!("https://builds.example/{n}")),
        check_at,
    };
    let keys = |due: Vec<RunningJob>| -> Vec<String> { due.into_iter().map(|j| j.key).collect() };
    let (first, second, later) = (job(1, 2_000), job(2, 1_000), job(3, 9_000));
    for j in [&first, &second, &later] {
        jobs.put_job(j).await.unwrap();
    }
    assert_eq!(jobs.get_job(&first.key).await.unwrap().as_ref(), Some(&first), "kept whole");
    assert_eq!(jobs.get_job("CodeBuild#none:0").await.unwrap(), None);
    assert_eq!(
        keys(jobs.due_jobs(5_000, 100).await.unwrap()),
        vec![second.key.clone(), first.key.clone()],
        "due ones only, earliest first"
    );
    let moved = RunningJob { check_at: 20_000, ..first.clone() };
    jobs.put_job(&moved).await.unwrap();
    assert_eq!(jobs.get_job(&first.key).await.unwrap(), Some(moved), "replaced by key");
    assert_eq!(keys(jobs.due_jobs(5_000, 100).await.unwrap()), vec![second.key.clone()]);
    jobs.remove_job(&second.key).await.unwrap();
    jobs.remove_job(&second.key).await.unwrap();
    assert_eq!(jobs.get_job(&second.key).await.unwrap(), None, "removed, twice without error");
    assert_eq!(
        keys(jobs.due_jobs(i64::MAX, 100).await.unwrap()),
        vec![later.key.clone(), first.key.clone()]
    );
    for j in [&first, &later] {
        jobs.remove_job(&j.key).await.unwrap();
    }
}

/// A function's AWS side on the test emulator (`BATON_TEST_AWS_ENDPOINT`, which `make test`
/// sets): a fresh table, bus and dead-letter queue, and a queue that receives every `baton`
/// event put on the bus, for handler tests.
pub struct LambdaFixture {
    /// The function's clients and adapters.
    pub aws: baton::lambda::Aws,
    /// An SQS client on the emulator.
    pub sqs: aws_sdk_sqs::Client,
    /// Where malformed events are dead-lettered.
    pub dead_letters: String,
    /// Where the internal events the function publishes arrive.
    pub published: String,
    /// The fixture's table.
    pub dynamodb: aws_sdk_dynamodb::Client,
}

#[allow(clippy::unwrap_used, clippy::expect_used)] // a fixture that cannot be set up should stop loudly
impl LambdaFixture {
    /// Creates the resources, named after `prefix` and the time, in us-east-1.
    pub async fn new(prefix: &str) -> Self {
        Self::with_env(prefix, &[]).await
    }

    /// The emulator's SDK configuration, in us-east-1.
    async fn sdk() -> aws_config::SdkConfig {
        let endpoint = std::env::var("BATON_TEST_AWS_ENDPOINT")
            .expect("BATON_TEST_AWS_ENDPOINT is not set: run these tests with `make test`");
        let creds = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "test");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }

    /// An S3 client on the emulator, in us-east-1.
    pub async fn s3() -> aws_sdk_s3::Client {
        baton::adapters::aws::sdk::s3(&Self::sdk().await)
    }

    /// A Secrets Manager secret `name` holding `value` on the emulator, for settings that name
    /// one (`BATON_WEBHOOK_SECRETS`).
    pub async fn put_secret(name: &str, value: &str) {
        let secrets = aws_sdk_secretsmanager::Client::new(&Self::sdk().await);
        secrets.create_secret().name(name).secret_string(value).send().await.unwrap();
    }

    /// As [`new`](Self::new), with the functions' settings `extra` (`BATON_*` variables) added.
    pub async fn with_env(prefix: &str, extra: &[(&str, &str)]) -> Self {
        let sdk = Self::sdk().await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Tests of one binary run at once and may read the same clock tick: a counter keeps
        // their tables apart.
        static FIXTURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FIXTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}-{nanos}", std::process::id());
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        baton::adapters::aws::dynamodb_state::create_table(&dynamodb, &name).await.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = |n: String| {
            let sqs = sqs.clone();
            async move {
                let url = sqs.create_queue().queue_name(n).send().await.unwrap().queue_url.unwrap();
                let arn = sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .unwrap()
                    .attributes
                    .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
                    .clone();
                (url, arn)
            }
        };
        let (dead_letters, _) = queue(format!("{name}-dlq")).await;
        let (published, published_arn) = queue(format!("{name}-out")).await;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        events.create_event_bus().name(&name).send().await.unwrap();
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&name)
            .event_pattern(
                json!({"source": [baton::bus_events::SOURCE, baton::bus_events::PUBLIC_SOURCE]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("out")
            .arn(published_arn)
            .build()
            .unwrap();
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(&name)
            .targets(target)
            .send()
            .await
            .unwrap();
        let vars = std::collections::BTreeMap::from([
            ("BATON_TABLE", name.clone()),
            ("BATON_BUS", name.clone()),
            ("BATON_ARTIFACT_BUCKETS", format!("us-east-1={name}")),
            ("BATON_ARTIFACT_KEYS", "us-east-1=arn:aws:kms:us-east-1:123456789012:key/x".into()),
            ("BATON_FAILURE_TOPIC", "arn:aws:sns:us-east-1:123456789012:f".into()),
            ("BATON_APPROVAL_TOPIC", "arn:aws:sns:us-east-1:123456789012:a".into()),
            ("BATON_DEAD_LETTER_QUEUE", dead_letters.clone()),
            ("BATON_APPROVAL_URL", "https://approvals.example.invalid/".into()),
            ("BATON_ACCOUNT_ID", "111111111111".into()),
        ]);
        let vars: std::collections::BTreeMap<&str, String> =
            vars.into_iter().chain(extra.iter().map(|(k, v)| (*k, (*v).to_owned()))).collect();
        let config =
            baton::config::Config::from_lookup(|k| vars.get(k).cloned()).expect("a valid config");
        let aws = baton::lambda::Aws::connect_with(&config, sdk);
        Self { aws, sqs, dead_letters, published, dynamodb }
    }

    /// Creates the IAM role `name` with the trust policy `trust`; its ARN in the fixture's
    /// account (the emulator keeps it in its own).
    pub async fn create_role(&self, name: &str, trust: &serde_json::Value) -> String {
        aws_sdk_iam::Client::new(&Self::sdk().await)
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        format!("arn:aws:iam::{}:role/{name}", self.aws.config().account_id)
    }

    /// The events `pipeline`'s last save wrote on its lanes item, for the outbox relay.
    pub async fn saved_events(&self, pipeline: &str) -> Vec<BusEvent> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.aws.config().table)
            .key("pk", AttributeValue::S(format!("PIPELINE#{pipeline}")))
            .key("sk", AttributeValue::S("LANES".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default();
        baton::adapters::aws::dynamodb_relay::item_events(&item).unwrap()
    }

    /// Everything that reached any of `queues` by the time a marker sent after it arrives: the
    /// marker goes the way the function's messages go (through the bus to the published queue,
    /// straight to any other), behind anything the function sent before returning. So a test
    /// that nothing was published waits for the marker, not [`Self::PATIENCE`] out.
    pub async fn nothing_in(&self, queues: &[&str]) -> Vec<serde_json::Value> {
        let marker = format!("barrier-{}", self.published);
        let mut waits = Vec::new();
        for queue in queues {
            self.send_marker(queue, &marker).await;
            let (sqs, queue, marker) = (self.sqs.clone(), (*queue).to_owned(), marker.clone());
            waits.push(tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Self::PATIENCE;
                let mut found = Vec::new();
                loop {
                    assert!(tokio::time::Instant::now() < deadline, "no marker reached {queue}");
                    let out = sqs
                        .receive_message()
                        .queue_url(&queue)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .unwrap();
                    let mut marked = false;
                    for m in out.messages.unwrap_or_default() {
                        let body: serde_json::Value =
                            serde_json::from_str(m.body().unwrap_or("null")).unwrap();
                        if body.to_string().contains(&marker) {
                            marked = true;
                        } else {
                            found.push(body);
                        }
                    }
                    if marked {
                        return found;
                    }
                }
            }));
        }
        let mut found = Vec::new();
        for wait in waits {
            found.extend(wait.await.unwrap());
        }
        found
    }

    /// Sends `marker` to `queue` the way the function's messages reach it.
    async fn send_marker(&self, queue: &str, marker: &str) {
        if queue != self.published {
            let body = json!({ "marker": marker }).to_string();
            self.sqs.send_message().queue_url(queue).message_body(body).send().await.unwrap();
            return;
        }
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.aws.config().bus)
            .source(baton::bus_events::SOURCE)
            .detail_type("Baton Test Marker")
            .detail(json!({ "marker": marker }).to_string())
            .build();
        let events = aws_sdk_eventbridge::Client::new(&Self::sdk().await);
        let out = events.put_events().entries(entry).send().await.unwrap();
        assert_eq!(out.failed_entry_count, 0, "the marker went on the bus");
    }

    /// How long [`Self::received`] waits, at most, for what it expects.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    /// The bodies of what reached `queue` within [`Self::PATIENCE`] (at least `expected`).
    pub async fn received(&self, queue: &str, expected: usize) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        for _ in 0..Self::PATIENCE.as_secs() {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(if found.len() >= expected { 0 } else { 1 })
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() && found.len() >= expected {
                break;
            }
            found.extend(
                messages.iter().map(|m| serde_json::from_str(m.body().unwrap_or("null")).unwrap()),
            );
        }
        found
    }
}

/// `events` as a stream record shows the attribute carrying them: deflated JSON, in base64.
pub fn events_blob(events: &[BusEvent]) -> String {
    use base64::Engine as _;
    let aws_sdk_dynamodb::types::AttributeValue::B(blob) =
        baton::adapters::aws::dynamodb_state::packed(
            &serde_json::to_string(events).expect("events serialise"),
        )
        .expect("deflate never fails in memory")
    else {
        unreachable!("packed is binary")
    };
    base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
}

/// A record of the table's stream as Lambda delivers it to the outbox relay: a write of the
/// lanes item carrying `events`.
pub fn stream_record(sequence_number: &str, events: &[BusEvent]) -> serde_json::Value {
    json!({"eventID": sequence_number, "eventName": "MODIFY", "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": {"S": "PIPELINE#web"}, "sk": {"S": "LANES"}},
            "NewImage": {"events": {"B": events_blob(events)},
                "event_count": {"N": events.len().to_string()}},
            "SequenceNumber": sequence_number, "StreamViewType": "NEW_IMAGE"}})
}

/// A pipeline for handler tests: an S3 source (`uploads`/`web.zip`), then a manual approval.
pub const S3_SOURCED_PIPELINE: &str = r#"{"pipeline": {"name": "web",
  "roleArn": "arn:aws:iam::111111111111:role/pipeline",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Fetch",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "uploads", "S3ObjectKey": "web.zip"},
      "outputArtifacts": [{"name": "Code"}]}]},
    {"name": "Approve", "actions": [{"name": "Gate",
      "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}
  ]}}"#;

/// A function URL request as Lambda delivers it. `iam_caller` is the principal AWS_IAM auth
/// verified; `None` is a URL with AuthType NONE.
pub fn function_url_request(
    method: &str,
    path: &str,
    headers: serde_json::Value,
    body: &str,
    iam_caller: Option<&str>,
) -> serde_json::Value {
    let authorizer = iam_caller.map(|arn| {
        json!({"iam": {"userArn": arn, "accessKey": "AKIAEXAMPLE", "accountId": "111111111111",
            "callerId": "AIDAEXAMPLE", "userId": "AIDAEXAMPLE"}})
    });
    json!({
        "version": "2.0", "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "111111111111", "requestId": "r-1",
            "authorizer": authorizer, "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": method, "path": path,
            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "time": "24/Nov/2026:16:00:00 +0000", "timeEpoch": 1_795_000_000_000_i64},
        "body": body, "isBase64Encoded": false})
}

/// A state store whose next `failures` saves fail as an unreachable store does; everything
/// else goes to `inner`. For showing what a write that fails leaves behind.
pub struct FailingSaves {
    inner: std::sync::Arc<dyn StateStore>,
    failures: std::sync::atomic::AtomicUsize,
}

impl FailingSaves {
    #[allow(missing_docs)]
    pub fn new(inner: std::sync::Arc<dyn StateStore>, failures: usize) -> Self {
        Self { inner, failures: std::sync::atomic::AtomicUsize::new(failures) }
    }
}

#[async_trait::async_trait]
impl StateStore for FailingSaves {
    async fn create_pipeline(
        &self,
        record: &baton::ports::state::PipelineRecord,
    ) -> Result<(), StoreError> {
        self.inner.create_pipeline(record).await
    }
    async fn update_pipeline(
        &self,
        record: &baton::ports::state::PipelineRecord,
    ) -> Result<(), StoreError> {
        self.inner.update_pipeline(record).await
    }
    async fn get_pipeline(
        &self,
        name: &str,
    ) -> Result<Option<baton::ports::state::PipelineRecord>, StoreError> {
        self.inner.get_pipeline(name).await
    }
    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError> {
        self.inner.list_pipelines().await
    }
    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_pipeline(name).await
    }
    async fn load(
        &self,
        pipeline: &str,
        scope: &Scope,
    ) -> Result<baton::ports::state::Snapshot, StoreError> {
        self.inner.load(pipeline, scope).await
    }
    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError> {
        use std::sync::atomic::Ordering;
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable("the store failed this save (test)".into()));
        }
        self.inner.save(pipeline, changes).await
    }
    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        self.inner.execution(pipeline, id).await
    }
    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        self.inner.executions(pipeline, limit).await
    }
    fn relays_outbox(&self) -> bool {
        self.inner.relays_outbox()
    }
    async fn pending_outbox(
        &self,
        older_than: baton_core::engine::Millis,
        limit: usize,
    ) -> Result<Vec<baton::ports::state::OutboxEntry>, StoreError> {
        self.inner.pending_outbox(older_than, limit).await
    }
    async fn ack_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.inner.ack_outbox(seqs).await
    }
}
