//! `approval` Lambda: sends the notice when an execution reaches a manual approval, and serves
//! the pages behind the notice's approve and reject links (as the approval pages function).
//!
//! Wiring only. The notice and the pages live in `baton::service::Approvals`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let approvals = aws.approvals();
    let (approvals, aws) = (&approvals, &aws);
    run(service_fn(move |event| async move { handler::handle(approvals, aws, event).await })).await
}
