//! Implementations of the ports.

pub mod local;
