//! GitHub's REST API, the same from one machine and from a Lambda function: api.github.com, or
//! a GitHub Enterprise Server's `https://HOST/api/v3`. Repository hooks
//! (`/repos/{owner}/{repo}/hooks`) for webhooks, and commits and archives for the GitHub (v1)
//! source on AWS.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::ports::BoxError;
use crate::ports::repository_hooks::{HookError, RepositoryHook, RepositoryHooks};

/// GitHub.com's API.
pub const GITHUB_API: &str = "https://api.github.com";

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most redirects a download follows (GitHub sends an archive to codeload with one).
const MAX_REDIRECTS: usize = 3;

/// GitHub's REST API, shared by the hooks and the GitHub (v1) source.
pub struct GitHubApi {
    api: String,
    /// Made at the first call: reading the system's trusted roots is not worth it for a host
    /// that never calls GitHub.
    client: tokio::sync::OnceCell<HttpsClient>,
}

impl GitHubApi {
    /// Calls the API at `api` (`GITHUB_API`, or an Enterprise Server's `/api/v3`), over https,
    /// or http for a server on loopback (tests).
    pub fn new(api: &str) -> Self {
        Self { api: api.trim_end_matches('/').to_owned(), client: tokio::sync::OnceCell::new() }
    }

    async fn client(&self) -> Result<&HttpsClient, BoxError> {
        self.client
            .get_or_try_init(|| async {
                let provider = rustls::crypto::aws_lc_rs::default_provider();
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
            })
            .await
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
    ) -> hyper::http::request::Builder {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "baton")
            .header("x-github-api-version", "2022-11-28");
        match token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// `method` on `path` (under the API's URL) as `token`: the status and the JSON answer
    /// (`null` when it is not JSON).
    ///
    /// # Errors
    /// When GitHub cannot be reached.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), BoxError> {
        let mut request = self.request(method, &format!("{}{path}", self.api), Some(token));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.client().await?.request(request.body(Full::new(body))?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Streams what `path` answers into the file `dest`, following redirects. The token goes
    /// only to the API's own host: an archive's redirect to another host (codeload) carries its
    /// own short-lived grant in the URL. Returns the final status and, when it is not a
    /// success, GitHub's JSON answer instead of a file.
    ///
    /// # Errors
    /// When GitHub cannot be reached or the file cannot be written.
    pub async fn download(
        &self,
        path: &str,
        token: &str,
        dest: &std::path::Path,
    ) -> Result<(StatusCode, Value), BoxError> {
        use tokio::io::AsyncWriteExt;
        let mut uri: hyper::Uri = format!("{}{path}", self.api).parse()?;
        let home = uri.authority().cloned();
        for _ in 0..=MAX_REDIRECTS {
            let own = uri.authority() == home.as_ref();
            let request = self.request(Method::GET, &uri.to_string(), own.then_some(token));
            let response = self.client().await?.request(request.body(Full::default())?).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or("a redirect without a location")?;
                uri = resolve(&uri, location)?;
                continue;
            }
            let mut body = response.into_body();
            if !status.is_success() {
                let bytes = body.collect().await?.to_bytes();
                return Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
            }
            let mut file = tokio::fs::File::create(dest).await?;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    file.write_all(&data).await?;
                }
            }
            file.flush().await?;
            return Ok((status, Value::Null));
        }
        Err(format!("more than {MAX_REDIRECTS} redirects from {path}").into())
    }
}

/// `location` (absolute, or a path on `from`'s host) as a URI.
fn resolve(from: &hyper::Uri, location: &str) -> Result<hyper::Uri, BoxError> {
    if location.starts_with('/') {
        let scheme = from.scheme_str().unwrap_or("https");
        let authority = from.authority().map(|a| a.as_str()).unwrap_or_default();
        return Ok(format!("{scheme}://{authority}{location}").parse()?);
    }
    Ok(location.parse()?)
}

/// GitHub's repository hooks over its REST API.
pub struct GitHubHooks {
    api: GitHubApi,
}

impl GitHubHooks {
    /// Calls the API at `api` (`GITHUB_API`, or an Enterprise Server's `/api/v3`).
    pub fn new(api: &str) -> Self {
        Self { api: GitHubApi::new(api) }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), HookError> {
        self.api.call(method, path, token, body).await.map_err(HookError::Unreachable)
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
    format!("{}/hooks", repository_path(hook.owner, hook.repo))
}

/// The API's path of the repository `owner/repo`: `/repos/{owner}/{repo}`.
pub fn repository_path(owner: &str, repo: &str) -> String {
    format!("/repos/{}/{}", path_segment(owner), path_segment(repo))
}

/// `s` as one segment of an API path (a name, a branch, a commit id).
pub fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_PART).to_string()
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
