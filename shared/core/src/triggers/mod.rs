//! Which git events start a pipeline: CodePipeline's V2 `triggers` on connection source
//! actions, and the default (a push to the action's `BranchName`) when an action has none.
//!
//! Filters of one kind are ORed; inside a filter, branches, tags and file paths are ANDed.
//! Within a criteria an exclusion wins over an inclusion. Push branch filters name the pushed
//! branch, pull-request branch filters the destination branch. File paths look at the first
//! 100 changed files, as CodePipeline does.

pub mod glob;

use crate::declaration::{GitFilter, GlobCriteria, TriggerDeclaration};

/// How many changed files CodePipeline looks at.
pub const CHANGED_FILES_LOOKED_AT: usize = 100;

/// A pull request event, as triggers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestEvent {
    /// Opened (or reopened).
    Open,
    /// A new revision was pushed to it.
    Updated,
    /// Closed or merged.
    Closed,
}

impl PullRequestEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Updated => "UPDATED",
            Self::Closed => "CLOSED",
        }
    }
}

/// What happened in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitChange {
    /// Commits pushed to a branch.
    BranchPush {
        #[allow(missing_docs)]
        branch: String,
    },
    /// A tag pushed.
    TagPush {
        #[allow(missing_docs)]
        tag: String,
    },
    /// A pull request opened, updated or closed.
    PullRequest {
        #[allow(missing_docs)]
        event: PullRequestEvent,
        /// The branch it pulls from, whose head the execution runs.
        source_branch: String,
        /// The branch it merges into, which branch filters name.
        destination_branch: String,
    },
}

/// One git event from a repository host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEvent {
    #[allow(missing_docs)]
    pub change: GitChange,
    /// The commit the execution runs.
    pub commit: String,
    /// The files the change touched, in the host's order.
    pub changed_files: Vec<String>,
}

impl GitEvent {
    /// The branch the execution runs from, if the event is on one.
    pub fn branch(&self) -> Option<&str> {
        match &self.change {
            GitChange::BranchPush { branch } => Some(branch),
            GitChange::PullRequest { source_branch, .. } => Some(source_branch),
            GitChange::TagPush { .. } => None,
        }
    }
}

/// Whether `event` starts the connection source action `action` whose `BranchName` is
/// `branch_name`, under the pipeline's `triggers`.
pub fn starts(
    triggers: &[TriggerDeclaration],
    action: &str,
    branch_name: Option<&str>,
    detect_changes: bool,
    event: &GitEvent,
) -> bool {
    let own: Vec<&TriggerDeclaration> =
        triggers.iter().filter(|t| t.git_configuration.source_action_name == action).collect();
    if own.is_empty() {
        // No trigger: change detection on the action's branch, unless it is turned off.
        return detect_changes
            && matches!(&event.change, GitChange::BranchPush { branch } if Some(branch.as_str()) == branch_name);
    }
    own.iter().any(|t| {
        let git = &t.git_configuration;
        match &event.change {
            GitChange::BranchPush { .. } | GitChange::TagPush { .. } => {
                git.push.iter().flatten().any(|f| push_matches(f, event))
            }
            GitChange::PullRequest { .. } => {
                git.pull_request.iter().flatten().any(|f| pull_request_matches(f, event))
            }
        }
    })
}

fn push_matches(filter: &GitFilter, event: &GitEvent) -> bool {
    match &event.change {
        GitChange::TagPush { tag } => filter.tags.as_ref().is_some_and(|c| criteria(c, tag)),
        GitChange::BranchPush { branch } => {
            filter.tags.is_none()
                && filter.branches.as_ref().is_none_or(|c| criteria(c, branch))
                && files_match(filter.file_paths.as_ref(), &event.changed_files)
        }
        GitChange::PullRequest { .. } => false,
    }
}

fn pull_request_matches(filter: &GitFilter, event: &GitEvent) -> bool {
    let GitChange::PullRequest { event: kind, destination_branch, .. } = &event.change else {
        return false;
    };
    filter.events.as_ref().is_none_or(|events| events.iter().any(|e| e == kind.as_str()))
        && filter.branches.as_ref().is_none_or(|c| criteria(c, destination_branch))
        && files_match(filter.file_paths.as_ref(), &event.changed_files)
}

/// Includes (any, or none given) and no exclude.
fn criteria(c: &GlobCriteria, value: &str) -> bool {
    let included = c.includes.as_ref().is_none_or(|ps| ps.iter().any(|p| glob::matches(p, value)));
    let excluded = c.excludes.as_ref().is_some_and(|ps| ps.iter().any(|p| glob::matches(p, value)));
    included && !excluded
}

/// A file filter passes when one of the first 100 changed files passes its criteria.
fn files_match(filter: Option<&GlobCriteria>, files: &[String]) -> bool {
    let Some(c) = filter else { return true };
    files.iter().take(CHANGED_FILES_LOOKED_AT).any(|f| criteria(c, f))
}

#[cfg(test)]
mod tests;
