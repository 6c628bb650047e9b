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
    /// The same for people (mail, the terminal), when `message` is JSON for machines.
    #[serde(default)]
    pub text: Option<String>,
}

impl Notice {
    /// What a person should read.
    pub fn for_people(&self) -> &str {
        self.text.as_deref().unwrap_or(&self.message)
    }
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

/// Sends each notice through every notifier it holds (the terminal and mail, say). All are
/// tried; the first failure is returned so the notice is retried.
pub struct AllOf(pub Vec<std::sync::Arc<dyn Notifier>>);

#[async_trait]
impl Notifier for AllOf {
    async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        let mut first_error = None;
        for notifier in &self.0 {
            if let Err(e) = notifier.send(notice).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
