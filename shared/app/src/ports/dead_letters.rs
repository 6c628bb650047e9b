//! Where what can never succeed is kept, with why, instead of being retried until it expires.

use async_trait::async_trait;
use serde_json::Value;

/// Keeps payloads that can never succeed.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps `payload`, which `function` could not handle, with `reason`. If even that fails it
    /// is logged, never retried: a malformed payload stays malformed.
    async fn keep(&self, function: &str, reason: &str, payload: &Value);
}
