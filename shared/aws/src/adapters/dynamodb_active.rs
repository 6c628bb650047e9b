//! A pipeline's active executions through the table's `active` index.
//!
//! The index keys each execution's own item by its pipeline's partition and `ended`, and
//! projects keys only. An execution's item carries `ended = 0` while it is active and none
//! once it ended, so an execution written ended (SUPERSEDED and QUEUED executions get their
//! own item when they end) costs the index nothing. `ended = 0` is the query's key condition,
//! so a load of the active executions (a tick, a decided approval) reads and bills only their
//! keys, where it read the whole partition (every execution within retention) before.
//! Tombstones carry `ended = 0` too, so a load still meets an execution that moved into the
//! lanes item meanwhile. Items written before carry `ended` (1 once ended, which the key
//! condition skips): added to a table, DynamoDB fills the index from them, and loads read the
//! partition until it is ready. A tombstone written before has no `ended`: a load races
//! with such an execution moving in only on the conditional save that follows.
//!
//! The index is eventually consistent: an execution that started a moment ago in a PARALLEL
//! pipeline may be missing from one load (the next tick meets it); those holding a stage or
//! waiting for one are named by the lanes item, read strongly as before. Each key found is
//! then read strongly, so what a load returns is current.

use baton_app::ports::state::StoreError;

use super::dynamodb_history::index_unreadable;
use super::dynamodb_state::{DynamoDbStateStore, EXECUTION_PREFIX, Item, get_s, n, s, sdk};

/// The index's name, as `template.yaml` declares it.
pub(super) const INDEX: &str = "active";
/// An execution item's mark of being active (0), absent once it ended: the index's sort key.
pub(super) const ENDED: &str = "ended";

impl DynamoDbStateStore {
    /// The ids of the executions of partition `pk` whose items are not ended (tombstones
    /// included); `None` while the index cannot be read.
    pub(super) async fn active_ids(&self, pk: &str) -> Result<Option<Vec<String>>, StoreError> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression("pk = :pk AND #ended = :zero")
                .expression_attribute_names("#ended", ENDED)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":zero", n(0))
                .set_exclusive_start_key(start.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if index_unreadable(&e, &self.table, INDEX) => return Ok(None),
                Err(e) => return Err(sdk("Query")(e)),
            };
            for item in page.items.unwrap_or_default() {
                if let Some(id) = get_s(&item, "sk")?.strip_prefix(EXECUTION_PREFIX) {
                    ids.push(id.to_owned());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(Some(ids)),
            }
        }
    }
}
