//! Integration tests of the pure core, built as one binary.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop loudly

mod declarations;
mod engine_bench;
mod events;
mod simulation;
