//! `baton serve`: CodePipeline's API over HTTP (`POST /`, JSON 1.1, SigV4) beside the embedded
//! runtime's dispatcher, so the AWS CLI, boto3 and the SDKs drive this home.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use baton::api::{CONTENT_TYPE, ControlApi, Credentials};
use baton::embedded::Embedded;
use baton::service::{APPROVAL_PAGE_HEADERS, Approvals};
use baton_core::events::format_uuid;
use tokio::sync::watch;

/// The access key `baton serve` accepts when `baton.toml` has no `[api]`: for one machine only.
pub(crate) const DEFAULT_ACCESS_KEY_ID: &str = "baton";
/// The secret key that goes with [`DEFAULT_ACCESS_KEY_ID`].
pub(crate) const DEFAULT_SECRET_ACCESS_KEY: &str = "baton-local-secret";

/// `[api]` in `baton.toml`: the credentials callers sign with.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSettings {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
}

impl ApiSettings {
    fn credentials(&self) -> (String, String) {
        (
            self.access_key_id.clone().unwrap_or_else(|| DEFAULT_ACCESS_KEY_ID.into()),
            self.secret_access_key.clone().unwrap_or_else(|| DEFAULT_SECRET_ACCESS_KEY.into()),
        )
    }
}

/// `baton serve [--bind ADDR] [--port N]`: serves until Ctrl-C or SIGTERM.
pub(crate) async fn serve(home: &Path, bind: &str, port: u16, region: &str) -> Result<ExitCode> {
    let settings = crate::local::settings(home)?.api.unwrap_or_default();
    let (access_key, secret) = settings.credentials();
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("cannot listen on {bind}:{port}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    // Links are for people: an unspecified bind address is reached through loopback here.
    let link_host =
        if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let serving_at = format!("http://{link_host}:{}", addr.port());
    let rt = crate::local::open_serving(home, false, Some(serving_at)).await?;
    let credentials = Credentials::from([(access_key.clone(), secret.clone())]);
    let api = Arc::new(ControlApi::embedded(&rt, region, credentials));
    let app = approval_pages(Router::new().fallback(call).with_state(api), &rt);
    let (stop_tx, stop_rx) = watch::channel(false);
    let lock = rt.try_lock();
    let dispatcher = lock.as_ref().map(|_| tokio::spawn(Arc::clone(&rt).dispatch(stop_rx)));
    if lock.is_none() {
        eprintln!(
            "Another baton process is running this home: it runs the executions; this one only answers the API."
        );
    }
    eprintln!("Baton control API for {} in {region}", rt.home.display());
    eprintln!("  access key id:     {access_key}");
    eprintln!("  secret access key: {secret}");
    eprintln!("  aws codepipeline list-pipelines --endpoint-url http://{addr} --region {region}");
    eprintln!("Listening on http://{addr}");

    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    let _ = stop_tx.send(true);
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    drop(lock);
    Ok(ExitCode::SUCCESS)
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

/// Every request goes to the API: it answers JSON 1.1 on `POST /` and refuses anything else
/// with the protocol's own errors.
async fn call(
    State(api): State<Arc<ControlApi>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let request = baton::api::ApiRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
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

fn request_id() -> String {
    format_uuid(baton::ports::clock::entropy().unwrap_or_default())
}

async fn shutdown() {
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
