//! Deliveries shaped as each host documents them, signed and not.

use serde_json::json;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn signatures_are_checked_for_each_host() {
    let body = br#"{"zen": "hi"}"#;
    let good = sign("s3cret", body);
    let bad = sign("other", body);
    assert_eq!(
        verify(Host::GitHub, &headers(&[("X-Hub-Signature-256", &good)]), body, "s3cret"),
        Ok(())
    );
    for h in [
        headers(&[("X-Hub-Signature-256", &bad)]),
        headers(&[]),
        headers(&[("X-Hub-Signature-256", "sha1=00")]),
    ] {
        assert_eq!(
            verify(Host::GitHub, &h, body, "s3cret"),
            Err(WebhookError::Unauthenticated("github"))
        );
    }
    // The signature covers the body: a changed body no longer matches.
    let tampered = br#"{"zen": "ho"}"#;
    assert!(
        verify(Host::GitHub, &headers(&[("X-Hub-Signature-256", &good)]), tampered, "s3cret")
            .is_err()
    );
    assert_eq!(
        verify(Host::Bitbucket, &headers(&[("X-Hub-Signature", &good)]), body, "s3cret"),
        Ok(())
    );
    assert!(
        verify(Host::Bitbucket, &headers(&[("X-Hub-Signature-256", &good)]), body, "s3cret")
            .is_err()
    );
    assert_eq!(
        verify(Host::GitLab, &headers(&[("X-Gitlab-Token", "s3cret")]), body, "s3cret"),
        Ok(())
    );
    assert!(
        verify(Host::GitLab, &headers(&[("X-Gitlab-Token", "s3cre")]), body, "s3cret").is_err()
    );
}

fn read_json(host: Host, pairs: &[(&str, &str)], payload: serde_json::Value) -> Delivery {
    read(host, &headers(pairs), payload.to_string().as_bytes()).unwrap()
}

#[test]
fn github_pushes_tags_and_pull_requests() {
    let push = read_json(
        Host::GitHub,
        &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d1")],
        json!({"ref": "refs/heads/main", "before": "a1", "after": "b2",
            "repository": {"full_name": "octo/app"},
            "commits": [{"added": ["src/new.rs"], "modified": ["README.md"], "removed": []},
                        {"added": [], "modified": ["src/new.rs"], "removed": ["old.txt"]}]}),
    );
    assert_eq!((push.id.as_str(), push.repository.as_str()), ("d1", "octo/app"));
    let event = push.event.unwrap();
    assert_eq!(event.change, GitChange::BranchPush { branch: "main".into() });
    assert_eq!(event.commit, "b2");
    assert_eq!(event.changed_files, ["src/new.rs", "README.md", "old.txt"]);
    let tag = read_json(
        Host::GitHub,
        &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d2")],
        json!({"ref": "refs/tags/v1.0", "after": "c3", "repository": {"full_name": "octo/app"}, "commits": []}),
    );
    assert_eq!(tag.event.unwrap().change, GitChange::TagPush { tag: "v1.0".into() });
    let deleted = read_json(
        Host::GitHub,
        &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d3")],
        json!({"ref": "refs/heads/gone", "after": "0000000000000000000000000000000000000000",
            "repository": {"full_name": "octo/app"}}),
    );
    assert_eq!(deleted.event, None, "a deleted branch runs nothing");
    let pr = read_json(
        Host::GitHub,
        &[("X-GitHub-Event", "pull_request"), ("X-GitHub-Delivery", "d4")],
        json!({"action": "synchronize", "repository": {"full_name": "octo/app"},
            "pull_request": {"head": {"ref": "topic", "sha": "d4d4"}, "base": {"ref": "main"}}}),
    );
    let event = pr.event.unwrap();
    assert_eq!(
        event.change,
        GitChange::PullRequest {
            event: PullRequestEvent::Updated,
            source_branch: "topic".into(),
            destination_branch: "main".into()
        }
    );
    assert_eq!(event.commit, "d4d4");
    let ping = read_json(
        Host::GitHub,
        &[("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", "d5")],
        json!({"zen": "hi", "repository": {"full_name": "octo/app"}}),
    );
    assert_eq!(ping.event, None);
}

#[test]
fn gitlab_pushes_tags_and_merge_requests() {
    let push = read_json(
        Host::GitLab,
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", "g1")],
        json!({"ref": "refs/heads/main", "after": "e5", "project": {"path_with_namespace": "grp/sub/app"},
            "commits": [{"added": ["a.txt"], "modified": [], "removed": []}]}),
    );
    assert_eq!(push.repository, "grp/sub/app");
    assert_eq!(push.event.unwrap().changed_files, ["a.txt"]);
    let tag = read_json(
        Host::GitLab,
        &[("X-Gitlab-Event", "Tag Push Hook"), ("X-Gitlab-Event-UUID", "g2")],
        json!({"ref": "refs/tags/v2", "after": "f6", "project": {"path_with_namespace": "grp/app"}}),
    );
    assert_eq!(tag.event.unwrap().change, GitChange::TagPush { tag: "v2".into() });
    let mr = read_json(
        Host::GitLab,
        &[("X-Gitlab-Event", "Merge Request Hook"), ("X-Gitlab-Event-UUID", "g3")],
        json!({"project": {"path_with_namespace": "grp/app"}, "object_attributes": {"action": "merge",
            "source_branch": "topic", "target_branch": "main", "last_commit": {"id": "a7"}}}),
    );
    assert!(matches!(
        mr.event.unwrap().change,
        GitChange::PullRequest { event: PullRequestEvent::Closed, .. }
    ));
}

#[test]
fn bitbucket_pushes_and_pull_requests() {
    let push = read_json(
        Host::Bitbucket,
        &[("X-Event-Key", "repo:push"), ("X-Request-UUID", "b1")],
        json!({"repository": {"full_name": "team/app"}, "push": {"changes": [
            {"old": {"type": "branch", "name": "main"}, "new": {"type": "branch", "name": "main", "target": {"hash": "h1"}}}]}}),
    );
    let event = push.event.unwrap();
    assert_eq!(event.change, GitChange::BranchPush { branch: "main".into() });
    assert_eq!(event.commit, "h1");
    let pr = read_json(
        Host::Bitbucket,
        &[("X-Event-Key", "pullrequest:created"), ("X-Request-UUID", "b2")],
        json!({"repository": {"full_name": "team/app"}, "pullrequest": {
            "source": {"branch": {"name": "topic"}, "commit": {"hash": "h2"}},
            "destination": {"branch": {"name": "main"}}}}),
    );
    assert!(matches!(
        pr.event.unwrap().change,
        GitChange::PullRequest { event: PullRequestEvent::Open, .. }
    ));
}

#[test]
fn what_is_not_a_delivery_is_malformed() {
    let no_id = read(Host::GitHub, &headers(&[("X-GitHub-Event", "push")]), b"{}");
    assert!(matches!(no_id, Err(WebhookError::Malformed(m)) if m.contains("x-github-delivery")));
    let not_json = read(
        Host::GitLab,
        &headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", "u")]),
        b"<xml/>",
    );
    assert!(matches!(not_json, Err(WebhookError::Malformed(m)) if m.contains("not JSON")));
}
