//! `baton --endpoint URL ...`: the control API of another Baton (`baton serve`, or a
//! deployment's API function), over HTTP or HTTPS, each call signed with SigV4. The commands
//! reach it through [`Control`].

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use baton::api::sigv4::{Signable, SigningKey, sign};
use baton::api::{BATON_OPERATIONS, BATON_TARGET_PREFIX, CONTENT_TYPE, TARGET_PREFIX};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::control::{Control, api_error};

/// How long one call may take, connection included: a Baton answers every call at once.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A signed JSON 1.1 client of one control API endpoint.
pub(crate) struct Client {
    url: String,
    connection: Connection,
    keys: KeySource,
    region: String,
    /// `codepipeline` for a Baton serving the API itself; `lambda` for a deployment's API
    /// function URL, whose IAM auth checks signatures made for Lambda.
    service: &'static str,
}

impl KeySource {
    fn chain() -> Self {
        Self::Chain(tokio::sync::Mutex::new(None))
    }
}

/// Keys from the AWS tools' default chain, and when they expire.
async fn chain_keys(region: &str) -> Result<(Keys, Option<std::time::SystemTime>)> {
    use aws_credential_types::provider::ProvideCredentials;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let none = || {
        anyhow!(
            "no AWS credentials: set AWS_PROFILE (aws sso login first for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    };
    let provider = config.credentials_provider().ok_or_else(none)?;
    let credentials = provider.provide_credentials().await.map_err(|e| {
        anyhow!(
            "no AWS credentials: {} (set AWS_PROFILE, run aws sso login for an SSO profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            aws_credential_types::provider::error::CredentialsError::to_string(&e)
        )
    })?;
    let keys = Keys {
        access_key: credentials.access_key_id().to_owned(),
        secret_key: credentials.secret_access_key().to_owned(),
        session_token: credentials.session_token().map(str::to_owned),
    };
    Ok((keys, credentials.expiry()))
}

/// The region of a Lambda function URL (`<id>.lambda-url.<region>.on.aws`).
pub(crate) fn function_url_region(host: &str) -> Option<&str> {
    let rest = host.split_once(".lambda-url.")?.1;
    rest.strip_suffix(".on.aws").filter(|r| !r.is_empty() && !r.contains('.'))
}

/// The keys a call is signed with.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    /// Sent, and signed, when the credentials are temporary.
    pub(crate) session_token: Option<String>,
}

/// Where the keys come from.
enum KeySource {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Fixed(Keys),
    /// None in the environment, for a `baton serve`: its documented default keys.
    ServeDefaults,
    /// For a deployment with no keys in the environment, the AWS tools' own chain: profiles
    /// (`AWS_PROFILE`, SSO, `credential_process`), web identity, container and instance roles.
    /// Kept until five minutes before they expire.
    Chain(tokio::sync::Mutex<Option<(Keys, Option<std::time::SystemTime>)>>),
}

impl Client {
    /// A client of `url` (`http://host[:port]`), with credentials and region from the
    /// environment as the AWS tools take them, else `baton serve`'s defaults.
    pub(crate) fn new(url: &str) -> Result<Self> {
        let connection = Connection::new(url)?;
        let host = parse_endpoint(url)?.host;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let keys = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key), Some(secret_key)) => KeySource::Fixed(Keys {
                access_key,
                secret_key,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            (None, None) if function_url_region(&host).is_some() => KeySource::chain(),
            (None, None) => KeySource::ServeDefaults,
            _ => bail!("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"),
        };
        let (region, service) = match function_url_region(&host) {
            Some(region) => (region.to_owned(), "lambda"),
            None => (
                env("AWS_REGION")
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .unwrap_or("us-east-1".into()),
                "codepipeline",
            ),
        };
        Ok(Self { url: url.trim_end_matches('/').to_owned(), connection, keys, region, service })
    }

    /// Signs as Lambda signs, in `region`: what a deployment's function URL checks, whatever
    /// its host name.
    pub(crate) fn for_function_url(mut self, region: &str) -> Self {
        self.service = "lambda";
        // A deployment never takes `baton serve`'s default keys: the AWS tools' chain instead.
        if matches!(self.keys, KeySource::ServeDefaults) {
            self.keys = KeySource::chain();
        }
        region.clone_into(&mut self.region);
        self
    }

    /// The keys calls are signed with now.
    pub(crate) async fn keys(&self) -> Result<Keys> {
        let cache = match &self.keys {
            KeySource::Fixed(keys) => return Ok(keys.clone()),
            KeySource::ServeDefaults => {
                return Ok(Keys {
                    access_key: crate::serve::DEFAULT_ACCESS_KEY_ID.to_owned(),
                    secret_key: crate::serve::DEFAULT_SECRET_ACCESS_KEY.to_owned(),
                    session_token: None,
                });
            }
            KeySource::Chain(cache) => cache,
        };
        let mut cached = cache.lock().await;
        let soon = std::time::SystemTime::now() + Duration::from_secs(300);
        if let Some((keys, expiry)) = &*cached
            && expiry.is_none_or(|e| e > soon)
        {
            return Ok(keys.clone());
        }
        let (keys, expiry) = chain_keys(&self.region).await?;
        *cached = Some((keys.clone(), expiry));
        Ok(keys)
    }

    /// Sends `body` as the operation `target` (`CodePipeline_20150709.X`), signed: the status
    /// and body as answered.
    pub(crate) async fn forward(&self, target: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let headers = self.signed_headers(target, body).await?;
        tokio::time::timeout(TIMEOUT, self.post(&headers, body))
            .await
            .map_err(|_| anyhow!("{} did not answer within {}s", self.url, TIMEOUT.as_secs()))?
    }

    /// The headers of a signed `POST /` of `body` for `target`.
    async fn signed_headers(&self, target: &str, body: &[u8]) -> Result<Vec<(String, String)>> {
        let keys = self.keys().await?;
        let mut headers = vec![
            ("host".to_owned(), self.connection.authority.clone()),
            ("content-type".to_owned(), CONTENT_TYPE.to_owned()),
            ("x-amz-target".to_owned(), target.to_owned()),
            // Signed, and new for every call, as the SDKs send it: the server's logs can tell
            // two identical calls apart.
            ("amz-sdk-invocation-id".to_owned(), invocation_id()),
        ];
        if let Some(token) = &keys.session_token {
            headers.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let key = SigningKey {
            access_key: &keys.access_key,
            secret_key: &keys.secret_key,
            region: &self.region,
            service: self.service,
        };
        let request = Signable { method: "POST", path: "/", query: "", headers: &headers, body };
        let (date, authorization) = sign(&request, &key, now);
        headers.push(("x-amz-date".to_owned(), date));
        headers.push(("authorization".to_owned(), authorization));
        Ok(headers)
    }

    /// One call: its output, or the API's error body.
    pub(crate) async fn exchange_json(
        &self,
        operation: &str,
        input: &Value,
    ) -> Result<Result<Value, Value>> {
        let body = input.to_string().into_bytes();
        let prefix =
            if BATON_OPERATIONS.contains(&operation) { BATON_TARGET_PREFIX } else { TARGET_PREFIX };
        let headers = self.signed_headers(&format!("{prefix}.{operation}"), &body).await?;
        let (status, reply) = tokio::time::timeout(TIMEOUT, self.post(&headers, &body))
            .await
            .map_err(|_| anyhow!("{} did not answer within {}s", self.url, TIMEOUT.as_secs()))??;
        let json: Option<Value> = if reply.iter().all(u8::is_ascii_whitespace) {
            Some(json!({}))
        } else {
            serde_json::from_slice(&reply).ok()
        };
        match (status, json) {
            (200, Some(v)) => Ok(Ok(v)),
            (_, Some(v)) if v.get("__type").is_some() => Ok(Err(v)),
            // A function URL's IAM auth refuses with its own body: `{"Message": "Forbidden"}`.
            (403, Some(v)) if v.get("Message").is_some() => Ok(Err(v)),
            _ => bail!(
                "{} answered HTTP {status} to {operation}, not as CodePipeline's API does: is it a baton serve?",
                self.url
            ),
        }
    }

    /// One `POST /` over HTTP/1.1 on its own connection (TLS for https): the status and the
    /// body.
    async fn post(&self, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let body = Bytes::copy_from_slice(body);
        let (status, _, answer) = self.connection.send("POST", "/", headers, body).await?;
        let answer = answer
            .collect()
            .await
            .map_err(|e| anyhow!("the connection to {} failed: {e}", self.url))?
            .to_bytes();
        Ok((status, answer.to_vec()))
    }
}

/// Requests to one endpoint, each over HTTP/1.1 on a connection of its own (TLS, verified, for
/// https).
pub(crate) struct Connection {
    url: String,
    /// `host[:port]` as given: the `Host` header, and what signatures cover.
    pub(crate) authority: String,
    /// Where to connect: the authority with the port made explicit.
    address: String,
    /// For an `https://` endpoint: the verifying TLS client and the name the certificate must
    /// carry.
    tls: Option<(tokio_rustls::TlsConnector, tokio_rustls::rustls::pki_types::ServerName<'static>)>,
}

impl Connection {
    /// Requests to `url` (`http[s]://host[:port]`).
    pub(crate) fn new(url: &str) -> Result<Self> {
        let Endpoint { authority, address, host, https } = parse_endpoint(url)?;
        let tls =
            if https { Some((crate::tls::client()?, server_name(&host, url)?)) } else { None };
        Ok(Self { url: url.trim_end_matches('/').to_owned(), authority, address, tls })
    }

    /// Sends one request: the answer's status and headers, and its body to read.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<(u16, hyper::HeaderMap, Incoming)> {
        let mut request = hyper::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| anyhow!("cannot send to {}: {e}", self.url))?;
        let tcp = TcpStream::connect(&self.address)
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", self.url))?;
        let response = match &self.tls {
            None => self.exchange(TokioIo::new(tcp), request).await?,
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    anyhow!("no trusted TLS connection to {}: {e} (set AWS_CA_BUNDLE to a private CA's PEM file)", self.url)
                })?;
                self.exchange(TokioIo::new(stream), request).await?
            }
        };
        let status = response.status().as_u16();
        let (head, body) = response.into_parts();
        Ok((status, head.headers, body))
    }

    /// Sends `request` over `io` with hyper's HTTP/1.1 client: the answer, its body unread.
    async fn exchange<S>(
        &self,
        io: S,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>>
    where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let lost = |e: hyper::Error| anyhow!("the connection to {} failed: {e}", self.url);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(io).await.map_err(lost)?;
        // The connection is driven beside the request; it ends with the answer.
        tokio::spawn(connection);
        sender.send_request(request).await.map_err(lost)
    }
}

/// The name (or address) an https endpoint's certificate must carry.
fn server_name(
    host: &str,
    url: &str,
) -> Result<tokio_rustls::rustls::pki_types::ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    tokio_rustls::rustls::pki_types::ServerName::try_from(bare.to_owned())
        .map_err(|e| anyhow!("--endpoint {url}: {e}"))
}

/// An endpoint, read from its URL.
struct Endpoint {
    /// `host[:port]` as given.
    authority: String,
    /// `host:port`, the port made explicit.
    address: String,
    /// The host alone.
    host: String,
    https: bool,
}

/// `http[s]://host[:port][/]` into the authority as given and the address to connect to.
fn parse_endpoint(url: &str) -> Result<Endpoint> {
    let lower = url.to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, &url["https://".len()..])
    } else if lower.starts_with("http://") {
        (false, &url["http://".len()..])
    } else {
        bail!(
            "--endpoint {url}: give the control API's URL, as http://host:port or https://host:port"
        );
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        bail!("--endpoint {url}: give the control API's URL, as http(s)://host:port, with no path");
    }
    // A port after the last colon, unless that colon is inside an IPv6 literal.
    let port =
        authority.rsplit_once(':').filter(|(host, port)| !host.is_empty() && !port.contains(']'));
    let (host, address) = match port {
        Some((host, _)) => (host.to_owned(), authority.to_owned()),
        None => (authority.to_owned(), format!("{authority}:{}", if https { 443 } else { 80 })),
    };
    Ok(Endpoint { authority: authority.to_owned(), address, host, https })
}

impl Control for Client {
    async fn exchange(&self, operation: &str, input: &Value) -> Result<Result<Value, Value>> {
        self.exchange_json(operation, input).await
    }

    fn no_pipeline(&self, _name: &str, refusal: &Value) -> String {
        api_error(refusal).to_string()
    }

    async fn carry_on(&self, _pipeline: &str, _execution: &str) -> Result<ExitCode> {
        Ok(ExitCode::SUCCESS)
    }
}

fn invocation_id() -> String {
    baton_core::events::format_uuid(baton::ports::clock::entropy().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::function_url_region;

    #[test]
    fn a_function_urls_region_is_read_from_its_host() {
        assert_eq!(
            function_url_region("abcdefghij0123456789.lambda-url.eu-west-1.on.aws"),
            Some("eu-west-1")
        );
        assert_eq!(function_url_region("127.0.0.1:8642"), None);
        assert_eq!(function_url_region("x.lambda-url..on.aws"), None);
    }
}
