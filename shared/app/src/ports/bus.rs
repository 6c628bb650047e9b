//! The event bus: where the functions talk to each other.

use async_trait::async_trait;

use super::BoxError;
use baton_protocol::bus_events::BusEvent;

/// How publishing fails.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Some entries were not accepted; their indices are listed. Publish those again later:
    /// the outbox keeps them until then.
    #[error("{} of the events were not accepted", .0.len())]
    Partial(Vec<usize>),
    /// The bus could not be reached. Safe to retry.
    #[error("event bus unavailable")]
    Unavailable(#[source] BoxError),
}

/// Publishes events; delivery is at least once.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `events`, in order.
    async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError>;

    /// Why this bus can never take `event` (too large, say), however often it is tried.
    fn refusal(&self, _event: &BusEvent) -> Option<String> {
        None
    }
}
