//! Notices for people: failure notices, and the approval notice until approvals have their own
//! function with signed links.

use std::sync::Arc;

use baton_core::engine::{ActionRequest, FailureNotice};

use super::ServiceError;
use crate::bus_events::{ACTION_REQUESTED, BusEvent, FAILURE_NOTICE};
use crate::ports::notices::{Notice, Notifier};

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
        let notice = match event.detail_type.as_str() {
            FAILURE_NOTICE => {
                let n: FailureNotice = event.decode()?;
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
                }
            }
            ACTION_REQUESTED => {
                let r: ActionRequest = event.decode()?;
                approval_notice(&r)
            }
            other => {
                return Err(crate::bus_events::DecodeError::UnexpectedType(other.into()).into());
            }
        };
        self.notifier.send(&notice).await?;
        Ok(())
    }
}

fn approval_notice(r: &ActionRequest) -> Notice {
    let custom = r.configuration.get("CustomData").map(String::as_str).unwrap_or_default();
    let link = r.configuration.get("ExternalEntityLink").map(String::as_str).unwrap_or_default();
    Notice {
        topic: r.configuration.get("NotificationArn").cloned(),
        subject: format!("APPROVAL NEEDED: {} / {} / {}", r.pipeline, r.stage, r.action),
        message: format!(
            "Pipeline {} is waiting for approval at {}/{} (execution {}).\n{custom}\n{link}\n\
             Approve with: baton approve {} {} {}\nReject with:  baton reject {} {} {}",
            r.pipeline,
            r.stage,
            r.action,
            r.execution_id,
            r.pipeline,
            r.stage,
            r.action,
            r.pipeline,
            r.stage,
            r.action
        ),
    }
}
