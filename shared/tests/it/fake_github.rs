//! A loopback GitHub for the GitHub (v1) source: the commits API and the archive API of one
//! repository, `octo/app`, readable with the token `good-token`, whose archives redirect to a
//! second server (as api.github.com redirects to codeload.github.com). Each archive holds the
//! files under one `octo-app-<sha>/` folder, as GitHub's do.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::aws_support::serve_on_loopback;

/// The branch `main`'s head.
pub(crate) const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
/// An older commit.
pub(crate) const OLDER: &str = "0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";
pub(crate) const TOKEN: &str = "good-token";

/// What the archive host saw: the `Authorization` header of each request (`None` if absent).
pub(crate) type ArchiveAuth = Arc<Mutex<Vec<Option<String>>>>;

#[derive(Clone)]
struct Api {
    codeload: String,
}

/// Serves the API and the archive host; returns the API's URL and what the archive host saw.
pub(crate) async fn serve() -> (String, ArchiveAuth) {
    let seen = ArchiveAuth::default();
    let codeload =
        Router::new().route("/octo/app/legacy.zip/{sha}", get(archive)).with_state(seen.clone());
    let codeload_url = serve_on_loopback(codeload).await;
    let api = Router::new()
        .route("/repos/octo/app/commits/{reference}", get(commit))
        .route("/repos/octo/app/zipball/{sha}", get(zipball))
        .with_state(Api { codeload: codeload_url });
    (serve_on_loopback(api).await, seen)
}

/// GitHub's answer to a request without the repository's token, if it has none.
fn unauthorised(headers: &HeaderMap) -> Option<Response> {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if given == Some(format!("Bearer {TOKEN}").as_str()) {
        return None;
    }
    let refused =
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"});
    Some((StatusCode::UNAUTHORIZED, axum::Json(refused)).into_response())
}

async fn commit(headers: HeaderMap, Path(reference): Path<String>) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let (sha, message, date) = match reference.as_str() {
        "main" | HEAD => (HEAD, "Serve the new page\n\nAnd say why.", "2026-12-01T10:00:00Z"),
        OLDER => (OLDER, "The first page", "2026-11-01T09:00:00Z"),
        other => {
            let missing = json!({"message": format!("No commit found for SHA: {other}")});
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(missing)).into_response();
        }
    };
    axum::Json(json!({
        "sha": sha,
        "html_url": format!("https://github.com/octo/app/commit/{sha}"),
        "commit": {
            "message": message,
            "author": {"name": "Octo", "date": date},
            "committer": {"name": "GitHub", "date": "2026-12-02T11:00:00Z"}
        }
    }))
    .into_response()
}

async fn zipball(State(api): State<Api>, headers: HeaderMap, Path(sha): Path<String>) -> Response {
    if let Some(refused) = unauthorised(&headers) {
        return refused;
    }
    let location = format!("{}/octo/app/legacy.zip/{sha}?token=short-lived", api.codeload);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn archive(
    State(seen): State<ArchiveAuth>,
    headers: HeaderMap,
    Path(sha): Path<String>,
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().unwrap().push(auth);
    let page = if sha == OLDER { "first" } else { "new" };
    let top = format!("octo-app-{}/", &sha[..7]);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory(top.as_str(), options).unwrap();
    zip.start_file(format!("{top}README.md"), options).unwrap();
    zip.write_all(format!("the {page} page\n").as_bytes()).unwrap();
    zip.add_directory(format!("{top}scripts/"), options).unwrap();
    zip.start_file(format!("{top}scripts/run.sh"), options.unix_permissions(0o755)).unwrap();
    zip.write_all(b"#!/bin/sh\necho run\n").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    ([(header::CONTENT_TYPE, "application/zip")], bytes).into_response()
}
