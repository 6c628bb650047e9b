//! Notices by mail on one machine: plain SMTP to a relay the user names (a local MTA, a
//! company relay on the LAN, or a test server on loopback).
//!
//! The person reads [`Notice::for_people`]; the machine JSON of an approval notice rides along
//! as an `application/json` attachment so a mail-reading bot can still act on it.

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use baton_app::ports::notices::{Notice, NoticeError, Notifier};

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SmtpSettings {
    /// The relay's host name or address.
    pub host: String,
    /// The relay's port (25 or 587 for a relay; any for a test server).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The sender, `Baton <baton@example.com>` or a bare address.
    pub from: String,
    /// Who receives every notice.
    pub to: Vec<String>,
}

fn default_port() -> u16 {
    25
}

/// Why a mail setting cannot be used, in one sentence.
#[derive(Debug, thiserror::Error)]
#[error("the mail address \"{address}\" is not valid: {reason}")]
pub struct BadAddress {
    address: String,
    reason: String,
}

/// [`Notifier`] over SMTP.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl SmtpNotifier {
    /// Checks every address now, so a typo is reported at start rather than at the first notice.
    ///
    /// # Errors
    /// [`BadAddress`] for the first address that does not parse.
    pub fn new(settings: &SmtpSettings) -> Result<Self, BadAddress> {
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| BadAddress { address: a.to_owned(), reason: e.to_string() })
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .build();
        Ok(Self {
            transport,
            from: parse(&settings.from)?,
            to: settings.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
        })
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        if self.to.is_empty() {
            return Ok(());
        }
        let mut builder = Message::builder().from(self.from.clone()).subject(&notice.subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        // Quoted-printable keeps the mail readable as source and links intact in any client.
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(notice.for_people().to_owned());
        let message = match &notice.text {
            Some(_) => builder.multipart(MultiPart::mixed().singlepart(text).singlepart(
                Attachment::new("notice.json".to_owned()).body(
                    notice.message.clone(),
                    ContentType::parse("application/json").map_err(boxed)?,
                ),
            )),
            None => builder.singlepart(text),
        }
        .map_err(boxed)?;
        self.transport.send(message).await.map_err(boxed)?;
        Ok(())
    }
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> NoticeError {
    NoticeError(Box::new(e))
}
