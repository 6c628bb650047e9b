//! The state store on AWS: one DynamoDB table, with the same conditional-write rules as
//! the local `SqlStateStore`.
//!
//! Contract: every item carries a version; [`StateStore::save`] writes the lanes, the
//! executions and the events of one input either as one conditional write (the usual case) or
//! in ONE `TransactWriteItems`, each state item conditioned on the version it was read at, so
//! either all of it lands or nothing does and the caller gets [`StoreError::Conflict`]. One
//! write may go before it: an execution moving out of the lanes item has its own item written
//! first, as a draft that no reader takes over the resident until the lanes update lands (see
//! `moved_out`), at half a transaction's cost.
//!
//! The outbox is the table's stream: a save's events ride on an item it writes (see
//! `dynamodb_writes`), and stage-advance relays them from the stream (see `dynamodb_relay`).
//! So [`StateStore::relays_outbox`] is true, and nothing is pending or acknowledged here.
//!
//! Layout (one table, string keys `pk`/`sk`, TTL attribute `expires_at`, a stream of new
//! images, as `template.yaml` declares it):
//!
//! | `pk`              | `sk`             | attributes                                              |
//! |-------------------|------------------|---------------------------------------------------------|
//! | `PIPELINE#<name>` | `PIPELINE`       | `record` (deflated JSON), `created`, `updated`          |
//! | `PIPELINE#<name>` | `LANES`          | `version`, `body` (JSON), `u:<UUID in base64>` (or `x:<id>` for an id that is no UUID; deflated JSON) per execution holding a stage, `events`/`event_count` of the last save |
//! | `PIPELINE#<name>` | `EXECUTION#<id>` | `version`, `ended` (0, only while active), `started`, `arrival`, `body` (deflated JSON), `expires_at` once ended, `events`/`event_count`, `moved` (the lanes version a move out read); or a tombstone (`version`, `resident`, `started`, `ended`) while the execution lives in `LANES` |
//! | `PIPELINE#<name>` | `EVENTS`         | `events`/`event_count` of a save that wrote no state item, `expires_at` |
//! | `PIPELINES`       | `<name>`         | `watches`: the sources the pipeline watches (the sorted listing, and the trigger's index) |
//! | `APPROVAL#<id>`   | `LINK`           | `body` (JSON), `used` (JSON) once used, `expires_at`    |
//! | `CLAIM#<attempt>` | `CLAIM`          | `until`, `expires_at`                                   |
//! | `JOBS`            | `<provider>#<external id>` | `check_at`, `body` (JSON), `expires_at`       |
//!
//! Why this shape: everything one input reads lives in its pipeline's partition, so a load is
//! a `GetItem` of the lanes (with the executions holding stages) plus one `GetItem` per other
//! execution named, and never a `Scan`. Two keys-only indexes find the rest without reading
//! the partition: `by-start` on (`pk`, `started`) the newest executions, for listings (see
//! `dynamodb_history`), and `active` on (`pk`, `ended`) the active ones, for [`Scope::Active`]
//! (see `dynamodb_active`).
//! Only the actions the functions' role in `template.yaml` grants are used: no
//! `BatchGetItem`/`BatchWriteItem`. A release orchestrator writes a few items per second at
//! most, far below one partition's 1,000 writes per second, so the `PIPELINES` partition is
//! not hot.
//!
//! Reads are strongly consistent: a stage-advance that read a stale copy would only conflict,
//! but listings right after a write (the CLI, the contract suite) should see it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use baton_core::engine::{Execution, Lanes, Millis};

use super::dynamodb_active as active;
use super::dynamodb_history as history;
use super::dynamodb_packing as packing;
use super::dynamodb_writes as writes;
pub use super::dynamodb_writes::is_resident_attribute;
use baton_app::ports::BoxError;
use baton_app::ports::state::*;
use baton_protocol::bus_events::BusEvent;

/// DynamoDB's item size limit (400 KB, names and values included).
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>
const MAX_ITEM_BYTES: usize = 400 * 1024;
/// `TransactWriteItems` takes at most 100 actions and 4 MB (since 2022; it was 25 before).
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// Events larger than this (deflated) go on an item of their own, in the same transaction, so
/// that they never push a state item over its limit.
const MAX_CARRIED_EVENTS_BYTES: usize = 64 * 1024;

const PIPELINES_PK: &str = "PIPELINES";
const PIPELINE_SK: &str = "PIPELINE";
const LANES_SK: &str = "LANES";
const EVENTS_SK: &str = "EVENTS";
/// How often a read that met an execution moving between items is made again.
const READ_ATTEMPTS: u32 = 5;
/// Marks an execution's own item as a tombstone: the execution lives in the lanes item.
const RESIDENT_MARK: &str = "resident";
/// On an execution's own item that a move out of the lanes item wrote: the version of the
/// lanes item that move read (see [`moved_out`]).
const MOVED: &str = "moved";
pub(super) const EXECUTION_PREFIX: &str = "EXECUTION#";
/// A listing's attribute naming the sources its pipeline watches, each between newlines
/// (which no repository, bucket or key names hold), so `contains` matches whole keys.
const WATCHES: &str = "watches";

/// Which items of a partition a query keeps.
pub(super) enum Filter<'a> {
    All,
    /// Executions not ended, and tombstones.
    Active,
    /// Pipeline listings that watch a source key.
    Watching(&'a str),
}

fn watched(key: &str) -> String {
    format!("\n{key}\n")
}

/// A pipeline's item in the `PIPELINES` listing, with the sources it watches.
fn listing_item(record: &PipelineRecord) -> Item {
    let mut item = key(PIPELINES_PK, record.plan.name.as_str());
    let keys: String = record.plan.watched_sources().iter().map(|k| format!("{k}\n")).collect();
    item.insert(WATCHES.into(), s(format!("\n{keys}")));
    item
}

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

/// A pipeline's item. Deflated, the record (the declaration and its plan) fits one read unit
/// (4 KB), where its text took two: every function reads it for each input.
fn pipeline_item(record: &PipelineRecord) -> Result<Item, StoreError> {
    let mut item = key(pipeline_pk(&record.plan.name), PIPELINE_SK);
    item.insert("record".into(), packed(&to_json(record)?)?);
    item.insert("created".into(), n(record.created));
    item.insert("updated".into(), n(record.updated));
    Ok(item)
}

pub(super) fn pipeline_pk(name: &str) -> String {
    format!("PIPELINE#{name}")
}

fn execution_sk(id: &str) -> String {
    format!("{EXECUTION_PREFIX}{id}")
}

fn malformed(item: &Item, attribute: &'static str) -> StoreError {
    let key_part = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_owned(),
    };
    unavailable(DynamoError::Malformed { pk: key_part("pk"), sk: key_part("sk"), attribute })
}

/// Stores `json` deflated against the table's dictionary (see `dynamodb_packing`). Write units
/// are counted per kilobyte of item, and execution bodies and event batches (repetitive JSON)
/// shrink to a fifth or less, so this is most of the cost of a save.
pub fn packed(json: &str) -> Result<AttributeValue, StoreError> {
    packed_against(json, &[])
}

/// Stores `json` deflated against the dictionary and `bases`: attributes (name and text) of
/// the item it goes on, which a reader finds there.
pub(super) fn packed_against(
    json: &str,
    bases: &[(&str, &str)],
) -> Result<AttributeValue, StoreError> {
    let bytes = packing::pack(json, bases).map_err(unavailable)?;
    Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)))
}

/// The JSON an attribute holds: packed (binary) or, as items written before packing, text.
/// Bases a packed attribute names are read from the same item.
pub(super) fn unpacked(item: &Item, attribute: &'static str) -> Result<String, StoreError> {
    match item.get(attribute) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        Some(AttributeValue::B(blob)) => {
            packing::unpack(blob.as_ref(), |base| match item.get(base) {
                Some(AttributeValue::B(b)) => packing::unpack_alone(b.as_ref()),
                _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, base.to_owned())),
            })
            .map_err(|_| malformed(item, attribute))
        }
        _ => Err(malformed(item, attribute)),
    }
}

/// The text packed in `bytes`, which names no bases.
pub fn inflated(bytes: &[u8]) -> std::io::Result<String> {
    packing::unpack_alone(bytes)
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
    item.iter().map(|(name, value)| attribute_size(name, value)).sum()
}

fn attribute_size(name: &str, value: &AttributeValue) -> usize {
    name.len()
        + match value {
            AttributeValue::S(v) => v.len(),
            AttributeValue::B(v) => v.as_ref().len(),
            AttributeValue::N(_) => 21,
            _ => 1,
        }
}

fn now_micros() -> i64 {
    // A clock before 1970 is a broken host; 0 still gives valid (if old) sequence numbers.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A write's condition and update as DynamoDB expressions, for a plain write or the same one
/// inside a transaction.
#[derive(Default)]
struct Expression {
    update: Option<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// Conditioned on the item's version being `read` (absent for 0).
    fn at_version(read: u64) -> Self {
        let mut e = Self::default();
        if read == 0 {
            e.condition = Some("attribute_not_exists(pk)".into());
        } else {
            e.condition = Some("#version = :read".into());
            e.names.insert("#version".into(), "version".into());
            e.values.insert(":read".into(), n(read));
        }
        e
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// A save's events: their JSON, and the attributes that carry them on an item of their own.
struct SaveEvents {
    json: String,
    count: usize,
    alone: Item,
}

impl SaveEvents {
    fn attributes(events: AttributeValue, count: usize) -> Item {
        Item::from([
            (writes::EVENTS.to_owned(), events),
            (writes::EVENT_COUNT.to_owned(), n(count)),
        ])
    }

    /// The attributes carrying them on an item that also gets `bases` (attribute names and
    /// packed executions): deflated against those, since the events repeat them.
    fn against(self, bases: &[(String, AttributeValue)]) -> Result<Item, StoreError> {
        let mut texts = Vec::with_capacity(bases.len());
        for (name, value) in bases {
            if let AttributeValue::B(blob) = value {
                texts.push((name.as_str(), inflated(blob.as_ref()).map_err(unavailable)?));
            }
        }
        let bases: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(Self::attributes(packed_against(&self.json, &bases)?, self.count))
    }

    /// The attributes carrying them on an execution's own item, against its `body`.
    fn against_body(self, item: &Item) -> Result<Item, StoreError> {
        match item.get("body") {
            Some(body) => self.against(&[("body".to_owned(), body.clone())]),
            None => Ok(self.alone),
        }
    }
}

/// The update of the lanes item: the new version, lanes and residents, and this save's events
/// (or none: an update leaves other attributes in place, so old events must go).
fn lanes_expression(l: &writes::LanesWrite, events: Option<&Item>) -> Expression {
    let mut e = Expression::at_version(l.read);
    let mut set = vec!["#version = :next".to_owned()];
    let mut remove = Vec::new();
    e.names.insert("#version".into(), "version".into());
    e.values.insert(":next".into(), n(l.read + 1));
    if let Some(body) = &l.body {
        set.push("#body = :body".into());
        e.names.insert("#body".into(), "body".into());
        e.values.insert(":body".into(), body.clone());
    }
    for (i, (name, value)) in l.set.iter().enumerate() {
        set.push(format!("#x{i} = :x{i}"));
        e.names.insert(format!("#x{i}"), name.clone());
        e.values.insert(format!(":x{i}"), value.clone());
    }
    for (i, name) in l.remove.iter().enumerate() {
        remove.push(format!("#r{i}"));
        e.names.insert(format!("#r{i}"), name.clone());
    }
    for (i, name) in l.absent.iter().enumerate() {
        let condition = e.condition.take().unwrap_or_default();
        e.condition = Some(format!("{condition} AND attribute_not_exists(#a{i})"));
        e.names.insert(format!("#a{i}"), name.clone());
    }
    for (i, attribute) in [writes::EVENTS, writes::EVENT_COUNT].into_iter().enumerate() {
        e.names.insert(format!("#e{i}"), attribute.into());
        match events.and_then(|ev| ev.get(attribute)) {
            Some(value) => {
                set.push(format!("#e{i} = :e{i}"));
                e.values.insert(format!(":e{i}"), value.clone());
            }
            None => remove.push(format!("#e{i}")),
        }
    }
    let mut update = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        update.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    e.update = Some(update);
    e
}

/// The update that writes a moved-out execution's item: every attribute of `item`, the
/// tombstone mark gone, the version one more than whatever it was (0 for none), and [`MOVED`]
/// the lanes item's version `lanes_read` that the save read.
///
/// Why not in one transaction with the lanes: a transaction bills every item twice, and the
/// execution ending (the last save of most executions) would cost six write units where these
/// two plain writes cost three. This one goes first; until the lanes item's update lands, the
/// execution is still resident there, and every reader takes the resident over its own item.
/// So if the lanes update then fails (a conflict, a crash), what was written here is only a
/// draft no reader shows, and the retry writes it again. The condition keeps a draft from
/// replacing a move that landed: it holds on a tombstone, on a missing item, or on a draft of
/// an earlier version of the lanes; an item a move wrote at this version or later, or one a
/// plain save wrote since (which drops [`MOVED`]), is refused, and the save conflicts.
fn moved_out(item: Item, lanes_read: u64) -> Expression {
    let mut e = Expression {
        condition: Some(
            "attribute_not_exists(pk) OR attribute_exists(#mark) OR #moved < :lanes".into(),
        ),
        ..Expression::default()
    };
    e.names.insert("#moved".into(), MOVED.into());
    e.values.insert(":lanes".into(), n(lanes_read));
    let mut set = Vec::new();
    for (i, (name, value)) in item.into_iter().filter(|(k, _)| k != "pk" && k != "sk").enumerate() {
        set.push(format!("#s{i} = :s{i}"));
        e.names.insert(format!("#s{i}"), name);
        e.values.insert(format!(":s{i}"), value);
    }
    let mut remove = vec!["#mark"];
    // What the item does not have goes: once it ended, the tombstone's `ended = 0`; while it
    // has not, the expiry of an earlier draft that had it ended.
    for (alias, attribute) in [("#ended", active::ENDED), ("#expires", "expires_at")] {
        if !e.names.values().any(|name| name == attribute) {
            e.names.insert(alias.into(), attribute.into());
            remove.push(alias);
        }
    }
    e.names.insert("#version".into(), "version".into());
    e.names.insert("#mark".into(), RESIDENT_MARK.into());
    e.values.insert(":one".into(), n(1));
    e.update = Some(format!(
        "SET {}, #moved = :lanes REMOVE {} ADD #version :one",
        set.join(", "),
        remove.join(", ")
    ));
    e
}

/// The residents of a lanes item, at the lanes item's version marked [`writes::RESIDENT`].
fn residents(item: &Item) -> Result<Vec<Versioned<Execution>>, StoreError> {
    let version: u64 = get_n(item, "version")?;
    let mut found = Vec::new();
    for (name, value) in item {
        if !writes::is_resident_attribute(name) {
            continue;
        }
        let AttributeValue::B(blob) = value else { return Err(malformed(item, "resident")) };
        let json = inflated(blob.as_ref()).map_err(|_| malformed(item, "resident"))?;
        found.push(Versioned { version: writes::RESIDENT | version, value: from_json(&json)? });
    }
    Ok(found)
}

/// One write of a save.
enum Write {
    /// An update of the item at the key.
    Update(Item, Expression),
    Put(Item, Expression),
}

/// Whether a transaction was cancelled because an item moved since it was read: its condition
/// failed, or another transaction was writing it. Reloading and applying again is the answer.
pub(super) fn conflicted(error: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(e) = error else {
        return false;
    };
    e.cancellation_reasons()
        .iter()
        .any(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict")))
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
}

impl DynamoDbStateStore {
    /// A store on `table`. Ended executions expire `retention_days` after their last write
    /// (DynamoDB's TTL deletes them some time after that).
    pub fn new(client: Client, table: String, retention_days: u32) -> Self {
        Self { client, table, retention_secs: i64::from(retention_days) * 86_400 }
    }

    pub(super) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.read_item(key, true).await
    }

    /// Reads an item, strongly consistent or not (half the read units, and maybe a moment old).
    async fn read_item(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
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

    /// Writes a pipeline's record under `condition`, and its listing (the sources it watches
    /// may have changed) with it, in one transaction; false when the condition failed.
    async fn put_pipeline(
        &self,
        record: &PipelineRecord,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pipeline_item(record)?))
            .condition_expression(condition)
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        let listing = Put::builder()
            .table_name(&self.table)
            .set_item(Some(listing_item(record)))
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
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(condition_failed) => Ok(false),
            Err(e) => Err(sdk("TransactWriteItems")(e)),
        }
    }

    /// A pipeline's executions from one Query of its whole partition (the executions' own
    /// items and the lanes item with the residents): the listing while the index is built.
    async fn all_executions(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let mut resident = Vec::new();
        let mut own = Vec::new();
        for item in self.query_all(pipeline_pk(pipeline), None, Filter::All).await? {
            match get_s(&item, "sk")? {
                LANES_SK => resident.extend(residents(&item)?.into_iter().map(|r| r.value)),
                sk if sk.starts_with(EXECUTION_PREFIX) && !item.contains_key(RESIDENT_MARK) => {
                    own.push(from_json::<Execution>(&unpacked(&item, "body")?)?);
                }
                _ => {}
            }
        }
        // A resident wins over its own item: that is a draft of a move (see `moved_out`).
        own.retain(|x| !resident.iter().any(|r| r.id == x.id));
        resident.extend(own);
        Ok(history::newest(resident, limit))
    }

    /// Every item of a query, following pages.
    pub(super) async fn query_all(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
        filter: Filter<'_>,
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
            // A filter saves transfer, not read units: DynamoDB bills what the key condition
            // reads.
            q = match filter {
                Filter::All => q,
                // Active loads are rare (approvals, ticks); see `load`. Tombstones too: `load`
                // must see an execution that moved into the lanes item.
                Filter::Active => q
                    .filter_expression("#ended = :zero OR attribute_exists(#mark)")
                    .expression_attribute_names("#ended", "ended")
                    .expression_attribute_names("#mark", RESIDENT_MARK)
                    .expression_attribute_values(":zero", n(0)),
                // Listings written before the index have no `watches`: they may watch anything.
                Filter::Watching(key) => q
                    .filter_expression("attribute_not_exists(#watches) OR contains(#watches, :key)")
                    .expression_attribute_names("#watches", WATCHES)
                    .expression_attribute_values(":key", s(watched(key))),
            };
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

    /// One read of what [`StateStore::load`] returns; `None` when an execution moved into the
    /// lanes item after they were read (its own item is a tombstone the lanes did not explain).
    async fn load_once(
        &self,
        pipeline: &str,
        scope: &Scope,
    ) -> Result<Option<Snapshot>, StoreError> {
        let pk = pipeline_pk(pipeline);
        let mut found: HashMap<String, Versioned<Execution>> = HashMap::new();
        let lanes = match self.get_item(key(pk.clone(), LANES_SK)).await? {
            Some(item) => {
                found.extend(residents(&item)?.into_iter().map(|r| (r.value.id.clone(), r)));
                Versioned {
                    version: get_n(&item, "version")?,
                    value: from_json::<Lanes>(&unpacked(&item, "body")?)?,
                }
            }
            None => Versioned { version: 0, value: Lanes::default() },
        };
        let moved_in = |item: &Item, found: &HashMap<String, Versioned<Execution>>| {
            let id = get_s(item, "sk").map(|sk| sk.trim_start_matches(EXECUTION_PREFIX));
            item.contains_key(RESIDENT_MARK) && id.is_ok_and(|id| !found.contains_key(id))
        };
        let mut wanted: Vec<String> = lanes.value.waiting.iter().flatten().cloned().collect();
        match scope {
            Scope::One(id) => wanted.push(id.clone()),
            Scope::LanesOnly => {}
            // Through the `active` index (see `dynamodb_active`): its ids, then those items
            // read strongly below, as the waiting ones are.
            Scope::Active => match self.active_ids(&pk).await? {
                Some(ids) => wanted.extend(ids),
                // A Query of the pipeline's partition with a filter: it reads (and bills) the
                // ended executions still within their retention too.
                None => {
                    for item in
                        self.query_all(pk.clone(), Some(EXECUTION_PREFIX), Filter::Active).await?
                    {
                        if moved_in(&item, &found) {
                            return Ok(None);
                        }
                        if item.contains_key(RESIDENT_MARK) {
                            continue;
                        }
                        let e = versioned_execution(&item)?;
                        found.entry(e.value.id.clone()).or_insert(e);
                    }
                }
            },
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
                if moved_in(&item, &found) {
                    return Ok(None);
                }
                if item.contains_key(RESIDENT_MARK) {
                    continue;
                }
                let e = versioned_execution(&item)?;
                // The index may still list one that ended a moment ago.
                let waits = || lanes.value.waiting.iter().flatten().any(|w| *w == e.value.id);
                if matches!(scope, Scope::Active) && e.value.status().is_ended() && !waits() {
                    continue;
                }
                found.insert(e.value.id.clone(), e);
            }
        }
        let mut executions: Vec<Versioned<Execution>> = found.into_values().collect();
        executions.sort_by(|a, b| a.value.id.cmp(&b.value.id));
        Ok(Some(Snapshot { lanes, executions }))
    }

    /// A save's events; none for a save without events.
    fn events_attributes(
        &self,
        pipeline: &str,
        events: &[BusEvent],
    ) -> Result<Option<SaveEvents>, StoreError> {
        if events.is_empty() {
            return Ok(None);
        }
        let events = super::traced(events, super::invocation_trace().as_deref());
        let json = to_json(&events)?;
        let alone = SaveEvents::attributes(packed(&json)?, events.len());
        let bytes = item_size(&alone);
        if bytes > MAX_ITEM_BYTES {
            return Err(unavailable(DynamoError::ItemTooLarge {
                pipeline: pipeline.to_owned(),
                what: format!("the {} events of one save", events.len()),
                bytes,
            }));
        }
        Ok(Some(SaveEvents { json, count: events.len(), alone }))
    }

    /// Sends one save: a single conditional write when it touches one item (the usual case),
    /// otherwise one transaction. The events go on the lanes item if it is written, else on an
    /// execution's item, else (or when large) on the pipeline's `EVENTS` item.
    async fn send(
        &self,
        pipeline: &str,
        planned: writes::Writes,
        events: Option<SaveEvents>,
        now_secs: i64,
    ) -> Result<(), StoreError> {
        let pk = pipeline_pk(pipeline);
        let mut ops = Vec::new();
        let mut bytes = 0;
        let mut events = events;
        // Moves out of the lanes item, written before the rest (see `moved_out`).
        let mut moves = Vec::new();
        let lanes_read = planned.lanes.as_ref().map_or(0, |l| l.read);
        let large = events.as_ref().is_some_and(|e| item_size(&e.alone) > MAX_CARRIED_EVENTS_BYTES);
        // Events go on an execution's item only if both stay within DynamoDB's item limit.
        let fits = |item: &Item, events: Option<&SaveEvents>| {
            !large
                && item_size(item) + events.map_or(0, |e| item_size(&e.alone)) + 64
                    <= MAX_ITEM_BYTES
        };
        if let Some(l) = &planned.lanes {
            let written = l.set.iter().map(|(k, v)| attribute_size(k, v)).sum::<usize>()
                + l.body.as_ref().map_or(0, |b| attribute_size("body", b));
            // What this update writes must fit, with room for the residents it leaves as they
            // are (at most one per stage, each at most 4 KB deflated).
            if written > MAX_ITEM_BYTES / 2 {
                return Err(unavailable(DynamoError::ItemTooLarge {
                    pipeline: pipeline.to_owned(),
                    what: "the lanes".into(),
                    bytes: written,
                }));
            }
            // Deflated against the residents this update writes, which the record shows too.
            let carried = match events.take() {
                Some(ev) if !large => Some(ev.against(&l.set)?),
                other => {
                    events = other;
                    None
                }
            };
            bytes += written + carried.as_ref().map_or(0, item_size);
            ops.push(Write::Update(
                key(pk.clone(), LANES_SK),
                lanes_expression(l, carried.as_ref()),
            ));
        }
        for w in planned.own {
            match w {
                writes::OwnWrite::Put { mut item, read } => {
                    if fits(&item, events.as_ref())
                        && let Some(ev) = events.take()
                    {
                        item.extend(ev.against_body(&item)?);
                    }
                    item.insert("version".into(), n(read + 1));
                    bytes += item_size(&item);
                    ops.push(Write::Put(item, Expression::at_version(read)));
                }
                // Never carries the events: they go out only once the lanes item's update,
                // which a move always comes with, has landed.
                writes::OwnWrite::MoveOut { item } => {
                    let k = key(pk.clone(), get_s(&item, "sk")?);
                    moves.push(Write::Update(k, moved_out(item, lanes_read)));
                }
                writes::OwnWrite::MoveIn { id, read, started } => {
                    let mut tombstone = key(pk.clone(), execution_sk(&id));
                    tombstone.insert("version".into(), n(read + 1));
                    tombstone.insert(history::STARTED.into(), n(started));
                    tombstone.insert(RESIDENT_MARK.into(), n(1));
                    // Active loads find it through the `active` index and read it again.
                    tombstone.insert(active::ENDED.into(), n(0));
                    ops.push(Write::Put(tombstone, Expression::at_version(read)));
                }
            }
        }
        if let Some(ev) = events {
            let mut item = key(pk.clone(), EVENTS_SK);
            item.extend(ev.alone);
            // Only the stream needs it; TTL removes it. A put that changes nothing writes no
            // stream record, so each save's item differs by its time.
            item.insert("expires_at".into(), n(now_secs.saturating_add(86_400)));
            item.insert("saved_at".into(), n(now_micros()));
            bytes += item_size(&item);
            ops.push(Write::Put(item, Expression::default()));
        }
        if ops.len() > MAX_TRANSACTION_ITEMS || bytes > MAX_TRANSACTION_BYTES {
            return Err(unavailable(DynamoError::TransactionTooLarge {
                pipeline: pipeline.to_owned(),
                items: ops.len(),
                bytes,
            }));
        }
        for draft in moves {
            self.send_one(pipeline, draft).await?;
        }
        match ops.len() {
            0 => Ok(()),
            1 => self.send_one(pipeline, ops.remove(0)).await,
            _ => self.send_transaction(pipeline, ops).await,
        }
    }

    async fn send_one(&self, pipeline: &str, op: Write) -> Result<(), StoreError> {
        let conflict = || StoreError::Conflict(pipeline.to_owned());
        match op {
            Write::Update(k, e) => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(k))
                    .set_update_expression(e.update.clone())
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .send()
                    .await;
                match result {
                    Err(err) if condition_refused(&err) => Err(conflict()),
                    other => other.map(drop).map_err(sdk("UpdateItem")),
                }
            }
            Write::Put(item, e) => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .send()
                    .await;
                match result {
                    Err(err) if condition_refused(&err) => Err(conflict()),
                    other => other.map(drop).map_err(sdk("PutItem")),
                }
            }
        }
    }

    async fn send_transaction(&self, pipeline: &str, ops: Vec<Write>) -> Result<(), StoreError> {
        let build = sdk("TransactWriteItems");
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let item = match op {
                Write::Update(k, e) => TransactWriteItem::builder().update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .set_update_expression(e.update.clone())
                        .set_condition_expression(e.condition.clone())
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(sdk("TransactWriteItems"))?,
                ),
                Write::Put(item, e) => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .set_condition_expression(e.condition.clone())
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(sdk("TransactWriteItems"))?,
                ),
            };
            items.push(item.build());
        }
        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conflicted) => {
                Err(StoreError::Conflict(pipeline.to_owned()))
            }
            Err(e) => Err(build(e)),
        }
    }

    /// An execution's own item, around its deflated `body`.
    fn execution_item(
        &self,
        pipeline: &str,
        x: &Execution,
        body: AttributeValue,
        now_secs: i64,
    ) -> Result<Item, StoreError> {
        let ended = x.status().is_ended();
        let mut item = key(pipeline_pk(pipeline), execution_sk(&x.id));
        // Only while active: an ended execution then has no entry in the `active` index to
        // write (items written before carry `ended = 1`, which its key condition skips).
        if !ended {
            item.insert(active::ENDED.into(), n(0));
        }
        item.insert(history::STARTED.into(), n(x.started_at));
        item.insert("arrival".into(), n(x.arrival));
        item.insert("body".into(), body);
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
/// `expires_at`, a stream of new images for the relay) and waits until it is active. For tests and first-time setup; production
/// tables come from `template.yaml`.
///
/// # Errors
/// [`StoreError::Exists`] if the table exists; [`StoreError::Unavailable`] otherwise.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attribute = |a: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(a)
            .attribute_type(t)
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
    // The pipeline's partition, sorted by `sort_key`; keys only.
    let keys_only_index = |name: &str, sort_key: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key_element("pk", KeyType::Hash)?)
            .key_schema(key_element(sort_key, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .build()
            .map_err(sdk("CreateTable"))
    };
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute(history::STARTED, ScalarAttributeType::N)?)
        .attribute_definitions(attribute(active::ENDED, ScalarAttributeType::N)?)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?)
        .global_secondary_indexes(keys_only_index(history::INDEX, history::STARTED)?)
        .global_secondary_indexes(keys_only_index(active::INDEX, active::ENDED)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(sdk("CreateTable"))?,
        )
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
        if self.put_pipeline(record, "attribute_not_exists(pk)").await? {
            Ok(())
        } else {
            Err(StoreError::Exists(format!("pipeline {}", record.plan.name)))
        }
    }

    async fn update_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        if self.put_pipeline(record, "attribute_exists(pk)").await? {
            Ok(())
        } else {
            Err(StoreError::NotFound(format!("pipeline {}", record.plan.name)))
        }
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError> {
        match self.get_item(key(pipeline_pk(name), PIPELINE_SK)).await? {
            Some(item) => Ok(Some(from_json(&unpacked(&item, "record")?)?)),
            None => Ok(None),
        }
    }

    async fn get_pipeline_at(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<PipelineRecord>, StoreError> {
        // A record that shows the version expected is the latest one, unless an update landed
        // a moment ago; that reader could as well have read just before it, and what it does
        // is conditioned on the execution, read exactly. Any other answer is read again exactly.
        if let Some(item) = self.read_item(key(pipeline_pk(name), PIPELINE_SK), false).await? {
            let record: PipelineRecord = from_json(&unpacked(&item, "record")?)?;
            if record.plan.version == version {
                return Ok(Some(record));
            }
        }
        self.get_pipeline(name).await
    }

    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError> {
        // The sort key orders by UTF-8 bytes, as the SQLite store's ORDER BY does.
        let items = self.query_all(PIPELINES_PK.to_owned(), None, Filter::All).await?;
        items.iter().map(|i| get_s(i, "sk").map(str::to_owned)).collect()
    }

    async fn pipelines_watching(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let items = self.query_all(PIPELINES_PK.to_owned(), None, Filter::Watching(key)).await?;
        items.iter().map(|i| get_s(i, "sk").map(str::to_owned)).collect()
    }

    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        if self.get_item(key(pipeline_pk(name), PIPELINE_SK)).await?.is_none() {
            return Err(StoreError::NotFound(format!("pipeline {name}")));
        }
        // Not one transaction (a pipeline can have more than 100 items): the record and its
        // listing go last, so a delete that fails half-way can simply be run again.
        let mut rest = Vec::new();
        for item in self.query_all(pipeline_pk(name), None, Filter::All).await? {
            let sk = get_s(&item, "sk")?;
            if sk != PIPELINE_SK {
                rest.push(key(pipeline_pk(name), sk));
            }
        }
        self.delete_items(rest).await?;
        self.delete_items(vec![key(pipeline_pk(name), PIPELINE_SK), key(PIPELINES_PK, name)]).await
    }

    async fn load(&self, pipeline: &str, scope: &Scope) -> Result<Snapshot, StoreError> {
        // The lanes item is read before the executions' own items, so an execution that moved
        // into it in between shows as a tombstone: then everything is read again.
        for _ in 0..READ_ATTEMPTS {
            if let Some(snapshot) = self.load_once(pipeline, scope).await? {
                return Ok(snapshot);
            }
        }
        Err(StoreError::Conflict(pipeline.to_owned()))
    }

    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError> {
        let now_secs = now_micros() / 1_000_000;
        let writes = writes::plan(pipeline, &changes, |x, body| {
            self.execution_item(pipeline, x, body, now_secs)
        })?;
        let events = self.events_attributes(pipeline, &changes.outbox)?;
        self.send(pipeline, writes, events, now_secs).await?;
        // Nothing to acknowledge: the stream relay publishes what was written.
        Ok(Vec::new())
    }

    fn relays_outbox(&self) -> bool {
        true
    }

    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        // The lanes item first (where a running execution usually is), then its own item: a
        // move into the lanes item in between shows as a tombstone, and the lanes are read again.
        for _ in 0..READ_ATTEMPTS {
            if let Some(lanes) = self.get_item(key(pipeline_pk(pipeline), LANES_SK)).await?
                && let Some(r) = residents(&lanes)?.into_iter().find(|r| r.value.id == id)
            {
                return Ok(Some(r.value));
            }
            match self.get_item(key(pipeline_pk(pipeline), execution_sk(id))).await? {
                Some(item) if item.contains_key(RESIDENT_MARK) => {}
                Some(item) => return Ok(Some(from_json(&unpacked(&item, "body")?)?)),
                None => return Ok(None),
            }
        }
        Err(StoreError::Conflict(pipeline.to_owned()))
    }

    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        // The lanes first: an execution that leaves them afterwards is in the index by then.
        let lanes = self.get_item(key(pipeline_pk(pipeline), LANES_SK)).await?;
        let Some(keys) = self.newest_keys(pipeline, limit).await? else {
            return self.all_executions(pipeline, limit).await;
        };
        let mut all: Vec<Execution> = match &lanes {
            Some(item) => residents(item)?.into_iter().map(|r| r.value).collect(),
            None => Vec::new(),
        };
        for item in self.get_items(keys).await? {
            // A tombstone: the execution moved into the lanes item since it was indexed.
            if item.contains_key(RESIDENT_MARK) {
                continue;
            }
            let x: Execution = from_json(&unpacked(&item, "body")?)?;
            if !all.iter().any(|r| r.id == x.id) {
                all.push(x);
            }
        }
        Ok(history::newest(all, limit))
    }

    async fn pending_outbox(
        &self,
        _older_than: Millis,
        _limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // The events ride on the state items; the table's stream is the outbox.
        Ok(Vec::new())
    }

    async fn ack_outbox(&self, _seqs: &[i64]) -> Result<(), StoreError> {
        Ok(())
    }
}
