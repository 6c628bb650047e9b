//! CodePipeline's webhooks (`PutWebhook`), for `ThirdParty/Source/GitHub` (v1) sources: each
//! names a pipeline's source action, how deliveries are authenticated, and the filters a
//! delivery's JSON must pass to start it. Kept by name; a delivery finds its webhook by the
//! secret token in the URL it was sent to.

use async_trait::async_trait;
use baton_core::engine::Millis;
use serde::{Deserialize, Serialize};

use super::state::{StoreError, Tag};

/// One filter: the value `json_path` selects in a delivery must equal `match_equals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFilter {
    #[allow(missing_docs)]
    pub json_path: String,
    /// May name the target action's configuration as `{Key}`; without it the path must select
    /// something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_equals: Option<String>,
}

/// `authenticationConfiguration`: what the authentication named needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAuthConfiguration {
    /// `IP`: the CIDR range deliveries must come from.
    #[serde(rename = "AllowedIPRange", default, skip_serializing_if = "Option::is_none")]
    pub allowed_ip_range: Option<String>,
    /// `GITHUB_HMAC`: the secret GitHub signs deliveries with. Never printed in logs.
    #[serde(rename = "SecretToken", default, skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<String>,
}

/// `WebhookDefinition`, as given to `PutWebhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDefinition {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub target_pipeline: String,
    #[allow(missing_docs)]
    pub target_action: String,
    #[allow(missing_docs)]
    pub filters: Vec<WebhookFilter>,
    /// `GITHUB_HMAC`, `IP` or `UNAUTHENTICATED`.
    pub authentication: String,
    #[allow(missing_docs)]
    pub authentication_configuration: WebhookAuthConfiguration,
}

/// A webhook as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    #[allow(missing_docs)]
    pub definition: WebhookDefinition,
    /// The unguessable part of the webhook's URL.
    pub token: String,
    #[allow(missing_docs)]
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// When a delivery last started the pipeline.
    #[serde(default)]
    pub last_triggered: Option<Millis>,
}

/// Where webhooks are kept.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Saves `webhook`, replacing the one of the same name.
    async fn put_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError>;
    /// Every webhook, by name.
    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError>;
    /// Removes the webhook `name`; whether there was one.
    async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError>;
}
