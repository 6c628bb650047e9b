//! GitHub's REST API for repository hooks (`/repos/{owner}/{repo}/hooks`), the same from one
//! machine and from a Lambda function: api.github.com, or a GitHub Enterprise Server's
//! `https://HOST/api/v3`.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::ports::repository_hooks::{HookError, RepositoryHook, RepositoryHooks};

/// GitHub.com's API.
pub const GITHUB_API: &str = "https://api.github.com";

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// GitHub's repository hooks over its REST API.
pub struct GitHubHooks {
    api: String,
    /// Made at the first call: reading the system's trusted roots is not worth it for a host
    /// that never registers a webhook.
    client: tokio::sync::OnceCell<HttpsClient>,
}

impl GitHubHooks {
    /// Calls the API at `api` (`GITHUB_API`, or an Enterprise Server's `/api/v3`), over https,
    /// or http for a server on loopback (tests).
    pub fn new(api: &str) -> Self {
        Self { api: api.trim_end_matches('/').to_owned(), client: tokio::sync::OnceCell::new() }
    }

    async fn client(&self) -> Result<&HttpsClient, HookError> {
        self.client
            .get_or_try_init(|| async {
                let provider = rustls::crypto::aws_lc_rs::default_provider();
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .map_err(|e| HookError::Unreachable(e.into()))?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
            })
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), HookError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api))
            .header("accept", "application/vnd.github+json")
            .header("authorization", format!("Bearer {token}"))
            .header("user-agent", "baton")
            .header("x-github-api-version", "2022-11-28");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request =
            request.body(Full::new(body)).map_err(|e| HookError::Unreachable(e.into()))?;
        let response = self
            .client()
            .await?
            .request(request)
            .await
            .map_err(|e| HookError::Unreachable(e.into()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HookError::Unreachable(e.into()))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// The ids of the repository's hooks aimed at `hook.url`.
    async fn aimed_at(&self, hook: &RepositoryHook<'_>) -> Result<Vec<u64>, HookError> {
        let path = format!("{}?per_page=100", hooks_path(hook));
        let (status, listed) = self.call(Method::GET, &path, hook.token, None).await?;
        refused_unless(status, &listed, hook)?;
        Ok(listed
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["config"]["url"].as_str() == Some(hook.url))
            .filter_map(|h| h["id"].as_u64())
            .collect())
    }
}

#[async_trait]
impl RepositoryHooks for GitHubHooks {
    async fn add(&self, hook: &RepositoryHook<'_>) -> Result<(), HookError> {
        let mut config = json!({"url": hook.url, "content_type": "json", "insecure_ssl": "0"});
        if let Some(secret) = hook.secret {
            config["secret"] = json!(secret);
        }
        let body = json!({"name": "web", "active": true, "events": ["push"], "config": config});
        // Registered again, the hook already there is brought up to date, not doubled.
        let (method, path) = match self.aimed_at(hook).await?.first() {
            Some(id) => (Method::PATCH, format!("{}/{id}", hooks_path(hook))),
            None => (Method::POST, hooks_path(hook)),
        };
        let (status, answer) = self.call(method, &path, hook.token, Some(&body)).await?;
        refused_unless(status, &answer, hook)
    }

    async fn remove(&self, hook: &RepositoryHook<'_>) -> Result<(), HookError> {
        for id in self.aimed_at(hook).await? {
            let path = format!("{}/{id}", hooks_path(hook));
            let (status, answer) = self.call(Method::DELETE, &path, hook.token, None).await?;
            if status != StatusCode::NOT_FOUND {
                refused_unless(status, &answer, hook)?;
            }
        }
        Ok(())
    }
}

fn hooks_path(hook: &RepositoryHook<'_>) -> String {
    let part = |s: &str| percent_encoding::utf8_percent_encode(s, PATH_PART).to_string();
    format!("/repos/{}/{}/hooks", part(hook.owner), part(hook.repo))
}

/// What may not appear raw in one segment of a path.
const PATH_PART: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// GitHub's refusal in its own words (`message`), for any answer but a success.
fn refused_unless(
    status: StatusCode,
    answer: &Value,
    hook: &RepositoryHook<'_>,
) -> Result<(), HookError> {
    if status.is_success() {
        return Ok(());
    }
    let said = answer["message"].as_str().unwrap_or("no reason given");
    let hint = match status {
        StatusCode::UNAUTHORIZED => ": the action's OAuthToken is not a valid GitHub token",
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
            ": the OAuthToken must be allowed to administer the repository's hooks (scope admin:repo_hook)"
        }
        _ => "",
    };
    Err(HookError::Refused(format!(
        "GitHub refused the hook on {}/{} ({} {said}){hint}",
        hook.owner,
        hook.repo,
        status.as_u16()
    )))
}
