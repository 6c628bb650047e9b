//! The sweeper's tick over many pipelines: each one ticked, several at once, and one that
//! fails does not stop the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::bus_events::BusEvent;
use baton::ports::bus::{BusError, EventBus};
use baton::ports::clock::{Clock, ManualClock};
use baton::ports::state::{
    Changes, OutboxEntry, PipelineRecord, Scope, Snapshot, StateStore, StoreError,
};
use baton::service::{StageAdvance, TICK_CONCURRENCY};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{Execution, Millis};
use serde_json::json;

struct Quiet;

#[async_trait]
impl EventBus for Quiet {
    async fn publish(&self, _: &[BusEvent]) -> Result<(), BusError> {
        Ok(())
    }
}

/// A store whose loads wait until `gate` of them are in flight together, and that cannot
/// load pipeline `broken`; the rest goes to `inner`.
struct Gated {
    inner: Arc<SqlStateStore>,
    gate: tokio::sync::Barrier,
    loads: AtomicUsize,
}

#[async_trait]
impl StateStore for Gated {
    async fn create_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        self.inner.create_pipeline(record).await
    }
    async fn update_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        self.inner.update_pipeline(record).await
    }
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError> {
        self.inner.get_pipeline(name).await
    }
    async fn get_pipeline_at(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<PipelineRecord>, StoreError> {
        self.inner.get_pipeline_at(name, version).await
    }
    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError> {
        self.inner.list_pipelines().await
    }
    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_pipeline(name).await
    }
    async fn load(&self, pipeline: &str, scope: &Scope) -> Result<Snapshot, StoreError> {
        // Only the first loads meet at the gate: one after another, they never would.
        if self.loads.fetch_add(1, Ordering::SeqCst) < TICK_CONCURRENCY {
            self.gate.wait().await;
        }
        if pipeline == "broken" {
            return Err(StoreError::Unavailable("this pipeline cannot be read (test)".into()));
        }
        self.inner.load(pipeline, scope).await
    }
    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError> {
        self.inner.save(pipeline, changes).await
    }
    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        self.inner.execution(pipeline, id).await
    }
    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        self.inner.executions(pipeline, limit).await
    }
    async fn pending_outbox(
        &self,
        older_than: Millis,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.pending_outbox(older_than, limit).await
    }
    async fn ack_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.inner.ack_outbox(seqs).await
    }
}

fn pipeline(name: &str) -> PipelineDocument {
    let action = |name: &str, category: &str| {
        json!({"name": name, "actionTypeId":
        {"category": category, "owner": "Custom", "provider": "NoOp", "version": "1"}})
    };
    let doc = json!({"name": name, "roleArn": "arn:aws:iam::111111111111:role/p",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": [action("Src", "Source")]},
                   {"name": "Build", "actions": [action("Compile", "Build")]}]});
    PipelineDocument::from_value(doc).unwrap()
}

#[tokio::test]
async fn a_tick_reaches_every_pipeline_several_at_once_past_one_that_fails() {
    let inner = Arc::new(SqlStateStore::in_memory().unwrap());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let mut names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
    names.push("broken".into());
    for name in &names {
        let record = crate::planned(pipeline(name).pipeline, "us-east-1", clock.now());
        inner.create_pipeline(&record).await.unwrap();
    }
    let store = Arc::new(Gated {
        inner,
        gate: tokio::sync::Barrier::new(TICK_CONCURRENCY),
        loads: AtomicUsize::new(0),
    });
    let advance = StageAdvance::new(store.clone(), Arc::new(Quiet), clock);
    // The gate opens only when TICK_CONCURRENCY loads wait together; a tick that visited the
    // pipelines one by one would wait forever, so it is given a minute to fail.
    let ticked = tokio::time::timeout(std::time::Duration::from_secs(60), advance.tick_all())
        .await
        .expect("the pipelines are ticked together, not one after another")
        .unwrap();
    assert_eq!(ticked, 40, "every pipeline but the broken one");
    assert!(store.loads.load(Ordering::SeqCst) >= names.len());
}
