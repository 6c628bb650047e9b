//! An artifact an action made: its page (where it lies, its size, its SHA-256) and its
//! download. Only an artifact the execution lists as an action's output is reachable, found by
//! the names in the path, never by a key taken from it.

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use baton_core::engine::ArtifactLocation;
use maud::{Markup, html};
use serde_json::Value;
use sha2::Digest;
use tokio::io::AsyncReadExt;

use super::execution::href;
use super::pages::{self, text, url_encode};
use super::{Backend, Console, attempts_of, failure, page, query, to_login, user};

/// Where an artifact's page is.
pub(super) fn artifact_href(
    pipeline: &str,
    execution: &str,
    attempt: &Value,
    name: &str,
) -> String {
    format!(
        "{}/artifacts/{}/{}/{}",
        href(pipeline, execution),
        url_encode(text(&attempt["stageName"])),
        url_encode(text(&attempt["actionName"])),
        url_encode(name)
    )
}

pub(super) async fn artifact(
    State(c): State<Arc<Console>>,
    UrlPath((name, id, stage, action, artifact)): UrlPath<(String, String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(user) = user(&c, &headers) else { return to_login() };
    let attempts = match attempts_of(&c, &user, &name, &id).await {
        Ok(a) => a,
        Err(e) => return failure(&c, &artifact, &e),
    };
    // The API lists an action's latest attempt first.
    let made = attempts
        .iter()
        .filter(|a| text(&a["stageName"]) == stage && text(&a["actionName"]) == action)
        .find_map(|a| {
            let out = a["output"]["outputArtifacts"].as_array()?;
            let o = out.iter().find(|o| text(&o["name"]) == artifact)?;
            Some(ArtifactLocation {
                bucket: text(&o["s3location"]["bucket"]).to_owned(),
                key: text(&o["s3location"]["key"]).to_owned(),
            })
        });
    let Some(location) = made else {
        let why = format!("{stage}/{action} made no artifact {artifact} in execution {id}");
        return failure(&c, &artifact, &why);
    };
    let copy = match c.plaintext(&location).await {
        Ok(copy) => copy,
        Err(e) => return failure(&c, &artifact, &format!("The artifact cannot be read: {e}")),
    };
    if query(&uri).contains_key("download") {
        return download(copy, &artifact).await;
    }
    let (size, digest) = match measure(copy.path()).await {
        Ok(m) => m,
        Err(e) => return failure(&c, &artifact, &format!("The artifact cannot be read: {e}")),
    };
    let csrf = c.guard.csrf();
    let frame = c.frame(&csrf);
    let body = artifact_page(&[&name, &id, &stage, &action, &artifact], &location, size, &digest);
    page(StatusCode::OK, pages::layout(&frame, &artifact, None, body))
}

impl Console {
    /// A private, decrypted copy of the artifact at `location`, gone when dropped.
    async fn plaintext(
        &self,
        location: &ArtifactLocation,
    ) -> Result<tempfile::NamedTempFile, String> {
        let home = match &self.backend {
            Backend::Home(home) => home,
            Backend::Deployment(d) => return d.plaintext(location).await,
        };
        let copy = tempfile::Builder::new()
            .prefix(".artifact-")
            .tempfile_in(&home.scratch)
            .map_err(|e| e.to_string())?;
        let region =
            home.artifacts.region_of(location).unwrap_or_else(|| home.api.region().to_owned());
        home.artifacts.get(&region, location, copy.path()).await.map_err(|e| e.to_string())?;
        Ok(copy)
    }
}

/// The copy's bytes, streamed; the copy is removed once they are sent.
async fn download(copy: tempfile::NamedTempFile, name: &str) -> Response {
    let Ok(file) = tokio::fs::File::open(copy.path()).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let length = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let chunks = futures_util::stream::unfold((file, copy), |(mut file, copy)| async move {
        let mut buf = vec![0; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (file, copy)))
            }
            Err(e) => Some((Err(e), (file, copy))),
        }
    });
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}.zip\"")),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// The file's size in bytes and its SHA-256, read in chunks.
async fn measure(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let (mut size, mut hash) = (0_u64, sha2::Sha256::new());
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((size, hex::encode(hash.finalize())));
        }
        size += n as u64;
        hash.update(&buf[..n]);
    }
}

fn artifact_page(
    names: &[&str; 5],
    location: &ArtifactLocation,
    size: u64,
    digest: &str,
) -> Markup {
    let [pipeline, execution, stage, action, artifact] = *names;
    html! {
        nav { a href=(href(pipeline, execution)) { "← execution " (pages::short(execution)) } }
        h1 { "Artifact " (artifact) }
        dl.facts {
            dt { "Made by" } dd { (stage) " / " (action) }
            dt { "Size" } dd { (size) " bytes" }
            dt { "SHA-256" } dd { code { (digest) } }
            dt { "Stored at" } dd { code { (location.bucket) "/" (location.key) } }
        }
        p { a.button href="?download=1" download { "Download " (artifact) ".zip" } }
    }
}
