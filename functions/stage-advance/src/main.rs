//! `stage-advance` Lambda: applies bus events to executions, and on its schedule re-sends the
//! outbox and lets time pass for timeouts.
//!
//! Wiring only. What an input does lives in `baton::service::StageAdvance`; the decision itself
//! in `baton_core::engine`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    // Fail the init phase, not every invocation, when configuration is wrong.
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let service = aws.stage_advance();
    let (service, aws) = (&service, &aws);
    run(service_fn(move |event| async move { handler::handle(service, aws, event).await })).await
}
