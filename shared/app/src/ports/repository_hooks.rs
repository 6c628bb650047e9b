//! A repository host's own webhooks (GitHub's repository hooks): what
//! `RegisterWebhookWithThirdParty` adds so the host sends its pushes to a CodePipeline webhook's
//! URL, and `DeregisterWebhookWithThirdParty` removes.

use async_trait::async_trait;

use super::BoxError;

/// One repository hook, as the host is asked to keep it.
#[derive(Clone, Copy)]
pub struct RepositoryHook<'a> {
    /// The repository's owner (user or organisation).
    pub owner: &'a str,
    /// The repository's name.
    pub repo: &'a str,
    /// Where the host sends its deliveries: the webhook's URL.
    pub url: &'a str,
    /// What the host signs deliveries with (`GITHUB_HMAC`'s `SecretToken`).
    pub secret: Option<&'a str>,
    /// The credential the host takes the change from (the action's `OAuthToken`).
    pub token: &'a str,
}

impl std::fmt::Debug for RepositoryHook<'_> {
    // The secret and the token are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryHook")
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Why the host did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The host said no (a bad token, no such repository, no admin rights): its words.
    #[error("{0}")]
    Refused(String),
    /// The host could not be reached.
    #[error("cannot reach the repository host: {0}")]
    Unreachable(#[source] BoxError),
}

/// A repository host's webhooks.
#[async_trait]
pub trait RepositoryHooks: Send + Sync {
    /// Makes the repository send its pushes to `hook.url`: adds the hook, or brings the one
    /// already aimed there up to date.
    async fn add(&self, hook: &RepositoryHook<'_>) -> Result<(), HookError>;
    /// Removes the repository's hooks aimed at `hook.url`; none is not an error.
    async fn remove(&self, hook: &RepositoryHook<'_>) -> Result<(), HookError>;
}
