//! TagResource, UntagResource, ListTagsForResource: tags kept on the pipeline's record, or on
//! the webhook's (`...:webhook:NAME`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::Page;
use super::wire::input;
use super::{ApiError, Ctx};
use baton_app::ports::state::{PipelineRecord, Tag};
use baton_app::ports::webhooks::WebhookRecord;

/// Tags a resource may have, as CodePipeline's quota.
const MAX_TAGS: usize = 50;

/// A tag as the API spells it.
#[derive(Deserialize)]
pub(super) struct TagIn {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceIn {
    resource_arn: String,
    tags: Vec<TagIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceIn {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsIn {
    resource_arn: String,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

/// Checks tags against CodePipeline's limits (keys 1-128 characters, values up to 256, at most
/// 50); the last value given for a key wins.
pub(super) fn checked_tags(tags: Vec<TagIn>) -> Result<Vec<Tag>, ApiError> {
    let mut out = Vec::new();
    merge(&mut out, tags)?;
    Ok(out)
}

fn merge(into: &mut Vec<Tag>, tags: Vec<TagIn>) -> Result<(), ApiError> {
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.key.starts_with("aws:") {
            return Err(ApiError::new(
                "InvalidTagsException",
                format!(
                    "Tag key '{}' must be 1 to 128 characters and not start with 'aws:'",
                    t.key
                ),
            ));
        }
        if t.value.chars().count() > 256 {
            return Err(ApiError::new(
                "InvalidTagsException",
                format!("The value of tag '{}' is longer than 256 characters", t.key),
            ));
        }
        match into.iter_mut().find(|x| x.key == t.key) {
            Some(existing) => existing.value = t.value,
            None => into.push(Tag { key: t.key, value: t.value }),
        }
    }
    if into.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TooManyTagsException",
            format!("A resource can have at most {MAX_TAGS} tags"),
        ));
    }
    Ok(())
}

/// Tags as the API returns them.
pub(super) fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect())
}

/// A resource that takes tags. One is read, changed and saved per call, so the larger variant's
/// size is not worth a box.
#[allow(clippy::large_enum_variant)]
enum Tagged {
    Pipeline(PipelineRecord),
    Webhook(WebhookRecord),
}

impl Tagged {
    fn tags(&mut self) -> &mut Vec<Tag> {
        match self {
            Self::Pipeline(p) => &mut p.tags,
            Self::Webhook(w) => &mut w.tags,
        }
    }
}

impl Ctx<'_> {
    pub(super) async fn tag_resource(&self, body: Value) -> Result<Value, ApiError> {
        let TagResourceIn { resource_arn, tags } = input(body)?;
        let mut resource = self.tagged(&resource_arn).await?;
        merge(resource.tags(), tags)?;
        self.save_tags(resource).await?;
        Ok(json!({}))
    }

    pub(super) async fn untag_resource(&self, body: Value) -> Result<Value, ApiError> {
        let UntagResourceIn { resource_arn, tag_keys } = input(body)?;
        let mut resource = self.tagged(&resource_arn).await?;
        resource.tags().retain(|t| !tag_keys.contains(&t.key));
        self.save_tags(resource).await?;
        Ok(json!({}))
    }

    pub(super) async fn list_tags(&self, body: Value) -> Result<Value, ApiError> {
        let ListTagsIn { resource_arn, next_token, max_results } = input(body)?;
        let mut resource = self.tagged(&resource_arn).await?;
        let list = format!("tags/{resource_arn}");
        let page = Page::read(&list, next_token.as_deref(), max_results, 50, 100)?;
        let (tags, next) = page.slice(&list, std::mem::take(resource.tags()));
        let mut out = json!({"tags": tags_json(&tags)});
        if let Some(token) = next {
            out["nextToken"] = json!(token);
        }
        Ok(out)
    }

    async fn save_tags(&self, resource: Tagged) -> Result<(), ApiError> {
        match resource {
            Tagged::Pipeline(record) => Ok(self.api.store.update_pipeline(&record).await?),
            Tagged::Webhook(w) => self.save_webhook_tags(w).await,
        }
    }

    /// The resource a tagging ARN names: `arn:aws:codepipeline:REGION:ACCOUNT:NAME` (a
    /// pipeline) or `...:webhook:NAME`.
    async fn tagged(&self, arn: &str) -> Result<Tagged, ApiError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, name] = parts[..] else {
            return Err(invalid_arn(arn));
        };
        if prefix != "arn" || !partition.starts_with("aws") || service != "codepipeline" {
            return Err(invalid_arn(arn));
        }
        let placement = &self.api.placement;
        let found = if region != placement.region || account != placement.account {
            None
        } else if let Some(webhook) = name.strip_prefix("webhook:") {
            self.webhook_named(webhook).await?.map(Tagged::Webhook)
        } else {
            self.api.store.get_pipeline(name).await?.map(Tagged::Pipeline)
        };
        found.ok_or_else(|| {
            ApiError::new(
                "ResourceNotFoundException",
                format!("The resource with ARN '{arn}' does not exist"),
            )
        })
    }
}

fn invalid_arn(arn: &str) -> ApiError {
    ApiError::new("InvalidArnException", format!("'{arn}' is not a CodePipeline resource ARN"))
}
