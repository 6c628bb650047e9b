//! The `git` binary as the local sources use it: fenced into one repository, never prompting,
//! and the few questions they ask of it (a branch's head, a commit, its message and dates).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use baton_app::ports::provider::{Job, JobResult, LocalArtifact};

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

/// What `git` says about the commit at a branch head.
pub(crate) struct Commit {
    pub(crate) id: String,
    pub(crate) message: String,
    pub(crate) author_date: String,
    pub(crate) committer_date: String,
}

/// The commit id at `refs/heads/<branch>`.
pub(crate) async fn head_of(repo: &Path, branch: &str) -> Result<String, String> {
    let spec = Revision::Branch(branch).spec()?;
    let id = git(repo, &["rev-parse", "--verify", "--quiet", &spec]).await?;
    Ok(id.trim().to_string())
}

/// What names the commit a source runs: a branch's head, or a commit id (full or abbreviated).
#[derive(Clone, Copy)]
pub(crate) enum Revision<'a> {
    Branch(&'a str),
    Commit(&'a str),
}

impl<'a> Revision<'a> {
    /// What `job` runs: the commit a push, a webhook or `sourceRevisions` named, else the head
    /// of `branch`.
    pub(crate) fn of(job: &'a Job, branch: &'a str) -> Self {
        match &job.request.source_revision {
            Some(r) => Revision::Commit(&r.value),
            None => Revision::Branch(branch),
        }
    }

    /// Why it is not found in `repository` (as the message names it), in one sentence.
    pub(crate) fn missing_from(self, repository: &str) -> String {
        match self {
            Revision::Commit(id) => format!("The commit {id} does not exist in {repository}."),
            Revision::Branch(branch) => {
                format!("The branch {branch} does not exist in {repository}.")
            }
        }
    }

    /// The revision as git reads it, always a commit. The full ref keeps a branch named like
    /// an option (`-x`) from being read as one.
    fn spec(self) -> Result<String, String> {
        match self {
            Revision::Branch(branch) => Ok(format!("refs/heads/{branch}^{{commit}}")),
            Revision::Commit(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(format!("{id}^{{commit}}"))
            }
            Revision::Commit(id) => Err(format!("{id} is not a commit id")),
        }
    }
}

/// The commit `revision` names, with its dates (strict ISO 8601, as CodeCommit gives them) and
/// full message: one `git show`, where asking for the id and then the rest took two processes.
pub(crate) async fn resolve(repo: &Path, revision: Revision<'_>) -> Result<Commit, String> {
    let spec = revision.spec()?;
    // `--` reads the spec as a revision only, never as a path.
    let text = git(repo, &["show", "-s", "--format=%H%x00%aI%x00%cI%x00%B", &spec, "--"]).await?;
    let mut parts = text.splitn(4, '\0');
    let mut next = || parts.next().unwrap_or_default().to_string();
    let (id, author_date, committer_date) = (next(), next(), next());
    let message = next().trim_end().to_string();
    if id.len() < 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("git named no commit for {spec}"));
    }
    Ok(Commit { id, message, author_date, committer_date })
}

/// A git source's success: its artifact, the commit's first line as the summary and its id as
/// the external id, and the variables every git source gives (AuthorDate, BranchName,
/// CommitId, CommitMessage) with the provider's `own` ones.
pub(crate) fn succeeded(
    commit: Commit,
    branch: &str,
    artifacts: Vec<LocalArtifact>,
    own: Vec<(&str, String)>,
) -> JobResult {
    let summary = commit.message.lines().next().unwrap_or_default().to_string();
    let mut variables = BTreeMap::from([
        ("AuthorDate".to_string(), commit.author_date),
        ("BranchName".to_string(), branch.to_string()),
        ("CommitId".to_string(), commit.id.clone()),
        ("CommitMessage".to_string(), commit.message),
    ]);
    variables.extend(own.into_iter().map(|(k, v)| (k.to_string(), v)));
    JobResult::Succeeded {
        output_artifacts: artifacts,
        output_variables: variables,
        summary: Some(summary),
        external_id: Some(commit.id),
        external_url: None,
    }
}

/// Runs `git -C repo args`, returning stdout (small: ids and one commit's message) or stderr.
///
/// `GIT_CEILING_DIRECTORIES` stops git from climbing to an enclosing repository when `repo`
/// itself is not one, and the caller's `GIT_DIR`-style variables are dropped.
pub(crate) async fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
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
