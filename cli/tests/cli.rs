//! Tests of the `baton` binary, as one test binary: each subcommand's tests are in `cli/<name>.rs`
//! (a bare `mod x;` would look in `tests/`, where cargo also builds every file as its own binary).
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop loudly

#[path = "cli/api.rs"]
mod api;
#[path = "cli/api_sdk.rs"]
mod api_sdk;
#[path = "cli/approvals.rs"]
mod approvals;
#[path = "cli/conditions.rs"]
mod conditions;
#[path = "cli/console.rs"]
mod console;
#[path = "cli/jobs.rs"]
mod jobs;
#[path = "cli/names.rs"]
mod names;
#[path = "cli/output.rs"]
mod output;
#[path = "cli/proxy.rs"]
mod proxy;
#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/rules.rs"]
mod rules;
#[path = "cli/run.rs"]
mod run;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/validate.rs"]
mod validate;
#[path = "cli/webhooks.rs"]
mod webhooks;
