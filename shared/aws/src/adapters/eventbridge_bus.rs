//! The event bus on AWS: EventBridge `PutEvents` on one named bus.
//!
//! Contract: every event is either accepted by EventBridge or reported back in
//! [`BusError::Partial`] with its index in the caller's slice; none is dropped silently. The
//! caller keeps reported events in the outbox, where the sweeper sends them again.
//!
//! `PutEvents` can accept some entries of a request and refuse others (throttling, internal
//! errors), answering 200 with per-entry error codes that the SDK's retries never see. So the
//! batching and the per-entry retry live here, in [`publish_batched`], written against the
//! small [`PutEvents`] trait so that they can be tested with a fake instead of the network.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::warn;

use baton_app::ports::BoxError;
use baton_app::ports::bus::{BusError, EventBus};
use baton_protocol::bus_events::BusEvent;

/// At most 10 entries per `PutEvents` request, and 256 KB for the request's entries together
/// (so for any one entry). Sizes count as EventBridge counts them: see [`Entry::size`].
/// <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>,
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>
pub const MAX_ENTRIES: usize = 10;
/// See [`MAX_ENTRIES`].
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// One event ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Its index in the slice given to [`publish_batched`].
    pub index: usize,
    /// `Source`.
    pub source: &'a str,
    /// `DetailType`.
    pub detail_type: &'a str,
    /// `Detail`, serialised.
    pub detail: String,
    /// `Resources`.
    pub resources: &'a [String],
    /// `TraceHeader`: the X-Ray trace the event carries on (not counted in its size).
    pub trace: Option<&'a str>,
}

impl Entry<'_> {
    /// The entry's size as EventBridge counts it against the request limit: the UTF-8 bytes of
    /// source, detail-type, detail and each resource (plus 14 for a `Time`, which we never set).
    pub fn size(&self) -> usize {
        self.source.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// Whether `event` can ever be sent: EventBridge refuses an entry over [`MAX_REQUEST_BYTES`],
/// however often it is tried.
pub fn can_be_sent(event: &BusEvent) -> bool {
    let detail = serde_json::to_string(&event.detail).map_or(0, |d| d.len());
    let entry = Entry {
        index: 0,
        source: &event.source,
        detail_type: &event.detail_type,
        detail: String::new(),
        resources: &event.resources,
        trace: None,
    };
    entry.size() + detail <= MAX_REQUEST_BYTES
}

/// One `PutEvents` request.
#[async_trait]
pub trait PutEvents: Send + Sync {
    /// Sends `entries` (at most [`MAX_ENTRIES`], [`MAX_REQUEST_BYTES`] together) and returns,
    /// for each in order, `None` if it was accepted or the reason it was not. An `Err` means
    /// the request as a whole failed (after the SDK's own retries): nothing is known accepted.
    /// Implementations log the cause of an `Err`; [`publish_batched`] only reports indices.
    async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<Option<String>>, BoxError>;
}

/// How often entries a partially failed request refused are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per entry, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms then 200 ms apart: enough to ride out a throttle, short enough
    /// for a Lambda invocation. What still fails stays in the outbox for the sweeper.
    fn default() -> Self {
        Self { attempts: 3, backoff: Duration::from_millis(100) }
    }
}

/// Sends `events` through `api` in requests of at most [`MAX_ENTRIES`] entries and
/// [`MAX_REQUEST_BYTES`], retrying refused entries as `policy` says.
///
/// # Errors
/// [`BusError::Partial`] with the indices (ascending) of every event not accepted: too large to
/// send, still refused after the last attempt, or never sent because a request failed after
/// others had gone through. [`BusError::Unavailable`] when a request failed before any event
/// was accepted.
pub async fn publish_batched(
    api: &dyn PutEvents,
    events: &[BusEvent],
    policy: RetryPolicy,
) -> Result<(), BusError> {
    let mut failed = Vec::new();
    let mut pending = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let entry = Entry {
            index,
            source: &event.source,
            detail_type: &event.detail_type,
            detail: serde_json::to_string(&event.detail)
                .map_err(|e| BusError::Unavailable(Box::new(e)))?,
            resources: &event.resources,
            trace: event.trace.as_deref(),
        };
        if entry.size() > MAX_REQUEST_BYTES {
            warn!(
                index,
                detail_type = entry.detail_type,
                bytes = entry.size(),
                "event over EventBridge's 256 KB limit; not sent"
            );
            failed.push(index);
        } else {
            pending.push(entry);
        }
    }
    let mut accepted = 0;
    let mut backoff = policy.backoff;
    for attempt in 1..=policy.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        let mut refused: Vec<Entry<'_>> = Vec::new();
        let mut queue = pending.into_iter().peekable();
        while queue.peek().is_some() {
            let mut batch = Vec::with_capacity(MAX_ENTRIES);
            let mut bytes = 0;
            while let Some(next) = queue
                .next_if(|e| batch.len() < MAX_ENTRIES && bytes + e.size() <= MAX_REQUEST_BYTES)
            {
                bytes += next.size();
                batch.push(next);
            }
            let outcomes = match api.put_events(&batch).await {
                Ok(outcomes) => outcomes,
                Err(e) if accepted == 0 => return Err(BusError::Unavailable(e)),
                // The adapter logged the cause; the events it concerns are reported, not lost.
                Err(_) => {
                    failed.extend(refused.iter().map(|e| e.index));
                    failed.extend(batch.iter().map(|e| e.index));
                    failed.extend(queue.map(|e| e.index));
                    failed.sort_unstable();
                    return Err(BusError::Partial(failed));
                }
            };
            for (i, entry) in batch.into_iter().enumerate() {
                // A response with fewer results than entries says nothing of the rest: resend.
                match outcomes.get(i) {
                    Some(None) => accepted += 1,
                    Some(Some(reason)) => {
                        warn!(index = entry.index, attempt, reason, "event refused by EventBridge");
                        refused.push(entry);
                    }
                    None => refused.push(entry),
                }
            }
        }
        pending = refused;
        if pending.is_empty() {
            break;
        }
    }
    failed.extend(pending.iter().map(|e| e.index));
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_unstable();
    Err(BusError::Partial(failed))
}

/// [`EventBus`] on an EventBridge bus.
pub struct EventBridgeBus {
    client: Client,
    bus: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// Publishes to the bus named `bus` (a name, or an ARN for a bus in another account)
    /// with the default [`RetryPolicy`].
    pub fn new(client: Client, bus: String) -> Self {
        Self { client, bus, retry: RetryPolicy::default() }
    }

    /// The same bus with another retry policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }
}

#[async_trait]
impl PutEvents for EventBridgeBus {
    async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<Option<String>>, BoxError> {
        let entries = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(e.source)
                    .detail_type(e.detail_type)
                    .detail(e.detail.clone())
                    .set_resources((!e.resources.is_empty()).then(|| e.resources.to_vec()))
                    .set_trace_header(e.trace.map(str::to_owned))
                    .build()
            })
            .collect();
        let out =
            self.client.put_events().set_entries(Some(entries)).send().await.map_err(|e| {
                warn!(error = %DisplayErrorContext(&e), bus = self.bus, "PutEvents failed");
                Box::new(e) as BoxError
            })?;
        Ok(out
            .entries()
            .iter()
            .map(|r| {
                r.error_code().map(|code| format!("{code}: {}", r.error_message().unwrap_or("")))
            })
            .collect())
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError> {
        // Relayed events keep the trace they were saved with; new ones take this invocation's.
        let events = super::traced(events, super::invocation_trace().as_deref());
        publish_batched(self, &events, self.retry).await
    }

    fn refusal(&self, event: &BusEvent) -> Option<String> {
        (!can_be_sent(event)).then(|| "the event is over EventBridge's 256 KB limit".to_owned())
    }
}
