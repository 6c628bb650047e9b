//! The five Lambda functions' handlers with their tests, compiled into this test binary beside
//! the end-to-end scenarios: one more binary would link the whole AWS SDK again (about 100 MB
//! and a link). Each handler (and its `mod tests`) stays beside its function's `main.rs`; the
//! functions' own binaries are built without a test harness (`test = false`).

#[path = "../../../../functions/action-worker/src/handler.rs"]
mod action_worker;
#[path = "../../../../functions/api/src/handler.rs"]
mod api;
#[path = "../../../../functions/approval/src/handler.rs"]
mod approval;
#[path = "../../../../functions/stage-advance/src/handler.rs"]
mod stage_advance;
#[path = "../../../../functions/trigger/src/handler.rs"]
mod trigger;
