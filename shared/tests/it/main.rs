//! Integration tests of Baton's services and adapters, built as one binary.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop loudly

mod alarm_rule;
mod approvals;
mod artifacts;
mod aws_approvals;
mod aws_artifacts;
mod aws_bus;
mod aws_providers;
mod aws_scale;
mod aws_secrets;
mod aws_state;
mod aws_support;
mod bench_workloads;
mod control_api;
mod crash_in_commit;
mod declared_stores;
mod embedded;
mod fake_codedeploy;
mod fake_github;
mod handler_simulation;
mod job_desk;
mod lambda_invoke;
mod lambda_rule;
mod pipeline_invoke;
mod pipeline_roles;
mod providers;
mod routing;
mod running_jobs;
mod smtp_tls;
mod stage_advance_batches;
mod stage_advance_ticks;
mod state;
mod worker_metrics;

use baton::ports::state::PipelineRecord;
use baton_core::declaration::PipelineDeclaration;
use baton_core::engine::Millis;
use baton_core::plan::Plan;

/// The record a store keeps of `declaration`, planned in `region` of account 111111111111 and
/// created and updated `at`.
pub(crate) fn planned(
    declaration: PipelineDeclaration,
    region: &str,
    at: Millis,
) -> PipelineRecord {
    let placement = baton::embedded::placement("111111111111", region);
    let plan = Plan::from_declaration(&declaration, &placement).unwrap();
    PipelineRecord { declaration, plan, created: at, updated: at, tags: Vec::new() }
}
