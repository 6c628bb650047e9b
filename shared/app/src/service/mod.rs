//! The handlers of the four functions, written once against the ports.
//!
//! Each service loads what it needs, decides (the engine decides for stage-advance), saves, and
//! only then performs effects. What can never succeed is reported as [`ServiceError::Permanent`]
//! so the caller dead-letters it instead of retrying.

mod action_worker;
mod approval_page;
mod approvals;
mod error;
mod job_desk;
mod notices;
mod pipelines;
mod relay;
mod rule_checks;
mod stage_advance;
mod trigger;
pub mod webhooks;
mod work_folders;

pub use action_worker::ActionWorker;
pub use approval_page::{HEADERS as APPROVAL_PAGE_HEADERS, Page};
pub use approvals::{ApprovalSettings, Approvals, DecisionForm};
pub use error::{ErrorKind, ServiceError};
pub use job_desk::{
    CUSTOM, DeskError, JobClient, JobDesk, MAX_CUSTOM_ACTION_TYPES, RegisteredPartner, THIRD_PARTY,
};
pub use notices::Notices;
pub use pipelines::{AdminError, PipelineAdmin, runnable};
pub use relay::{Relay, StreamRecord};
pub use stage_advance::{Outcome, StageAdvance, TICK_CONCURRENCY};
pub use trigger::{SourceChange, SourcePush, StarterSlot, Trigger};
