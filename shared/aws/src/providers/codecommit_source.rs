//! `AWS/Source/CodeCommit` on AWS, in CodePipeline's default `CODE_ZIP` format: the head of
//! `BranchName` (`GetBranch`), its details (`GetCommit`) and its tree (`GetFolder` from the
//! root, `GetBlob` per file) zipped as the output artifact, with the output variables
//! CodePipeline gives (CommitId, CommitMessage, AuthorDate, CommitterDate, BranchName,
//! RepositoryName).
//!
//! Files are written to the zip one at a time, so memory holds one file, not the tree.
//! Executable files keep their mode; symbolic links and submodules are left out, as in
//! CodePipeline's zip.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codecommit::Client;
use aws_sdk_codecommit::types::FileModeTypeEnum;
use baton_core::plan::ActionPlan;

use super::credentials::RoleCredentials;
use super::{Apis, Failure, Stop, finish, has_reference, optional, required, sdk_stop};
use baton_app::ports::BoxError;
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_core::engine::SourceRevision;

/// A commit's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    #[allow(missing_docs)]
    pub message: String,
    /// As CodeCommit gives it (`1484167798 -0800`).
    pub author_date: String,
    #[allow(missing_docs)]
    pub committer_date: String,
}

/// One folder of a commit's tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderListing {
    /// Files as (absolute path, blob id, executable).
    pub files: Vec<(String, String, bool)>,
    /// Absolute paths of the sub-folders.
    pub folders: Vec<String>,
}

/// How a repository call fails.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The repository, branch or commit does not exist: the action's configuration is wrong.
    #[error("{0}")]
    Missing(String),
    /// CodeCommit refused the call for another reason (access, limits): the action fails.
    #[error("{0}")]
    Refused(String),
    /// CodeCommit could not be reached; retrying later may work.
    #[error("CodeCommit is unavailable")]
    Unavailable(#[source] BoxError),
}

/// What the provider asks CodeCommit.
#[async_trait]
pub trait RepositoryApi: Send + Sync {
    /// The commit at the head of `branch`.
    async fn branch_head(&self, repository: &str, branch: &str) -> Result<String, RepoError>;
    /// A commit's message and dates.
    async fn commit(&self, repository: &str, commit: &str) -> Result<CommitInfo, RepoError>;
    /// The files and sub-folders of `path` (`/` for the root) at `commit`.
    async fn folder(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<FolderListing, RepoError>;
    /// A file's content.
    async fn blob(&self, repository: &str, blob: &str) -> Result<Vec<u8>, RepoError>;
}

impl From<RepoError> for Stop {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Missing(m) => Stop::Failed(Failure::configuration(m)),
            RepoError::Refused(m) => Stop::Failed(Failure::job(m)),
            RepoError::Unavailable(source) => Stop::Unavailable(source),
        }
    }
}

/// Fetches a CodeCommit branch as a source.
#[derive(Clone)]
pub struct CodeCommitSourceProvider {
    apis: Apis<dyn RepositoryApi>,
}

impl std::fmt::Debug for CodeCommitSourceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCommitSourceProvider").finish_non_exhaustive()
    }
}

impl CodeCommitSourceProvider {
    /// Reads repositories with the action's role and region.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { apis: Apis::Sdk(roles) }
    }

    /// Sends every call to `api` (a fake, in tests).
    pub fn with_api(api: Arc<dyn RepositoryApi>) -> Self {
        Self { apis: Apis::Fixed(api) }
    }

    async fn api(&self, job: &Job) -> Result<Arc<dyn RepositoryApi>, Stop> {
        let made = |c: &aws_config::SdkConfig| -> Arc<dyn RepositoryApi> {
            Arc::new(SdkRepositories { client: Client::new(c) })
        };
        self.apis.for_request(&job.request, made).await
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Stop> {
        let config = &job.request.configuration;
        let repository = required(config, "RepositoryName")?;
        let branch = required(config, "BranchName")?;
        let api = self.api(job).await?;
        // The commit a push or `sourceRevisions` named, else the branch's head.
        let commit = match &job.request.source_revision {
            Some(r) => r.value.clone(),
            None => api.branch_head(repository, branch).await?,
        };
        let info = api.commit(repository, &commit).await?;
        let dest = job.work_dir.join("source.zip");
        let written = write_tree(api.as_ref(), repository, &commit, &dest).await?;
        let output_artifacts = match job.request.output_artifacts.first() {
            Some(name) => vec![LocalArtifact::file(name.clone(), dest)],
            None => Vec::new(),
        };
        let region = &job.request.region;
        let first_line = info.message.lines().next().unwrap_or_default().to_owned();
        Ok(JobResult::Succeeded {
            output_artifacts,
            output_variables: BTreeMap::from([
                ("AuthorDate".to_owned(), info.author_date),
                ("BranchName".to_owned(), branch.to_owned()),
                ("CommitId".to_owned(), commit.clone()),
                ("CommitMessage".to_owned(), info.message),
                ("CommitterDate".to_owned(), info.committer_date),
                ("RepositoryName".to_owned(), repository.to_owned()),
            ]),
            summary: Some(format!("{first_line} ({written} files)")),
            external_id: Some(commit.clone()),
            external_url: Some(format!(
                "https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{}/commit/{commit}?region={region}",
                super::url_encode(repository)
            )),
        })
    }
}

/// Zips the tree of `commit` into `dest`, folder by folder; returns how many files it holds.
async fn write_tree(
    api: &dyn RepositoryApi,
    repository: &str,
    commit: &str,
    dest: &std::path::Path,
) -> Result<usize, Stop> {
    let io = |e: std::io::Error| {
        Stop::Failed(Failure::job(format!("Could not write the source zip: {e}.")))
    };
    let zip_error = |e: zip::result::ZipError| {
        Stop::Failed(Failure::job(format!("Could not write the source zip: {e}.")))
    };
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(dest).map_err(io)?));
    let mut pending = vec!["/".to_owned()];
    let mut written = 0;
    while let Some(path) = pending.pop() {
        let listing = api.folder(repository, commit, &path).await?;
        pending.extend(listing.folders);
        for (file, blob, executable) in listing.files {
            let content = api.blob(repository, &blob).await?;
            let name = file.trim_start_matches('/');
            // A tree entry that climbs out of the archive is refused, not written.
            if name.is_empty() || name.split('/').any(|p| p == ".." || p.is_empty()) {
                return Err(Stop::Failed(Failure::job(format!(
                    "The repository has a file with an unusable path: {file}"
                ))));
            }
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(if executable { 0o755 } else { 0o644 });
            zip.start_file(name, options).map_err(zip_error)?;
            zip.write_all(&content).map_err(io)?;
            written += 1;
        }
    }
    zip.finish().map_err(zip_error)?.flush().map_err(io)?;
    Ok(written)
}

#[async_trait]
impl ActionProvider for CodeCommitSourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["RepositoryName", "BranchName"],
            "the action configuration",
        )?;
        match action.configuration.get("OutputArtifactFormat").map(String::as_str) {
            None | Some("CODE_ZIP") => Ok(()),
            Some(other) => Err(format!(
                "OutputArtifactFormat {other} is not supported on this runtime; use CODE_ZIP"
            )),
        }
    }

    /// The branch's head (`PollForSourceChanges`).
    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let config = &action.configuration;
        let (repository, branch) =
            (optional(config, "RepositoryName")?, optional(config, "BranchName")?);
        if has_reference(repository) || has_reference(branch) {
            return None;
        }
        let made = |c: &aws_config::SdkConfig| -> Arc<dyn RepositoryApi> {
            Arc::new(SdkRepositories { client: Client::new(c) })
        };
        let api = self.apis.for_poll(action, made).await?;
        let head = api.branch_head(repository, branch).await.ok()?;
        Some(SourceRevision { revision_type: "COMMIT_ID".into(), value: head, branch: None })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.fetch(job).await)
    }
}

/// [`RepositoryApi`] on the SDK.
struct SdkRepositories {
    client: Client,
}

/// A "does not exist" error code of CodeCommit.
fn missing(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.ends_with("DoesNotExistException"))
}

fn repo_error<E>(
    operation: &'static str,
    what: String,
) -> impl FnOnce(
    aws_sdk_codecommit::error::SdkError<E, aws_sdk_codecommit::config::http::HttpResponse>,
) -> RepoError
where
    E: aws_sdk_codecommit::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        let code = e.as_service_error().and_then(|s| s.code().map(str::to_owned));
        if missing(code.as_deref()) {
            return RepoError::Missing(what);
        }
        match sdk_stop(operation)(e) {
            Stop::Failed(f) => RepoError::Refused(f.message),
            Stop::Unavailable(source) => RepoError::Unavailable(source),
        }
    }
}

#[async_trait]
impl RepositoryApi for SdkRepositories {
    async fn branch_head(&self, repository: &str, branch: &str) -> Result<String, RepoError> {
        let what = format!("The branch {branch} of repository {repository} does not exist.");
        let out = self
            .client
            .get_branch()
            .repository_name(repository)
            .branch_name(branch)
            .send()
            .await
            .map_err(repo_error("GetBranch", what.clone()))?;
        out.branch.and_then(|b| b.commit_id).ok_or(RepoError::Missing(what))
    }

    async fn commit(&self, repository: &str, commit: &str) -> Result<CommitInfo, RepoError> {
        let what = format!("The commit {commit} of repository {repository} does not exist.");
        let out = self
            .client
            .get_commit()
            .repository_name(repository)
            .commit_id(commit)
            .send()
            .await
            .map_err(repo_error("GetCommit", what.clone()))?;
        let c = out.commit.ok_or(RepoError::Missing(what))?;
        Ok(CommitInfo {
            message: c.message.unwrap_or_default(),
            author_date: c.author.and_then(|a| a.date).unwrap_or_default(),
            committer_date: c.committer.and_then(|a| a.date).unwrap_or_default(),
        })
    }

    async fn folder(
        &self,
        repository: &str,
        commit: &str,
        path: &str,
    ) -> Result<FolderListing, RepoError> {
        let what = format!("The folder {path} of repository {repository} does not exist.");
        let out = self
            .client
            .get_folder()
            .repository_name(repository)
            .commit_specifier(commit)
            .folder_path(path)
            .send()
            .await
            .map_err(repo_error("GetFolder", what))?;
        Ok(FolderListing {
            files: out
                .files
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| {
                    let executable = f.file_mode == Some(FileModeTypeEnum::Executable);
                    Some((f.absolute_path?, f.blob_id?, executable))
                })
                .collect(),
            folders: out
                .sub_folders
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.absolute_path)
                .collect(),
        })
    }

    async fn blob(&self, repository: &str, blob: &str) -> Result<Vec<u8>, RepoError> {
        let what = format!("The blob {blob} of repository {repository} does not exist.");
        let out = self
            .client
            .get_blob()
            .repository_name(repository)
            .blob_id(blob)
            .send()
            .await
            .map_err(repo_error("GetBlob", what))?;
        Ok(out.content.into_inner())
    }
}
