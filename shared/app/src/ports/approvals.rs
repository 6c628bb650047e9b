//! Approval links: the records behind the approve and reject links sent to people.
//!
//! A link carries a random secret; only its SHA-256 is stored, so a copy of the store (a backup,
//! a table export) approves nothing. One record serves both links of an approval and is used
//! once, whichever link is followed.

use async_trait::async_trait;
use baton_core::engine::Millis;
use serde::{Deserialize, Serialize};

use super::state::StoreError;

/// The record behind one approval's pair of links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalLink {
    /// Public id, the first part of both links.
    pub id: String,
    /// SHA-256 (hex) of the approve link's secret.
    pub approve_hash: String,
    /// SHA-256 (hex) of the reject link's secret.
    pub reject_hash: String,
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub execution_id: String,
    #[allow(missing_docs)]
    pub stage: String,
    #[allow(missing_docs)]
    pub action: String,
    /// The attempt of the approval action the links decide; a retried stage gets new links.
    pub attempt: u32,
    /// When the links stop working: the approval's own deadline.
    pub expires: Millis,
    #[allow(missing_docs)]
    pub created: Millis,
    /// Set once, by the first decision through a link.
    pub used: Option<LinkUse>,
}

/// Who used a link, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUse {
    /// Who decided, as they gave it on the page.
    pub by: String,
    #[allow(missing_docs)]
    pub at: Millis,
    #[allow(missing_docs)]
    pub approved: bool,
}

/// Where approval link records are kept.
#[async_trait]
pub trait ApprovalLinks: Send + Sync {
    /// Stores a record, replacing an unused one with the same id (the request was delivered
    /// again, or sending its notice failed and is being retried: only the newest links work).
    /// `false`, and nothing written, when the record was used already: the approval is decided.
    async fn put_link(&self, link: &ApprovalLink) -> Result<bool, StoreError>;
    /// The record with this id.
    async fn get_link(&self, id: &str) -> Result<Option<ApprovalLink>, StoreError>;
    /// Records the use of an unused record, putting back `followed`'s secrets: a request
    /// delivered again may have replaced them between the click and this write, and the links
    /// that decided must be the ones that go on saying so. [`StoreError::Conflict`] when it
    /// was already used: exactly one of two racing decisions wins.
    async fn use_link(&self, followed: &ApprovalLink, used: &LinkUse) -> Result<(), StoreError>;
}
