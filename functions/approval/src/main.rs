//! `approval` Lambda: sends the notice when an execution reaches a manual approval.
//!
//! Wiring only. The notice lives in `baton::service::Notices`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let notices = aws.approval_notices();
    let (notices, aws) = (&notices, &aws);
    run(service_fn(move |event| async move { handler::handle(notices, aws, event).await })).await
}
