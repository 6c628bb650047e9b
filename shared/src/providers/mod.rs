//! Action providers.

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

use crate::ports::provider::JobResult;

/// Why an attempt failed, before it becomes a [`JobResult::Failed`]; lets providers use `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Failure {
    /// The action is configured in a way that cannot work (a missing repository, a bad key).
    pub(crate) fn configuration(message: impl Into<String>) -> Self {
        Self { code: "ConfigurationError", message: message.into() }
    }

    /// The action's own work failed (a build command, a refused AWS request).
    pub(crate) fn job(message: impl Into<String>) -> Self {
        Self { code: "JobFailed", message: message.into() }
    }

    /// The action ran past its deadline.
    pub(crate) fn timed_out(message: impl Into<String>) -> Self {
        Self { code: "TimedOut", message: message.into() }
    }
}

impl From<Failure> for JobResult {
    fn from(f: Failure) -> Self {
        JobResult::Failed { code: f.code.to_string(), message: f.message }
    }
}
