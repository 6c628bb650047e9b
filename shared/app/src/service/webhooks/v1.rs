//! CodePipeline's own webhooks (`PutWebhook`, `ListWebhooks`, `DeleteWebhook`), which start
//! `ThirdParty/Source/GitHub` (v1) pipelines: a delivery to the webhook's URL
//! (`/trigger?t=TOKEN&v=1`, as CodePipeline's URLs read) is authenticated as the webhook says
//! (`GITHUB_HMAC`, `IP` or `UNAUTHENTICATED`), must pass every filter (a JSONPath into the
//! delivery's JSON whose first value equals `matchEquals`, with `{Key}` read from the target
//! action's configuration), and then starts the pipeline, once per delivery id.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use baton_core::engine::Trigger as ExecutionTrigger;
use baton_core::events::uuid_from;
use indexmap::IndexMap;
use serde_json::{Value, json};
use serde_json_path::JsonPath;

use super::super::{ServiceError, Trigger};
use super::{Host, Reply, header, verify};
use crate::ports::clock::{Clock, entropy};
use crate::ports::repository_hooks::RepositoryHooks;
use crate::ports::state::{StateStore, StoreError, Tag};
use crate::ports::webhooks::{WebhookDefinition, WebhookRecord, WebhookStore};

/// Webhooks a region may hold, as CodePipeline's quota.
pub const MAX_WEBHOOKS: usize = 300;

/// Why a webhook is refused; each is one of CodePipeline's exceptions.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefusal {
    /// `ValidationException`.
    #[error("{0}")]
    Invalid(String),
    /// `InvalidWebhookFilterPatternException`.
    #[error("{0}")]
    FilterPattern(String),
    /// `InvalidWebhookAuthenticationParametersException`.
    #[error("{0}")]
    AuthenticationParameters(String),
    /// `PipelineNotFoundException`.
    #[error("{0}")]
    PipelineNotFound(String),
    /// `WebhookNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// `LimitExceededException`.
    #[error("{0}")]
    Limit(String),
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The webhooks' service: kept in `store`, aimed at pipelines of `pipelines`.
pub struct Webhooks {
    pub(super) store: Arc<dyn WebhookStore>,
    pub(super) pipelines: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    /// The repository host's hooks (GitHub's API), where this host registers webhooks.
    pub(super) hooks: Option<Arc<dyn RepositoryHooks>>,
}

impl Webhooks {
    #[allow(missing_docs)]
    pub fn new(
        store: Arc<dyn WebhookStore>,
        pipelines: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, pipelines, clock, hooks: None }
    }

    /// Registers webhooks with the repository's host through `hooks`
    /// (`RegisterWebhookWithThirdParty`).
    pub fn with_repository_hooks(mut self, hooks: Option<Arc<dyn RepositoryHooks>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// `PutWebhook`: creates the webhook, or replaces the one of the same name (its URL kept).
    ///
    /// # Errors
    /// A [`WebhookRefusal`] naming what CodePipeline refuses.
    pub async fn put(
        &self,
        definition: WebhookDefinition,
        tags: Vec<Tag>,
    ) -> Result<WebhookRecord, WebhookRefusal> {
        check(&definition)?;
        let pipeline = &definition.target_pipeline;
        let Some(record) = self.pipelines.get_pipeline(pipeline).await? else {
            return Err(WebhookRefusal::PipelineNotFound(format!(
                "The pipeline {pipeline} cannot be found"
            )));
        };
        let has_action = record
            .plan
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .any(|a| a.name == definition.target_action);
        if !has_action {
            return Err(WebhookRefusal::Invalid(format!(
                "webhook {}: targetAction {} is not an action of pipeline {pipeline}",
                definition.name, definition.target_action
            )));
        }
        let all = self.store.webhooks().await?;
        let old = all.iter().find(|w| w.definition.name == definition.name);
        if old.is_none() && all.len() >= MAX_WEBHOOKS {
            return Err(WebhookRefusal::Limit(format!(
                "The number of webhooks exceeds the limit of {MAX_WEBHOOKS}"
            )));
        }
        let token = match old {
            Some(o) => o.token.clone(),
            None => format!("{:032x}", entropy().map_err(|e| unavailable(&e.to_string()))?),
        };
        let tags =
            if tags.is_empty() { old.map(|o| o.tags.clone()).unwrap_or_default() } else { tags };
        let kept = WebhookRecord {
            definition,
            token,
            tags,
            last_triggered: old.and_then(|o| o.last_triggered),
        };
        self.store.put_webhook(&kept).await?;
        Ok(kept)
    }

    /// Every webhook, by name.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn list(&self) -> Result<Vec<WebhookRecord>, WebhookRefusal> {
        let mut all = self.store.webhooks().await?;
        all.sort_by(|a, b| a.definition.name.cmp(&b.definition.name));
        Ok(all)
    }

    /// The webhook `name`.
    ///
    /// # Errors
    /// [`WebhookRefusal::NotFound`].
    pub async fn get(&self, name: &str) -> Result<WebhookRecord, WebhookRefusal> {
        self.store.webhooks().await?.into_iter().find(|w| w.definition.name == name).ok_or_else(
            || WebhookRefusal::NotFound(format!("The specified webhook {name} was entered in an invalid format or cannot be found")),
        )
    }

    /// Replaces the tags of the webhook `name`.
    ///
    /// # Errors
    /// [`WebhookRefusal::NotFound`].
    pub async fn retag(&self, name: &str, tags: Vec<Tag>) -> Result<(), WebhookRefusal> {
        let mut webhook = self.get(name).await?;
        webhook.tags = tags;
        self.store.put_webhook(&webhook).await?;
        Ok(())
    }

    /// `DeleteWebhook`: deleting one that does not exist changes nothing, as CodePipeline has it.
    ///
    /// # Errors
    /// When the store is unavailable.
    pub async fn delete(&self, name: &str) -> Result<(), WebhookRefusal> {
        self.store.delete_webhook(name).await?;
        Ok(())
    }

    /// Answers a delivery to the webhook whose token is `token`: 404 for no such webhook, 401
    /// when it is not authenticated as the webhook says, 200 when a filter leaves it out, and
    /// 202 naming the execution it started. The execution id comes from GitHub's delivery id,
    /// so a redelivery starts nothing twice.
    pub async fn deliver(
        &self,
        trigger: &Trigger,
        token: &str,
        headers: &[(String, String)],
        body: &[u8],
        source_ip: Option<IpAddr>,
    ) -> Reply {
        let message = |m: &str| json!({ "message": m });
        let webhooks = match self.store.webhooks().await {
            Ok(w) => w,
            Err(e) => return Reply::new(503, message(&e.to_string())),
        };
        // Constant time per candidate: the token is the webhook's only secret when it is
        // UNAUTHENTICATED.
        let Some(mut webhook) = webhooks
            .into_iter()
            .find(|w| super::constant_time_eq(w.token.as_bytes(), token.as_bytes()))
        else {
            return Reply::new(404, message("no webhook has this URL"));
        };
        let d = &webhook.definition;
        if let Err(why) = authenticate(d, headers, body, source_ip) {
            return Reply::new(401, message(&why));
        }
        let Ok(payload) = serde_json::from_slice::<Value>(body) else {
            return Reply::new(400, message("the delivery's body is not JSON"));
        };
        let configuration = match self.pipelines.get_pipeline(&d.target_pipeline).await {
            Ok(Some(record)) => record
                .plan
                .stages
                .iter()
                .flat_map(|s| &s.actions)
                .find(|a| a.name == d.target_action)
                .map(|a| a.configuration.clone()),
            Ok(None) => None,
            Err(e) => return Reply::new(503, message(&e.to_string())),
        };
        let Some(configuration) = configuration else {
            return Reply::new(
                404,
                message(&format!(
                    "webhook {}: the pipeline {} has no action {}",
                    d.name, d.target_pipeline, d.target_action
                )),
            );
        };
        if let Some(filter) = first_failing(d, &configuration, &payload) {
            return Reply::new(
                200,
                json!({"ignored": format!("the value at {filter} does not match")}),
            );
        }
        let delivery = header(headers, "x-github-delivery").map(str::to_owned);
        // Without GitHub's delivery id, the same body is the same delivery.
        let seed = delivery.unwrap_or_else(|| {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(body))
        });
        let id = uuid_from(&format!("{}\nwebhook\n{}\n{seed}", d.target_pipeline, d.name));
        let detail = format!("webhook:{}", d.name);
        let trigger_of =
            ExecutionTrigger { trigger_type: "Webhook".into(), trigger_detail: detail };
        match trigger.start_with_id(&d.target_pipeline, id, trigger_of, BTreeMap::new()).await {
            Ok(id) => {
                webhook.last_triggered = Some(self.clock.now());
                if let Err(e) = self.store.put_webhook(&webhook).await {
                    tracing::warn!(webhook = %webhook.definition.name, error = %e, "cannot record the webhook's last trigger");
                }
                Reply::new(
                    202,
                    json!({"pipelineName": webhook.definition.target_pipeline, "pipelineExecutionId": id}),
                )
            }
            Err(ServiceError::Permanent(why)) => Reply::new(409, message(&why)),
            Err(e) => Reply::new(503, message(&e.to_string())),
        }
    }
}

fn unavailable(why: &str) -> WebhookRefusal {
    WebhookRefusal::Store(StoreError::Unavailable(why.to_owned().into()))
}

/// CodePipeline's rules for a webhook's definition.
///
/// # Errors
/// The refusal, naming the field.
pub fn check(d: &WebhookDefinition) -> Result<(), WebhookRefusal> {
    let invalid = |m: String| Err(WebhookRefusal::Invalid(m));
    let named = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if !named(&d.name, 100) {
        return invalid(format!(
            "webhook name {:?} must be 1 to 100 letters, digits, '.', '-' or '_'",
            d.name
        ));
    }
    if !named(&d.target_pipeline, 100) {
        return invalid(format!(
            "webhook {}: targetPipeline {:?} is not a pipeline name",
            d.name, d.target_pipeline
        ));
    }
    if !named(&d.target_action, 100) {
        return invalid(format!(
            "webhook {}: targetAction {:?} is not an action name",
            d.name, d.target_action
        ));
    }
    if d.filters.len() > 5 {
        return invalid(format!("webhook {}: at most 5 filters, not {}", d.name, d.filters.len()));
    }
    for f in &d.filters {
        if f.json_path.is_empty() || f.json_path.len() > 150 {
            return Err(WebhookRefusal::FilterPattern(format!(
                "webhook {}: jsonPath must be 1 to 150 characters",
                d.name
            )));
        }
        if let Err(e) = JsonPath::parse(&f.json_path) {
            return Err(WebhookRefusal::FilterPattern(format!(
                "webhook {}: jsonPath {} is not a JSONPath expression: {e}",
                d.name, f.json_path
            )));
        }
        if f.match_equals.as_ref().is_some_and(|m| m.is_empty() || m.len() > 150) {
            return Err(WebhookRefusal::FilterPattern(format!(
                "webhook {}: matchEquals must be 1 to 150 characters",
                d.name
            )));
        }
    }
    let auth = |m: String| Err(WebhookRefusal::AuthenticationParameters(m));
    let c = &d.authentication_configuration;
    match d.authentication.as_str() {
        "GITHUB_HMAC" => match &c.secret_token {
            Some(s) if !s.is_empty() && s.len() <= 100 => Ok(()),
            _ => auth(format!(
                "webhook {}: GITHUB_HMAC needs a SecretToken of 1 to 100 characters",
                d.name
            )),
        },
        "IP" => match &c.allowed_ip_range {
            Some(r) if parse_cidr(r).is_some() => Ok(()),
            Some(r) => {
                auth(format!("webhook {}: AllowedIPRange {r:?} is not a CIDR range", d.name))
            }
            None => auth(format!("webhook {}: IP needs an AllowedIPRange", d.name)),
        },
        "UNAUTHENTICATED" => Ok(()),
        other => invalid(format!(
            "webhook {}: authentication {other:?} must be GITHUB_HMAC, IP or UNAUTHENTICATED",
            d.name
        )),
    }
}

/// Whether the delivery is authenticated as the webhook asks.
fn authenticate(
    d: &WebhookDefinition,
    headers: &[(String, String)],
    body: &[u8],
    source_ip: Option<IpAddr>,
) -> Result<(), String> {
    let c = &d.authentication_configuration;
    match d.authentication.as_str() {
        "GITHUB_HMAC" => {
            let secret = c.secret_token.as_deref().unwrap_or_default();
            verify(Host::GitHub, headers, body, secret).map_err(|_| {
                "the delivery's X-Hub-Signature-256 does not match the webhook's SecretToken".into()
            })
        }
        "IP" => {
            let range = c.allowed_ip_range.as_deref().and_then(parse_cidr);
            match (range, source_ip) {
                (Some(range), Some(ip)) if in_range(range, ip) => Ok(()),
                _ => Err("the delivery does not come from the webhook's AllowedIPRange".into()),
            }
        }
        "UNAUTHENTICATED" => Ok(()),
        other => Err(format!("unknown authentication {other}")),
    }
}

/// The first filter the delivery fails (its JSONPath), if any.
fn first_failing<'a>(
    d: &'a WebhookDefinition,
    configuration: &IndexMap<String, String>,
    payload: &Value,
) -> Option<&'a str> {
    d.filters
        .iter()
        .find(|f| {
            let Ok(path) = JsonPath::parse(&f.json_path) else { return true };
            // CodePipeline matches the first value the path selects.
            let Some(found) = path.query(payload).first() else { return true };
            let Some(expected) = &f.match_equals else { return false };
            let found = match found {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            found != placeholders(expected, configuration)
        })
        .map(|f| f.json_path.as_str())
}

/// `matchEquals` with each `{Key}` replaced by the target action's configuration value.
fn placeholders(text: &str, configuration: &IndexMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        let key = &rest[open + 1..open + close];
        out.push_str(&rest[..open]);
        match configuration.get(key) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = text.split_once('/').unwrap_or((text, ""));
    let ip: IpAddr = ip.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = if bits.is_empty() { max } else { bits.trim().parse().ok()? };
    (bits <= max).then_some((ip, bits))
}

fn in_range((net, bits): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(n.to_bits()), u128::from(i.to_bits()), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// Where a webhook's deliveries go, on a host that takes them at `url_base`.
pub fn url_of(w: &WebhookRecord, url_base: &str) -> String {
    format!("{}/trigger?t={}&v=1", url_base.trim_end_matches('/'), w.token)
}

/// A webhook as `ListWebhooks` and `PutWebhook` print it: `url` is where deliveries go.
pub fn listed(w: &WebhookRecord, url_base: &str, arn: &str) -> Value {
    let mut item = json!({"definition": w.definition, "url": url_of(w, url_base), "arn": arn});
    if let Some(at) = w.last_triggered {
        item["lastTriggered"] = json!(at as f64 / 1000.0);
    }
    if !w.tags.is_empty() {
        item["tags"] = json!(w.tags);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::webhooks::{WebhookAuthConfiguration, WebhookFilter};

    fn definition(auth: &str, filters: Filters) -> WebhookDefinition {
        WebhookDefinition {
            name: "hook".into(),
            target_pipeline: "p".into(),
            target_action: "Source".into(),
            filters: filters
                .iter()
                .map(|(p, m)| WebhookFilter {
                    json_path: (*p).into(),
                    match_equals: m.map(str::to_owned),
                })
                .collect(),
            authentication: auth.into(),
            authentication_configuration: WebhookAuthConfiguration {
                allowed_ip_range: Some("10.0.0.0/8".into()),
                secret_token: Some("s3cret".into()),
            },
        }
    }

    fn config() -> IndexMap<String, String> {
        [("Branch".to_owned(), "main".to_owned())].into_iter().collect()
    }

    /// Filters as (jsonPath, matchEquals).
    type Filters<'a> = &'a [(&'a str, Option<&'a str>)];

    #[test]
    fn every_filter_must_match_with_the_actions_configuration_in_placeholders() {
        let push = json!({"ref": "refs/heads/main", "repository": {"name": "app", "private": true},
            "commits": [{"id": "a"}, {"id": "b"}]});
        let cases: [(Filters, bool); 8] = [
            (&[("$.ref", Some("refs/heads/{Branch}"))], true),
            (&[("$.ref", Some("refs/heads/dev"))], false),
            (&[("$.ref", Some("refs/heads/{Branch}")), ("$.repository.name", Some("app"))], true),
            (&[("$.ref", Some("refs/heads/{Branch}")), ("$.repository.name", Some("web"))], false),
            // Not a string: compared as JSON text.
            (&[("$.repository.private", Some("true"))], true),
            // Only the first value selected counts.
            (&[("$.commits[*].id", Some("a"))], true),
            (&[("$.commits[*].id", Some("b"))], false),
            // Without matchEquals, the path must select something.
            (&[("$.missing", None)], false),
        ];
        for (filters, starts) in cases {
            let d = definition("UNAUTHENTICATED", filters);
            assert_eq!(first_failing(&d, &config(), &push).is_none(), starts, "{filters:?}");
        }
        // An unknown placeholder stays as written, so it matches only itself.
        assert_eq!(placeholders("refs/heads/{Nope}", &config()), "refs/heads/{Nope}");
    }

    #[test]
    fn definitions_are_checked_as_codepipeline_checks_them() {
        assert!(check(&definition("GITHUB_HMAC", &[("$.ref", Some("x"))])).is_ok());
        let bad_path = definition("UNAUTHENTICATED", &[("$[?", Some("x"))]);
        assert!(matches!(check(&bad_path), Err(WebhookRefusal::FilterPattern(_))));
        let mut no_secret = definition("GITHUB_HMAC", &[]);
        no_secret.authentication_configuration.secret_token = None;
        assert!(matches!(check(&no_secret), Err(WebhookRefusal::AuthenticationParameters(_))));
        let mut bad_range = definition("IP", &[]);
        bad_range.authentication_configuration.allowed_ip_range = Some("10.0.0.0/33".into());
        assert!(matches!(check(&bad_range), Err(WebhookRefusal::AuthenticationParameters(_))));
        let six = vec![("$.ref", None); 6];
        assert!(matches!(check(&definition("IP", &six)), Err(WebhookRefusal::Invalid(_))));
        let unknown = definition("BASIC", &[]);
        assert!(matches!(check(&unknown), Err(WebhookRefusal::Invalid(m)) if m.contains("BASIC")));
    }

    #[test]
    fn deliveries_are_authenticated_as_the_webhook_says() {
        use hmac::{Hmac, Mac};
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let signed = vec![(
            "X-Hub-Signature-256".to_owned(),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )];
        let hmac = definition("GITHUB_HMAC", &[]);
        assert!(authenticate(&hmac, &signed, body, None).is_ok());
        assert!(authenticate(&hmac, &signed, b"{}", None).is_err());
        assert!(authenticate(&hmac, &[], body, None).is_err());
        let ip = definition("IP", &[]);
        assert!(authenticate(&ip, &[], body, "10.1.2.3".parse().ok()).is_ok());
        assert!(authenticate(&ip, &[], body, "::ffff:10.1.2.3".parse().ok()).is_ok());
        assert!(authenticate(&ip, &[], body, "11.0.0.1".parse().ok()).is_err());
        assert!(authenticate(&ip, &[], body, None).is_err());
        assert!(authenticate(&definition("UNAUTHENTICATED", &[]), &[], body, None).is_ok());
        assert!(in_range(parse_cidr("0.0.0.0/0").unwrap(), "8.8.8.8".parse().unwrap()));
        assert!(in_range(parse_cidr("192.0.2.7").unwrap(), "192.0.2.7".parse().unwrap()));
    }
}
