//! `AWS/Source/CodeStarSourceConnection` (GitHub, GitHub Enterprise Server, GitLab, Bitbucket)
//! on one machine: the connection's repository is a git remote named in `baton.toml`
//! (`[connections]`: `FullRepositoryId` to a folder or a URL), or `<home>/git/<owner>/<repo>`.
//!
//! A folder is read in place. A URL (`https://`, `ssh://`, `file://`, `git@host:...`) is
//! mirrored into a cache and fetched before each run, with git's own credential helpers, so a
//! pipeline copied from AWS runs unchanged against the real host or a clone on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use baton_core::engine::SourceRevision;
use baton_core::plan::ActionPlan;
use baton_core::triggers::{GitChange, GitEvent};

use super::git::{Commit, Revision, git, head_of, resolve, succeeded};
use super::{Failure, archive, blocking, has_reference, required};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// Reads connection sources from local repositories or mirrored remotes.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSourceProvider {
    git_root: PathBuf,
    remotes: HashMap<String, String>,
    cache: PathBuf,
}

/// Where a repository is.
enum Remote {
    Folder(PathBuf),
    Url(String),
}

impl ConnectionSourceProvider {
    /// `FullRepositoryId` `R` is `remotes[R]` when mapped, else the folder `git_root/R`;
    /// mirrors of URLs are kept under `cache`.
    pub fn new(git_root: PathBuf, remotes: HashMap<String, String>, cache: PathBuf) -> Self {
        Self { git_root, remotes, cache }
    }

    fn remote(&self, repository: &str) -> Remote {
        match self.remotes.get(repository) {
            Some(r) if is_url(r) => Remote::Url(r.clone()),
            Some(r) => Remote::Folder(PathBuf::from(r)),
            None => Remote::Folder(self.git_root.join(repository)),
        }
    }

    /// A push to `branch` of `repository`, read from its local folder: the branch's head, and
    /// the files it changed since `since` (default: the files its last commit changed).
    /// `None` when the repository is a URL's mirror (its host sends webhooks) or the branch
    /// is not in the folder.
    ///
    /// # Errors
    /// A sentence when git cannot list the changed files.
    pub async fn local_push(
        &self,
        repository: &str,
        branch: &str,
        since: Option<&str>,
    ) -> Result<Option<GitEvent>, String> {
        let Remote::Folder(path) = self.remote(repository) else { return Ok(None) };
        let Ok(commit) = head_of(&path, branch).await else { return Ok(None) };
        let files = match since {
            Some(from) => git(&path, &["diff", "--name-only", from, &commit]).await,
            None => {
                let args = ["diff-tree", "--no-commit-id", "--name-only", "-r", "--root", &commit];
                git(&path, &args).await
            }
        }
        .map_err(|e| {
            format!("cannot list the files {branch} changed in {}: {e}", path.display())
        })?;
        Ok(Some(GitEvent {
            change: GitChange::BranchPush { branch: branch.to_string() },
            commit,
            changed_files: files.lines().map(str::to_owned).collect(),
        }))
    }

    /// A local repository holding `repository`'s commits, fetched now if it mirrors a URL.
    async fn repository(&self, repository: &str) -> Result<PathBuf, Failure> {
        let folder = match self.remote(repository) {
            Remote::Folder(path) => path,
            Remote::Url(url) => self.mirror(repository, &url).await?,
        };
        let repo = tokio::fs::canonicalize(&folder).await.map_err(|_| {
            Failure::configuration(format!(
                "The repository {repository} has no local copy at {}: clone it there, or map it to a folder or URL under [connections] in baton.toml.",
                folder.display()
            ))
        })?;
        git(&repo, &["rev-parse", "--git-dir"]).await.map_err(|_| {
            Failure::configuration(format!(
                "The repository {repository} at {} is not a git repository.",
                repo.display()
            ))
        })?;
        Ok(repo)
    }

    async fn mirror(&self, repository: &str, url: &str) -> Result<PathBuf, Failure> {
        let dir = self.cache.join(format!("{}.git", repository.replace('/', "__")));
        let fetched = if dir.exists() {
            git(&dir, &["fetch", "--prune", "--quiet", "origin", "+refs/*:refs/*"]).await
        } else {
            tokio::fs::create_dir_all(&self.cache).await.map_err(|e| {
                Failure::job(format!("Could not create {}: {e}.", self.cache.display()))
            })?;
            let target = dir.to_string_lossy().into_owned();
            git(&self.cache, &["clone", "--mirror", "--quiet", "--", url, &target]).await
        };
        // The URL may hold a token: it is never repeated in a message.
        fetched.map_err(|_| {
            Failure::job(format!(
                "Could not fetch the repository {repository} from its remote in [connections]: check the URL and git's credentials for it."
            ))
        })?;
        Ok(dir)
    }

    async fn checkout(&self, job: &Job) -> Result<JobResult, Failure> {
        let config = &job.request.configuration;
        let repository = required(config, "FullRepositoryId")?;
        let configured = required(config, "BranchName")?;
        // A trigger's push to another branch, or a pull request's source branch.
        let pinned = job.request.source_revision.as_ref().and_then(|r| r.branch.as_deref());
        let branch = pinned.unwrap_or(configured);
        let connection = config.get("ConnectionArn").cloned().unwrap_or_default();
        let clone =
            config.get("OutputArtifactFormat").map(String::as_str) == Some("CODEBUILD_CLONE_REF");
        let (commit, artifacts) = self.fetch(job, repository, branch, clone).await?;
        let own =
            vec![("ConnectionArn", connection), ("FullRepositoryName", repository.to_string())];
        Ok(succeeded(commit, branch, artifacts, own))
    }

    /// The commit to run (pinned, or the branch's head) and its artifact.
    async fn fetch(
        &self,
        job: &Job,
        repository: &str,
        branch: &str,
        clone: bool,
    ) -> Result<(Commit, Vec<LocalArtifact>), Failure> {
        let repo = self.repository(repository).await?;
        let revision = Revision::of(job, branch);
        let commit = resolve(&repo, revision).await.map_err(|_| {
            Failure::configuration(revision.missing_from(&format!("the repository {repository}")))
        })?;
        let artifacts = self.artifact(job, &repo, &commit.id, branch, clone).await?;
        Ok((commit, artifacts))
    }

    /// The commit's files (`CODE_ZIP`), or a clone with its history checked out at the commit
    /// (`CODEBUILD_CLONE_REF`: what CodeBuild's clone gives a build that runs git commands).
    async fn artifact(
        &self,
        job: &Job,
        repo: &Path,
        commit: &str,
        branch: &str,
        clone: bool,
    ) -> Result<Vec<LocalArtifact>, Failure> {
        let Some(name) = job.request.output_artifacts.first() else { return Ok(Vec::new()) };
        let work = &job.work_dir;
        tokio::fs::create_dir_all(work)
            .await
            .map_err(|e| Failure::job(format!("Could not create {}: {e}.", work.display())))?;
        let dest = work.join("source.zip");
        if clone {
            let tree = work.join("clone");
            let (from, to) =
                (repo.to_string_lossy().into_owned(), tree.to_string_lossy().into_owned());
            git(work, &["clone", "--quiet", "--no-checkout", "--", &from, &to])
                .await
                .map_err(|e| Failure::job(format!("git clone failed: {e}")))?;
            git(&tree, &["checkout", "--quiet", "-B", branch, commit])
                .await
                .map_err(|e| Failure::job(format!("git checkout of {commit} failed: {e}")))?;
            let (tree, zip) = (tree.clone(), dest.clone());
            blocking(move || {
                archive::zip_dir(&tree, &zip)
                    .map_err(|e| Failure::job(format!("The clone could not be zipped: {e}.")))
            })
            .await?;
        } else {
            let out = dest.to_string_lossy().into_owned();
            git(repo, &["archive", "--format=zip", "-o", &out, commit]).await.map_err(|e| {
                Failure::job(format!("git archive failed for commit {commit}: {e}"))
            })?;
        }
        Ok(vec![LocalArtifact::file(name.clone(), dest)])
    }
}

impl ConnectionSourceProvider {
    /// The head of `branch`, fetched first when the repository is a URL's mirror.
    async fn head(&self, repository: &str, branch: &str) -> Option<SourceRevision> {
        if has_reference(repository) || has_reference(branch) {
            return None;
        }
        let repo = self.repository(repository).await.ok()?;
        let head = head_of(&repo, branch).await.ok()?;
        Some(SourceRevision { revision_type: "COMMIT_ID".into(), value: head, branch: None })
    }
}

/// `ThirdParty/Source/GitHub` version 1 (OAuth apps, deprecated by CodePipeline but still in
/// many pipelines): `Owner/Repo` at `Branch`, read as a connection to that repository is; the
/// `OAuthToken` is not needed here, git's own credentials fetch a URL.
#[derive(Debug, Clone)]
pub struct GitHubV1Provider(pub ConnectionSourceProvider);

impl GitHubV1Provider {
    async fn checkout(&self, job: &Job) -> Result<JobResult, Failure> {
        let config = &job.request.configuration;
        let (owner, repo) = (required(config, "Owner")?, required(config, "Repo")?);
        let branch = required(config, "Branch")?;
        let repository = format!("{owner}/{repo}");
        let (commit, artifacts) = self.0.fetch(job, &repository, branch, false).await?;
        let own = vec![
            ("CommitterDate", commit.committer_date.clone()),
            ("CommitUrl", format!("https://github.com/{repository}/commit/{}", commit.id)),
            ("RepositoryName", repo.to_string()),
        ];
        Ok(succeeded(commit, branch, artifacts, own))
    }
}

#[async_trait]
impl ActionProvider for GitHubV1Provider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let get = |k: &str| action.configuration.get(k).filter(|v| !has_reference(v));
        let (Some(owner), Some(repo)) = (get("Owner"), get("Repo")) else { return Ok(()) };
        let mut as_connection = action.clone();
        as_connection.configuration.insert("FullRepositoryId".into(), format!("{owner}/{repo}"));
        self.0.check(&as_connection).await
    }

    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let config = &action.configuration;
        let repository = format!("{}/{}", config.get("Owner")?, config.get("Repo")?);
        self.0.head(&repository, config.get("Branch")?).await
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.checkout(job).await.unwrap_or_else(JobResult::from))
    }
}

fn is_url(remote: &str) -> bool {
    remote.contains("://") || (remote.contains('@') && remote.contains(':'))
}

#[async_trait]
impl ActionProvider for ConnectionSourceProvider {
    /// Refused at start, with what to configure, when the repository has nowhere to come from.
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let Some(repository) = action.configuration.get("FullRepositoryId") else { return Ok(()) };
        if has_reference(repository) {
            return Ok(());
        }
        match self.remote(repository) {
            Remote::Url(_) => Ok(()),
            Remote::Folder(path) if path.exists() => Ok(()),
            Remote::Folder(path) => Err(format!(
                "the connection's repository {repository} has no local copy: map it under [connections] in baton.toml (\"{repository}\" = \"/path/to/clone\" or its URL), or clone it to {}",
                path.display()
            )),
        }
    }

    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let config = &action.configuration;
        self.head(config.get("FullRepositoryId")?, config.get("BranchName")?).await
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.checkout(job).await.unwrap_or_else(JobResult::from))
    }
}
