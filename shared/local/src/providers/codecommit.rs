//! `AWS/Source/CodeCommit` from local git repositories: the head of a branch becomes a zip of
//! its files (CodePipeline's default `CODE_ZIP` format) and CodeCommit's output variables.
//!
//! Everything goes through the `git` binary, so bare and non-bare repositories, packed refs and
//! worktrees all behave as git itself sees them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use baton_core::engine::SourceRevision;
use baton_core::plan::ActionPlan;

use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

use super::git::{Revision, git, head_of, resolve, succeeded};
use super::{Failure, has_reference, required};

/// Reads CodeCommit repositories from local git repositories.
#[derive(Debug, Clone, Default)]
pub struct CodeCommitProvider {
    git_root: PathBuf,
    repositories: HashMap<String, PathBuf>,
}

impl CodeCommitProvider {
    /// A repository named `N` is `repositories[N]` when mapped, else `git_root/N`.
    pub fn new(git_root: PathBuf, repositories: HashMap<String, PathBuf>) -> Self {
        Self { git_root, repositories }
    }

    fn repository_path(&self, name: &str) -> PathBuf {
        self.repositories.get(name).cloned().unwrap_or_else(|| self.git_root.join(name))
    }

    async fn checkout(&self, job: &Job) -> Result<JobResult, Failure> {
        let config = &job.request.configuration;
        let name = required(config, "RepositoryName")?;
        let branch = required(config, "BranchName")?;
        check_repository_name(name).map_err(Failure::configuration)?;
        let path = self.repository_path(name);
        // Absolute, so GIT_CEILING_DIRECTORIES (which must be absolute) can fence it in.
        let repo = tokio::fs::canonicalize(&path).await.map_err(|_| {
            Failure::configuration(format!(
                "The repository {name} does not exist: there is nothing at {}.",
                path.display()
            ))
        })?;
        let revision = Revision::of(job, branch);
        let Ok(commit) = resolve(&repo, revision).await else {
            // Asked only now: a repository is usually there, and each question is a process.
            let missing = if git(&repo, &["rev-parse", "--git-dir"]).await.is_err() {
                format!("The repository {name} at {} is not a git repository.", repo.display())
            } else {
                revision.missing_from(&format!("the repository {name} at {}", repo.display()))
            };
            return Err(Failure::configuration(missing));
        };
        let artifact = self.archive(job, &repo, &commit.id).await?;
        let own = vec![
            ("CommitterDate", commit.committer_date.clone()),
            ("RepositoryName", name.to_string()),
        ];
        Ok(succeeded(commit, branch, artifact, own))
    }

    /// `git archive` of the commit, as the action's output artifact (if it declares one).
    async fn archive(
        &self,
        job: &Job,
        repo: &Path,
        commit: &str,
    ) -> Result<Vec<LocalArtifact>, Failure> {
        let Some(name) = job.request.output_artifacts.first() else {
            return Ok(Vec::new());
        };
        tokio::fs::create_dir_all(&job.work_dir).await.map_err(|e| {
            Failure::job(format!("Could not create {}: {e}.", job.work_dir.display()))
        })?;
        let dest = job.work_dir.join("source.zip");
        let out = dest.to_string_lossy().into_owned();
        git(repo, &["archive", "--format=zip", "-o", &out, commit])
            .await
            .map_err(|e| Failure::job(format!("git archive failed for commit {commit}: {e}")))?;
        Ok(vec![LocalArtifact::file(name.clone(), dest)])
    }
}

#[async_trait]
impl ActionProvider for CodeCommitProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        match action.configuration.get("RepositoryName") {
            Some(name) if !has_reference(name) => check_repository_name(name.trim()),
            _ => Ok(()),
        }
    }

    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let config = &action.configuration;
        let name = config.get("RepositoryName").filter(|n| check_repository_name(n).is_ok())?;
        let repo = tokio::fs::canonicalize(self.repository_path(name)).await.ok()?;
        let head = head_of(&repo, config.get("BranchName")?).await.ok()?;
        Some(SourceRevision { revision_type: "COMMIT_ID".into(), value: head, branch: None })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.checkout(job).await.unwrap_or_else(JobResult::from))
    }
}

/// Refuses names that would reach outside `git_root`.
fn check_repository_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.contains("..") {
        return Err(format!(
            "RepositoryName \"{name}\" must be a plain repository name, without '/', '\\' or '..'"
        ));
    }
    Ok(())
}
