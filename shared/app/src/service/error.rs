//! How a service call fails, and whether trying again can help.

use crate::ports::artifacts::ArtifactError;
use crate::ports::bus::BusError;
use crate::ports::notices::NoticeError;
use crate::ports::provider::ProviderError;
use crate::ports::state::StoreError;
use baton_protocol::bus_events::DecodeError;

/// Whether a failed call is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A dependency was unavailable: deliver the event again later.
    Retryable,
    /// The event can never succeed: dead-letter it.
    Permanent,
}

/// A failed service call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The event or request cannot be used (malformed, unknown pipeline...). Dead-letter it.
    #[error("{0}")]
    Permanent(String),
    /// The event could not be decoded. Dead-letter it.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Bus(#[from] BusError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[allow(missing_docs)]
    #[error(transparent)]
    Notice(#[from] NoticeError),
    /// Local files (work folders, logs) could not be used.
    #[error("{context}")]
    Io {
        #[allow(missing_docs)]
        context: String,
        #[allow(missing_docs)]
        #[source]
        source: std::io::Error,
    },
}

impl ServiceError {
    /// Whether to retry or dead-letter.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Permanent(_) | Self::Decode(_) => ErrorKind::Permanent,
            Self::Store(StoreError::NotFound(_)) => ErrorKind::Permanent,
            Self::Artifacts(
                ArtifactError::Tampered(_) | ArtifactError::NotFound(_) | ArtifactError::Refused(_),
            ) => ErrorKind::Permanent,
            _ => ErrorKind::Retryable,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}
