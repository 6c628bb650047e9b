//! `action-worker` Lambda: runs one action attempt with its provider, in the action's account
//! and region.
//!
//! Wiring only. What running an action means lives in `baton::service::ActionWorker`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let worker = aws.action_worker();
    let (worker, aws) = (&worker, &aws);
    run(service_fn(move |event| async move { handler::handle(worker, aws, event).await })).await
}
