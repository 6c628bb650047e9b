//! The Lambda functions' handlers with their tests, compiled together into this crate's one test
//! binary. Each function's handler (and its `mod tests`) stays beside its `main.rs`; the
//! functions' own binaries are built without a test harness (`test = false`).
#![cfg(test)]

#[path = "../../../functions/action-worker/src/handler.rs"]
mod action_worker;
#[path = "../../../functions/api/src/handler.rs"]
mod api;
#[path = "../../../functions/approval/src/handler.rs"]
mod approval;
#[path = "../../../functions/stage-advance/src/handler.rs"]
mod stage_advance;
#[path = "../../../functions/trigger/src/handler.rs"]
mod trigger;
