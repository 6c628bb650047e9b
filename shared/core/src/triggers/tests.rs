//! The trigger matcher, one row per rule.

use serde_json::json;

use super::*;

fn triggers(value: serde_json::Value) -> Vec<TriggerDeclaration> {
    serde_json::from_value(value).unwrap()
}

fn push(branch: &str, files: &[&str]) -> GitEvent {
    GitEvent {
        change: GitChange::BranchPush { branch: branch.into() },
        commit: "c".into(),
        changed_files: files.iter().map(|f| f.to_string()).collect(),
    }
}

fn tag(name: &str) -> GitEvent {
    GitEvent {
        change: GitChange::TagPush { tag: name.into() },
        commit: "c".into(),
        changed_files: vec![],
    }
}

fn pr(event: PullRequestEvent, from: &str, into: &str, files: &[&str]) -> GitEvent {
    GitEvent {
        change: GitChange::PullRequest {
            event,
            source_branch: from.into(),
            destination_branch: into.into(),
        },
        commit: "c".into(),
        changed_files: files.iter().map(|f| f.to_string()).collect(),
    }
}

/// The documentation's monorepo example: pushes to feature or release branches touching
/// projectA or JavaScript under common (not READMEs), tags release-v0/v1, and closed pull
/// requests into feature or release branches.
fn example() -> Vec<TriggerDeclaration> {
    triggers(json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
    "sourceActionName": "Source",
    "push": [
        {"branches": {"includes": ["feature/**", "release/**"], "excludes": ["mainline"]},
         "filePaths": {"includes": ["projectA/**", "common/**/*.js"], "excludes": ["**/README.md"]}},
        {"tags": {"includes": ["release-v0", "release-v1"], "excludes": ["release-v2"]}}
    ],
    "pullRequest": [
        {"events": ["CLOSED"],
         "branches": {"includes": ["feature/**", "release/**"], "excludes": ["release/old/**"]},
         "filePaths": {"includes": ["projectA/**"]}}
    ]}}]))
}

#[test]
fn the_trigger_rules_as_codepipeline_documents_them() {
    use PullRequestEvent::*;
    let t = example();
    let many: Vec<String> = (0..150).map(|i| format!("other/{i}.txt")).collect();
    let mut late = many.clone();
    late.push("projectA/late.rs".into());
    let mut early = many.clone();
    early.insert(99, "projectA/early.rs".into());
    let rows: Vec<(&str, GitEvent, bool)> = vec![
        ("branch and file included", push("feature/login", &["projectA/src/main.rs"]), true),
        ("a nested branch under **", push("release/2024/q1", &["common/ui/x.js"]), true),
        ("branch not included", push("hotfix/1", &["projectA/a.rs"]), false),
        ("files AND branches: no file included", push("feature/x", &["docs/guide.md"]), false),
        ("exclusion wins over inclusion", push("feature/x", &["projectA/README.md"]), false),
        (
            "one included file among excluded ones",
            push("feature/x", &["projectA/README.md", "projectA/b.rs"]),
            true,
        ),
        (
            "**/ needs a folder between, as in Java's glob",
            push("feature/x", &["common/x.js"]),
            false,
        ),
        (
            "only the first 100 files count",
            GitEvent { changed_files: late, ..push("feature/x", &[]) },
            false,
        ),
        (
            "the 100th file counts",
            GitEvent { changed_files: early, ..push("feature/x", &[]) },
            true,
        ),
        ("a tag included", tag("release-v1"), true),
        ("a tag excluded", tag("release-v2"), false),
        ("a tag not included", tag("v3"), false),
        (
            "a closed pull request into an included branch",
            pr(Closed, "topic", "feature/a", &["projectA/x"]),
            true,
        ),
        ("a pull request event not listed", pr(Open, "topic", "feature/a", &["projectA/x"]), false),
        (
            "pull request filters name the destination",
            pr(Closed, "feature/a", "mainline", &["projectA/x"]),
            false,
        ),
        ("a destination excluded", pr(Closed, "topic", "release/old/1", &["projectA/x"]), false),
        ("pull request file paths", pr(Closed, "topic", "feature/a", &["docs/x"]), false),
    ];
    for (why, event, expected) in rows {
        assert_eq!(starts(&t, "Source", Some("mainline"), true, &event), expected, "{why}");
    }
}

#[test]
fn filters_of_one_kind_are_ored_and_every_event_kind_defaults_to_all() {
    let t = triggers(json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Source",
        "push": [{"branches": {"includes": ["main"]}}, {"branches": {"includes": ["dev"]}}],
        "pullRequest": [{"branches": {"includes": ["main"]}}]}}]));
    assert!(starts(&t, "Source", None, true, &push("main", &[])));
    assert!(starts(&t, "Source", None, true, &push("dev", &[])));
    assert!(!starts(&t, "Source", None, true, &push("other", &[])));
    for event in [PullRequestEvent::Open, PullRequestEvent::Updated, PullRequestEvent::Closed] {
        assert!(starts(&t, "Source", None, true, &pr(event, "x", "main", &[])), "{event:?}");
    }
    assert!(!starts(&t, "Source", None, true, &tag("v1")), "no tag filter");
}

#[test]
fn without_a_trigger_a_push_to_the_branch_name_starts_unless_detection_is_off() {
    let other = triggers(json!([{"providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Elsewhere", "push": [{"branches": {"includes": ["**"]}}]}}]));
    for t in [vec![], other] {
        assert!(starts(&t, "Source", Some("main"), true, &push("main", &[])));
        assert!(!starts(&t, "Source", Some("main"), true, &push("dev", &[])));
        assert!(!starts(&t, "Source", Some("main"), true, &tag("v1")));
        assert!(!starts(
            &t,
            "Source",
            Some("main"),
            true,
            &pr(PullRequestEvent::Open, "x", "main", &[])
        ));
        assert!(
            !starts(&t, "Source", Some("main"), false, &push("main", &[])),
            "DetectChanges false"
        );
    }
    // With a trigger, BranchName no longer decides automatic starts.
    let t = triggers(json!([{"providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Source", "push": [{"branches": {"includes": ["dev"]}}]}}]));
    assert!(!starts(&t, "Source", Some("main"), true, &push("main", &[])));
    assert!(starts(&t, "Source", Some("main"), true, &push("dev", &[])));
}
