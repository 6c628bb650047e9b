//! Baton assembled: every layer under one set of paths, for the CLI, the functions and the tests.
//!
//! No code lives here. Each layer is a crate of its own, so the compiler keeps the arrows that
//! `ARCHITECTURE.md` draws between them:
//!
//! - [`ports`], [`service`], [`config`] and the host-neutral [`providers`]: `baton-app`;
//! - [`api`]: `baton-api`, CodePipeline's protocol over the app, knowing no runtime;
//! - [`adapters::local`], [`providers::local`] and [`embedded`]: `baton-local` (feature `local`);
//! - [`adapters::aws`], [`providers::aws`] and [`lambda`]: `baton-aws` (features `aws`, `lambda`);
//! - [`bus_events`] and [`routing`]: `baton-protocol`; [`core`]: `baton-core`.
#![warn(missing_docs)]

pub use baton_api as api;
pub use baton_app::{config, ports, service};
#[cfg(feature = "lambda")]
pub use baton_aws::lambda;
pub use baton_core as core;
#[cfg(feature = "local")]
pub use baton_local::embedded;
pub use baton_protocol::{bus_events, routing};

/// The ports' implementations, one module per host.
pub mod adapters {
    pub use baton_app::adapters::*;
    #[cfg(feature = "aws")]
    pub use baton_aws::adapters as aws;
    #[cfg(feature = "local")]
    pub use baton_local::adapters as local;
}

/// Action and rule providers: the host-neutral ones, and one module per host.
pub mod providers {
    pub use baton_app::providers::*;
    #[cfg(feature = "aws")]
    pub use baton_aws::providers as aws;
    #[cfg(feature = "local")]
    pub use baton_local::providers as local;
}
