//! Baton's application layer: what the system does, written once against ports and knowing no
//! host.
//!
//! - [`ports`]: what the services need from the world (state, artifacts, bus, notices, clock,
//!   providers, secrets), as traits over domain types.
//! - [`service`]: the handlers of the four functions (trigger, stage-advance, action-worker,
//!   approval), the pipeline admin the API and both runtimes share, the job desk, webhooks.
//! - [`providers`]: the providers that run the same on every host (custom job workers,
//!   pipeline invokes, rules over actions) and the helpers every provider shares.
//! - [`config`]: settings read from the environment.
#![warn(missing_docs)]

pub mod adapters;
pub mod config;
pub mod ports;
pub mod providers;
pub mod service;
