//! `POST /webhooks/{github,gitlab,bitbucket}` on `baton serve`: signed deliveries from a
//! repository host start the pipelines whose connection source and triggers they match.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use baton::embedded::Embedded;
use baton::service::webhooks::{self, Host};

/// `[webhooks]` in `baton.toml`: the secret each host signs its deliveries with.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookSettings {
    /// GitHub's webhook secret (`X-Hub-Signature-256`).
    github_secret: Option<String>,
    /// GitLab's secret token (`X-Gitlab-Token`).
    gitlab_token: Option<String>,
    /// Bitbucket Cloud's webhook secret (`X-Hub-Signature`).
    bitbucket_secret: Option<String>,
    /// GitHub's API, which RegisterWebhookWithThirdParty calls (`BATON_GITHUB_API_URL` wins;
    /// default api.github.com; a GitHub Enterprise Server's is `https://HOST/api/v3`).
    github_api: Option<String>,
}

/// Environment variables that set a host's secret, before `[webhooks]` in `baton.toml`.
const VARIABLES: [(Host, &str); 3] = [
    (Host::GitHub, "BATON_GITHUB_WEBHOOK_SECRET"),
    (Host::GitLab, "BATON_GITLAB_WEBHOOK_TOKEN"),
    (Host::Bitbucket, "BATON_BITBUCKET_WEBHOOK_SECRET"),
];

impl WebhookSettings {
    /// GitHub's API: `BATON_GITHUB_API_URL`, else `github_api`, else none (api.github.com).
    pub(crate) fn github_api(&self) -> Option<String> {
        std::env::var("BATON_GITHUB_API_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.github_api.clone())
    }

    /// Each host's secret: from the environment, else from `toml` (which must then be private).
    pub(crate) fn secrets(&self, toml: &Path) -> Result<HashMap<Host, String>> {
        let mut secrets = HashMap::new();
        let in_file = [
            (Host::GitHub, &self.github_secret),
            (Host::GitLab, &self.gitlab_token),
            (Host::Bitbucket, &self.bitbucket_secret),
        ];
        for ((host, variable), (_, from_file)) in VARIABLES.iter().zip(in_file) {
            let secret = match std::env::var(variable).ok().filter(|s| !s.is_empty()) {
                Some(s) => s,
                None => match from_file.clone().filter(|s| !s.is_empty()) {
                    Some(s) => {
                        crate::serve::refuse_if_others_can_read(toml, "a webhook secret")?;
                        s
                    }
                    None => continue,
                },
            };
            secrets.insert(*host, secret);
        }
        Ok(secrets)
    }
}

struct Hooks {
    rt: Arc<Embedded>,
    secrets: HashMap<Host, String>,
}

/// The webhook routes, beside `router`.
pub(crate) fn routes(router: Router, rt: &Arc<Embedded>, secrets: HashMap<Host, String>) -> Router {
    let hooks = Arc::new(Hooks { rt: Arc::clone(rt), secrets });
    Router::new()
        .route("/webhooks/{host}", post(deliver))
        .route("/trigger", post(deliver_to_webhook))
        .with_state(hooks)
        .merge(router)
}

async fn deliver(
    State(hooks): State<Arc<Hooks>>,
    UrlPath(host): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = |host: Host| {
        hooks.secrets.get(&host).cloned().ok_or_else(|| {
            let setting = match host {
                Host::GitHub => "github_secret",
                Host::GitLab => "gitlab_token",
                Host::Bitbucket => "bitbucket_secret",
            };
            format!(
                "webhooks from {} are not accepted here: set {setting} under [webhooks] in baton.toml",
                host.name()
            )
        })
    };
    let headers = crate::serve::header_pairs(&headers);
    let reply = webhooks::answer(&hooks.rt.trigger, &host, secret, &headers, &body).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, reply.body.to_string()).into_response()
}

/// `POST /trigger?t=TOKEN&v=1`: a delivery to one of CodePipeline's webhooks (`PutWebhook`),
/// authenticated and filtered as that webhook says.
async fn deliver_to_webhook(
    State(hooks): State<Arc<Hooks>>,
    ConnectInfo(peer): ConnectInfo<crate::serve::Peer>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = query.get("t").map(String::as_str).unwrap_or_default();
    let headers = crate::serve::header_pairs(&headers);
    let reply = hooks
        .rt
        .webhooks()
        .deliver(&hooks.rt.trigger, token, &headers, &body, Some(peer.0.ip()))
        .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, reply.body.to_string()).into_response()
}
