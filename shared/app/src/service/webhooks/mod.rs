//! Webhook deliveries from GitHub, GitLab and Bitbucket Cloud: each host's signature checked
//! in constant time against the secret configured for it, and the delivery read into a
//! [`GitEvent`] that V2 triggers decide on.
//!
//! Payloads are read as each host documents them: GitHub's `push` and `pull_request`,
//! GitLab's `Push Hook`, `Tag Push Hook` and `Merge Request Hook`, Bitbucket Cloud's
//! `repo:push` and `pullrequest:*`. Changed files come from the payload where the host lists
//! them (GitHub and GitLab pushes); others carry none, so a file-path filter does not match them.

use std::collections::HashMap;

use baton_core::triggers::{GitChange, GitEvent, PullRequestEvent};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Trigger;

mod register;
pub mod v1;

/// A repository host that sends webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    #[allow(missing_docs)]
    GitHub,
    #[allow(missing_docs)]
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl Host {
    /// The host named in a webhook URL (`/webhooks/github`...).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "github" => Some(Self::GitHub),
            "gitlab" => Some(Self::GitLab),
            "bitbucket" => Some(Self::Bitbucket),
            _ => None,
        }
    }

    /// The host's name in URLs and settings.
    pub fn name(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Bitbucket => "bitbucket",
        }
    }
}

/// A delivery read: who sent it, once, about which repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The host's id of this delivery; a redelivery has the same one.
    pub id: String,
    /// `owner/repo` (GitLab: `group/subgroup/project`), as `FullRepositoryId` names it.
    pub repository: String,
    /// What happened; `None` for deliveries that start nothing (a ping, a branch deleted).
    pub event: Option<GitEvent>,
}

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Unsigned, or signed with another secret: HTTP 401.
    #[error("the delivery's signature does not match the secret configured for {0}")]
    Unauthenticated(&'static str),
    /// Not a delivery this endpoint reads: HTTP 400.
    #[error("{0}")]
    Malformed(String),
}

/// A header's value, by case-insensitive name.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Checks the delivery's signature against `secret`.
///
/// # Errors
/// [`WebhookError::Unauthenticated`] when it is missing or does not match.
pub fn verify(
    host: Host,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
) -> Result<(), WebhookError> {
    let refused = WebhookError::Unauthenticated(host.name());
    match host {
        // GitLab sends the secret token itself.
        Host::GitLab => {
            let token = header(headers, "x-gitlab-token").ok_or(refused.clone())?;
            if constant_time_eq(token.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err(refused)
            }
        }
        Host::GitHub | Host::Bitbucket => {
            let name = if host == Host::GitHub { "x-hub-signature-256" } else { "x-hub-signature" };
            let signature = header(headers, name)
                .and_then(|v| v.strip_prefix("sha256="))
                .and_then(|hex_sig| hex::decode(hex_sig).ok())
                .ok_or(refused.clone())?;
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| refused.clone())?;
            mac.update(body);
            mac.verify_slice(&signature).map_err(|_| refused)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a (verified) delivery.
///
/// # Errors
/// [`WebhookError::Malformed`] when it lacks what its host always sends.
pub fn read(
    host: Host,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Delivery, WebhookError> {
    let bad = |why: &str| WebhookError::Malformed(format!("not a {} delivery: {why}", host.name()));
    let payload: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
    let (id_header, kind_header) = match host {
        Host::GitHub => ("x-github-delivery", "x-github-event"),
        Host::GitLab => ("x-gitlab-event-uuid", "x-gitlab-event"),
        Host::Bitbucket => ("x-request-uuid", "x-event-key"),
    };
    let id = header(headers, id_header).ok_or_else(|| bad(&format!("no {id_header} header")))?;
    let kind =
        header(headers, kind_header).ok_or_else(|| bad(&format!("no {kind_header} header")))?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let (repository, event) = match host {
        Host::GitHub => (text(&payload["repository"]["full_name"]), github(kind, &payload)),
        Host::GitLab => (text(&payload["project"]["path_with_namespace"]), gitlab(kind, &payload)),
        Host::Bitbucket => (text(&payload["repository"]["full_name"]), bitbucket(kind, &payload)),
    };
    let repository = repository.ok_or_else(|| bad("no repository name"))?;
    Ok(Delivery { id: id.to_owned(), repository, event })
}

/// The files a list of commits added, modified or removed, in order, once each.
fn commit_files(commits: &Value) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for commit in commits.as_array().into_iter().flatten() {
        for list in ["added", "modified", "removed"] {
            for f in commit[list].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !files.iter().any(|seen| seen == f) {
                    files.push(f.to_owned());
                }
            }
        }
    }
    files
}

/// `refs/heads/x` or `refs/tags/x` as a push; `None` for a deleted ref.
fn ref_push(reference: &str, after: &str, files: Vec<String>) -> Option<GitEvent> {
    if after.is_empty() || after.bytes().all(|b| b == b'0') {
        return None; // the ref was deleted: nothing to run
    }
    let change = if let Some(branch) = reference.strip_prefix("refs/heads/") {
        GitChange::BranchPush { branch: branch.to_owned() }
    } else {
        GitChange::TagPush { tag: reference.strip_prefix("refs/tags/")?.to_owned() }
    };
    Some(GitEvent { change, commit: after.to_owned(), changed_files: files })
}

fn pull_request(
    event: PullRequestEvent,
    from: &Value,
    into: &Value,
    commit: &Value,
) -> Option<GitEvent> {
    Some(GitEvent {
        change: GitChange::PullRequest {
            event,
            source_branch: from.as_str()?.to_owned(),
            destination_branch: into.as_str()?.to_owned(),
        },
        commit: commit.as_str()?.to_owned(),
        changed_files: vec![],
    })
}

fn github(kind: &str, p: &Value) -> Option<GitEvent> {
    match kind {
        "push" => ref_push(p["ref"].as_str()?, p["after"].as_str()?, commit_files(&p["commits"])),
        "pull_request" => {
            let event = match p["action"].as_str()? {
                "opened" | "reopened" => PullRequestEvent::Open,
                "synchronize" => PullRequestEvent::Updated,
                "closed" => PullRequestEvent::Closed,
                _ => return None,
            };
            let pr = &p["pull_request"];
            pull_request(event, &pr["head"]["ref"], &pr["base"]["ref"], &pr["head"]["sha"])
        }
        _ => None,
    }
}

fn gitlab(kind: &str, p: &Value) -> Option<GitEvent> {
    match kind {
        "Push Hook" | "Tag Push Hook" => {
            ref_push(p["ref"].as_str()?, p["after"].as_str()?, commit_files(&p["commits"]))
        }
        "Merge Request Hook" => {
            let a = &p["object_attributes"];
            let event = match a["action"].as_str()? {
                "open" | "reopen" => PullRequestEvent::Open,
                "update" => PullRequestEvent::Updated,
                "close" | "merge" => PullRequestEvent::Closed,
                _ => return None,
            };
            pull_request(event, &a["source_branch"], &a["target_branch"], &a["last_commit"]["id"])
        }
        _ => None,
    }
}

fn bitbucket(kind: &str, p: &Value) -> Option<GitEvent> {
    match kind {
        "repo:push" => {
            // One delivery may carry several ref changes; the first that names a new head runs.
            let change = p["push"]["changes"].as_array()?.iter().find(|c| c["new"].is_object())?;
            let new = &change["new"];
            let reference = match new["type"].as_str()? {
                "branch" => format!("refs/heads/{}", new["name"].as_str()?),
                "tag" => format!("refs/tags/{}", new["name"].as_str()?),
                _ => return None,
            };
            ref_push(&reference, new["target"]["hash"].as_str()?, vec![])
        }
        _ => {
            let event = match kind {
                "pullrequest:created" => PullRequestEvent::Open,
                "pullrequest:updated" => PullRequestEvent::Updated,
                "pullrequest:fulfilled" | "pullrequest:rejected" => PullRequestEvent::Closed,
                _ => return None,
            };
            let pr = &p["pullrequest"];
            pull_request(
                event,
                &pr["source"]["branch"]["name"],
                &pr["destination"]["branch"]["name"],
                &pr["source"]["commit"]["hash"],
            )
        }
    }
}

/// What a webhook endpoint answers: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    #[allow(missing_docs)]
    pub status: u16,
    #[allow(missing_docs)]
    pub body: Value,
}

impl Reply {
    fn new(status: u16, body: Value) -> Self {
        Self { status, body }
    }
}

/// Answers a delivery to `/webhooks/<host>`, on any host: the host's secret from `secret` (or
/// the sentence saying how to set one: 403), the signature checked (401), the delivery read
/// (400), then the pipelines it starts started (202, naming them). A redelivery starts
/// nothing twice ([`Trigger::on_git_event`]).
pub async fn answer(
    trigger: &Trigger,
    host: &str,
    secret: impl FnOnce(Host) -> Result<String, String>,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let message = |m: String| json!({ "message": m });
    let Some(host) = Host::from_name(host) else {
        return Reply::new(404, message("webhooks come from github, gitlab or bitbucket".into()));
    };
    let secret = match secret(host) {
        Ok(s) => s,
        Err(why) => return Reply::new(403, message(why)),
    };
    let delivery =
        match verify(host, headers, body, &secret).and_then(|()| read(host, headers, body)) {
            Ok(d) => d,
            Err(e @ WebhookError::Unauthenticated(_)) => {
                return Reply::new(401, message(e.to_string()));
            }
            Err(e) => return Reply::new(400, message(e.to_string())),
        };
    match trigger.on_git_event(host.name(), &delivery).await {
        Ok(started) => {
            let started: Vec<_> = started
                .into_iter()
                .map(|(pipeline, id)| json!({"pipelineName": pipeline, "pipelineExecutionId": id}))
                .collect();
            Reply::new(202, json!({"delivery": delivery.id, "started": started}))
        }
        Err(e) => Reply::new(500, message(e.to_string())),
    }
}

/// Each host's secret from a JSON object (a Secrets Manager secret's value): `github_secret`,
/// `gitlab_token`, `bitbucket_secret`, and `webhook_secret` for any host without its own.
pub fn secrets_from_json(secret: &Value) -> HashMap<Host, String> {
    let text = |key: &str| secret[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    [
        (Host::GitHub, "github_secret"),
        (Host::GitLab, "gitlab_token"),
        (Host::Bitbucket, "bitbucket_secret"),
    ]
    .into_iter()
    .filter_map(|(host, key)| Some((host, text(key).or_else(|| text("webhook_secret"))?)))
    .collect()
}

#[cfg(test)]
mod tests;
