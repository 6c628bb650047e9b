//! `trigger` Lambda: starts executions from source changes (CodeCommit pushes, S3 uploads).
//!
//! Wiring only. Which pipelines a change starts lives in `baton::service::Trigger`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let trigger = aws.trigger();
    let (trigger, aws) = (&trigger, &aws);
    run(service_fn(move |event| async move { handler::handle(trigger, aws, event).await })).await
}
