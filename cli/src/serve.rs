//! `baton serve`: CodePipeline's API over HTTP (`POST /`, JSON 1.1, SigV4) beside the embedded
//! runtime's dispatcher, so the AWS CLI, boto3 and the SDKs drive this home.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::serve::IncomingStream;
use baton::api::{CONTENT_TYPE, ControlApi, Credentials};
use baton::embedded::Embedded;
use baton::service::{APPROVAL_PAGE_HEADERS, Approvals};
use baton_core::events::format_uuid;
use tokio::sync::watch;

/// The access key `baton serve` accepts when nothing else is configured: on loopback only.
pub(crate) const DEFAULT_ACCESS_KEY_ID: &str = "baton";
/// The secret key that goes with [`DEFAULT_ACCESS_KEY_ID`]. It is in the README, so it
/// protects nothing from another machine.
pub(crate) const DEFAULT_SECRET_ACCESS_KEY: &str = "baton-local-secret";

/// Environment variables that set the API's credentials, before `[api]` in `baton.toml`.
const ACCESS_KEY_VAR: &str = "BATON_API_ACCESS_KEY_ID";
const SECRET_KEY_VAR: &str = "BATON_API_SECRET_ACCESS_KEY";

/// `[api]` in `baton.toml`: the credentials callers sign with, and how the API is exposed
/// beyond loopback.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSettings {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    /// PEM certificate chain and private key: `baton serve` speaks https.
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
    /// A TLS-terminating proxy is in front, so plain HTTP may listen beyond loopback.
    #[serde(default)]
    tls_terminated_by_proxy: bool,
}

/// Where the API's credentials come from, for the start-up banner (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    /// The documented pair, good on loopback only.
    Default,
    /// `BATON_API_ACCESS_KEY_ID` and `BATON_API_SECRET_ACCESS_KEY`.
    Environment,
    /// `[api]` in this file.
    File(PathBuf),
}

/// The credentials `baton serve` accepts, and where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiCredentials {
    pub(crate) access_key: String,
    pub(crate) secret: String,
    pub(crate) source: CredentialSource,
}

/// How `baton serve` listens, once the exposure rules allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    Http,
    Https { certificate: PathBuf, private_key: PathBuf },
}

impl ApiSettings {
    /// The credentials: the environment's, else `baton.toml`'s, else the default pair.
    ///
    /// # Errors
    /// Half a pair, or a secret in a `baton.toml` that other users can read.
    pub(crate) fn credentials(
        &self,
        toml: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiCredentials> {
        let pair = |key: Option<String>, secret: Option<String>, place: &str| match (key, secret) {
            (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => Ok(Some((k, s))),
            (None, None) => Ok(None),
            _ => Err(anyhow!("{place} must set both the access key id and the secret access key")),
        };
        if let Some((access_key, secret)) = pair(
            env(ACCESS_KEY_VAR),
            env(SECRET_KEY_VAR),
            &format!("{ACCESS_KEY_VAR} and {SECRET_KEY_VAR}"),
        )? {
            return Ok(ApiCredentials {
                access_key,
                secret,
                source: CredentialSource::Environment,
            });
        }
        let place = format!("[api] in {}", toml.display());
        match pair(self.access_key_id.clone(), self.secret_access_key.clone(), &place)? {
            Some((access_key, secret)) => {
                refuse_if_others_can_read(toml, "the API's secret key")?;
                Ok(ApiCredentials {
                    access_key,
                    secret,
                    source: CredentialSource::File(toml.into()),
                })
            }
            None => Ok(ApiCredentials {
                access_key: DEFAULT_ACCESS_KEY_ID.into(),
                secret: DEFAULT_SECRET_ACCESS_KEY.into(),
                source: CredentialSource::Default,
            }),
        }
    }

    /// Whether the API may listen on `ip` with `credentials`, and how. Loopback takes anything;
    /// any other address, where strangers reach it, needs credentials of one's own and TLS
    /// (here, or in a proxy in front), since the API runs the commands a pipeline declares.
    ///
    /// # Errors
    /// One sentence saying what to configure.
    pub(crate) fn transport(&self, ip: IpAddr, credentials: &ApiCredentials) -> Result<Transport> {
        let tls = match (&self.tls_certificate, &self.tls_private_key) {
            (Some(c), Some(k)) => {
                Some(Transport::Https { certificate: c.clone(), private_key: k.clone() })
            }
            (None, None) => None,
            _ => bail!("[api] needs both tls_certificate and tls_private_key, or neither"),
        };
        if ip.is_loopback() {
            return Ok(tls.unwrap_or(Transport::Http));
        }
        if credentials.source == CredentialSource::Default
            || credentials.secret == DEFAULT_SECRET_ACCESS_KEY
        {
            bail!(
                "baton serve will not listen on {ip} with the default credentials, which anyone can read: set access_key_id and secret_access_key under [api] in baton.toml (or {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}), or listen on 127.0.0.1"
            );
        }
        match tls {
            Some(t) => Ok(t),
            None if self.tls_terminated_by_proxy => Ok(Transport::Http),
            None => bail!(
                "baton serve will not listen on {ip} over plain HTTP: set tls_certificate and tls_private_key under [api] in baton.toml, or tls_terminated_by_proxy = true if a TLS proxy is in front"
            ),
        }
    }
}

/// A secret in a file others can read is a secret no more: refuse, as ssh refuses such keys.
pub(crate) fn refuse_if_others_can_read(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} holds {what} but other users can read it: run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// `baton serve [--bind ADDR] [--port N]`: serves until Ctrl-C or SIGTERM.
pub(crate) async fn serve(home: &Path, bind: &str, port: u16, region: &str) -> Result<ExitCode> {
    let all = crate::local::settings(home)?;
    let toml = home.join("baton.toml");
    let hook_secrets = all.webhooks.secrets(&toml)?;
    let settings = all.api.unwrap_or_default();
    let credentials = settings.credentials(&toml, |name| std::env::var(name).ok())?;
    // Checked before listening, so a refused address is never open, even for a moment.
    let wanted = tokio::net::lookup_host((bind, port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| anyhow!("cannot listen on {bind}:{port}: not an address of this machine"))?;
    let transport = settings.transport(wanted.ip(), &credentials)?;
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .with_context(|| format!("cannot listen on {bind}:{port}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let scheme = match transport {
        Transport::Http => "http",
        Transport::Https { .. } => "https",
    };
    // Links are for people: an unspecified bind address is reached through loopback here.
    let link_host =
        if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let serving_at = format!("{scheme}://{link_host}:{}", addr.port());
    let serving_console = format!("{serving_at}/");
    let rt = crate::local::open_serving(
        home,
        false,
        Some(serving_at.clone()),
        Some(&credentials.access_key),
    )
    .await?;
    let accepted =
        Credentials::from([(credentials.access_key.clone(), credentials.secret.clone())]);
    let api = Arc::new(rt.control_api(region, accepted.clone()).with_webhook_url(Some(serving_at)));
    let hosts: Vec<&str> = hook_secrets.keys().map(|h| h.name()).collect();
    // Live pages end when the server stops, or graceful shutdown would wait for them forever.
    let (quit_tx, quit_rx) = watch::channel(false);
    // The default pair is public, so on loopback it guards nothing a login would; a secret of
    // one's own, or another address, and the console asks for it.
    let open = wanted.ip().is_loopback() && credentials.source == CredentialSource::Default;
    let login = (!open).then(|| crate::console::Login {
        accepted: accepted.clone(),
        secure: transport != Transport::Http || settings.tls_terminated_by_proxy,
    });
    let home = crate::console::Home {
        api: Arc::clone(&api),
        bus: Arc::clone(&rt.bus),
        logs: rt.home.join("logs"),
        artifacts: rt.artifacts.clone(),
        scratch: rt.home.clone(),
    };
    let console = crate::console::Console::new(
        crate::console::Backend::Home(home),
        crate::console::Guard::new(&credentials.access_key, login)?,
        rt.home.join("console-audit.log"),
        quit_rx,
    );
    let app = Router::new().fallback(call).with_state(api);
    let app = crate::console::routes(app, Arc::new(console));
    let app = approval_pages(app, &rt);
    let app = job_artifacts(app, &rt, region);
    let app = crate::webhooks::routes(app, &rt, hook_secrets);
    let (stop_tx, stop_rx) = watch::channel(false);
    let lock = rt.try_lock();
    let dispatcher = lock.as_ref().map(|_| tokio::spawn(Arc::clone(&rt).dispatch(stop_rx)));
    if lock.is_none() {
        eprintln!(
            "Another baton process is running this home: it runs the executions; this one only answers the API."
        );
    }
    eprintln!("Baton control API for {} in {region}", rt.home.display());
    print_credentials(&credentials);
    eprintln!(
        "  aws codepipeline list-pipelines --endpoint-url {scheme}://{addr} --region {region}"
    );
    for host in hosts {
        eprintln!("  webhooks from {host}: {scheme}://{addr}/webhooks/{host}");
    }
    eprintln!("  console: {serving_console}");
    eprintln!("Listening on {scheme}://{addr}");
    // For a script that started `baton serve --port 0`: where it listens, once, as JSON.
    crate::output::ready(&serde_json::json!({"endpoint": format!("{scheme}://{addr}"),
        "region": region, "console": serving_console.to_string()}));

    match transport {
        Transport::Http => {
            let app = app.into_make_service_with_connect_info::<Peer>();
            axum::serve(listener, app).with_graceful_shutdown(quitting(quit_tx)).await?;
        }
        Transport::Https { certificate, private_key } => {
            let tls = crate::tls::TlsListener::new(listener, &certificate, &private_key)?;
            let app = app.into_make_service_with_connect_info::<Peer>();
            axum::serve(tls, app).with_graceful_shutdown(quitting(quit_tx)).await?;
        }
    }
    let _ = stop_tx.send(true);
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// Names where the credentials come from; prints the secret only when it is the documented
/// default, which is no secret.
fn print_credentials(c: &ApiCredentials) {
    eprintln!("  access key id:     {}", c.access_key);
    match &c.source {
        CredentialSource::Default => {
            eprintln!("  secret access key: {} (the default, accepted on loopback only)", c.secret);
        }
        CredentialSource::Environment => {
            eprintln!("  secret access key: from {SECRET_KEY_VAR}");
        }
        CredentialSource::File(path) => {
            eprintln!("  secret access key: from [api] in {}", path.display());
        }
    }
}

/// The pages behind approval links: `GET /approvals/{id}/{secret}` shows one, the `POST` from
/// it decides. Everything else falls through to the API.
fn approval_pages(router: Router, rt: &Arc<Embedded>) -> Router {
    let page = Router::new()
        .route("/approvals/{id}/{secret}", any(approval_page))
        .with_state(Arc::clone(&rt.approvals));
    page.merge(router)
}

async fn approval_page(
    State(approvals): State<Arc<Approvals>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let page = approvals.serve(method.as_str(), uri.path(), &body).await;
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, page.html).into_response();
    for (name, value) in APPROVAL_PAGE_HEADERS {
        response.headers_mut().insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// The artifacts lent to job workers, under S3's protocol: `GET`, `HEAD` and `PUT` of
/// `/baton-artifacts/<key>`, signed with a job's own credentials. Everything else falls through.
fn job_artifacts(router: Router, rt: &Arc<Embedded>, region: &str) -> Router {
    let objects = Router::new()
        .route(&format!("/{}/{{*key}}", baton::adapters::local::job_grants::BUCKET), any(object))
        // Artifacts are zips of any size a build makes; the default limit is for API calls.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_ARTIFACT_PUT))
        .with_state((Arc::clone(rt), region.to_owned()));
    objects.merge(router)
}

/// The largest artifact a job worker may put in one request.
const MAX_ARTIFACT_PUT: usize = 1 << 30;

async fn object(
    State((rt, region)): State<(Arc<Embedded>, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = header_pairs(&headers);
    let request = baton::api::s3_objects::ObjectRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
    };
    let now = baton::ports::clock::Clock::now(&baton::ports::clock::SystemClock);
    let granted = Arc::clone(&rt.granted);
    let reply = tokio::task::block_in_place(|| {
        baton::api::s3_objects::serve(granted.as_ref(), &region, &request, now)
    });
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::try_from(name), HeaderValue::from_str(&value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The shutdown signal, passed on to whatever must end for the server to stop.
pub(crate) async fn quitting(quit: watch::Sender<bool>) {
    shutdown().await;
    let _ = quit.send(true);
}

/// Every request goes to the API: it answers JSON 1.1 on `POST /` and refuses anything else
/// with the protocol's own errors.
async fn call(
    State(api): State<Arc<ControlApi>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&api, &method, &uri, &headers, &body).await
}

/// The API's answer to one HTTP request.
pub(crate) async fn answer(
    api: &ControlApi,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let headers = header_pairs(headers);
    let request = baton::api::ApiRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body,
    };
    let reply = api.handle(&request).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        out.insert("x-amzn-requestid", id);
    }
    response
}

/// A request's headers as the API, the S3 view and the webhooks read them: name and value
/// pairs, in order, a non-UTF-8 value made lossy.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect()
}

fn request_id() -> String {
    format_uuid(baton::ports::clock::entropy().unwrap_or_default())
}

pub(crate) async fn shutdown() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> ApiSettings {
        toml::from_str(toml).unwrap()
    }

    fn own() -> ApiCredentials {
        ApiCredentials {
            access_key: "ops".into(),
            secret: "a long secret".into(),
            source: CredentialSource::Environment,
        }
    }

    fn default_pair() -> ApiCredentials {
        let none = |_: &str| None;
        ApiSettings::default().credentials(Path::new("/nonexistent/baton.toml"), none).unwrap()
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const ANY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));

    #[test]
    fn loopback_takes_the_default_credentials_and_plain_http() {
        assert_eq!(default_pair().source, CredentialSource::Default);
        assert_eq!(
            ApiSettings::default().transport(LOOPBACK, &default_pair()).unwrap(),
            Transport::Http
        );
        let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        assert_eq!(ApiSettings::default().transport(v6, &default_pair()).unwrap(), Transport::Http);
    }

    #[test]
    fn another_address_needs_credentials_of_ones_own() {
        for ip in [ANY, LAN] {
            let e = ApiSettings::default().transport(ip, &default_pair()).unwrap_err().to_string();
            assert!(e.contains("default credentials"), "{e}");
            // The default secret under another key id is no better.
            let renamed = ApiCredentials { access_key: "x".into(), ..default_pair() };
            let renamed = ApiCredentials { source: CredentialSource::Environment, ..renamed };
            assert!(ApiSettings::default().transport(ip, &renamed).is_err());
        }
    }

    #[test]
    fn another_address_needs_tls_here_or_in_a_proxy() {
        let e = ApiSettings::default().transport(ANY, &own()).unwrap_err().to_string();
        assert!(e.contains("over plain HTTP") && e.contains("tls_certificate"), "{e}");
        let proxied = settings("tls_terminated_by_proxy = true");
        assert_eq!(proxied.transport(ANY, &own()).unwrap(), Transport::Http);
        let tls = settings("tls_certificate = \"c.pem\"\ntls_private_key = \"k.pem\"");
        assert_eq!(
            tls.transport(LAN, &own()).unwrap(),
            Transport::Https { certificate: "c.pem".into(), private_key: "k.pem".into() }
        );
        let half = settings("tls_certificate = \"c.pem\"");
        assert!(half.transport(LOOPBACK, &own()).is_err(), "half a TLS identity is refused");
    }

    #[test]
    fn credentials_come_from_the_environment_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("baton.toml");
        std::fs::write(&toml, "").unwrap();
        let from_file = settings("access_key_id = \"f\"\nsecret_access_key = \"fs\"");
        let env = |name: &str| match name {
            ACCESS_KEY_VAR => Some("e".to_owned()),
            SECRET_KEY_VAR => Some("es".to_owned()),
            _ => None,
        };
        let c = from_file.credentials(&toml, env).unwrap();
        assert_eq!((c.access_key.as_str(), c.source), ("e", CredentialSource::Environment));
        let half = |name: &str| (name == ACCESS_KEY_VAR).then(|| "e".to_owned());
        assert!(from_file.credentials(&toml, half).is_err(), "half a pair is refused");
    }

    #[test]
    fn a_secret_in_a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("baton.toml");
        std::fs::write(&toml, "").unwrap();
        std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o644)).unwrap();
        let from_file = settings("access_key_id = \"f\"\nsecret_access_key = \"fs\"");
        let e = from_file.credentials(&toml, |_| None).unwrap_err().to_string();
        assert!(e.contains("other users can read it: run chmod 600"), "{e}");
        std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = from_file.credentials(&toml, |_| None).unwrap();
        assert_eq!(c.source, CredentialSource::File(toml));
    }
}

/// Who sent a request: what `IP`-authenticated webhooks check, over plain HTTP or TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}
