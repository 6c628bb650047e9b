//! PutWebhook, ListWebhooks and DeleteWebhook, over the webhooks' service.

use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::Page;
use super::tags::{TagIn, checked_tags};
use super::wire::input;
use super::{ApiError, Ctx};
use baton_app::ports::webhooks::{WebhookDefinition, WebhookRecord};
use baton_app::service::webhooks::v1::{WebhookRefusal, Webhooks, listed};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutIn {
    webhook: WebhookDefinition,
    #[serde(default)]
    tags: Vec<TagIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

#[derive(Deserialize)]
struct DeleteIn {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyIn {
    /// Optional in CodePipeline's model, required by its service.
    #[serde(default)]
    webhook_name: Option<String>,
}

impl Ctx<'_> {
    fn webhooks(&self) -> Result<&Webhooks, ApiError> {
        self.api.webhooks.as_deref().ok_or_else(|| {
            ApiError::validation(
                "This Baton host takes no webhooks: it has no endpoint for their deliveries",
            )
        })
    }

    /// A webhook as CodePipeline prints it, with the URL deliveries go to.
    fn listed(&self, w: &WebhookRecord) -> Value {
        let p = &self.api.placement;
        let arn = format!(
            "arn:aws:codepipeline:{}:{}:webhook:{}",
            p.region, p.account, w.definition.name
        );
        listed(w, self.api.webhook_url.as_deref().unwrap_or_default(), &arn)
    }

    /// The webhook `name`, if there is one (none where this host takes no webhooks).
    pub(super) async fn webhook_named(
        &self,
        name: &str,
    ) -> Result<Option<WebhookRecord>, ApiError> {
        let Some(webhooks) = self.api.webhooks.as_deref() else { return Ok(None) };
        match webhooks.get(name).await {
            Ok(w) => Ok(Some(w)),
            Err(WebhookRefusal::NotFound(_)) => Ok(None),
            Err(e) => Err(refusal(e)),
        }
    }

    pub(super) async fn save_webhook_tags(&self, webhook: WebhookRecord) -> Result<(), ApiError> {
        self.webhooks()?.retag(&webhook.definition.name, webhook.tags).await.map_err(refusal)
    }

    pub(super) async fn put_webhook(&self, body: Value) -> Result<Value, ApiError> {
        let PutIn { webhook, tags } = input(body)?;
        let tags = checked_tags(tags)?;
        let kept = self.webhooks()?.put(webhook, tags).await.map_err(refusal)?;
        Ok(json!({"webhook": self.listed(&kept)}))
    }

    pub(super) async fn list_webhooks(&self, body: Value) -> Result<Value, ApiError> {
        let ListIn { next_token, max_results } = input(body)?;
        let page = Page::read("webhooks", next_token.as_deref(), max_results, 100, 100)?;
        let all = self.webhooks()?.list().await.map_err(refusal)?;
        let (items, next) = page.slice("webhooks", all);
        let mut out = json!({"webhooks": items.iter().map(|w| self.listed(w)).collect::<Vec<_>>()});
        if let Some(token) = next {
            out["NextToken"] = json!(token);
        }
        Ok(out)
    }

    pub(super) async fn delete_webhook(&self, body: Value) -> Result<Value, ApiError> {
        let DeleteIn { name } = input(body)?;
        self.webhooks()?.delete(&name).await.map_err(refusal)?;
        Ok(json!({}))
    }
}

impl Ctx<'_> {
    pub(super) async fn register_webhook_with_third_party(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let (name, base) = self.third_party_call(body)?;
        self.webhooks()?.register_with_github(&name, base).await.map_err(refusal)?;
        Ok(json!({}))
    }

    pub(super) async fn deregister_webhook_with_third_party(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let (name, base) = self.third_party_call(body)?;
        self.webhooks()?.deregister_with_github(&name, base).await.map_err(refusal)?;
        Ok(json!({}))
    }

    /// The webhook a third-party call names, and where this host takes deliveries.
    fn third_party_call(&self, body: Value) -> Result<(String, &str), ApiError> {
        let ThirdPartyIn { webhook_name } = input(body)?;
        let name = webhook_name.filter(|n| !n.is_empty()).ok_or_else(|| {
            ApiError::validation("1 validation error detected: Value null at 'webhookName' failed to satisfy constraint: Member must not be null")
        })?;
        let base = self.api.webhook_url.as_deref().ok_or_else(|| {
            ApiError::validation(
                "This Baton host has no address for webhook deliveries to register",
            )
        })?;
        Ok((name, base))
    }
}

fn refusal(e: WebhookRefusal) -> ApiError {
    let message = e.to_string();
    match e {
        WebhookRefusal::Invalid(_) => ApiError::validation(message),
        WebhookRefusal::FilterPattern(_) => {
            ApiError::new("InvalidWebhookFilterPatternException", message)
        }
        WebhookRefusal::AuthenticationParameters(_) => {
            ApiError::new("InvalidWebhookAuthenticationParametersException", message)
        }
        WebhookRefusal::PipelineNotFound(_) => ApiError::new("PipelineNotFoundException", message),
        WebhookRefusal::NotFound(_) => ApiError::new("WebhookNotFoundException", message),
        WebhookRefusal::Limit(_) => ApiError::new("LimitExceededException", message),
        WebhookRefusal::Store(e) => e.into(),
    }
}
