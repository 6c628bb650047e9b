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
mod state;
mod worker_metrics;
