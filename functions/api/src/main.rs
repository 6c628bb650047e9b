//! `api` Lambda: CodePipeline's control API (JSON 1.1) behind a function URL whose AWS_IAM auth
//! has already verified the caller's SigV4 signature.
//!
//! Wiring only. The operations live in `baton::api::ControlApi`.

mod handler;

use baton::config::Config;
use baton::lambda::Aws;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::connect(&config).await;
    let api = aws.control_api();
    let api = &api;
    run(service_fn(move |event| async move { Ok::<_, Error>(handler::handle(api, event).await) }))
        .await
}
