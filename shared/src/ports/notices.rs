//! Notices for people: failures and approvals.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::BoxError;

/// A message for a topic (SNS on AWS; mail and the terminal on one machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The topic ARN, or a local topic name.
    pub topic: Option<String>,
    /// The subject line.
    pub subject: String,
    /// The body: JSON for machine subscribers, or text.
    pub message: String,
}

/// How sending fails.
#[derive(Debug, thiserror::Error)]
#[error("notice could not be sent")]
pub struct NoticeError(#[source] pub BoxError);

/// Sends notices.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notice.
    async fn send(&self, notice: &Notice) -> Result<(), NoticeError>;
}
