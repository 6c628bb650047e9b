//! Integration tests of Baton's services and adapters, built as one binary.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop loudly

mod artifacts;
mod embedded;
mod providers;
mod routing;
mod state;
