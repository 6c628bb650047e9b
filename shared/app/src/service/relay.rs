//! The outbox relay: publishes, in order, the events saves wrote with their state to a store's
//! change stream (DynamoDB Streams on AWS), so a save and its events cannot part.

use std::sync::Arc;

use serde_json::Value;
use tracing::warn;

use crate::ports::bus::EventBus;
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::dead_letters::DeadLetters;
use crate::ports::metrics::{Metric, Metrics};
use baton_core::events::PIPELINE_DETAIL_TYPE;
use baton_protocol::bus_events::BusEvent;

/// One record of the change stream, as the store's adapter read it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Its place in the stream: where a retry starts again.
    pub sequence: String,
    /// The events the save wrote, or why they cannot be read.
    pub events: Result<Vec<BusEvent>, String>,
    /// The record as received, kept with the reason when it cannot be read.
    pub raw: Value,
}

/// Publishes what the stream carries.
pub struct Relay {
    bus: Arc<dyn EventBus>,
    dead_letters: Arc<dyn DeadLetters>,
    /// Where executions' starts and ends are counted, on hosts that chart them.
    metrics: Option<Arc<dyn Metrics>>,
    clock: Arc<dyn Clock>,
}

impl Relay {
    #[allow(missing_docs)]
    pub fn new(bus: Arc<dyn EventBus>, dead_letters: Arc<dyn DeadLetters>) -> Self {
        Self { bus, dead_letters, metrics: None, clock: Arc::new(SystemClock) }
    }

    /// Counts each execution's start and end in `metrics` as its event goes out (a record
    /// relayed twice, as at-least-once delivery may, is counted twice).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Publishes the events of `records`, record by record in order. Returns the sequence of
    /// the first record that could not be published, so the stream is read again from it and
    /// nothing is dropped (events of the records before it may go out twice, as any
    /// at-least-once delivery); `None` when all went. A record that cannot be read, or an event
    /// the bus can never take, is dead-lettered and passed over: it would never go, and it
    /// would hold back every record after it.
    pub async fn relay(&self, records: Vec<StreamRecord>) -> Option<String> {
        for record in records {
            let events = match record.events {
                Ok(events) => events,
                Err(reason) => {
                    self.dead_letters.keep("stage-advance", &reason, &record.raw).await;
                    continue;
                }
            };
            let mut sendable = Vec::with_capacity(events.len());
            for event in events {
                match self.bus.refusal(&event) {
                    None => sendable.push(event),
                    Some(reason) => {
                        let kept = serde_json::to_value(&event).unwrap_or_default();
                        self.dead_letters.keep("stage-advance", &reason, &kept).await;
                    }
                }
            }
            if sendable.is_empty() {
                continue;
            }
            if let Err(e) = self.bus.publish(&sendable).await {
                warn!(error = %e, "relaying saved events failed; the stream is read again from this record");
                return Some(record.sequence);
            }
            self.count(&sendable);
        }
        None
    }

    fn count(&self, events: &[BusEvent]) {
        let Some(metrics) = &self.metrics else { return };
        let now = self.clock.now();
        for e in events.iter().filter(|e| e.detail_type == PIPELINE_DETAIL_TYPE) {
            let pipeline = e.detail["pipeline"].as_str().unwrap_or_default().to_owned();
            let metric = match e.detail["state"].as_str() {
                Some("STARTED") => Metric::ExecutionStarted { pipeline },
                Some(s @ ("SUCCEEDED" | "FAILED" | "STOPPED" | "SUPERSEDED")) => {
                    Metric::ExecutionEnded { pipeline, status: s.to_owned() }
                }
                _ => continue,
            };
            metrics.record(&metric, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::ports::bus::BusError;

    /// Takes events until told to fail; refuses any event whose detail says `huge`.
    #[derive(Default)]
    struct Bus {
        published: Mutex<Vec<String>>,
        fail_at: Option<String>,
    }

    #[async_trait]
    impl EventBus for Bus {
        async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError> {
            let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
            for e in events {
                if Some(&e.detail_type) == self.fail_at.as_ref() {
                    return Err(BusError::Unavailable("down".into()));
                }
                published.push(e.detail_type.clone());
            }
            Ok(())
        }

        fn refusal(&self, event: &BusEvent) -> Option<String> {
            (event.detail == json!("huge")).then(|| "too large".to_owned())
        }
    }

    #[derive(Default)]
    struct Kept(Mutex<Vec<String>>);

    #[async_trait]
    impl DeadLetters for Kept {
        async fn keep(&self, _: &str, reason: &str, _: &Value) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(reason.to_owned());
        }
    }

    fn event(name: &str, detail: Value) -> BusEvent {
        BusEvent {
            source: "s".into(),
            detail_type: name.into(),
            resources: vec![],
            detail,
            trace: None,
        }
    }

    fn record(seq: &str, events: Result<Vec<BusEvent>, String>) -> StreamRecord {
        StreamRecord { sequence: seq.into(), events, raw: json!({"seq": seq}) }
    }

    #[tokio::test]
    async fn records_go_in_order_and_what_can_never_go_is_kept_not_retried() {
        let bus = Arc::new(Bus::default());
        let kept = Arc::new(Kept::default());
        let relay = Relay::new(bus.clone(), kept.clone());
        let failed = relay
            .relay(vec![
                record("1", Ok(vec![event("a", json!({})), event("big", json!("huge"))])),
                record("2", Err("unreadable".into())),
                record("3", Ok(vec![event("b", json!({}))])),
            ])
            .await;
        assert_eq!(failed, None);
        assert_eq!(*bus.published.lock().unwrap_or_else(|e| e.into_inner()), ["a", "b"]);
        assert_eq!(*kept.0.lock().unwrap_or_else(|e| e.into_inner()), ["too large", "unreadable"]);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_published_is_where_the_stream_is_read_again() {
        let bus = Arc::new(Bus { fail_at: Some("b".into()), ..Bus::default() });
        let relay = Relay::new(bus.clone(), Arc::new(Kept::default()));
        let failed = relay
            .relay(vec![
                record("1", Ok(vec![event("a", json!({}))])),
                record("2", Ok(vec![event("b", json!({}))])),
                record("3", Ok(vec![event("c", json!({}))])),
            ])
            .await;
        assert_eq!(failed.as_deref(), Some("2"));
        assert_eq!(
            *bus.published.lock().unwrap_or_else(|e| e.into_inner()),
            ["a"],
            "3 waits for 2"
        );
    }

    #[derive(Default)]
    struct Counted(Mutex<Vec<Metric>>);

    impl Metrics for Counted {
        fn record(&self, metric: &Metric, _: baton_core::engine::Millis) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(metric.clone());
        }
    }

    #[tokio::test]
    async fn executions_are_counted_as_their_events_go_out_and_not_before() {
        let bus = Arc::new(Bus { fail_at: Some("b".into()), ..Bus::default() });
        let counted = Arc::new(Counted::default());
        let relay = Relay::new(bus, Arc::new(Kept::default())).with_metrics(counted.clone());
        let execution =
            |state: &str| event(PIPELINE_DETAIL_TYPE, json!({"pipeline": "app", "state": state}));
        let stage = event("CodePipeline Stage Execution State Change", json!({"state": "STARTED"}));
        relay
            .relay(vec![
                record("1", Ok(vec![execution("STARTED"), stage])),
                record("2", Ok(vec![execution("RESUMED"), execution("FAILED")])),
                // Not published: not counted.
                record("3", Ok(vec![event("b", json!({})), execution("SUCCEEDED")])),
            ])
            .await;
        let app = || "app".to_owned();
        assert_eq!(
            *counted.0.lock().unwrap_or_else(|e| e.into_inner()),
            [
                Metric::ExecutionStarted { pipeline: app() },
                Metric::ExecutionEnded { pipeline: app(), status: "FAILED".into() },
            ]
        );
    }
}
