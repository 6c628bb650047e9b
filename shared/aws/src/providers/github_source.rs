//! `ThirdParty/Source/GitHub` version 1 on AWS: `Owner/Repo` at `Branch` (or the commit a
//! webhook delivery or `sourceRevisions` pinned), fetched through GitHub's REST API with the
//! action's `OAuthToken`, as CodePipeline fetches it.
//!
//! # Why GitHub's API and not a build
//!
//! A connection source clones in a CodeBuild build, because only CodeBuild may use a
//! connection's credentials. A v1 source's credential is the `OAuthToken` in the declaration,
//! which the worker holds anyway; handing it to a build would put it in the build's
//! environment, where `BatchGetBuilds` shows it. Asking GitHub for the commit and its archive is
//! two calls from the worker, with no build to pay for or wait on (a build's provisioning alone
//! takes tens of seconds).
//!
//! The archive GitHub gives holds the files under one `owner-repo-sha/` folder; the artifact
//! holds them at its root, as CodePipeline's does. Entries are copied without recompressing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use baton_app::adapters::github::{self, GitHubApi};
use baton_core::engine::SourceRevision;
use baton_core::plan::ActionPlan;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::{Failure, Stop, finish, has_reference, optional, required};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// Fetches GitHub (v1) sources.
pub struct GitHubSourceProvider {
    api: Arc<GitHubApi>,
}

/// What GitHub says of a commit.
struct Commit {
    sha: String,
    message: String,
    author_date: String,
    committer_date: String,
    url: String,
}

impl GitHubSourceProvider {
    /// Fetches through GitHub's API at `api` (api.github.com, or an Enterprise Server's).
    pub fn new(api: Arc<GitHubApi>) -> Self {
        Self { api }
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Stop> {
        let config = &job.request.configuration;
        let (owner, repo) = (required(config, "Owner")?, required(config, "Repo")?);
        let branch = required(config, "Branch")?;
        let token = required(config, "OAuthToken")?;
        let repository = Repository { owner, repo, token };
        // The commit a push or `sourceRevisions` named, else the branch's head.
        let wanted = job.request.source_revision.as_ref().map_or(branch, |r| r.value.as_str());
        let commit = self.commit(&repository, wanted).await?;
        let archive = job.work_dir.join("github.zip");
        let path = format!("{}/zipball/{}", repository.path(), commit.sha);
        let (status, said) =
            self.api.download(&path, token, &archive).await.map_err(Stop::Unavailable)?;
        refused_unless(status, &said, &repository, &commit.sha)?;
        let dest = job.work_dir.join("source.zip");
        let (from, to) = (archive.clone(), dest.clone());
        let files = tokio::task::spawn_blocking(move || at_root(&from, &to))
            .await
            .map_err(|e| Failure::job(format!("Could not write the source zip: {e}.")))??;
        let _ = std::fs::remove_file(&archive);
        let output_artifacts = match job.request.output_artifacts.first() {
            Some(name) => vec![LocalArtifact::file(name.clone(), dest)],
            None => Vec::new(),
        };
        let first_line = commit.message.lines().next().unwrap_or_default().to_owned();
        Ok(JobResult::Succeeded {
            output_artifacts,
            output_variables: BTreeMap::from([
                ("AuthorDate".to_owned(), commit.author_date),
                ("BranchName".to_owned(), branch.to_owned()),
                ("CommitId".to_owned(), commit.sha.clone()),
                ("CommitMessage".to_owned(), commit.message),
                ("CommitterDate".to_owned(), commit.committer_date),
                ("CommitUrl".to_owned(), commit.url.clone()),
                ("RepositoryName".to_owned(), repo.to_owned()),
            ]),
            summary: Some(format!("{first_line} ({files} files)")),
            external_id: Some(commit.sha),
            external_url: Some(commit.url),
        })
    }

    /// The commit `reference` (a branch or a commit id) names.
    async fn commit(&self, repository: &Repository<'_>, reference: &str) -> Result<Commit, Stop> {
        let path = format!("{}/commits/{}", repository.path(), github::path_segment(reference));
        let (status, said) = self
            .api
            .call(Method::GET, &path, repository.token, None)
            .await
            .map_err(Stop::Unavailable)?;
        refused_unless(status, &said, repository, reference)?;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let sha = text(&said["sha"]);
        if sha.is_empty() {
            return Err(Failure::job(format!("GitHub named no commit for {reference}.")).into());
        }
        Ok(Commit {
            sha,
            message: text(&said["commit"]["message"]),
            author_date: text(&said["commit"]["author"]["date"]),
            committer_date: text(&said["commit"]["committer"]["date"]),
            url: text(&said["html_url"]),
        })
    }
}

/// The repository an action reads, and the token it reads it with.
struct Repository<'a> {
    owner: &'a str,
    repo: &'a str,
    token: &'a str,
}

impl Repository<'_> {
    fn path(&self) -> String {
        github::repository_path(self.owner, self.repo)
    }
}

/// GitHub's refusal, in its words, as the action's failure: a bad token or a repository or
/// commit it cannot see is the declaration's to fix; GitHub's own trouble is retried.
fn refused_unless(
    status: StatusCode,
    said: &Value,
    r: &Repository<'_>,
    reference: &str,
) -> Result<(), Stop> {
    if status.is_success() {
        return Ok(());
    }
    let message = said["message"].as_str().unwrap_or("no reason given");
    let (owner, repo) = (r.owner, r.repo);
    Err(match status {
        StatusCode::UNAUTHORIZED => Failure::configuration(format!(
            "GitHub refused the action's OAuthToken ({message}): give the action a valid token with the repo scope."
        ))
        .into(),
        StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => Failure::configuration(format!(
            "GitHub has no {reference} in {owner}/{repo} that the OAuthToken can read ({message})."
        ))
        .into(),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Stop::Unavailable(format!("GitHub answered {s}: {message}").into())
        }
        s => Failure::job(format!("GitHub refused to give {owner}/{repo} at {reference} ({s}: {message}).")).into(),
    })
}

/// Copies the entries of GitHub's archive `from` into `to` without the folder GitHub puts
/// them under. Returns how many files it holds.
fn at_root(from: &Path, to: &Path) -> Result<usize, Stop> {
    let bad = |e: &dyn std::fmt::Display| {
        Stop::Failed(Failure::job(format!("GitHub's archive could not be repacked: {e}.")))
    };
    let mut archive =
        zip::ZipArchive::new(File::open(from).map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    let mut out = zip::ZipWriter::new(BufWriter::new(File::create(to).map_err(|e| bad(&e))?));
    let mut files = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| bad(&e))?;
        let name = entry.name().to_owned();
        let Some((_, inner)) = name.split_once('/') else {
            return Err(bad(&format!("the entry {name} is outside the repository's folder")));
        };
        if inner.is_empty() {
            continue; // the folder itself
        }
        if inner.split('/').any(|p| p == "..") || inner.starts_with('/') {
            return Err(bad(&format!("the entry {name} climbs out of the archive")));
        }
        if !entry.is_dir() {
            files += 1;
        }
        out.raw_copy_file_rename(entry, inner).map_err(|e| bad(&e))?;
    }
    out.finish().map_err(|e| bad(&e))?;
    Ok(files)
}

#[async_trait]
impl ActionProvider for GitHubSourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["Owner", "Repo", "Branch", "OAuthToken"],
            "the GitHub (v1) source",
        )
    }

    /// The branch's head (`PollForSourceChanges`).
    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let config = &action.configuration;
        let (owner, repo) = (optional(config, "Owner")?, optional(config, "Repo")?);
        let (branch, token) = (optional(config, "Branch")?, optional(config, "OAuthToken")?);
        if [owner, repo, branch, token].iter().any(|v| has_reference(v)) {
            return None;
        }
        let commit = self.commit(&Repository { owner, repo, token }, branch).await.ok()?;
        Some(SourceRevision { revision_type: "COMMIT_ID".into(), value: commit.sha, branch: None })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.fetch(job).await)
    }
}
