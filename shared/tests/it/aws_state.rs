//! The DynamoDB state store against moto: the shared contract, then what only DynamoDB can get
//! wrong (racing transactions, expiry, item limits). Each test has its own table.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use baton::adapters::aws::dynamodb_state::{DynamoDbStateStore, create_table};
use baton::core::declaration::PipelineDocument;
use baton::core::engine::{Execution, ExecutionStatus, Lanes};
use baton::core::plan::{Placement, Plan};
use baton::ports::state::{
    Changes, PipelineRecord, Scope, Snapshot, StateStore, StoreError, Versioned,
};
use baton_testkit::event;
use baton_testkit::state_store_contract;

use crate::aws_support::{sdk_config, stream_events, unique};

const RETENTION_DAYS: u32 = 30;

async fn fresh_store() -> (DynamoDbStateStore, aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config("eu-west-1").await);
    let table = unique("baton-state");
    create_table(&client, &table).await.unwrap();
    (DynamoDbStateStore::new(client.clone(), table.clone(), RETENTION_DAYS), client, table)
}

fn execution(id: &str, status: ExecutionStatus) -> Execution {
    baton_testkit::execution(id, status, 0)
}

fn lanes(holder: &str) -> Lanes {
    Lanes { holders: vec![Some(holder.into())], ..Lanes::default() }
}

/// Saves `e1` (in progress, holding stage 0) at version 0; both are at version 1 after.
async fn seed(store: &DynamoDbStateStore, pipeline: &str) {
    let changes = Changes {
        lanes: Some(Versioned { version: 0, value: lanes("e1") }),
        executions: vec![Versioned {
            version: 0,
            value: execution("e1", ExecutionStatus::InProgress),
        }],
        outbox: vec![event(0)],
    };
    store.save(pipeline, changes).await.unwrap();
}

async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the item exists")
}

fn placement() -> Placement {
    Placement {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        event_source: "baton.codepipeline".into(),
    }
}

fn record(name: &str) -> PipelineRecord {
    let text = include_str!("../../../examples/release-pipeline.json");
    let mut declaration = PipelineDocument::parse(text).unwrap().pipeline;
    declaration.name = name.into();
    declaration.version = Some(1);
    let plan = Plan::from_declaration(&declaration, &placement()).unwrap();
    PipelineRecord { declaration, plan, created: 1, updated: 1, tags: Vec::new() }
}

/// A pipeline whose source action is `provider` with `configuration`.
fn watching(name: &str, provider: &str, configuration: serde_json::Value) -> PipelineRecord {
    let mut record = record(name);
    let source = serde_json::json!({"name": "Src",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": configuration, "outputArtifacts": [{"name": "SourceOutput"}],
        "namespace": "SourceVariables"});
    record.declaration.stages[0].actions = vec![serde_json::from_value(source).unwrap()];
    record.plan = Plan::from_declaration(&record.declaration, &placement()).unwrap();
    record
}

#[tokio::test]
async fn a_source_change_reads_only_the_pipelines_watching_its_source() {
    let (store, client, table) = fresh_store().await;
    let repo = |r: &str, poll: &str| serde_json::json!({"RepositoryName": r, "BranchName": "main", "PollForSourceChanges": poll});
    store
        .create_pipeline(&watching("pushed", "CodeCommit", repo("repo-a", "false")))
        .await
        .unwrap();
    store.create_pipeline(&watching("polled", "CodeCommit", repo("repo-a", "true"))).await.unwrap();
    let upload = serde_json::json!({"S3Bucket": "bucket-b", "S3ObjectKey": "app.zip"});
    store.create_pipeline(&watching("uploaded", "S3", upload)).await.unwrap();
    // A listing written before the index says nothing of its sources: it is always read.
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("PIPELINES".into()))
        .item("sk", AttributeValue::S("older".into()))
        .send()
        .await
        .unwrap();
    let watching_key = async |key: &str| store.pipelines_watching(key).await.unwrap();
    assert_eq!(watching_key("codecommit:repo-a").await, ["older", "polled", "pushed"]);
    assert_eq!(watching_key("poll").await, ["older", "polled"]);
    assert_eq!(watching_key("s3:bucket-b").await, ["older", "uploaded"]);
    assert_eq!(watching_key("codecommit:repo").await, ["older"], "a key matches whole");

    // An update that moves the source moves the pipeline in the index.
    store
        .update_pipeline(&watching("pushed", "CodeCommit", repo("repo-c", "false")))
        .await
        .unwrap();
    assert_eq!(watching_key("codecommit:repo-a").await, ["older", "polled"]);
    assert_eq!(watching_key("codecommit:repo-c").await, ["older", "pushed"]);
    assert_eq!(store.list_pipelines().await.unwrap(), ["older", "polled", "pushed", "uploaded"]);
}

#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    let (store, _, _) = fresh_store().await;
    state_store_contract(&store, "contract").await;
    baton_testkit::approval_links_contract(&store).await;
    baton_testkit::action_claims_contract(&store).await;
    baton_testkit::running_jobs_contract(&store).await;
}

/// Seeds `pipeline` in `store`, then sends `save(read, 1)` and `save(read, 2)` of the same read
/// at once. Exactly one wins and the other conflicts; the winner's `e1` is the one stored, and
/// only its event reaches the stream. Returns the winner's number.
async fn race_two(
    (store, client, table): (DynamoDbStateStore, aws_sdk_dynamodb::Client, String),
    pipeline: &'static str,
    save: fn(&Snapshot, u32) -> Changes,
) -> u32 {
    let store = Arc::new(store);
    seed(&store, pipeline).await;
    let snap = store.load(pipeline, &Scope::One("e1".into())).await.unwrap();
    let attempt = |n: u32| {
        let store = Arc::clone(&store);
        let changes = save(&snap, n);
        tokio::spawn(async move { (n, store.save(pipeline, changes).await) })
    };
    let (first, second) = (attempt(1), attempt(2));
    let results = [first.await.unwrap(), second.await.unwrap()];

    let winners: Vec<_> = results.iter().filter(|r| r.1.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one save wins: {results:?}");
    let losers: Vec<_> = results.iter().filter(|r| r.1.is_err()).collect();
    assert!(matches!(losers[0].1, Err(StoreError::Conflict(_))), "{results:?}");
    let n = winners[0].0;
    let stored = store.execution(pipeline, "e1").await.unwrap().unwrap();
    assert_eq!(stored.updated_at, i64::from(n), "the winner's write is the one stored");
    let relayed = relayed(&client, &table).await;
    assert_eq!(relayed, vec![0, u64::from(n)], "only the winner's events reach the stream");
    n
}

/// Both keep e1 running, so each save is one conditional write of the lanes item. (moto runs
/// racing transactions unsafely: a cancelled one restores the table as it found it, over the
/// other's write. DynamoDB does not.)
#[tokio::test]
async fn two_concurrent_saves_from_the_same_read_let_exactly_one_win() {
    race_two(fresh_store().await, "race", running).await;
}

/// `e1` of the snapshot `snap` ended with `updated_at`, the lanes it held let go: a save
/// that moves it out of the lanes item, carrying event `n`.
fn ending(snap: &Snapshot, updated_at: i64, n: u32) -> Changes {
    let mut e1 = snap.executions.iter().find(|e| e.value.id == "e1").unwrap().clone();
    e1.value.phase = baton_testkit::phase_of(ExecutionStatus::Succeeded);
    e1.value.updated_at = updated_at;
    Changes {
        lanes: Some(Versioned { version: snap.lanes.version, value: Lanes::default() }),
        executions: vec![e1],
        outbox: vec![event(n)],
    }
}

/// `e1` of `snap` still running and holding its stage, updated at `n`: a save carrying event `n`.
fn running(snap: &Snapshot, n: u32) -> Changes {
    let mut e1 = snap.executions.iter().find(|e| e.value.id == "e1").unwrap().clone();
    e1.value.updated_at = i64::from(n);
    Changes {
        lanes: Some(Versioned { version: snap.lanes.version, value: lanes("e1") }),
        executions: vec![e1],
        outbox: vec![event(n)],
    }
}

/// Seeds `pipeline`, then moves `e1` out (ended at 6, event 6) from a read that another save
/// (still running, at 5, event 5) made stale: that move conflicts. Returns the stale read.
async fn lose_a_move(store: &DynamoDbStateStore, pipeline: &str) -> Snapshot {
    seed(store, pipeline).await;
    let stale = store.load(pipeline, &Scope::One("e1".into())).await.unwrap();
    store.save(pipeline, running(&stale, 5)).await.unwrap();
    let lost = store.save(pipeline, ending(&stale, 6, 6)).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    stale
}

/// A move out of the lanes item writes the execution's own item before the lanes: when the
/// lanes update then fails, that item is a draft every reader passes over for the resident,
/// and a later mover replaces it; once a move landed, a mover from an older read is refused.
#[tokio::test]
async fn a_move_out_whose_lanes_update_fails_leaves_a_draft_no_reader_takes() {
    let (store, client, table) = fresh_store().await;

    let stale = lose_a_move(&store, "draft").await;

    let draft = raw_item(&client, &table, "PIPELINE#draft", "EXECUTION#e1").await;
    assert!(draft.contains_key("body"), "the own item was written first: {draft:?}");
    let shown = store.execution("draft", "e1").await.unwrap().unwrap();
    assert_eq!((shown.status(), shown.updated_at), (ExecutionStatus::InProgress, 5));
    let listed = store.executions("draft", 10).await.unwrap();
    assert_eq!(listed.len(), 1, "listed once: {listed:?}");
    assert_eq!((listed[0].status(), listed[0].updated_at), (ExecutionStatus::InProgress, 5));
    let active = store.load("draft", &Scope::Active).await.unwrap();
    assert_eq!(active.executions.len(), 1, "{active:?}");
    assert_eq!(active.executions[0].value.updated_at, 5);
    assert_eq!(relayed(&client, &table).await, vec![0, 5], "the failed move's event went out");

    // Read again and moved out: it lands over the draft.
    let current = store.load("draft", &Scope::One("e1".into())).await.unwrap();
    store.save("draft", ending(&current, 7, 7)).await.unwrap();
    let shown = store.execution("draft", "e1").await.unwrap().unwrap();
    assert_eq!((shown.status(), shown.updated_at), (ExecutionStatus::Succeeded, 7));
    let lanes_item = raw_item(&client, &table, "PIPELINE#draft", "LANES").await;
    assert!(!lanes_item.contains_key("x:e1"), "moved out: {lanes_item:?}");
    assert_eq!(relayed(&client, &table).await, vec![0, 5, 7]);

    // Movers from the reads before it are refused and change nothing.
    for (read, n) in [(&stale, 8), (&current, 9)] {
        let late = store.save("draft", ending(read, i64::from(n), n)).await;
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    }
    let shown = store.execution("draft", "e1").await.unwrap().unwrap();
    assert_eq!((shown.status(), shown.updated_at), (ExecutionStatus::Succeeded, 7));
    assert_eq!(relayed(&client, &table).await, vec![0, 5, 7]);
}

/// A draft written ended (its lanes update lost) and then a move of the execution still
/// running, which let go of its stage: the item keeps nothing of the draft, so it neither
/// expires nor leaves the `active` index while it runs.
#[tokio::test]
async fn a_move_out_keeps_nothing_of_an_earlier_draft() {
    let (store, client, table) = fresh_store().await;
    lose_a_move(&store, "redraft").await;
    let draft = raw_item(&client, &table, "PIPELINE#redraft", "EXECUTION#e1").await;
    assert!(draft.contains_key("expires_at"), "the draft was written ended: {draft:?}");

    let current = store.load("redraft", &Scope::One("e1".into())).await.unwrap();
    let mut waiting = ending(&current, 7, 7);
    waiting.executions[0].value.phase = baton_testkit::phase_of(ExecutionStatus::InProgress);
    store.save("redraft", waiting).await.unwrap();

    let moved = raw_item(&client, &table, "PIPELINE#redraft", "EXECUTION#e1").await;
    assert!(!moved.contains_key("expires_at"), "a running execution never expires: {moved:?}");
    assert_eq!(moved.get("ended"), Some(&AttributeValue::N("0".into())), "{moved:?}");
    let shown = store.execution("redraft", "e1").await.unwrap().unwrap();
    assert_eq!((shown.status(), shown.updated_at), (ExecutionStatus::InProgress, 7));
    let active = store.load("redraft", &Scope::Active).await.unwrap();
    assert_eq!(active.executions.len(), 1, "{active:?}");
}

/// Two moves of the same execution from the same read: exactly one lands, and the execution's
/// own item holds the winner's, not the last one written.
#[tokio::test]
async fn two_concurrent_moves_out_from_the_same_read_let_exactly_one_win() {
    let (store, client, table) = fresh_store().await;
    let fresh = (store, client.clone(), table.clone());
    race_two(fresh, "moves", |read, n| ending(read, i64::from(n), n)).await;
    let raw = raw_item(&client, &table, "PIPELINE#moves", "EXECUTION#e1").await;
    assert!(!raw.contains_key("resident"), "the winner's move landed: {raw:?}");
}

#[tokio::test]
async fn a_transaction_with_one_stale_item_writes_nothing() {
    let (store, client, table) = fresh_store().await;
    seed(&store, "stale").await;
    let before = store.load("stale", &Scope::Active).await.unwrap();

    // Lanes and a new execution at the right versions, e1 at a stale one.
    let changes = Changes {
        lanes: Some(Versioned { version: 1, value: lanes("e2") }),
        executions: vec![
            Versioned { version: 0, value: execution("e2", ExecutionStatus::InProgress) },
            Versioned { version: 0, value: execution("e1", ExecutionStatus::Failed) },
        ],
        outbox: vec![event(7)],
    };
    let result = store.save("stale", changes).await;

    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    let after = store.load("stale", &Scope::Active).await.unwrap();
    assert_eq!(after, before, "the lanes and e1 are as they were");
    assert!(store.execution("stale", "e2").await.unwrap().is_none(), "e2 was not created");
    assert_eq!(relayed(&client, &table).await, vec![0], "the failed save's events went out");
}

#[tokio::test]
async fn an_ended_execution_expires_after_the_retention_and_a_reopened_one_does_not() {
    let (store, client, table) = fresh_store().await;
    seed(&store, "ttl").await;
    // e1 holds a stage: it lives in the lanes item, which never expires.
    let lanes_item = raw_item(&client, &table, "PIPELINE#ttl", "LANES").await;
    assert!(lanes_item.contains_key("x:e1"), "a holder lives in the lanes item: {lanes_item:?}");
    assert!(!lanes_item.contains_key("expires_at"), "the lanes item never expires");

    let mut e1 = store.load("ttl", &Scope::One("e1".into())).await.unwrap().executions[0].clone();
    e1.value.phase = baton_testkit::phase_of(ExecutionStatus::Failed);
    let changes = Changes { lanes: None, executions: vec![e1], outbox: vec![] };
    store.save("ttl", changes).await.unwrap();

    // Ended, it moved to an item of its own, with an expiry; the lanes item no longer has it.
    let ended = raw_item(&client, &table, "PIPELINE#ttl", "EXECUTION#e1").await;
    let Some(AttributeValue::N(expires_at)) = ended.get("expires_at") else {
        panic!("an ended execution has a numeric expires_at: {ended:?}")
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let expected = now + i64::from(RETENTION_DAYS) * 86_400;
    let expires_at: i64 = expires_at.parse().unwrap();
    assert!((expires_at - expected).abs() < 120, "{expires_at} is not about {expected}");
    let lanes_item = raw_item(&client, &table, "PIPELINE#ttl", "LANES").await;
    assert!(!lanes_item.contains_key("x:e1"), "moved out, not copied: {lanes_item:?}");
    assert_eq!(
        store.execution("ttl", "e1").await.unwrap().unwrap().status(),
        ExecutionStatus::Failed
    );

    // A stage retry re-opens a failed execution: it must not expire while it runs.
    let mut e1 = store.load("ttl", &Scope::One("e1".into())).await.unwrap().executions[0].clone();
    e1.value.phase = baton_testkit::phase_of(ExecutionStatus::InProgress);
    store.save("ttl", Changes { lanes: None, executions: vec![e1], outbox: vec![] }).await.unwrap();
    let reopened = raw_item(&client, &table, "PIPELINE#ttl", "EXECUTION#e1").await;
    assert!(!reopened.contains_key("expires_at"));
}

#[tokio::test]
async fn an_execution_over_400_kb_is_refused_with_a_clear_error() {
    let (store, _, _) = fresh_store().await;
    let mut huge = execution("e-huge", ExecutionStatus::InProgress);
    // Bodies are stored deflated, so the blob must not compress: pseudo-random printable text.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..900 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 94) as u8)
        })
        .collect();
    huge.variables.insert("blob".into(), noise);
    let changes = Changes {
        lanes: None,
        executions: vec![Versioned { version: 0, value: huge }],
        outbox: vec![],
    };

    let result = store.save("big", changes).await;

    let Err(StoreError::Unavailable(source)) = result else {
        panic!("expected Unavailable, got {result:?}")
    };
    let message = source.to_string();
    assert!(message.contains("execution e-huge of pipeline big"), "{message}");
    assert!(message.contains("400 KB"), "{message}");
    assert!(store.execution("big", "e-huge").await.unwrap().is_none());
}

#[tokio::test]
async fn a_save_over_the_transaction_limit_is_refused_before_sending() {
    let (store, _, _) = fresh_store().await;
    let executions = (0..101)
        .map(|n| Versioned {
            version: 0,
            value: execution(&format!("e{n}"), ExecutionStatus::InProgress),
        })
        .collect();
    let changes = Changes { lanes: None, executions, outbox: vec![event(0)] };

    let result = store.save("many", changes).await;

    let Err(StoreError::Unavailable(source)) = result else {
        panic!("expected Unavailable, got {result:?}")
    };
    assert!(source.to_string().contains("at most 100 items"), "{source}");
    assert!(store.execution("many", "e0").await.unwrap().is_none());
}

#[tokio::test]
async fn pipelines_are_created_once_listed_sorted_and_deleted_with_their_executions() {
    let (store, client, table) = fresh_store().await;
    store.create_pipeline(&record("beta")).await.unwrap();
    store.create_pipeline(&record("alpha")).await.unwrap();
    let again = store.create_pipeline(&record("beta")).await;
    assert!(matches!(again, Err(StoreError::Exists(_))), "{again:?}");
    let missing = store.update_pipeline(&record("gamma")).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    assert_eq!(store.list_pipelines().await.unwrap(), vec!["alpha", "beta"]);
    let mut updated = record("beta");
    updated.updated = 2;
    store.update_pipeline(&updated).await.unwrap();
    assert_eq!(store.get_pipeline("beta").await.unwrap(), Some(updated));

    // More executions than one BatchWriteItem takes.
    let executions = (0..30)
        .map(|i| Versioned {
            version: 0,
            value: execution(&format!("e{i}"), ExecutionStatus::Succeeded),
        })
        .collect();
    let changes = Changes { lanes: None, executions, outbox: vec![] };
    store.save("beta", changes).await.unwrap();
    assert_eq!(store.executions("beta", 100).await.unwrap().len(), 30);

    store.delete_pipeline("beta").await.unwrap();

    assert_eq!(store.list_pipelines().await.unwrap(), vec!["alpha"]);
    assert!(store.get_pipeline("beta").await.unwrap().is_none());
    let left = client
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("PIPELINE#beta".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(left.count(), 0, "nothing of the pipeline is left");
    let twice = store.delete_pipeline("beta").await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))), "{twice:?}");
}

#[tokio::test]
async fn each_save_s_events_ride_on_the_item_it_writes_and_reach_the_stream_in_order() {
    let (store, client, table) = fresh_store().await;
    // 1. A new holder: one write of the lanes item, with the events.
    seed(&store, "relay").await;
    // 2. The holder changes, the lanes do not: the lanes item again.
    let mut e1 = store.load("relay", &Scope::LanesOnly).await.unwrap().executions[0].clone();
    e1.value.updated_at = 2_000;
    let changes = Changes { lanes: None, executions: vec![e1.clone()], outbox: vec![event(1)] };
    store.save("relay", changes).await.unwrap();
    // 3. An execution that holds no stage (PARALLEL mode): its own item carries them.
    let e2 = Versioned { version: 0, value: execution("e2", ExecutionStatus::InProgress) };
    let changes = Changes { lanes: None, executions: vec![e2], outbox: vec![event(2)] };
    store.save("relay", changes).await.unwrap();
    // 4. Events alone: the pipeline's events item.
    store
        .save("relay", Changes { lanes: None, executions: vec![], outbox: vec![event(3)] })
        .await
        .unwrap();
    // 5. A save without events leaves none behind on the item it writes.
    e1.version += 1;
    e1.value.updated_at = 3_000;
    store
        .save("relay", Changes { lanes: None, executions: vec![e1], outbox: vec![] })
        .await
        .unwrap();

    assert_eq!(relayed(&client, &table).await, vec![0, 1, 2, 3]);
    let lanes_item = raw_item(&client, &table, "PIPELINE#relay", "LANES").await;
    assert!(!lanes_item.contains_key("events"), "old events were left: {lanes_item:?}");
    assert!(
        raw_item(&client, &table, "PIPELINE#relay", "EXECUTION#e2").await.contains_key("events")
    );
    let snap = store.load("relay", &Scope::Active).await.unwrap();
    let ids: Vec<&str> = snap.executions.iter().map(|e| e.value.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"], "residents and own items load alike");
    assert_eq!(snap.executions[0].value.updated_at, 3_000);
    assert_eq!(store.executions("relay", 10).await.unwrap().len(), 2);
}

/// The `n` of every event the table's stream carries, in stream order.
async fn relayed(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<u64> {
    stream_events(client, table).await.iter().filter_map(|e| e.detail["n"].as_u64()).collect()
}

/// QUEUED mode (or SUPERSEDED with a waiting line): an execution waits in an item of its own,
/// then enters a stage and moves into the lanes item, then ends and moves out again. Its own
/// item's version only grows meanwhile, so a writer holding an old one always conflicts.
#[tokio::test]
async fn a_waiting_execution_moves_in_when_it_enters_a_stage_and_out_when_it_ends() {
    let (store, client, table) = fresh_store().await;
    seed(&store, "queued").await;
    // e2 arrives and waits behind e1.
    let waiting = Lanes {
        holders: vec![Some("e1".into())],
        waiting: vec![["e2".to_string()].into()],
        ..Lanes::default()
    };
    let changes = Changes {
        lanes: Some(Versioned { version: 1, value: waiting }),
        executions: vec![Versioned {
            version: 0,
            value: execution("e2", ExecutionStatus::InProgress),
        }],
        outbox: vec![],
    };
    store.save("queued", changes).await.unwrap();
    let snap = store.load("queued", &Scope::LanesOnly).await.unwrap();
    let e2_waiting = snap.executions.iter().find(|e| e.value.id == "e2").unwrap().clone();
    assert!(!raw_item(&client, &table, "PIPELINE#queued", "LANES").await.contains_key("x:e2"));

    // e1 ends; e2 enters the stage.
    let mut e1 = store.load("queued", &Scope::One("e1".into())).await.unwrap();
    let mut e1 =
        e1.executions.remove(e1.executions.iter().position(|e| e.value.id == "e1").unwrap());
    e1.value.phase = baton_testkit::phase_of(ExecutionStatus::Succeeded);
    let mut e2 = e2_waiting.clone();
    e2.value.updated_at = 5_000;
    let changes = Changes {
        lanes: Some(Versioned { version: snap.lanes.version, value: lanes("e2") }),
        executions: vec![e1, e2],
        outbox: vec![event(1)],
    };
    store.save("queued", changes).await.unwrap();
    let lanes_item = raw_item(&client, &table, "PIPELINE#queued", "LANES").await;
    assert!(lanes_item.contains_key("x:e2") && !lanes_item.contains_key("x:e1"), "{lanes_item:?}");
    let tombstone = raw_item(&client, &table, "PIPELINE#queued", "EXECUTION#e2").await;
    assert!(tombstone.contains_key("resident") && !tombstone.contains_key("body"), "{tombstone:?}");
    // It keeps the start time, its key in the by-start index: moving in writes no index entry.
    assert_eq!(tombstone["started"], AttributeValue::N(e2_waiting.value.started_at.to_string()));
    assert_eq!(store.execution("queued", "e2").await.unwrap().unwrap().updated_at, 5_000);
    let listed = store.executions("queued", 10).await.unwrap();
    assert_eq!(listed.len(), 2, "each execution listed once: {listed:?}");

    // A writer still holding e2's waiting version conflicts and writes nothing.
    let stale = Changes { lanes: None, executions: vec![e2_waiting.clone()], outbox: vec![] };
    assert!(matches!(store.save("queued", stale).await, Err(StoreError::Conflict(_))));

    // e2 ends and moves out, at a version above any it had before.
    let snap = store.load("queued", &Scope::One("e2".into())).await.unwrap();
    let mut e2 = snap.executions.into_iter().find(|e| e.value.id == "e2").unwrap();
    e2.value.phase = baton_testkit::phase_of(ExecutionStatus::Failed);
    let changes = Changes {
        lanes: Some(Versioned { version: snap.lanes.version, value: Lanes::default() }),
        executions: vec![e2],
        outbox: vec![],
    };
    store.save("queued", changes).await.unwrap();
    let moved = store.load("queued", &Scope::One("e2".into())).await.unwrap();
    let e2 = moved.executions.iter().find(|e| e.value.id == "e2").unwrap();
    assert_eq!(e2.value.status(), ExecutionStatus::Failed);
    assert!(e2.version > e2_waiting.version + 1, "{} after {}", e2.version, e2_waiting.version);
    let stale = Changes { lanes: None, executions: vec![e2_waiting], outbox: vec![] };
    assert!(matches!(store.save("queued", stale).await, Err(StoreError::Conflict(_))));
}

/// A tombstone the lanes item does not explain is an execution that moved in after the lanes
/// were read: readers read again rather than take the execution for missing.
#[tokio::test]
async fn readers_that_meet_an_unexplained_tombstone_read_again_and_then_give_up() {
    let (store, client, table) = fresh_store().await;
    seed(&store, "moving").await;
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("PIPELINE#moving".into()))
        .item("sk", AttributeValue::S("EXECUTION#e9".into()))
        .item("version", AttributeValue::N("2".into()))
        .item("resident", AttributeValue::N("1".into()))
        .item("ended", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let one = store.load("moving", &Scope::One("e9".into())).await;
    assert!(matches!(one, Err(StoreError::Conflict(_))), "{one:?}");
    let active = store.load("moving", &Scope::Active).await;
    assert!(matches!(active, Err(StoreError::Conflict(_))), "{active:?}");
    let got = store.execution("moving", "e9").await;
    assert!(matches!(got, Err(StoreError::Conflict(_))), "{got:?}");
    // A tombstone the lanes explain is simply the resident's old place.
    assert!(store.load("moving", &Scope::One("e1".into())).await.is_ok());
}

#[tokio::test]
async fn a_pipeline_read_at_a_version_is_the_latest_whichever_version_was_expected() {
    let (store, _, _) = fresh_store().await;
    let mut latest = record("p");
    store.create_pipeline(&latest).await.unwrap();
    let first = latest.plan.version;
    latest.plan.version = first + 1;
    latest.updated = 2;
    store.update_pipeline(&latest).await.unwrap();
    assert_eq!(store.get_pipeline_at("p", first + 1).await.unwrap(), Some(latest.clone()));
    assert_eq!(
        store.get_pipeline_at("p", first).await.unwrap(),
        Some(latest),
        "a reader expecting the version before gets the latest one"
    );
    assert_eq!(store.get_pipeline_at("missing", 1).await.unwrap(), None);
}

/// Saves `x` on its own (not holding a stage) at version 0.
async fn save_alone(store: &DynamoDbStateStore, pipeline: &str, x: Execution) {
    let changes = Changes {
        lanes: None,
        executions: vec![Versioned { version: 0, value: x }],
        outbox: vec![],
    };
    store.save(pipeline, changes).await.unwrap();
}

fn ids(listed: &[Execution]) -> Vec<&str> {
    listed.iter().map(|x| x.id.as_str()).collect()
}

#[tokio::test]
async fn a_listing_of_the_newest_reads_only_them_through_the_index() {
    let (store, client, table) = fresh_store().await;
    // e1 holds a stage (it lives in the lanes item) and started first, at 1,000.
    seed(&store, "long").await;
    for n in 2..=40 {
        let x = baton_testkit::execution(&format!("e{n}"), ExecutionStatus::Succeeded, n);
        save_alone(&store, "long", x).await;
    }
    // Two that started in the same millisecond as e40, arriving after it: the index cannot
    // order them, the listing does (by arrival).
    for (id, arrival) in [("tie-b", 41), ("tie-a", 42)] {
        let mut x = execution(id, ExecutionStatus::Succeeded);
        (x.started_at, x.arrival) = (1_040, arrival);
        save_alone(&store, "long", x).await;
    }
    // An old execution whose item cannot be read: only a listing that reaches it can fail.
    let mut broken = raw_item(&client, &table, "PIPELINE#long", "EXECUTION#e2").await;
    broken.insert("body".into(), AttributeValue::B(b"not deflated json".to_vec().into()));
    client.put_item().table_name(&table).set_item(Some(broken)).send().await.unwrap();

    let newest = store.executions("long", 3).await.unwrap();
    assert_eq!(ids(&newest), ["tie-a", "tie-b", "e40"]);
    let newest = store.executions("long", 5).await.unwrap();
    assert_eq!(ids(&newest), ["tie-a", "tie-b", "e40", "e39", "e38"]);
    assert!(store.executions("long", 100).await.is_err(), "the whole history reads e2");
    // The execution holding a stage comes from the lanes item, in its place by start time.
    let gone = client.delete_item().table_name(&table);
    let gone = gone.key("pk", AttributeValue::S("PIPELINE#long".into()));
    gone.key("sk", AttributeValue::S("EXECUTION#e2".into())).send().await.unwrap();
    let all = store.executions("long", 100).await.unwrap();
    assert_eq!(all.len(), 41);
    assert_eq!(ids(&all)[38..], ["e4", "e3", "e1"]);
}

#[tokio::test]
async fn without_the_indexes_listings_and_active_loads_read_the_partition() {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config("eu-west-1").await);
    let table = unique("baton-no-index");
    let attribute = |name: &str| {
        aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, t: aws_sdk_dynamodb::types::KeyType| {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", aws_sdk_dynamodb::types::KeyType::Hash))
        .key_schema(key("sk", aws_sdk_dynamodb::types::KeyType::Range))
        .send()
        .await
        .unwrap();
    let store = DynamoDbStateStore::new(client, table, RETENTION_DAYS);
    seed(&store, "old").await;
    for n in 2..=4 {
        let x = baton_testkit::execution(&format!("e{n}"), ExecutionStatus::Succeeded, n);
        save_alone(&store, "old", x).await;
    }
    let newest = store.executions("old", 2).await.unwrap();
    assert_eq!(ids(&newest), ["e4", "e3"]);
    assert_eq!(ids(&store.executions("old", 10).await.unwrap()), ["e4", "e3", "e2", "e1"]);
    // Nor has it the `active` index: an active load reads the partition.
    save_alone(&store, "old", execution("p1", ExecutionStatus::InProgress)).await;
    let active = store.load("old", &Scope::Active).await.unwrap().executions;
    let active: Vec<&str> = active.iter().map(|e| e.value.id.as_str()).collect();
    assert_eq!(active, ["e1", "p1"]);
}

/// Items written before the table's dictionary (the lanes as text, a resident deflated
/// without it) load as they were, and the next save writes them in the packed form.
#[tokio::test]
async fn items_written_before_the_dictionary_load_and_save_on() {
    use std::io::Write as _;
    let (store, client, table) = fresh_store().await;
    let old = execution("e1", ExecutionStatus::InProgress);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(serde_json::to_string(&old).unwrap().as_bytes()).unwrap();
    let resident = AttributeValue::B(deflate.finish().unwrap().into());
    put_earlier_lanes(&client, &table, "old", "e1", "x:e1", resident).await;

    let snap = store.load("old", &Scope::LanesOnly).await.unwrap();
    assert_eq!(snap.lanes.value, lanes("e1"));
    assert_eq!(snap.executions.len(), 1);
    assert_eq!(snap.executions[0].value.started_at, old.started_at);
    let mut e1 = snap.executions[0].clone();
    e1.value.updated_at = 5_000;
    let changes = Changes { lanes: Some(snap.lanes), executions: vec![e1], outbox: vec![event(7)] };
    store.save("old", changes).await.unwrap();

    let item = raw_item(&client, &table, "PIPELINE#old", "LANES").await;
    let packed = |name: &str| match item.get(name) {
        Some(AttributeValue::B(b)) => b.as_ref()[0] == baton::adapters::aws::dynamodb_packing::MARK,
        _ => false,
    };
    assert!(packed("body") && packed("x:e1") && packed("events"), "{item:?}");
    let again = store.load("old", &Scope::LanesOnly).await.unwrap();
    assert_eq!(again.executions[0].value.updated_at, 5_000);
    assert_eq!(relayed(&client, &table).await, vec![7], "the events read against the resident");
}

/// A resident written under its full id (as before the compact names) loads once, and the
/// next save writes it under its compact name and removes the full one: never both.
#[tokio::test]
async fn a_resident_under_its_full_id_moves_to_its_compact_name_on_the_next_save() {
    let (store, client, table) = fresh_store().await;
    let id = "8d8ca7db-599b-4fc2-97c1-4347124190e5";
    let old = execution(id, ExecutionStatus::InProgress);
    let full = format!("x:{id}");
    let packed =
        baton::adapters::aws::dynamodb_state::packed(&serde_json::to_string(&old).unwrap());
    put_earlier_lanes(&client, &table, "uuid", id, &full, packed.unwrap()).await;

    let snap = store.load("uuid", &Scope::LanesOnly).await.unwrap();
    assert_eq!(snap.executions.len(), 1);
    let mut x = snap.executions[0].clone();
    x.value.updated_at = 5_000;
    let changes = Changes { lanes: Some(snap.lanes), executions: vec![x], outbox: vec![event(3)] };
    store.save("uuid", changes).await.unwrap();

    let item = raw_item(&client, &table, "PIPELINE#uuid", "LANES").await;
    let residents: Vec<&String> =
        item.keys().filter(|k| k.starts_with("x:") || k.starts_with("u:")).collect();
    assert_eq!(residents, [&"u:jYyn21mbT8KXwUNHEkGQ5Q".to_owned()], "{item:?}");
    let again = store.load("uuid", &Scope::LanesOnly).await.unwrap();
    assert_eq!(again.executions.len(), 1);
    assert_eq!(again.executions[0].value.updated_at, 5_000);
    assert_eq!(relayed(&client, &table).await, vec![3], "the events read against the resident");
}

/// A lanes item as an earlier version wrote it: the lanes (`holder` holding) as text, at
/// version 1, and one resident under the attribute `name`.
async fn put_earlier_lanes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pipeline: &str,
    holder: &str,
    name: &str,
    resident: AttributeValue,
) {
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("PIPELINE#{pipeline}")))
        .item("sk", AttributeValue::S("LANES".into()))
        .item("version", AttributeValue::N("1".into()))
        .item("body", AttributeValue::S(serde_json::to_string(&lanes(holder)).unwrap()))
        .item(name, resident)
        .send()
        .await
        .unwrap();
}

/// Execution `id` as a load of it gives it (the residents come along).
async fn loaded(store: &DynamoDbStateStore, pipeline: &str, id: &str) -> Versioned<Execution> {
    let snap = store.load(pipeline, &Scope::One(id.into())).await.unwrap();
    snap.executions.into_iter().find(|e| e.value.id == id).unwrap()
}

/// The queries a client sends: the index (or `table`) and the key condition of each.
#[derive(Debug, Clone, Default)]
struct Queries(Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_dynamodb::config::Intercept for Queries {
    fn name(&self) -> &'static str {
        "Queries"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        use aws_sdk_dynamodb::operation::query::QueryInput;
        if let Some(q) = context.input().downcast_ref::<QueryInput>() {
            let index = q.index_name().unwrap_or("table");
            let condition = q.key_condition_expression().unwrap_or_default();
            self.0.lock().unwrap().push(format!("{index}: {condition}"));
        }
        Ok(())
    }
}

/// A tick or a decided approval loads a pipeline's active executions: through the `active`
/// index, whose key condition reads (and bills) only the active ones, never the partition.
#[tokio::test]
async fn an_active_load_reads_only_the_active_executions_through_the_index() {
    let queries = Queries::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config("eu-west-1").await)
        .interceptor(queries.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let table = unique("baton-active");
    create_table(&client, &table).await.unwrap();
    let store = DynamoDbStateStore::new(client.clone(), table.clone(), RETENTION_DAYS);
    // e1 holds a stage (the lanes item); p1 and p2 run on their own (PARALLEL mode); the
    // rest ended.
    seed(&store, "busy").await;
    for n in 2..=30 {
        let x = baton_testkit::execution(&format!("e{n}"), ExecutionStatus::Succeeded, n);
        save_alone(&store, "busy", x).await;
    }
    for id in ["p1", "p2"] {
        save_alone(&store, "busy", execution(id, ExecutionStatus::InProgress)).await;
    }
    // p2 ends: an ended execution is not active, whatever the index says at that moment.
    let mut p2 = loaded(&store, "busy", "p2").await;
    p2.value = execution("p2", ExecutionStatus::Succeeded);
    let changes = Changes { lanes: None, executions: vec![p2], outbox: vec![] };
    store.save("busy", changes).await.unwrap();
    let ended = raw_item(&client, &table, "PIPELINE#busy", "EXECUTION#p2").await;
    assert!(!ended.contains_key("ended"), "an ended execution leaves the index: {ended:?}");
    queries.0.lock().unwrap().clear();

    let snap = store.load("busy", &Scope::Active).await.unwrap();
    let ids: Vec<&str> = snap.executions.iter().map(|e| e.value.id.as_str()).collect();
    assert_eq!(ids, ["e1", "p1"]);
    assert_eq!(*queries.0.lock().unwrap(), ["active: pk = :pk AND #ended = :zero"]);

    // e3 is queued again (QUEUED mode: it waits in an item of its own), then moves into the
    // lanes item: its tombstone keeps it in the index, and a load finds it resident.
    let mut e3 = loaded(&store, "busy", "e3").await;
    e3.value = execution("e3", ExecutionStatus::InProgress);
    let changes = Changes { lanes: None, executions: vec![e3], outbox: vec![] };
    store.save("busy", changes).await.unwrap();
    let snap = store.load("busy", &Scope::Active).await.unwrap();
    let e3 = snap.executions.iter().find(|e| e.value.id == "e3").unwrap().clone();
    let lanes = Versioned { version: snap.lanes.version, value: lanes("e3") };
    let changes = Changes { lanes: Some(lanes), executions: vec![e3], outbox: vec![] };
    store.save("busy", changes).await.unwrap();
    let tombstone = raw_item(&client, &table, "PIPELINE#busy", "EXECUTION#e3").await;
    assert!(tombstone.contains_key("resident"), "{tombstone:?}");
    assert_eq!(tombstone.get("ended"), Some(&AttributeValue::N("0".into())));
    let snap = store.load("busy", &Scope::Active).await.unwrap();
    let ids: Vec<&str> = snap.executions.iter().map(|e| e.value.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e3", "p1"]);
}
