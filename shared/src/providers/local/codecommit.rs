//! `AWS/Source/CodeCommit` from local git repositories: the head of a branch becomes a zip of
//! its files (CodePipeline's default `CODE_ZIP` format) and CodeCommit's output variables.
//!
//! Everything goes through the `git` binary, so bare and non-bare repositories, packed refs and
//! worktrees all behave as git itself sees them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use baton_core::plan::ActionPlan;
use tokio::process::Command;

use crate::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

use super::{Failure, has_reference, required};

/// Variables a caller's environment could set to point git at another repository.
const GIT_REDIRECTS: [&str; 7] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

/// Reads CodeCommit repositories from local git repositories.
#[derive(Debug, Clone, Default)]
pub struct CodeCommitProvider {
    git_root: PathBuf,
    repositories: HashMap<String, PathBuf>,
}

/// What `git` says about the commit at a branch head.
struct Commit {
    id: String,
    message: String,
    author_date: String,
    committer_date: String,
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
        git(&repo, &["rev-parse", "--git-dir"]).await.map_err(|_| {
            Failure::configuration(format!(
                "The repository {name} at {} is not a git repository.",
                repo.display()
            ))
        })?;
        let id = match &job.request.source_revision {
            // The commit a push or `sourceRevisions` named, else the branch's head.
            Some(r) => commit_of(&repo, &r.value).await.map_err(|_| {
                Failure::configuration(format!(
                    "The commit {} does not exist in the repository {name} at {}.",
                    r.value,
                    repo.display()
                ))
            })?,
            None => head_of(&repo, branch).await.map_err(|_| {
                Failure::configuration(format!(
                    "The branch {branch} does not exist in the repository {name} at {}.",
                    repo.display()
                ))
            })?,
        };
        let commit = describe(&repo, id).await?;
        let artifact = self.archive(job, &repo, &commit.id).await?;
        Ok(success(name, branch, commit, artifact))
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
        Ok(vec![LocalArtifact { name: name.clone(), path: dest }])
    }
}

#[async_trait]
impl ActionProvider for CodeCommitProvider {
    fn check(&self, action: &ActionPlan) -> Result<(), String> {
        match action.configuration.get("RepositoryName") {
            Some(name) if !has_reference(name) => check_repository_name(name.trim()),
            _ => Ok(()),
        }
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

/// The commit id at `refs/heads/<branch>`. The full ref keeps a branch named like an option
/// (`-x`) from being read as one.
async fn head_of(repo: &Path, branch: &str) -> Result<String, String> {
    let spec = format!("refs/heads/{branch}^{{commit}}");
    let id = git(repo, &["rev-parse", "--verify", "--quiet", &spec]).await?;
    Ok(id.trim().to_string())
}

/// The full id of the commit `id` names (a full or abbreviated hash).
async fn commit_of(repo: &Path, id: &str) -> Result<String, String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{id} is not a commit id"));
    }
    let spec = format!("{id}^{{commit}}");
    Ok(git(repo, &["rev-parse", "--verify", "--quiet", &spec]).await?.trim().to_string())
}

/// Dates (strict ISO 8601, as CodeCommit gives them) and the full message of `id`.
async fn describe(repo: &Path, id: String) -> Result<Commit, Failure> {
    let text = git(repo, &["show", "-s", "--format=%aI%x00%cI%x00%B", &id])
        .await
        .map_err(|e| Failure::job(format!("Could not read commit {id}: {e}")))?;
    let mut parts = text.splitn(3, '\0');
    let author_date = parts.next().unwrap_or_default().to_string();
    let committer_date = parts.next().unwrap_or_default().to_string();
    let message = parts.next().unwrap_or_default().trim_end().to_string();
    Ok(Commit { id, message, author_date, committer_date })
}

fn success(
    repository: &str,
    branch: &str,
    commit: Commit,
    artifacts: Vec<LocalArtifact>,
) -> JobResult {
    let summary = commit.message.lines().next().unwrap_or_default().to_string();
    let output_variables = BTreeMap::from([
        ("AuthorDate".to_string(), commit.author_date),
        ("BranchName".to_string(), branch.to_string()),
        ("CommitId".to_string(), commit.id.clone()),
        ("CommitMessage".to_string(), commit.message),
        ("CommitterDate".to_string(), commit.committer_date),
        ("RepositoryName".to_string(), repository.to_string()),
    ]);
    JobResult::Succeeded {
        output_artifacts: artifacts,
        output_variables,
        summary: Some(summary),
        external_id: Some(commit.id),
        external_url: None,
    }
}

/// Runs `git -C repo args`, returning stdout (small: ids and one commit's message) or stderr.
///
/// `GIT_CEILING_DIRECTORIES` stops git from climbing to an enclosing repository when `repo`
/// itself is not one, and the caller's `GIT_DIR`-style variables are dropped.
async fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo).args(args);
    for var in GIT_REDIRECTS {
        cmd.env_remove(var);
    }
    if let Some(parent) = repo.parent() {
        cmd.env("GIT_CEILING_DIRECTORIES", parent);
    }
    let out = cmd
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("git could not run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
