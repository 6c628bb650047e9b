//! `baton --endpoint URL proxy`: the stock AWS CLI, boto3 and the SDKs against a Baton
//! deployment on AWS. The deployment's API is a Lambda function URL whose IAM auth checks
//! signatures made for the service `lambda`, while CodePipeline's clients sign for
//! `codepipeline`. The proxy listens on loopback, checks that each request was signed with the
//! very credentials it holds (so nobody else on the machine can borrow them), and re-signs it
//! for Lambda with them: IAM still decides who gets in, and the API sees the caller's ARN.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use baton::api::sigv4::{self, AuthError};
use baton::api::{ApiError, CONTENT_TYPE};

use crate::remote::Client;

struct Proxy {
    client: Client,
    /// The region callers sign for.
    region: String,
}

/// Listens on `127.0.0.1:port` until Ctrl-C, forwarding to `client`'s endpoint.
pub(crate) async fn run(client: Client, port: u16, region: &str) -> Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let proxy = Arc::new(Proxy { client, region: region.to_owned() });
    let app = Router::new().fallback(forward).with_state(proxy);
    eprintln!(
        "Forwarding CodePipeline's API on http://{addr}, re-signed for the function URL with your credentials:"
    );
    eprintln!("  aws codepipeline list-pipelines --endpoint-url http://{addr} --region {region}");
    eprintln!("Listening on http://{addr}");
    crate::output::ready(
        &serde_json::json!({"endpoint": format!("http://{addr}"), "region": region}),
    );
    axum::serve(listener, app).with_graceful_shutdown(crate::serve::shutdown()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = crate::serve::header_pairs(&headers);
    let keys = match proxy.client.keys().await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "no credentials to sign with");
            return reply(502, ApiError::internal(&e).reply().body);
        }
    };
    if let Err(e) = proxy.caller_holds_our_credentials(&keys, &method, &uri, &headers, &body) {
        let refused = ApiError::from(e).reply();
        return reply(refused.status, refused.body);
    }
    let target = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    match proxy.client.forward(target, &body).await {
        Ok((status, body)) => reply(status, body),
        Err(e) => {
            tracing::warn!(error = %e, "the deployment's API did not answer");
            reply(502, ApiError::internal(&e).reply().body)
        }
    }
}

impl Proxy {
    /// Whether the request was signed (for CodePipeline, in our region) with the proxy's own
    /// credentials, session token included.
    fn caller_holds_our_credentials(
        &self,
        keys: &crate::remote::Keys,
        method: &Method,
        uri: &Uri,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), AuthError> {
        let (access_key, secret, token) =
            (&keys.access_key, &keys.secret_key, keys.session_token.as_deref());
        let signable = sigv4::Signable {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or_default(),
            headers,
            body,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let expected = sigv4::Expected { region: &self.region, service: "codepipeline", now };
        sigv4::verify(&signable, &expected, |key| (key == access_key).then(|| secret.to_owned()))?;
        let sent = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
            .map(|(_, v)| v.as_str());
        if sent != token {
            return Err(AuthError::UnknownKey);
        }
        Ok(())
    }
}

fn reply(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
