//! `baton hooks install REPO`: git hooks that tell this home about each commit and push, so a
//! local repository starts its pipelines by itself, under the same triggers as a webhook.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};

/// The first line after the shebang of every hook Baton writes; a hook without it is someone
/// else's and is never overwritten.
const MARK: &str = "# Installed by `baton hooks install`: tells Baton about new commits.";

/// Installs `post-commit` (commits made here) and `post-receive` (pushes received here) in
/// `repo`, naming it `repository` (its `FullRepositoryId` or CodeCommit name).
pub(crate) fn install(home: &Path, repo: &Path, repository: Option<&str>) -> Result<ExitCode> {
    let repo = repo.canonicalize().with_context(|| format!("cannot find {}", repo.display()))?;
    let home = home.canonicalize().with_context(|| format!("cannot find {}", home.display()))?;
    let repository = match repository {
        Some(r) => r.to_owned(),
        // Under <home>/git, the path is the name: git/app, git/octo/app.
        None => repo
            .strip_prefix(home.join("git"))
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                anyhow!(
                    "{} is not under {}: say which repository it is with --repository (its FullRepositoryId or CodeCommit name)",
                    repo.display(),
                    home.join("git").display()
                )
            })?,
    };
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "--git-path", "hooks"])
        .output()
        .context("git could not run")?;
    if !out.status.success() {
        bail!("{} is not a git repository", repo.display());
    }
    let hooks = repo.join(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::create_dir_all(&hooks)?;
    let baton = std::env::current_exe().context("cannot tell where this baton is")?;
    let call = format!(
        "{} --home {} push {}",
        quote(&baton.to_string_lossy()),
        quote(&home.to_string_lossy()),
        quote(&repository)
    );
    // In the background, so a commit or push never waits for a pipeline.
    let post_commit = format!(
        "#!/bin/sh\n{MARK}\nbranch=$(git symbolic-ref --short -q HEAD) || exit 0\n{call} \"$branch\" >/dev/null 2>&1 &\n"
    );
    let post_receive = format!(
        "#!/bin/sh\n{MARK}\nwhile read -r old new ref; do\n  case \"$ref\" in refs/heads/*) ;; *) continue ;; esac\n  case \"$new\" in *[!0]*) ;; *) continue ;; esac\n  since=\"\"\n  case \"$old\" in *[!0]*) since=\"--since $old\" ;; esac\n  {call} \"${{ref#refs/heads/}}\" $since >/dev/null 2>&1 &\ndone\n"
    );
    for (name, script) in [("post-commit", post_commit), ("post-receive", post_receive)] {
        let path = hooks.join(name);
        if let Ok(existing) = std::fs::read_to_string(&path)
            && !existing.contains(MARK)
        {
            bail!(
                "{} already has a {name} hook of its own; add this line to it: {call}",
                repo.display()
            );
        }
        std::fs::write(&path, script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let installed = serde_json::json!({"repository": repository, "path": repo.display().to_string(),
        "hooks": ["post-commit", "post-receive"]});
    crate::output::result(
        &installed,
        format_args!(
            "Commits to {} and pushes it receives now start the pipelines that watch {repository}.",
            repo.display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `text` quoted for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
