//! Action providers.

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;
