//! Notices by mail on one machine: SMTP to a relay the user names (a mail provider's or a
//! company's submission port, a local MTA, or a test server on loopback). TLS is required
//! (STARTTLS, or implicit TLS) unless the relay is on loopback or `tls = "none"` says so, and
//! the relay's certificate is checked against the system's roots (or `ca_file`).
//!
//! The person reads [`Notice::for_people`]; the machine JSON of an approval notice rides along
//! as an `application/json` attachment so a mail-reading bot can still act on it.

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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
    /// `starttls` (upgrade on the plain port, 587 or 25), `tls` (implicit TLS, 465) or `none`;
    /// `starttls` unless the relay is on loopback.
    #[serde(default)]
    pub tls: Option<SmtpTls>,
    /// The user to authenticate as (AUTH PLAIN or LOGIN, only over TLS or to loopback).
    #[serde(default)]
    pub username: Option<String>,
    /// Its password: from `BATON_SMTP_PASSWORD` where the CLI reads the settings.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// A PEM file of the CA that signed the relay's certificate, for a private CA.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS, required: a relay that does not offer it is refused.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// Plain text: only for loopback or a relay on a trusted network.
    None,
}

fn default_port() -> u16 {
    25
}

/// Why the mail settings cannot be used, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSettingsError {
    #[allow(missing_docs)]
    #[error(transparent)]
    Address(#[from] BadAddress),
    /// The relay cannot be reached as configured.
    #[error("{0}")]
    Transport(String),
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
    /// [`BadAddress`] for the first address that does not parse; a transport error for a CA
    /// file that cannot be read, or a password sent in the clear to another machine.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpSettingsError> {
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| BadAddress { address: a.to_owned(), reason: e.to_string() })
        };
        let bad = SmtpSettingsError::Transport;
        let host = &settings.host;
        let loopback = host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let tls = settings.tls.unwrap_or(if loopback { SmtpTls::None } else { SmtpTls::Starttls });
        let parameters = || -> Result<TlsParameters, SmtpSettingsError> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(file) = &settings.ca_file {
                let pem = std::fs::read(file)
                    .map_err(|e| bad(format!("ca_file {} cannot be read: {e}", file.display())))?;
                let ca = Certificate::from_pem(&pem).map_err(|e| {
                    bad(format!("ca_file {} is not a PEM certificate: {e}", file.display()))
                })?;
                builder = builder.add_root_certificate(ca);
            }
            builder.build_rustls().map_err(|e| bad(format!("TLS for {host}: {e}")))
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.port)
            .tls(match tls {
                SmtpTls::Starttls => Tls::Required(parameters()?),
                SmtpTls::Tls => Tls::Wrapper(parameters()?),
                SmtpTls::None => Tls::None,
            });
        if let Some(user) = &settings.username {
            if tls == SmtpTls::None && !loopback {
                return Err(bad(format!(
                    "a password for {host} would travel in the clear: set tls = \"starttls\" or \"tls\""
                )));
            }
            let password = settings.password.clone().unwrap_or_default();
            transport = transport.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: transport.build(),
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
