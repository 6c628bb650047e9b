//! Notices on AWS: one SNS `Publish` per notice.
//!
//! Contract: a notice goes to its own topic when that is an SNS topic ARN (an approval
//! action's `NotificationArn`), otherwise to the default topic given at construction (local
//! topic names mean nothing on AWS). The subject is made acceptable to SNS rather than
//! refused, because a notice must not be lost over its subject line: SNS wants subjects of
//! fewer than 100 characters, without line breaks or control characters, and email clients
//! want ASCII. A message over SNS's 256 KB limit is refused before sending. A notice with a text
//! for people is sent with `MessageStructure=json`: mail gets the text, machines the JSON.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use tracing::warn;

use baton_app::ports::BoxError;
use baton_app::ports::notices::{Notice, NoticeError, Notifier};

/// "Subjects must be ... less than 100 characters long", and messages at most 256 KB.
/// <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>
const MAX_SUBJECT_CHARS: usize = 99;
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
enum SnsError {
    #[error("SNS Publish to {topic} failed")]
    Publish {
        topic: String,
        #[source]
        source: BoxError,
    },
    #[error("the notice \"{subject}\" is {bytes} bytes, over SNS's 256 KB message limit")]
    TooLarge { subject: String, bytes: usize },
}

/// [`Notifier`] on SNS topics.
pub struct SnsNotifier {
    client: Client,
    default_topic: String,
}

impl SnsNotifier {
    /// Publishes to `default_topic` (an SNS topic ARN) unless a notice names its own topic ARN.
    pub fn new(client: Client, default_topic: String) -> Self {
        Self { client, default_topic }
    }

    /// The topic a notice goes to.
    fn topic_for<'a>(&'a self, notice: &'a Notice) -> &'a str {
        match notice.topic.as_deref() {
            Some(t) if is_topic_arn(t) => t,
            _ => &self.default_topic,
        }
    }
}

/// `arn:<partition>:sns:<region>:<account>:<name>`.
fn is_topic_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

/// `subject` as SNS and mail clients accept it: printable ASCII (other characters become `?`,
/// line breaks and control characters spaces), trimmed, cut to 99 characters with `...`.
/// `None` when nothing is left, since SNS refuses an empty subject but not a missing one.
pub fn sns_subject(subject: &str) -> Option<String> {
    let cleaned: String = subject
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= MAX_SUBJECT_CHARS {
        return Some(trimmed.to_owned());
    }
    // Every character is ASCII now, so byte offsets are character offsets.
    Some(format!("{}...", trimmed[..MAX_SUBJECT_CHARS - 3].trim_end()))
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        // A notice with a text for people goes out per protocol: email subscribers read the
        // text, every other subscriber (SQS, Lambda, HTTPS, email-json) gets the JSON.
        let structured = notice.text.is_some();
        let body = match &notice.text {
            Some(text) => serde_json::json!({"default": notice.message, "email": text}).to_string(),
            None => notice.message.clone(),
        };
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(NoticeError(Box::new(SnsError::TooLarge {
                subject: notice.subject.clone(),
                bytes: body.len(),
            })));
        }
        let topic = self.topic_for(notice);
        let result = self
            .client
            .publish()
            .topic_arn(topic)
            .set_subject(sns_subject(&notice.subject))
            .message(&body)
            .set_message_structure(structured.then(|| "json".to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(source) => {
                warn!(topic, error = %DisplayErrorContext(&source), "SNS Publish failed");
                let source = Box::new(source);
                Err(NoticeError(Box::new(SnsError::Publish { topic: topic.to_owned(), source })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_multiline_subject_becomes_one_short_ascii_line() {
        let subject = format!("Déploiement\nfailed: {}", "x".repeat(200));
        let s = sns_subject(&subject).unwrap();
        assert_eq!(s.len(), 99);
        assert!(s.starts_with("D?ploiement failed: x"));
        assert!(s.ends_with("..."));
    }

    #[test]
    fn only_topic_arns_name_a_topic() {
        assert!(is_topic_arn("arn:aws:sns:eu-west-1:123456789012:approvals"));
        assert!(!is_topic_arn("approvals"));
        assert!(!is_topic_arn("arn:aws:sqs:eu-west-1:123456789012:q"));
    }
}
