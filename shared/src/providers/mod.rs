//! Action providers.

pub mod local;
