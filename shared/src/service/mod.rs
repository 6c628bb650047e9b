//! The handlers of the four functions, written once against the ports.
//!
//! Each service loads what it needs, decides (the engine decides for stage-advance), saves, and
//! only then performs effects. What can never succeed is reported as [`ServiceError::Permanent`]
//! so the caller dead-letters it instead of retrying.

mod action_worker;
mod error;
mod notices;
mod stage_advance;
mod trigger;

pub use action_worker::ActionWorker;
pub use error::{ErrorKind, ServiceError};
pub use notices::Notices;
pub use stage_advance::{Outcome, StageAdvance};
pub use trigger::{SourceChange, SourcePush, Trigger};
