//! Baton on AWS: the ports on DynamoDB, S3 with KMS, EventBridge, SNS and STS ([`adapters`]),
//! the providers that call AWS services in the action's account and region ([`providers`]), and
//! with the `lambda` feature what the Lambda functions share ([`lambda`]).
#![warn(missing_docs)]

pub mod adapters;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod providers;
