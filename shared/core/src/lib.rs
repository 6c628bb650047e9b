//! The pure core of Baton.
//!
//! - [`declaration`]: CodePipeline's pipeline JSON, read losslessly and validated.
//! - [`catalog`]: what CodePipeline knows about each action provider.
//! - [`plan`]: a validated pipeline, in the form the engine runs.
//! - [`engine`]: `(state, input, now) -> (state', effects)` for executions and the stage locks,
//!   queues and transitions they share.
//! - [`rules`]: stage conditions' rules that the engine decides itself.
//! - [`triggers`]: which git pushes and pull requests start a pipeline.
//! - [`events`]: the public, CodePipeline-shaped state-change events.
//!
//! Rule: no I/O, no clock, no randomness. Time and entropy come in with each input.
#![warn(missing_docs)]

pub mod catalog;
pub mod declaration;
pub mod engine;
pub mod events;
pub mod plan;
pub mod rules;
pub mod triggers;
pub mod variables;
