//! The ports: what the services need from the world, as small traits over domain types.
//!
//! No SDK type appears here. Each adapter (embedded, AWS, in-memory) implements these and
//! translates its own errors at the boundary.

pub mod approvals;
pub mod artifacts;
pub mod bus;
pub mod clock;
pub mod dead_letters;
pub mod job_artifacts;
pub mod job_queue;
pub mod jobs;
pub mod metrics;
pub mod notices;
pub mod provider;
pub mod repository_hooks;
pub mod roles;
pub mod secrets;
pub mod state;
pub mod webhooks;

/// A boxed error from an adapter, kept as the source of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A UUID that `scope` and `seed` always give, and nothing else does in practice.
pub fn stable_id(scope: &str, seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{scope}\n{seed}").as_bytes());
    let mut bits = [0u8; 16];
    bits.copy_from_slice(&digest[..16]);
    baton_core::events::format_uuid(u128::from_be_bytes(bits))
}

/// An action attempt's id (CodePipeline's `actionExecutionId`): stable for one attempt of one
/// action in one execution.
pub fn action_execution_id(execution: &str, stage: &str, action: &str, attempt: u32) -> String {
    stable_id(execution, &format!("{stage}\n{action}\n{attempt}"))
}
