//! What operators chart: executions started and ended, and each action attempt's end with its
//! provider and duration. On AWS these become CloudWatch metrics (the embedded metric format);
//! one machine records none (`baton history` and the events hold the same facts).

use baton_core::engine::Millis;

/// One measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// An execution of `pipeline` started.
    ExecutionStarted {
        #[allow(missing_docs)]
        pipeline: String,
    },
    /// An execution of `pipeline` ended as `status` (`SUCCEEDED`, `FAILED`, `STOPPED`,
    /// `SUPERSEDED`).
    ExecutionEnded {
        #[allow(missing_docs)]
        pipeline: String,
        #[allow(missing_docs)]
        status: String,
    },
    /// An action attempt of `provider` (`Owner/Category/Provider`) ended after `duration`.
    ActionEnded {
        #[allow(missing_docs)]
        provider: String,
        #[allow(missing_docs)]
        succeeded: bool,
        /// From the attempt's start to its end, in milliseconds.
        duration: Millis,
    },
}

/// Where measurements go. Recording never fails the work it measures.
pub trait Metrics: Send + Sync {
    /// Records `metric`, taken at `at`.
    fn record(&self, metric: &Metric, at: Millis);
}
