//! The adapters every host shares: services on the internet that Baton calls the same way from
//! one machine and from a Lambda function.

pub mod github;
