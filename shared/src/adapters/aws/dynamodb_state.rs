//! The state store on AWS: one DynamoDB table, with the same conditional-write rules as
//! [`SqlStateStore`](crate::adapters::local::sql_state::SqlStateStore).
//!
//! Contract: every item carries a version; [`StateStore::save`] writes the lanes, the
//! executions and the outbox entries of one input in ONE `TransactWriteItems`, each state item
//! conditioned on the version it was read at, so either all of it lands or nothing does and
//! the caller gets [`StoreError::Conflict`].
//!
//! Layout (one table, string keys `pk`/`sk`, TTL attribute `expires_at`, as `template.yaml`
//! declares it):
//!
//! | `pk`              | `sk`             | attributes                                              |
//! |-------------------|------------------|---------------------------------------------------------|
//! | `PIPELINE#<name>` | `PIPELINE`       | `record` (JSON), `created`, `updated`                   |
//! | `PIPELINE#<name>` | `LANES`          | `version`, `body` (JSON)                                |
//! | `PIPELINE#<name>` | `EXECUTION#<id>` | `version`, `ended` (0/1), `started`, `arrival`, `body` (deflated JSON), `expires_at` once ended |
//! | `PIPELINES`       | `<name>`         | none: the sorted listing                                |
//! | `OUTBOX`          | `<seq>` (19 digits) | one save's events: `seq` (the base), `saved_at`, `pipeline`, `count`, `events` (deflated JSON list), `seqs` after a partial ack |
//! | `APPROVAL#<id>`   | `LINK`           | `body` (JSON), `used` (JSON) once used, `expires_at`    |
//! | `CLAIM#<attempt>` | `CLAIM`          | `until`, `expires_at`                                   |
//! | `JOBS`            | `<provider>#<external id>` | `check_at`, `body` (JSON), `expires_at`       |
//!
//! Why this shape: everything one input reads lives in its pipeline's partition, so a load is
//! a `GetItem` of the lanes plus one `GetItem` per execution named (or, for [`Scope::Active`],
//! a `Query` of that partition) and never a `Scan`. Only the actions the functions' role in
//! `template.yaml` grants are used: no `BatchGetItem`/`BatchWriteItem`. The outbox has its own partition because the sweeper reads
//! it across pipelines, oldest first, which the zero-padded sequence key gives for free. A
//! release orchestrator writes a few items per second at most, far below one partition's
//! 1,000 writes per second, so the single `OUTBOX` and `PIPELINES` partitions are not hot.
//!
//! Reads are strongly consistent: a stage-advance that read a stale copy would only conflict,
//! but listings right after a write (the CLI, the contract suite) should see it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem,
};
use baton_core::engine::{Execution, Lanes, Millis};
use tracing::warn;

use crate::bus_events::BusEvent;
use crate::ports::BoxError;
use crate::ports::state::*;

/// DynamoDB's item size limit (400 KB, names and values included).
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>
const MAX_ITEM_BYTES: usize = 400 * 1024;
/// `TransactWriteItems` takes at most 100 actions and 4 MB (since 2022; it was 25 before).
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How often a save whose outbox key was taken is sent again.
const ATTEMPTS: u32 = 5;
/// Sequence numbers per microsecond: room for every entry of one save (at most 100).
const SEQS_PER_MICRO: i64 = 1_000;

const PIPELINES_PK: &str = "PIPELINES";
const OUTBOX_PK: &str = "OUTBOX";
const PIPELINE_SK: &str = "PIPELINE";
const LANES_SK: &str = "LANES";
const EXECUTION_PREFIX: &str = "EXECUTION#";

pub(super) type Item = HashMap<String, AttributeValue>;

/// What goes wrong inside the adapter; always reaches callers as [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
enum DynamoError {
    #[error("DynamoDB {operation} failed")]
    Sdk {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("item {pk}/{sk} has no valid `{attribute}` attribute")]
    Malformed { pk: String, sk: String, attribute: &'static str },
    #[error(
        "execution {id} of pipeline {pipeline} is {bytes} bytes when stored, over DynamoDB's \
         400 KB item limit; it cannot be saved"
    )]
    ExecutionTooLarge { pipeline: String, id: String, bytes: usize },
    #[error("{what} of pipeline {pipeline} is {bytes} bytes, over DynamoDB's 400 KB item limit")]
    ItemTooLarge { pipeline: String, what: String, bytes: usize },
    #[error(
        "a save of pipeline {pipeline} needs {items} items and {bytes} bytes; one \
         TransactWriteItems takes at most 100 items and 4 MB"
    )]
    TransactionTooLarge { pipeline: String, items: usize, bytes: usize },
    #[error("a save of pipeline {pipeline} has {count} events; one save takes fewer than 1000")]
    TooManyEvents { pipeline: String, count: usize },
    #[error("outbox sequence numbers collided {ATTEMPTS} times in a row")]
    SeqCollisions,
    #[error("table {0} did not become active")]
    TableNotActive(String),
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// Maps an SDK (or request-building) error once, keeping it as the source.
pub(super) fn sdk<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| unavailable(DynamoError::Sdk { operation, source: Box::new(e) })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(unavailable)
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn pipeline_pk(name: &str) -> String {
    format!("PIPELINE#{name}")
}

fn execution_sk(id: &str) -> String {
    format!("{EXECUTION_PREFIX}{id}")
}

/// Zero-padded so that the string order of keys is the numeric order of sequence numbers.
fn seq_sk(seq: i64) -> String {
    format!("{seq:019}")
}

fn malformed(item: &Item, attribute: &'static str) -> StoreError {
    let key_part = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_owned(),
    };
    unavailable(DynamoError::Malformed { pk: key_part("pk"), sk: key_part("sk"), attribute })
}

/// Stores `json` deflated. Write units are counted per kilobyte of item, and execution bodies
/// and event batches (repetitive JSON) shrink to a fifth or less, so this is most of the cost of
/// a save. The best level: a few kilobytes take well under a millisecond either way, and each
/// kilobyte saved is a write unit.
pub(super) fn packed(json: &str) -> Result<AttributeValue, StoreError> {
    use std::io::Write as _;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(json.as_bytes()).map_err(unavailable)?;
    Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
        encoder.finish().map_err(unavailable)?,
    )))
}

/// The JSON an attribute holds: deflated (binary) or, as items written before packing, text.
pub(super) fn unpacked(item: &Item, attribute: &'static str) -> Result<String, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        Some(AttributeValue::B(blob)) => {
            use std::io::Read as _;
            let mut text = String::new();
            flate2::read::DeflateDecoder::new(blob.as_ref())
                .read_to_string(&mut text)
                .map_err(|_| malformed(item, attribute))?;
            Ok(text)
        }
        _ => Err(malformed(item, attribute)),
    }
}

/// Whether a conditional write was refused because its condition did not hold (every write
/// operation has its own error type; the code is the same).
pub(super) fn condition_refused<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

pub(super) fn get_s<'a>(item: &'a Item, attribute: &'static str) -> Result<&'a str, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(malformed(item, attribute)),
    }
}

pub(super) fn get_n<T: std::str::FromStr>(
    item: &Item,
    attribute: &'static str,
) -> Result<T, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(item, attribute)),
        _ => Err(malformed(item, attribute)),
    }
}

fn versioned_execution(item: &Item) -> Result<Versioned<Execution>, StoreError> {
    Ok(Versioned { version: get_n(item, "version")?, value: from_json(&unpacked(item, "body")?)? })
}

/// An item's size as DynamoDB counts it: attribute names plus values. Numbers are counted at
/// their 21-byte maximum, so the estimate errs on the large side.
fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(v) => v.len(),
                    AttributeValue::B(v) => v.as_ref().len(),
                    AttributeValue::N(_) => 21,
                    _ => 1,
                }
        })
        .sum()
}

fn now_micros() -> i64 {
    // A clock before 1970 is a broken host; 0 still gives valid (if old) sequence numbers.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A put conditioned on the version the item was read at: absent for version 0, equal
/// otherwise. The stored version becomes `version + 1`.
fn versioned_put(table: &str, mut item: Item, version: u64) -> Result<Put, StoreError> {
    item.insert("version".into(), n(version + 1));
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = if version == 0 {
        put.condition_expression("attribute_not_exists(pk)")
    } else {
        put.condition_expression("#version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", n(version))
    };
    put.build().map_err(sdk("TransactWriteItems"))
}

/// How a cancelled transaction is answered.
enum Cancelled {
    /// A state item's condition failed, or another transaction held one of its items.
    Conflict,
    /// Only an outbox key was taken (another save in the same microsecond): try new keys.
    SeqTaken,
    /// Anything else.
    Other,
}

fn cancelled(error: &TransactWriteItemsError, state_items: usize) -> Cancelled {
    let TransactWriteItemsError::TransactionCanceledException(e) = error else {
        return Cancelled::Other;
    };
    let mut seq_taken = false;
    for (i, reason) in e.cancellation_reasons().iter().enumerate() {
        match reason.code() {
            // TransactionConflict: another transaction was writing one of the items. Reloading
            // and applying again is the right answer, exactly as for a moved version.
            Some("ConditionalCheckFailed" | "TransactionConflict") if i < state_items => {
                return Cancelled::Conflict;
            }
            Some("ConditionalCheckFailed") => seq_taken = true,
            Some("None") | None => {}
            Some(_) => return Cancelled::Other,
        }
    }
    if seq_taken { Cancelled::SeqTaken } else { Cancelled::Other }
}

/// Whether a transaction was cancelled because a condition failed (not a conflict or a limit).
fn condition_failed(error: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(e) = error else {
        return false;
    };
    e.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
}

/// DynamoDB-backed [`StateStore`].
pub struct DynamoDbStateStore {
    pub(super) client: Client,
    pub(super) table: String,
    retention_secs: i64,
    /// The last outbox sequence base handed out by this process; see [`Self::next_seq_base`].
    last_seq: AtomicI64,
}

impl DynamoDbStateStore {
    /// A store on `table`. Ended executions expire `retention_days` after their last write
    /// (DynamoDB's TTL deletes them some time after that).
    pub fn new(client: Client, table: String, retention_days: u32) -> Self {
        Self {
            client,
            table,
            retention_secs: i64::from(retention_days) * 86_400,
            last_seq: AtomicI64::new(0),
        }
    }

    /// The first outbox sequence number of a save; its entries take `base + index`.
    ///
    /// Sequence numbers are the save's time in microseconds × 1,000 + index, rather than a
    /// counter item: a transaction cannot return an updated counter, and reading one first
    /// would serialise every pipeline's saves on one item. Time-based numbers need no extra
    /// request, sort oldest first, and give `saved_at` back (seq / 10^6 = milliseconds). They
    /// stay below `i64::MAX` until the year 2262. Within this process they strictly increase
    /// even if the clock steps back; two processes saving in the same microsecond could pick
    /// the same key, which the outbox put's `attribute_not_exists` condition catches, and the
    /// save is sent again with new numbers (nothing was written).
    fn next_seq_base(&self) -> i64 {
        let candidate = now_micros().saturating_mul(SEQS_PER_MICRO);
        let bump = |last: i64| candidate.max(last.saturating_add(SEQS_PER_MICRO));
        // The closure always returns Some, so this is always Ok.
        let previous =
            match self
                .last_seq
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(bump(last)))
            {
                Ok(p) | Err(p) => p,
            };
        bump(previous)
    }

    pub(super) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk("GetItem"))?;
        Ok(out.item)
    }

    /// Writes `item` unconditionally.
    pub(super) async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk("PutItem"))?;
        Ok(())
    }

    /// Every item of a query, following pages.
    pub(super) async fn query_all(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        filter_active: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start.take());
            q = match sk_prefix {
                Some(prefix) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => q.key_condition_expression("pk = :pk"),
            };
            if filter_active {
                // The filter saves transfer, not read units: DynamoDB bills what the key
                // condition reads. Active loads are rare (approvals, ticks); see `load`.
                q = q
                    .filter_expression("#ended = :zero")
                    .expression_attribute_names("#ended", "ended")
                    .expression_attribute_values(":zero", n(0));
            }
            let out = q.send().await.map_err(sdk("Query"))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// The items at `keys` that exist, strongly consistent, in no particular order.
    ///
    /// One `GetItem` per key, concurrently, rather than `BatchGetItem`: the functions' role in
    /// `template.yaml` grants `GetItem` and not the batch actions, the read units are the
    /// same, and a load names few executions (the one an input is about, plus those waiting).
    async fn get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let requests = keys.into_iter().map(|k| {
            let request = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(k))
                .consistent_read(true);
            async move { request.send().await.map(|out| out.item).map_err(sdk("GetItem")) }
        });
        Ok(concurrently(requests).await?.into_iter().flatten().collect())
    }

    /// Deletes `keys` (absent ones are no error), one `DeleteItem` each, concurrently: as for
    /// [`Self::get_items`], the role grants no `BatchWriteItem`, and a plain delete costs one
    /// write unit where a transactional one costs two.
    pub(super) async fn delete_items(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys.into_iter().map(|k| {
            let request = self.client.delete_item().table_name(&self.table).set_key(Some(k));
            async move { request.send().await.map(drop).map_err(sdk("DeleteItem")) }
        });
        concurrently(requests).await.map(drop)
    }

    fn execution_item(
        &self,
        pipeline: &str,
        x: &Execution,
        now_secs: i64,
    ) -> Result<Item, StoreError> {
        let ended = x.status.is_ended();
        let mut item = key(pipeline_pk(pipeline), execution_sk(&x.id));
        item.insert("ended".into(), n(u8::from(ended)));
        item.insert("started".into(), n(x.started_at));
        item.insert("arrival".into(), n(x.arrival));
        item.insert("body".into(), packed(&to_json(x)?)?);
        // A put replaces the whole item, so an execution a retry re-opens loses its expiry.
        if ended {
            item.insert("expires_at".into(), n(now_secs.saturating_add(self.retention_secs)));
        }
        let bytes = item_size(&item) + "version".len() + 21;
        if bytes > MAX_ITEM_BYTES {
            return Err(unavailable(DynamoError::ExecutionTooLarge {
                pipeline: pipeline.to_owned(),
                id: x.id.clone(),
                bytes,
            }));
        }
        Ok(item)
    }

    /// The outbox entries of one save, as one item keyed by the save's base sequence number:
    /// entry `i` has sequence number `base + i`. One item, not one per event, because each
    /// item costs at least one write unit (two in a transaction) and one delete.
    fn outbox_item(pipeline: &str, base: i64, events: &AttributeValue, count: usize) -> Item {
        let mut item = key(OUTBOX_PK, seq_sk(base));
        item.insert("seq".into(), n(base));
        item.insert("saved_at".into(), n(base / (SEQS_PER_MICRO * 1_000)));
        item.insert("pipeline".into(), s(pipeline));
        item.insert("count".into(), n(count));
        item.insert("events".into(), events.clone());
        item
    }

    /// Acknowledges some entries of a save: the others are written back, with their sequence
    /// numbers, in place of the save's item.
    async fn ack_part(&self, base: i64, acked: &[i64]) -> Result<(), StoreError> {
        let Some(item) = self.get_item(key(OUTBOX_PK, seq_sk(base))).await? else {
            return Ok(());
        };
        let left: Vec<OutboxEntry> =
            outbox_entries(&item)?.into_iter().filter(|e| !acked.contains(&e.seq)).collect();
        if left.is_empty() {
            return self.delete_items(vec![key(OUTBOX_PK, seq_sk(base))]).await;
        }
        let pipeline = get_s(&item, "pipeline")?;
        let events: Vec<&BusEvent> = left.iter().map(|e| &e.event).collect();
        let mut rewritten =
            Self::outbox_item(pipeline, base, &packed(&to_json(&events)?)?, left.len());
        rewritten.insert("saved_at".into(), n(left[0].saved_at));
        rewritten.insert("seqs".into(), AttributeValue::L(left.iter().map(|e| n(e.seq)).collect()));
        self.put_item(rewritten).await
    }

    fn outbox_put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// The entries an outbox item holds: entry `i` is `base + i`, unless a partial acknowledgement
/// left an explicit list of sequence numbers.
fn outbox_entries(item: &Item) -> Result<Vec<OutboxEntry>, StoreError> {
    let base: i64 = get_n(item, "seq")?;
    let saved_at = get_n(item, "saved_at")?;
    let events: Vec<BusEvent> = from_json(&unpacked(item, "events")?)?;
    let seqs: Vec<i64> = match item.get("seqs") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::N(x) => x.parse().map_err(|_| malformed(item, "seqs")),
                _ => Err(malformed(item, "seqs")),
            })
            .collect::<Result<_, _>>()?,
        _ => (0..events.len() as i64).map(|i| base + i).collect(),
    };
    if seqs.len() != events.len() {
        return Err(malformed(item, "seqs"));
    }
    Ok(seqs
        .into_iter()
        .zip(events)
        .map(|(seq, event)| OutboxEntry { seq, saved_at, event })
        .collect())
}

/// Waits before attempt `attempt` (none before the first): 50 ms, 100 ms, 200 ms...
async fn backoff(attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
    }
}

/// How many requests [`concurrently`] keeps in flight: enough to hide latency, few enough not
/// to meet on-demand throttling on a burst.
const CONCURRENCY: usize = 16;

/// Runs `requests` at most [`CONCURRENCY`] at a time; the first error wins (the requests
/// already sent are idempotent reads and deletes, so a retry of the whole call is safe).
async fn concurrently<T, F>(requests: impl IntoIterator<Item = F>) -> Result<Vec<T>, StoreError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let mut results = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    for request in requests {
        if running.len() == CONCURRENCY
            && let Some(done) = running.join_next().await
        {
            results.push(done.map_err(unavailable)??);
        }
        running.spawn(request);
    }
    while let Some(done) = running.join_next().await {
        results.push(done.map_err(unavailable)??);
    }
    Ok(results)
}

/// Creates a table with Baton's key schema (`pk`/`sk` strings, on-demand billing, TTL on
/// `expires_at`) and waits until it is active. For tests and first-time setup; production
/// tables come from `template.yaml`.
///
/// # Errors
/// [`StoreError::Exists`] if the table exists; [`StoreError::Unavailable`] otherwise.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attribute = |a: &str| {
        AttributeDefinition::builder()
            .attribute_name(a)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(sdk("CreateTable"))
    };
    let key_element = |a: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(a)
            .key_type(t)
            .build()
            .map_err(sdk("CreateTable"))
    };
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?)
        .send()
        .await;
    if let Err(e) = created {
        if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) {
            return Err(StoreError::Exists(format!("table {name}")));
        }
        return Err(sdk("CreateTable")(e));
    }
    // On AWS a table takes seconds to become active; the TTL update needs it active.
    let mut active = false;
    for attempt in 0..40 {
        backoff(attempt.min(3)).await;
        let out =
            client.describe_table().table_name(name).send().await.map_err(sdk("DescribeTable"))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            active = true;
            break;
        }
    }
    if !active {
        return Err(unavailable(DynamoError::TableNotActive(name.to_owned())));
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(sdk("UpdateTimeToLive"))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(sdk("UpdateTimeToLive"))?;
    Ok(())
}

#[async_trait]
impl StateStore for DynamoDbStateStore {
    async fn create_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let name = &record.plan.name;
        let mut item = key(pipeline_pk(name), PIPELINE_SK);
        item.insert("record".into(), s(to_json(record)?));
        item.insert("created".into(), n(record.created));
        item.insert("updated".into(), n(record.updated));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        let listing = Put::builder()
            .table_name(&self.table)
            .set_item(Some(key(PIPELINES_PK, name.as_str())))
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().put(listing).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(condition_failed) => {
                Err(StoreError::Exists(format!("pipeline {name}")))
            }
            Err(e) => Err(sdk("TransactWriteItems")(e)),
        }
    }

    async fn update_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let name = &record.plan.name;
        let mut item = key(pipeline_pk(name), PIPELINE_SK);
        item.insert("record".into(), s(to_json(record)?));
        item.insert("created".into(), n(record.created));
        item.insert("updated".into(), n(record.updated));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => {
                Err(StoreError::NotFound(format!("pipeline {name}")))
            }
            Err(e) => Err(sdk("PutItem")(e)),
        }
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError> {
        match self.get_item(key(pipeline_pk(name), PIPELINE_SK)).await? {
            Some(item) => Ok(Some(from_json(get_s(&item, "record")?)?)),
            None => Ok(None),
        }
    }

    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError> {
        // The sort key orders by UTF-8 bytes, as the SQLite store's ORDER BY does.
        let items = self.query_all(PIPELINES_PK.to_owned(), None, false).await?;
        items.iter().map(|i| get_s(i, "sk").map(str::to_owned)).collect()
    }

    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        if self.get_item(key(pipeline_pk(name), PIPELINE_SK)).await?.is_none() {
            return Err(StoreError::NotFound(format!("pipeline {name}")));
        }
        // Not one transaction (a pipeline can have more than 100 items): the record and its
        // listing go last, so a delete that fails half-way can simply be run again.
        let mut rest = Vec::new();
        for item in self.query_all(pipeline_pk(name), None, false).await? {
            let sk = get_s(&item, "sk")?;
            if sk != PIPELINE_SK {
                rest.push(key(pipeline_pk(name), sk));
            }
        }
        self.delete_items(rest).await?;
        self.delete_items(vec![key(pipeline_pk(name), PIPELINE_SK), key(PIPELINES_PK, name)]).await
    }

    async fn load(&self, pipeline: &str, scope: &Scope) -> Result<Snapshot, StoreError> {
        let pk = pipeline_pk(pipeline);
        let lanes = match self.get_item(key(pk.clone(), LANES_SK)).await? {
            Some(item) => Versioned {
                version: get_n(&item, "version")?,
                value: from_json::<Lanes>(get_s(&item, "body")?)?,
            },
            None => Versioned { version: 0, value: Lanes::default() },
        };
        let mut found: HashMap<String, Versioned<Execution>> = HashMap::new();
        let mut wanted: Vec<String> = lanes.value.waiting.iter().flatten().cloned().collect();
        match scope {
            Scope::One(id) => wanted.push(id.clone()),
            Scope::LanesOnly => {}
            Scope::Active => {
                // A Query of the pipeline's partition with a filter: no Scan, but it reads
                // (and bills) the ended executions still within their retention too. A
                // sparse GSI on an `active` attribute would read only the live ones; the
                // template declares no GSI yet, and active loads are rare.
                for item in self.query_all(pk.clone(), Some(EXECUTION_PREFIX), true).await? {
                    let e = versioned_execution(&item)?;
                    found.insert(e.value.id.clone(), e);
                }
            }
        }
        wanted.sort();
        wanted.dedup();
        let missing: Vec<Item> = wanted
            .iter()
            .filter(|id| !found.contains_key(*id))
            .map(|id| key(pk.clone(), execution_sk(id)))
            .collect();
        if !missing.is_empty() {
            for item in self.get_items(missing).await? {
                let e = versioned_execution(&item)?;
                found.insert(e.value.id.clone(), e);
            }
        }
        let mut executions: Vec<Versioned<Execution>> = found.into_values().collect();
        executions.sort_by(|a, b| a.value.id.cmp(&b.value.id));
        Ok(Snapshot { lanes, executions })
    }

    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError> {
        let pk = pipeline_pk(pipeline);
        let now_secs = now_micros() / 1_000_000;
        let mut state = Vec::with_capacity(1 + changes.executions.len());
        let mut bytes = 0;
        if let Some(lanes) = &changes.lanes {
            let mut item = key(pk.clone(), LANES_SK);
            item.insert("body".into(), s(to_json(&lanes.value)?));
            let size = item_size(&item) + "version".len() + 21;
            if size > MAX_ITEM_BYTES {
                return Err(unavailable(DynamoError::ItemTooLarge {
                    pipeline: pipeline.to_owned(),
                    what: "the lanes".into(),
                    bytes: size,
                }));
            }
            bytes += size;
            state.push(versioned_put(&self.table, item, lanes.version)?);
        }
        for e in &changes.executions {
            let item = self.execution_item(pipeline, &e.value, now_secs)?;
            bytes += item_size(&item);
            state.push(versioned_put(&self.table, item, e.version)?);
        }
        let count = changes.outbox.len();
        // Entries of a save are numbered base + i within the base's block of sequence numbers.
        if count >= SEQS_PER_MICRO as usize {
            return Err(unavailable(DynamoError::TooManyEvents {
                pipeline: pipeline.to_owned(),
                count,
            }));
        }
        let events = packed(&to_json(&changes.outbox)?)?;
        if count > 0 {
            let size = item_size(&Self::outbox_item(pipeline, i64::MAX, &events, count));
            if size > MAX_ITEM_BYTES {
                return Err(unavailable(DynamoError::ItemTooLarge {
                    pipeline: pipeline.to_owned(),
                    what: format!("the {count} outbox events"),
                    bytes: size,
                }));
            }
            bytes += size;
        }
        let items = state.len() + usize::from(count > 0);
        if items == 0 {
            return Ok(Vec::new());
        }
        if items > MAX_TRANSACTION_ITEMS || bytes > MAX_TRANSACTION_BYTES {
            return Err(unavailable(DynamoError::TransactionTooLarge {
                pipeline: pipeline.to_owned(),
                items,
                bytes,
            }));
        }
        let state: Vec<TransactWriteItem> =
            state.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect();
        for _ in 0..ATTEMPTS {
            let base = self.next_seq_base();
            let seqs: Vec<i64> = (0..count as i64).map(|i| base + i).collect();
            let mut transaction = state.clone();
            if count > 0 {
                transaction
                    .push(self.outbox_put(Self::outbox_item(pipeline, base, &events, count))?);
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(transaction))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(seqs),
                Err(e) => e,
            };
            match e.as_service_error().map(|se| cancelled(se, state.len())) {
                Some(Cancelled::Conflict) => return Err(StoreError::Conflict(pipeline.to_owned())),
                Some(Cancelled::SeqTaken) => {
                    warn!(pipeline, error = %DisplayErrorContext(&e), "outbox key taken; saving again");
                }
                Some(Cancelled::Other) | None => return Err(sdk("TransactWriteItems")(e)),
            }
        }
        Err(unavailable(DynamoError::SeqCollisions))
    }

    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        match self.get_item(key(pipeline_pk(pipeline), execution_sk(id))).await? {
            Some(item) => Ok(Some(from_json(&unpacked(&item, "body")?)?)),
            None => Ok(None),
        }
    }

    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        // The sort key is the id, not the start time, so this reads every execution still
        // within retention and sorts here. Fine for the CLI's listing at today's volumes; a
        // GSI on (pipeline, started) would make it a bounded Query.
        let items = self.query_all(pipeline_pk(pipeline), Some(EXECUTION_PREFIX), false).await?;
        let mut rows = items
            .iter()
            .map(|i| Ok((get_n::<i64>(i, "started")?, get_n::<u64>(i, "arrival")?, i)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
        rows.into_iter().take(limit).map(|(_, _, i)| from_json(&unpacked(i, "body")?)).collect()
    }

    async fn pending_outbox(
        &self,
        older_than: Millis,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // saved_at <= older_than  <=>  seq < (older_than + 1) ms in sequence units, so the
        // key condition alone selects the entries and Limit counts exactly what we keep.
        let per_milli = SEQS_PER_MICRO * 1_000;
        let bound = older_than.saturating_add(1).saturating_mul(per_milli).saturating_sub(1);
        let mut entries = Vec::new();
        if bound < 0 || limit == 0 {
            return Ok(entries);
        }
        let mut start: Option<Item> = None;
        loop {
            let remaining = i32::try_from(limit - entries.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND sk <= :bound")
                .expression_attribute_values(":pk", s(OUTBOX_PK))
                .expression_attribute_values(":bound", s(seq_sk(bound)))
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk("Query"))?;
            for item in out.items.unwrap_or_default() {
                entries.extend(outbox_entries(&item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && entries.len() < limit => start = Some(k),
                _ => {
                    // An item holds a whole save; the last one read may bring more than asked.
                    entries.truncate(limit);
                    return Ok(entries);
                }
            }
        }
    }

    async fn ack_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        // An entry's item is its save's: the base is the sequence number rounded down.
        let mut saves: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for seq in seqs {
            saves.entry(seq - seq.rem_euclid(SEQS_PER_MICRO)).or_default().push(*seq);
        }
        for (base, mut acked) in saves {
            acked.sort_unstable();
            acked.dedup();
            // The usual case, every entry of a save at once: one conditional delete.
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(OUTBOX_PK, seq_sk(base))))
                .condition_expression("attribute_not_exists(pk) OR #count = :count")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":count", n(acked.len()))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if condition_refused(&e) => {
                    self.ack_part(base, &acked).await?;
                }
                Err(e) => return Err(sdk("DeleteItem")(e)),
            }
        }
        Ok(())
    }
}
