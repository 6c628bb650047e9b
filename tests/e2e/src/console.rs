//! `baton --endpoint URL console` against the deployment: the built `baton` binary, run as a
//! user would run it, with the pipeline account's keys as its AWS credentials, and the few
//! HTTP requests a browser would make of it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::stack::AccountKeys;

/// A running console, killed when dropped.
pub struct Console {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The login link it printed, path and query (`/console/login?token=...`).
    pub login: String,
    _process: tokio::process::Child,
}

impl Console {
    /// Starts `baton --endpoint API console` signing with `keys`, its home under `home`.
    /// AWS is `aws_endpoint` (moto), as the AWS tools' `AWS_ENDPOINT_URL` points it.
    pub async fn start(
        baton: &Path,
        api: &str,
        keys: &AccountKeys,
        home: &Path,
        aws_endpoint: &str,
    ) -> Result<Self> {
        let mut process = tokio::process::Command::new(baton)
            .args(["--endpoint", api, "--output", "json", "console", "--port", "0"])
            .args(["--region", crate::stack::HOME, "--home"])
            .arg(home)
            .env("AWS_ACCESS_KEY_ID", &keys.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &keys.secret_key)
            .env("AWS_SESSION_TOKEN", &keys.session_token)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", baton.display()))?;
        let stdout = process.stdout.take().ok_or_else(|| anyhow!("no standard output"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the console did not say where it listens within 30 s")??
            .ok_or_else(|| anyhow!("the console ended before it listened"))?;
        let ready: serde_json::Value = serde_json::from_str(&line)?;
        let url = ready["console"].as_str().ok_or_else(|| anyhow!("no console in {line}"))?;
        let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("not http: {url}"))?;
        let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Ok(Self { address: address.to_owned(), login: path.to_owned(), _process: process })
    }

    /// `GET path` with `cookie`: the status, the `Location` and `Set-Cookie` headers, the body.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Result<Reply> {
        let response = self.send("GET", path, cookie, Bytes::new()).await?;
        Reply::read(response).await
    }

    /// `GET path` with `cookie`: the status and the body's bytes (a download).
    pub async fn get_bytes(&self, path: &str, cookie: &str) -> Result<(u16, Bytes)> {
        let response = self.send("GET", path, Some(cookie), Bytes::new()).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// `POST path` of an urlencoded `form` with `cookie`.
    pub async fn post(&self, path: &str, cookie: &str, form: &str) -> Result<Reply> {
        let response = self.send("POST", path, Some(cookie), Bytes::from(form.to_owned())).await?;
        Reply::read(response).await
    }

    /// The console's server-sent events, as their text arrives.
    pub async fn events(&self, cookie: &str) -> Result<mpsc::UnboundedReceiver<String>> {
        let mut response = self.send("GET", "/console/events", Some(cookie), Bytes::new()).await?;
        anyhow::ensure!(response.status() == 200, "the events answered {}", response.status());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = response.body_mut().frame().await {
                if let Ok(data) = frame.into_data()
                    && tx.send(String::from_utf8_lossy(&data).into_owned()).is_err()
                {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>> {
        let stream = tokio::net::TcpStream::connect(&self.address).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake::<
            _,
            http_body_util::Either<Full<Bytes>, Empty<Bytes>>,
        >(TokioIo::new(stream))
        .await?;
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.address)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let body = if body.is_empty() {
            http_body_util::Either::Right(Empty::new())
        } else {
            http_body_util::Either::Left(Full::new(body))
        };
        Ok(sender.send_request(request.body(body)?).await?)
    }
}

/// An answer of the console.
#[derive(Debug)]
pub struct Reply {
    #[allow(missing_docs)]
    pub status: u16,
    /// Where a redirect points.
    pub location: String,
    /// The cookie it sets, `name=value` only.
    pub cookie: Option<String>,
    #[allow(missing_docs)]
    pub body: String,
}

impl Reply {
    async fn read(response: hyper::Response<Incoming>) -> Result<Self> {
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let location = header("location").unwrap_or_default();
        let cookie = header("set-cookie").and_then(|c| c.split(';').next().map(str::to_owned));
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Self { status, location, cookie, body: String::from_utf8_lossy(&body).into_owned() })
    }

    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        let rest = &self.body[at..];
        Some(rest[..rest.find('"')?].to_owned())
    }
}
