//! The messages Baton's functions exchange, and where they go.
//!
//! - [`bus_events`]: the events on the bus: CodePipeline's public state changes, with the
//!   messages that ride on them (an action's request on its STARTED event, its result on its
//!   end, a failure notice on the execution's FAILED event).
//! - [`routing`]: which function receives which event, as `template.yaml`'s rules say, with
//!   EventBridge's pattern matching for the in-process bus.
//!
//! Pure, like the core: it knows no runtime, so both hosts route by the same rules.
#![warn(missing_docs)]

pub mod bus_events;
pub mod routing;
