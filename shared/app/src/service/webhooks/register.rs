//! `RegisterWebhookWithThirdParty` and `DeregisterWebhookWithThirdParty`: a webhook aimed at a
//! GitHub (v1) source is added to (or removed from) the repository's own hooks through GitHub's
//! API, with the action's `OAuthToken`, as CodePipeline does.

use super::v1::{WebhookRefusal, Webhooks, url_of};
use crate::ports::repository_hooks::{RepositoryHook, RepositoryHooks};

impl Webhooks {
    /// `RegisterWebhookWithThirdParty`: makes the GitHub repository of the webhook's target
    /// action send its pushes to the webhook's URL (`url_base/trigger?...`), signed with its
    /// `SecretToken` under `GITHUB_HMAC`, using the action's `OAuthToken`.
    ///
    /// # Errors
    /// [`WebhookRefusal::NotFound`]; [`WebhookRefusal::Invalid`] for a target that is not a
    /// GitHub (v1) source with its owner, repository and token, or GitHub's refusal.
    pub async fn register_with_github(
        &self,
        name: &str,
        url_base: &str,
    ) -> Result<(), WebhookRefusal> {
        let hooks = self.repository_hooks()?;
        let target = self.github_target(name, url_base).await?;
        hooks.add(&target.hook()).await.map_err(|e| WebhookRefusal::Invalid(e.to_string()))
    }

    /// `DeregisterWebhookWithThirdParty`: removes the repository's hooks aimed at the webhook.
    ///
    /// # Errors
    /// As [`Self::register_with_github`].
    pub async fn deregister_with_github(
        &self,
        name: &str,
        url_base: &str,
    ) -> Result<(), WebhookRefusal> {
        let hooks = self.repository_hooks()?;
        let target = self.github_target(name, url_base).await?;
        hooks.remove(&target.hook()).await.map_err(|e| WebhookRefusal::Invalid(e.to_string()))
    }

    fn repository_hooks(&self) -> Result<&dyn RepositoryHooks, WebhookRefusal> {
        self.hooks.as_deref().ok_or_else(|| {
            WebhookRefusal::Invalid(
                "This Baton host cannot reach GitHub's API, so it registers no webhook there: add the webhook's URL to the repository's hooks by hand".into(),
            )
        })
    }

    /// The repository hook the webhook `name` stands for, on a host taking deliveries at
    /// `url_base`.
    async fn github_target(
        &self,
        name: &str,
        url_base: &str,
    ) -> Result<GitHubTarget, WebhookRefusal> {
        let w = self.get(name).await?;
        let d = &w.definition;
        let record = self.pipelines.get_pipeline(&d.target_pipeline).await?.ok_or_else(|| {
            WebhookRefusal::PipelineNotFound(format!(
                "The pipeline {} cannot be found",
                d.target_pipeline
            ))
        })?;
        let action =
            record.plan.stages.iter().flat_map(|s| &s.actions).find(|a| a.name == d.target_action);
        let Some(action) = action.filter(|a| {
            let t = &a.action_type;
            (t.category.as_str(), t.owner.as_str(), t.provider.as_str())
                == ("Source", "ThirdParty", "GitHub")
        }) else {
            return Err(WebhookRefusal::Invalid(format!(
                "webhook {name}: only a GitHub (v1) source action's repository can be registered with, and {} of pipeline {} is not one",
                d.target_action, d.target_pipeline
            )));
        };
        let setting = |key: &str| -> Result<String, WebhookRefusal> {
            match action.configuration.get(key).map(|v| v.trim()) {
                Some(v) if !v.is_empty() && !v.chars().all(|c| c == '*') => Ok(v.to_owned()),
                _ => Err(WebhookRefusal::Invalid(format!(
                    "webhook {name}: action {} has no {key} to register with{}",
                    d.target_action,
                    if key == "OAuthToken" {
                        " (a masked \"****\" is not one: update the pipeline with the token itself)"
                    } else {
                        ""
                    }
                ))),
            }
        };
        let secret = (d.authentication == "GITHUB_HMAC")
            .then(|| d.authentication_configuration.secret_token.clone())
            .flatten();
        Ok(GitHubTarget {
            owner: setting("Owner")?,
            repo: setting("Repo")?,
            token: setting("OAuthToken")?,
            url: url_of(&w, url_base),
            secret,
        })
    }
}

/// What a webhook's repository hook is made of.
struct GitHubTarget {
    owner: String,
    repo: String,
    token: String,
    url: String,
    secret: Option<String>,
}

impl GitHubTarget {
    fn hook(&self) -> RepositoryHook<'_> {
        RepositoryHook {
            owner: &self.owner,
            repo: &self.repo,
            url: &self.url,
            secret: self.secret.as_deref(),
            token: &self.token,
        }
    }
}
