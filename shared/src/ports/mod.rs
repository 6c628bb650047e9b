//! The ports: what the services need from the world, as small traits over domain types.
//!
//! No SDK type appears here. Each adapter (embedded, AWS, in-memory) implements these and
//! translates its own errors at the boundary.

pub mod approvals;
pub mod artifacts;
pub mod bus;
pub mod clock;
pub mod jobs;
pub mod notices;
pub mod provider;
pub mod state;

/// A boxed error from an adapter, kept as the source of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
