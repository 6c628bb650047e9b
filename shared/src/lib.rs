//! Baton's services, ports and adapters.
//!
//! - [`ports`]: what the services need from the world (state, artifacts, bus, notices, clock,
//!   providers), as traits over domain types.
//! - [`service`]: the handlers of the four functions (trigger, stage-advance, action-worker,
//!   approval), written once against the ports.
//! - [`adapters`]: the ports on one machine (SQLite, encrypted files, an in-process bus).
//! - [`providers`]: action providers that run on one machine.
//! - [`bus_events`]: the events the functions exchange.
//! - [`api`]: the control API, CodePipeline's own protocol over the store and the services.
#![warn(missing_docs)]

pub mod adapters;
pub mod api;
pub mod config;
#[cfg(feature = "local")]
pub mod embedded;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ports;
pub mod providers;
pub mod service;

pub use baton_core as core;
pub use baton_protocol::{bus_events, routing};
