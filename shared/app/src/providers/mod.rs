//! Action providers, and [`archive`]: safe zip and unzip, which every provider shares
//! (artifacts are zips).

pub mod action_rule;
pub mod archive;
pub mod job_worker;
pub mod pipeline_invoke;

use crate::ports::BoxError;
use crate::ports::provider::{JobResult, ProviderError};

/// Why an attempt failed, before it becomes a [`JobResult::Failed`]; lets providers use `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// CodePipeline's failure type (`JobFailed`, `ConfigurationError`, `TimedOut`).
    pub code: &'static str,
    /// What the user reads.
    pub message: String,
}

impl Failure {
    /// The action is configured in a way that cannot work (a missing repository, a bad key).
    pub fn configuration(message: impl Into<String>) -> Self {
        Self { code: "ConfigurationError", message: message.into() }
    }

    /// The action's own work failed (a build command, a refused AWS request).
    pub fn job(message: impl Into<String>) -> Self {
        Self { code: "JobFailed", message: message.into() }
    }

    /// The action ran past its deadline.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self { code: "TimedOut", message: message.into() }
    }
}

impl From<Failure> for JobResult {
    fn from(f: Failure) -> Self {
        JobResult::Failed { code: f.code.to_string(), message: f.message }
    }
}

/// Why a provider stopped short: the action failed, or a service could not be used right now
/// (retried later).
#[derive(Debug)]
pub enum Stop {
    /// The action failed; the attempt ends with this.
    Failed(Failure),
    /// A service could not be reached; the worker tries again.
    Unavailable(BoxError),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}

/// The port's answer for a provider's outcome.
pub fn finish(outcome: Result<JobResult, Stop>) -> Result<JobResult, ProviderError> {
    match outcome {
        Ok(result) => Ok(result),
        Err(Stop::Failed(failure)) => Ok(failure.into()),
        Err(Stop::Unavailable(source)) => Err(ProviderError::Unavailable(source)),
    }
}

/// Whether an unresolved configuration value still holds a `#{...}` reference, so it can only
/// be judged once resolved at run time.
pub fn has_reference(value: &str) -> bool {
    value.contains("#{")
}

/// Runs blocking file work (zip, copy, hash) off the async threads, turning a panic or a
/// cancelled task into a failure instead of tearing the worker down.
pub async fn blocking<T, F>(work: F) -> Result<T, Failure>
where
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(Failure::job(format!("A file operation stopped unexpectedly: {e}.")))
    })
}

pub use crate::ports::provider::{SMALL_FILE_BYTES, is_small_file};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_small_regular_file_is_worked_on_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.zip");
        let large = dir.path().join("large.zip");
        std::fs::write(&small, vec![0u8; SMALL_FILE_BYTES as usize]).unwrap();
        std::fs::write(&large, vec![0u8; SMALL_FILE_BYTES as usize + 1]).unwrap();
        assert!(is_small_file(&small));
        assert!(!is_small_file(&large));
        assert!(!is_small_file(dir.path()), "a folder");
        assert!(!is_small_file(&dir.path().join("missing.zip")));
    }
}
