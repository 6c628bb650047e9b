//! A pipeline's executions, newest first, through the table's `by-start` index.
//!
//! The index keys each execution's own item by its pipeline's partition and its start time
//! (`pk`, `started`) and projects keys only, so an update that leaves `started` alone (every
//! save after an execution's first) writes nothing to it, and items without `started` (the
//! pipeline, its lanes, claims...) are not in it. A listing of `n` reads `n` keys from the
//! index and then those items, where it read the whole partition (every execution within
//! retention) before. Executions holding a stage live in the lanes item, read as well.
//!
//! DynamoDB's indexes are eventually consistent: an execution that started a moment ago in a
//! PARALLEL pipeline may be missing from a listing until its key reaches the index, usually
//! within a second (one holding a stage is in the lanes item at once). While the index is
//! being built, after it was added to a table that already had executions, DynamoDB refuses
//! queries on it, and listings read the partition as before.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use baton_app::ports::state::StoreError;
use baton_core::engine::{Execution, Millis};
use tracing::warn;

use super::dynamodb_state::{DynamoDbStateStore, Item, get_n, get_s, key, pipeline_pk, s, sdk};

/// The index's name, as `template.yaml` declares it.
pub(super) const INDEX: &str = "by-start";
/// An execution item's start time, in milliseconds: the index's sort key.
pub(super) const STARTED: &str = "started";

impl DynamoDbStateStore {
    /// The keys of the `limit` newest execution items, with any others that started in the
    /// same millisecond as the last of them (the index cannot order those by arrival), newest
    /// first; `None` while the index cannot be read.
    pub(super) async fn newest_keys(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Option<Vec<Item>>, StoreError> {
        let mut keys: Vec<(Millis, Item)> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pipeline_pk(pipeline)))
                .scan_index_forward(false)
                // One more than asked: enough to tell whether the last one has a tie.
                .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if index_unreadable(&e, &self.table, INDEX) => return Ok(None),
                Err(e) => return Err(sdk("Query")(e)),
            };
            for item in page.items.unwrap_or_default() {
                let started: Millis = get_n(&item, STARTED)?;
                if keys.len() >= limit && keys.last().is_none_or(|(last, _)| *last != started) {
                    return Ok(Some(keys.into_iter().map(|(_, k)| k).collect()));
                }
                keys.push((started, key(get_s(&item, "pk")?, get_s(&item, "sk")?)));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(Some(keys.into_iter().map(|(_, k)| k).collect())),
            }
        }
    }
}

/// Whether a query failed because its index cannot be read: not there, or DynamoDB still
/// builds it after it was added to a table with items. Logged: the caller reads the partition.
pub(super) fn index_unreadable<E: ProvideErrorMetadata>(e: &E, table: &str, index: &str) -> bool {
    let unreadable = matches!(e.code(), Some("ValidationException" | "ResourceNotFoundException"));
    if unreadable {
        warn!(
            table,
            index,
            error = e.message().unwrap_or_default(),
            "an index of the executions table cannot be read yet; reading the whole partition"
        );
    }
    unreadable
}

/// `all` newest first (ties by arrival), cut to `limit`.
pub(super) fn newest(mut all: Vec<Execution>, limit: usize) -> Vec<Execution> {
    all.sort_by_key(|x| std::cmp::Reverse((x.started_at, x.arrival)));
    all.truncate(limit);
    all
}
