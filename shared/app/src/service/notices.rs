//! Failure notices for people. Approval notices come from [`super::Approvals`].

use std::sync::Arc;

use baton_core::engine::FailureNotice;

use super::ServiceError;
use crate::ports::notices::{Notice, Notifier};
use baton_protocol::bus_events::BusEvent;

/// Turns bus events into notices.
pub struct Notices {
    notifier: Arc<dyn Notifier>,
}

impl Notices {
    #[allow(missing_docs)]
    pub fn new(notifier: Arc<dyn Notifier>) -> Self {
        Self { notifier }
    }

    /// Sends the notice an event calls for.
    ///
    /// # Errors
    /// A decode error (dead-letter) or the notifier's error (retry).
    pub async fn handle(&self, event: &BusEvent) -> Result<(), ServiceError> {
        let notice = {
            let n: FailureNotice = event.failure_notice()?;
            Notice {
                topic: None,
                subject: format!("Pipeline {} failed in stage {}", n.pipeline, n.stage),
                message: format!(
                    "Execution {} of pipeline {} failed in stage {}.\n{}",
                    n.execution_id,
                    n.pipeline,
                    n.stage,
                    n.failures.join("\n")
                ),
                text: None,
            }
        };
        self.notifier.send(&notice).await?;
        Ok(())
    }
}
