//! The local providers against real `git` and `bash`: safe archives, CodeCommit from a git
//! repository, S3 source and deploy on a folder, CodeBuild buildspecs (shared shell, phase
//! transitions, artifacts, timeouts) and the `Commands` action.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use baton::core::engine::ActionRequest;
use baton::core::plan::{ActionPlan, ActionType};
use baton::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact};
use baton::providers::archive::{self, ArchiveError, ExtractLimits};
use baton::providers::local::codebuild::CodeBuildProvider;
use baton::providers::local::codecommit::CodeCommitProvider;
use baton::providers::local::commands::CommandsProvider;
use baton::providers::local::connection::{ConnectionSourceProvider, GitHubV1Provider};
use baton::providers::local::s3::{S3DeployProvider, S3SourceProvider};
use baton::providers::local::{LocalProviderConfig, registry};
use indexmap::IndexMap;
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn action_type(category: &str, provider: &str) -> ActionType {
    ActionType {
        category: category.into(),
        owner: "AWS".into(),
        provider: provider.into(),
        version: "1".into(),
    }
}

fn request(t: ActionType, config: &[(&str, &str)], outputs: &[&str]) -> ActionRequest {
    ActionRequest {
        pipeline: "demo".into(),
        pipeline_version: 1,
        execution_id: "0c5c7a4e-1111-2222-3333-444455556666".into(),
        stage: "Build".into(),
        action: "Act".into(),
        attempt: 1,
        action_type: t,
        configuration: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        commands: Vec::new(),
        input_artifacts: Vec::new(),
        input_revisions: Vec::new(),
        source_revision: None,
        output_artifacts: outputs.iter().map(|s| s.to_string()).collect(),
        region: "eu-west-1".into(),
        role_arn: None,
        pipeline_role_arn: None,
        artifact_stores: Vec::new(),
        deadline: now_ms() + 120_000,
        token: None,
        output_artifact_files: Vec::new(),
        output_variables: Vec::new(),
        environment_variables: Vec::new(),
        announce: Default::default(),
    }
}

fn plan(t: ActionType, config: &[(&str, &str)]) -> ActionPlan {
    ActionPlan {
        name: "Act".into(),
        action_type: t,
        run_order: 1,
        configuration: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<IndexMap<_, _>>(),
        commands: Vec::new(),
        input_artifacts: Vec::new(),
        output_artifacts: Vec::new(),
        namespace: None,
        region: "eu-west-1".into(),
        role_arn: None,
        timeout_minutes: 60,
        output_artifact_files: Vec::new(),
        output_variables: Vec::new(),
        environment_variables: Vec::new(),
    }
}

/// A job with a fresh work folder and log under `dir`.
fn job(dir: &Path, request: ActionRequest, inputs: Vec<LocalArtifact>) -> Job {
    let n = fs::read_dir(dir).unwrap().count();
    Job {
        request,
        inputs,
        work_dir: dir.join(format!("work-{n}")),
        log_path: dir.join(format!("log-{n}.txt")),
        in_place: None,
        input_places: Vec::new(),
    }
}

/// Writes `files` under `dir` (creating folders) and returns `dir`.
fn tree(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (path, content) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir.to_path_buf()
}

/// A zip artifact named `name` holding `files`.
fn artifact(scratch: &Path, name: &str, files: &[(&str, &str)]) -> LocalArtifact {
    let dir = tree(&scratch.join(format!("tree-{name}")), files);
    let path = scratch.join(format!("{name}.zip"));
    archive::zip_dir(&dir, &path).unwrap();
    LocalArtifact::file(name, path)
}

/// The files of a zip, by name.
fn zip_contents(path: &Path) -> BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        out.insert(f.name().to_string(), s);
    }
    out
}

fn succeeded(
    result: JobResult,
) -> (Vec<LocalArtifact>, BTreeMap<String, String>, Option<String>, Option<String>) {
    match result {
        JobResult::Succeeded {
            output_artifacts, output_variables, summary, external_id, ..
        } => (output_artifacts, output_variables, summary, external_id),
        JobResult::Failed { code, message } => panic!("expected success, got {code}: {message}"),
        running @ JobResult::Running { .. } => panic!("expected success, got {running:?}"),
    }
}

fn failed(result: JobResult) -> (String, String) {
    match result {
        JobResult::Failed { code, message } => (code, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A zip with one entry of each given name, written without any safety check.
fn raw_zip(path: &Path, names: &[&str]) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for name in names {
        zip.start_file(*name, SimpleFileOptions::default()).unwrap();
        zip.write_all(b"evil").unwrap();
    }
    zip.finish().unwrap();
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if dir.exists() {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                out.extend(files_under(&entry.path()).into_iter().map(|f| format!("{name}/{f}")));
            } else {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Archives

#[test]
fn archive_round_trips_a_nested_directory() {
    let dir = TempDir::new().unwrap();
    let src = tree(
        &dir.path().join("src"),
        &[
            ("a.txt", "top"),
            ("nested/deeper/b.txt", "deep"),
            ("nested/run.sh", "#!/bin/sh\necho hi\n"),
        ],
    );
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::set_permissions(src.join("nested/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let zip = dir.path().join("a.zip");
    archive::zip_dir(&src, &zip).unwrap();

    let out = dir.path().join("out");
    archive::extract(&zip, &out).unwrap();
    assert_eq!(files_under(&out), vec!["a.txt", "nested/deeper/b.txt", "nested/run.sh"]);
    assert_eq!(fs::read_to_string(out.join("nested/deeper/b.txt")).unwrap(), "deep");
    assert!(out.join("empty").is_dir());
    let mode = fs::metadata(out.join("nested/run.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executables stay executable");
    let mode = fs::metadata(out.join("a.txt")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0, "plain files stay plain");
}

#[test]
fn archive_refuses_entries_that_escape_and_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let absolute = dir.path().join("absolute-evil.txt");
    let absolute_name = absolute.to_string_lossy().into_owned();
    let cases: Vec<Vec<&str>> = vec![
        vec!["fine.txt", "../evil.txt"],
        vec!["fine.txt", absolute_name.as_str()],
        vec!["fine.txt", "sub/../../evil.txt"],
        vec!["fine.txt", "..\\evil.txt"],
        vec!["fine.txt", "C:/evil.txt"],
    ];
    for (i, names) in cases.iter().enumerate() {
        let zip = dir.path().join(format!("evil-{i}.zip"));
        raw_zip(&zip, names);
        let target = dir.path().join(format!("target-{i}"));
        let err = archive::extract(&zip, &target).unwrap_err();
        assert!(matches!(err, ArchiveError::Unsafe { .. }), "{names:?}: {err}");
        assert!(
            files_under(&target).is_empty(),
            "{names:?}: nothing is written, not even fine.txt"
        );
    }
    assert!(!dir.path().join("evil.txt").exists());
    assert!(!absolute.exists());
}

#[test]
fn archive_refuses_symlink_entries() {
    let dir = TempDir::new().unwrap();
    let zip = dir.path().join("link.zip");
    let mut w = zip::ZipWriter::new(fs::File::create(&zip).unwrap());
    w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    w.finish().unwrap();
    let target = dir.path().join("target");
    let err = archive::extract(&zip, &target).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(fs::symlink_metadata(target.join("link")).is_err());
}

#[test]
fn archive_caps_entries_and_size() {
    let dir = TempDir::new().unwrap();
    let src =
        tree(&dir.path().join("src"), &[("a", "1234567890"), ("b", "1234567890"), ("c", "x")]);
    let zip = dir.path().join("a.zip");
    archive::zip_dir(&src, &zip).unwrap();
    let few = ExtractLimits { max_entries: 2, ..ExtractLimits::default() };
    let err = archive::extract_with_limits(&zip, &dir.path().join("t1"), few).unwrap_err();
    assert!(matches!(err, ArchiveError::TooManyEntries { count: 3, limit: 2 }), "{err}");
    let small = ExtractLimits { max_bytes: 15, ..ExtractLimits::default() };
    let err = archive::extract_with_limits(&zip, &dir.path().join("t2"), small).unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
    assert_eq!(archive::MAX_ENTRIES, 100_000);
}

/// A deploy folder may hold a link from an earlier run (or planted there): an entry whose path
/// runs through it would be written wherever it points.
#[test]
fn archive_refuses_to_write_through_a_link_already_in_the_target() {
    let dir = TempDir::new().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let target = dir.path().join("target");
    fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("site")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim.txt"), target.join("file.txt")).unwrap();
    for name in ["site/index.html", "file.txt"] {
        let zip = dir.path().join("through-link.zip");
        raw_zip(&zip, &[name]);
        let err = archive::extract(&zip, &target).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Unsafe { entry, .. } if entry == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("symbolic link already sits on its path"), "{err}");
    }
    assert!(files_under(&outside).is_empty(), "nothing was written through the links");
}

/// Sizes in a zip's headers are the archive's word, not a fact: one that understates them
/// passes the check made before writing, and must still stop at the limit while writing.
#[test]
fn archive_stops_at_the_limit_when_headers_understate_sizes() {
    let dir = TempDir::new().unwrap();
    let zip = dir.path().join("liar.zip");
    let content = vec![b'x'; 10_000];
    {
        let mut w = zip::ZipWriter::new(fs::File::create(&zip).unwrap());
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("big.txt", stored).unwrap();
        std::io::Write::write_all(&mut w, &content).unwrap();
        w.finish().unwrap();
    }
    // Say 1 byte where there are 10,000, in the local header (offset 22) and the central
    // directory (offset 24); the compressed size, which the reader needs, stays true.
    let mut bytes = fs::read(&zip).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(4) {
        let offset = match &bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => 22,
            [0x50, 0x4b, 0x01, 0x02] => 24,
            _ => continue,
        };
        bytes[i + offset..i + offset + 4].copy_from_slice(&1u32.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2, "one local header and one central directory entry");
    fs::write(&zip, &bytes).unwrap();
    let limits = ExtractLimits { max_bytes: 1_000, ..ExtractLimits::default() };
    let target = dir.path().join("target");
    let err = archive::extract_with_limits(&zip, &target, limits).unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge { limit: 1_000 }), "{err}");
    assert!(files_under(&target).is_empty(), "the partial file is removed");
}

#[test]
fn archive_zips_chosen_files() {
    let dir = TempDir::new().unwrap();
    let src = tree(&dir.path().join("src"), &[("a/b.txt", "b"), ("c.txt", "c")]);
    let zip = dir.path().join("some.zip");
    archive::zip_files(&src, &[PathBuf::from("a/b.txt")], &zip).unwrap();
    assert_eq!(zip_contents(&zip), BTreeMap::from([("a/b.txt".to_string(), "b".to_string())]));
}

// ---------------------------------------------------------------------------------------------
// Connections (GitHub, GitLab, Bitbucket)

/// A repository at `path` with `src/v.txt` at "one" then "two"; the two commit ids.
fn two_commits(path: &Path) -> (String, String) {
    fs::create_dir_all(path.join("src")).unwrap();
    git(path, &["init", "-q", "-b", "main"]);
    let mut ids = Vec::new();
    for v in ["one", "two"] {
        fs::write(path.join("src/v.txt"), v).unwrap();
        git(path, &["add", "-A"]);
        git(path, &["commit", "-q", "-m", v]);
        ids.push(git(path, &["rev-parse", "HEAD"]).trim().to_string());
    }
    (ids[0].clone(), ids[1].clone())
}

fn connection_request(format: &str) -> ActionRequest {
    request(
        action_type("Source", "CodeStarSourceConnection"),
        &[
            ("ConnectionArn", "arn:aws:codeconnections:us-east-1:111111111111:connection/x"),
            ("FullRepositoryId", "octo/app"),
            ("BranchName", "main"),
            ("OutputArtifactFormat", format),
        ],
        &["Src"],
    )
}

/// The entry names of a zip, and the text of `file` in it.
fn zip_names_and(path: &Path, file: &str) -> (Vec<String>, String) {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let names = zip.file_names().map(str::to_owned).collect();
    let mut text = String::new();
    zip.by_name(file).unwrap().read_to_string(&mut text).unwrap();
    (names, text)
}

#[tokio::test]
async fn a_connection_source_mirrors_a_remote_and_clones_with_history_when_asked() {
    let dir = TempDir::new().unwrap();
    let remote = dir.path().join("remote");
    let (first, second) = two_commits(&remote);
    let remotes = HashMap::from([("octo/app".to_string(), format!("file://{}", remote.display()))]);
    let provider =
        ConnectionSourceProvider::new(dir.path().join("git"), remotes, dir.path().join("cache"));
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();

    let (artifacts, vars, _, _) =
        succeeded(provider.run(&job(&jobs, connection_request("CODE_ZIP"), vec![])).await.unwrap());
    let (names, text) = zip_names_and(&artifacts[0].path, "src/v.txt");
    assert_eq!(text, "two");
    assert!(!names.iter().any(|n| n.starts_with(".git")), "CODE_ZIP holds the files only");
    assert_eq!(vars["CommitId"], second);
    assert_eq!(vars["FullRepositoryName"], "octo/app");
    assert_eq!(
        vars["ConnectionArn"],
        "arn:aws:codeconnections:us-east-1:111111111111:connection/x"
    );
    assert_eq!(vars["BranchName"], "main");
    assert_eq!(vars["CommitMessage"], "two");

    // A new commit on the remote is fetched into the mirror; a pinned commit is what runs.
    fs::write(remote.join("src/v.txt"), "three").unwrap();
    git(&remote, &["commit", "-q", "-am", "three"]);
    let mut pinned = connection_request("CODEBUILD_CLONE_REF");
    pinned.source_revision = Some(baton::core::engine::SourceRevision {
        revision_type: "COMMIT_ID".into(),
        value: first.clone(),
        branch: None,
    });
    let (artifacts, vars, _, _) =
        succeeded(provider.run(&job(&jobs, pinned, vec![])).await.unwrap());
    let (names, text) = zip_names_and(&artifacts[0].path, "src/v.txt");
    assert_eq!((vars["CommitId"].as_str(), text.as_str()), (first.as_str(), "one"));
    assert!(
        names.iter().any(|n| n == ".git/HEAD"),
        "CODEBUILD_CLONE_REF holds the clone: {names:?}"
    );
    // An abbreviated id runs the commit it names, reported by its full id.
    let mut short = connection_request("CODE_ZIP");
    short.source_revision = Some(baton::core::engine::SourceRevision {
        revision_type: "COMMIT_ID".into(),
        value: first[..10].to_string(),
        branch: None,
    });
    let (_, vars, _, _) = succeeded(provider.run(&job(&jobs, short, vec![])).await.unwrap());
    assert_eq!(vars["CommitId"], first);
    let (artifacts, _, _, _) =
        succeeded(provider.run(&job(&jobs, connection_request("CODE_ZIP"), vec![])).await.unwrap());
    assert_eq!(zip_names_and(&artifacts[0].path, "src/v.txt").1, "three", "fetched again");
}

#[tokio::test]
async fn a_github_v1_source_reads_owner_and_repo_like_a_connection() {
    let dir = TempDir::new().unwrap();
    let git_root = dir.path().join("git");
    let (_, head) = two_commits(&git_root.join("example-org/legacy-web"));
    let provider = GitHubV1Provider(ConnectionSourceProvider::new(
        git_root,
        HashMap::new(),
        dir.path().join("cache"),
    ));
    let req = request(
        ActionType {
            category: "Source".into(),
            owner: "ThirdParty".into(),
            provider: "GitHub".into(),
            version: "1".into(),
        },
        &[
            ("Owner", "example-org"),
            ("Repo", "legacy-web"),
            ("Branch", "main"),
            ("OAuthToken", "****"),
        ],
        &["SourceArtifact"],
    );
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let (artifacts, vars, _, _) = succeeded(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(zip_names_and(&artifacts[0].path, "src/v.txt").1, "two");
    assert_eq!(vars["CommitId"], head);
    assert_eq!(vars["RepositoryName"], "legacy-web");
    assert_eq!(
        vars["CommitUrl"],
        format!("https://github.com/example-org/legacy-web/commit/{head}")
    );
    assert!(vars.contains_key("CommitterDate"));
}

// ---------------------------------------------------------------------------------------------
// CodeCommit

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Tester",
            "-c",
            "user.email=tester@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `root/app`: two commits on `main`.
fn two_commit_repo(root: &Path) -> PathBuf {
    let repo = root.join("app");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    tree(&repo, &[("a.txt", "one")]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "First commit"]);
    tree(&repo, &[("a.txt", "two"), ("lib/b.txt", "bee")]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "Second commit\n\nWith a body line."]);
    repo
}

#[tokio::test]
async fn codecommit_archives_the_branch_head_with_codecommit_variables() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("git");
    let repo = two_commit_repo(&root);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = CodeCommitProvider::new(root.clone(), HashMap::new());
    let config = [("RepositoryName", "app"), ("BranchName", "main")];
    let req = request(action_type("Source", "CodeCommit"), &config, &["Source"]);
    let (artifacts, vars, summary, external_id) =
        succeeded(provider.run(&job(&jobs, req, vec![])).await.unwrap());

    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].name, "Source");
    let files = zip_contents(&artifacts[0].path);
    assert_eq!(files.get("a.txt").map(String::as_str), Some("two"));
    assert_eq!(files.get("lib/b.txt").map(String::as_str), Some("bee"));

    let head = git(&repo, &["rev-parse", "main"]).trim().to_string();
    assert_eq!(vars["CommitId"], head);
    assert_eq!(vars["CommitMessage"], git(&repo, &["log", "-1", "--format=%B"]).trim_end());
    assert_eq!(vars["CommitMessage"], "Second commit\n\nWith a body line.");
    assert_eq!(vars["AuthorDate"], git(&repo, &["log", "-1", "--format=%aI"]).trim());
    assert_eq!(vars["CommitterDate"], git(&repo, &["log", "-1", "--format=%cI"]).trim());
    assert_eq!(vars["BranchName"], "main");
    assert_eq!(vars["RepositoryName"], "app");
    assert_eq!(summary.as_deref(), Some("Second commit"));
    assert_eq!(external_id.as_deref(), Some(head.as_str()));
}

#[tokio::test]
async fn codecommit_reads_a_mapped_bare_repository() {
    let dir = TempDir::new().unwrap();
    let repo = two_commit_repo(&dir.path().join("work"));
    let bare = dir.path().join("elsewhere/app.git");
    git(dir.path(), &["clone", "-q", "--bare", &repo.to_string_lossy(), &bare.to_string_lossy()]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = CodeCommitProvider::new(
        dir.path().join("nowhere"),
        HashMap::from([("App".to_string(), bare)]),
    );
    let req = request(
        action_type("Source", "CodeCommit"),
        &[("RepositoryName", "App"), ("BranchName", "main")],
        &["S"],
    );
    let (artifacts, vars, _, _) = succeeded(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(zip_contents(&artifacts[0].path)["a.txt"], "two");
    assert_eq!(vars["RepositoryName"], "App");
}

#[tokio::test]
async fn codecommit_fails_on_a_missing_branch_or_repository() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("git");
    two_commit_repo(&root);
    fs::create_dir_all(root.join("plain")).unwrap();
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = CodeCommitProvider::new(root.clone(), HashMap::new());
    let t = action_type("Source", "CodeCommit");

    let req = request(t.clone(), &[("RepositoryName", "app"), ("BranchName", "release")], &["S"]);
    let (code, message) = failed(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("The branch release does not exist"), "{message}");
    assert!(message.contains("app"), "{message}");

    let req = request(t.clone(), &[("RepositoryName", "gone"), ("BranchName", "main")], &["S"]);
    let (code, message) = failed(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains(&root.join("gone").to_string_lossy().into_owned()), "{message}");

    // A plain folder inside git_root is not a repository, even though git_root's own parents
    // might be (the fence keeps git from climbing).
    let req = request(t.clone(), &[("RepositoryName", "plain"), ("BranchName", "main")], &["S"]);
    let (code, message) = failed(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("not a git repository"), "{message}");

    for bad in ["../app", "a/b", "..", "x\\y"] {
        let err = provider
            .check(&plan(t.clone(), &[("RepositoryName", bad), ("BranchName", "main")]))
            .await;
        assert!(err.is_err(), "{bad} should be refused");
    }
    assert!(
        provider
            .check(&plan(t, &[("RepositoryName", "app"), ("BranchName", "main")]))
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// S3

#[tokio::test]
async fn s3_source_copies_the_object_with_etag_and_version() {
    let dir = TempDir::new().unwrap();
    let s3 = dir.path().join("s3");
    let scratch = dir.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let zip = artifact(&scratch, "app", &[("index.html", "<h1>hi</h1>")]);
    let object = s3.join("bucket/releases/app.zip");
    fs::create_dir_all(object.parent().unwrap()).unwrap();
    fs::copy(&zip.path, &object).unwrap();
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();

    let provider = S3SourceProvider::new(s3.clone());
    let t = action_type("Source", "S3");
    let req = request(
        t.clone(),
        &[("S3Bucket", "bucket"), ("S3ObjectKey", "releases/app.zip")],
        &["Src"],
    );
    let (artifacts, vars, _, external_id) =
        succeeded(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(fs::read(&artifacts[0].path).unwrap(), fs::read(&object).unwrap());
    assert_eq!(artifacts[0].name, "Src");
    let etag = &vars["ETag"];
    assert_eq!(etag.len(), 32);
    assert!(etag.chars().all(|c| c.is_ascii_hexdigit()));
    let mtime = fs::metadata(&object).unwrap().modified().unwrap();
    let nanos = mtime.duration_since(UNIX_EPOCH).unwrap().as_nanos().to_string();
    assert_eq!(vars["VersionId"], nanos);
    assert_eq!(external_id, Some(nanos));

    // Not a zip: the job fails. A key climbing out is refused before and during the run.
    fs::write(s3.join("bucket/notes.txt"), "plain text").unwrap();
    let req = request(t.clone(), &[("S3Bucket", "bucket"), ("S3ObjectKey", "notes.txt")], &["Src"]);
    let (code, message) = failed(provider.run(&job(&jobs, req, vec![])).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("not a zip"), "{message}");

    let escape = [("S3Bucket", "bucket"), ("S3ObjectKey", "../../secret.zip")];
    let (code, _) = failed(
        provider.run(&job(&jobs, request(t.clone(), &escape, &["Src"]), vec![])).await.unwrap(),
    );
    assert_eq!(code, "ConfigurationError");
    assert!(provider.check(&plan(t.clone(), &escape)).await.is_err());
    assert!(
        provider
            .check(&plan(t.clone(), &[("S3Bucket", ".."), ("S3ObjectKey", "a.zip")]))
            .await
            .is_err()
    );
    assert!(
        provider
            .check(&plan(t.clone(), &[("S3Bucket", "b"), ("S3ObjectKey", "/etc/x.zip")]))
            .await
            .is_err()
    );

    let missing = [("S3Bucket", "bucket"), ("S3ObjectKey", "nope.zip")];
    let (code, message) =
        failed(provider.run(&job(&jobs, request(t, &missing, &["Src"]), vec![])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("nope.zip"), "{message}");
}

#[tokio::test]
async fn s3_deploy_extracts_or_copies() {
    let dir = TempDir::new().unwrap();
    let s3 = dir.path().join("s3");
    let scratch = dir.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let site = artifact(&scratch, "Site", &[("index.html", "home"), ("css/site.css", "body{}")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = S3DeployProvider::new(s3.clone());
    let t = action_type("Deploy", "S3");

    let config = [("BucketName", "web"), ("Extract", "true"), ("ObjectKey", "site/v1")];
    let (_, _, summary, _) = succeeded(
        provider
            .run(&job(&jobs, request(t.clone(), &config, &[]), vec![site.clone()]))
            .await
            .unwrap(),
    );
    assert_eq!(files_under(&s3.join("web/site/v1")), vec!["css/site.css", "index.html"]);
    assert_eq!(fs::read_to_string(s3.join("web/site/v1/index.html")).unwrap(), "home");
    assert!(summary.unwrap().contains("s3://web/site/v1"));

    let config = [("BucketName", "root"), ("Extract", "true")];
    succeeded(
        provider
            .run(&job(&jobs, request(t.clone(), &config, &[]), vec![site.clone()]))
            .await
            .unwrap(),
    );
    assert_eq!(fs::read_to_string(s3.join("root/css/site.css")).unwrap(), "body{}");

    let config = [("BucketName", "web"), ("Extract", "false"), ("ObjectKey", "releases/site.zip")];
    succeeded(
        provider
            .run(&job(&jobs, request(t.clone(), &config, &[]), vec![site.clone()]))
            .await
            .unwrap(),
    );
    assert_eq!(fs::read(s3.join("web/releases/site.zip")).unwrap(), fs::read(&site.path).unwrap());

    let config = [("BucketName", "web"), ("Extract", "false")];
    let (code, message) = failed(
        provider
            .run(&job(&jobs, request(t.clone(), &config, &[]), vec![site.clone()]))
            .await
            .unwrap(),
    );
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("ObjectKey"), "{message}");

    let config = [("BucketName", "web"), ("Extract", "true"), ("ObjectKey", "../../outside")];
    let (code, _) = failed(
        provider.run(&job(&jobs, request(t.clone(), &config, &[]), vec![site])).await.unwrap(),
    );
    assert_eq!(code, "ConfigurationError");
    assert!(!dir.path().join("outside").exists());
    assert!(provider.check(&plan(t.clone(), &config)).await.is_err());
    assert!(
        provider
            .check(&plan(t.clone(), &[("BucketName", "a/b"), ("Extract", "true")]))
            .await
            .is_err()
    );
    assert!(
        provider
            .check(&plan(t.clone(), &[("BucketName", "web"), ("Extract", "maybe")]))
            .await
            .is_err()
    );
    assert!(provider.check(&plan(t, &[("BucketName", "web"), ("Extract", "true")])).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// CodeBuild

const FULL_BUILDSPEC: &str = r#"version: 0.2
env:
  variables:
    GREETING: hello
    OVERRIDDEN: from-buildspec
  exported-variables:
    - VERSION
    - GREETING
    - NEVER_SET
phases:
  install:
    commands:
      - echo "installing $GREETING"
  pre_build:
    commands:
      - VERSION=1.2.3
      - mkdir -p out/bin docs && cd out
      - shout() { echo "SHOUT $*"; }
  build:
    commands:
      - echo "building $VERSION in $(basename "$PWD")"
      - echo "$VERSION" > bin/version.txt
      - echo "$OVERRIDDEN" > bin/override.txt
      - echo "$CODEBUILD_BUILD_ID" > bin/build-id.txt
      - echo manual > ../docs/manual.md
      - shout "$CODEBUILD_INITIATOR"
  post_build:
    commands:
      - echo "post_build sees succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  files:
    - '**/*'
  base-directory: out
  discard-paths: yes
  secondary-artifacts:
    Docs:
      files:
        - docs/*
"#;

fn codebuild_request(config: &[(&str, &str)], outputs: &[&str]) -> ActionRequest {
    request(action_type("Build", "CodeBuild"), config, outputs)
}

/// CodeBuild's `CODEBUILD_RESOLVED_SOURCE_VERSION`: the commit (or object version) the primary
/// source holds, whichever input is primary.
#[tokio::test]
async fn codebuild_sees_the_primary_sources_revision() {
    let dir = TempDir::new().unwrap();
    let spec = "version: 0.2\nenv:\n  exported-variables:\n    - REV\nphases:\n  build:\n    commands:\n      - REV=\"$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n";
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    for (primary, expected) in [(None, "abc123"), (Some("Other"), "def456")] {
        let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
        let other = artifact(dir.path(), "Other", &[("buildspec.yml", spec)]);
        let mut config = vec![("ProjectName", "proj")];
        config.extend(primary.map(|p| ("PrimarySource", p)));
        let mut req = codebuild_request(&config, &[]);
        req.input_revisions =
            vec![("Other".into(), "def456".into()), ("Src".into(), "abc123".into())];
        let j = job(&jobs, req, vec![src, other]);
        let (_, vars, _, _) = succeeded(CodeBuildProvider::default().run(&j).await.unwrap());
        assert_eq!(vars.get("REV").map(String::as_str), Some(expected), "primary {primary:?}");
    }
}

/// The CodeBuild variables a buildspec reads about its build: its number per project, its ARN,
/// the source's S3 object (as CodePipeline hands it over) and where its log goes.
#[tokio::test]
async fn codebuild_sets_codebuilds_variables_about_the_build() {
    let dir = TempDir::new().unwrap();
    let spec = "version: 0.2\nenv:\n  exported-variables: [NUM, ARN, SRC, LOG]\nphases:\n  build:\n    commands:\n      - NUM=$CODEBUILD_BUILD_NUMBER ARN=$CODEBUILD_BUILD_ARN SRC=$CODEBUILD_SOURCE_VERSION LOG=$CODEBUILD_LOG_PATH\n";
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = CodeBuildProvider::default().with_build_numbers(dir.path().join("numbers"));
    let mut seen = Vec::new();
    for project in ["proj", "proj", "other"] {
        let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
        let mut req = codebuild_request(&[("ProjectName", project)], &[]);
        req.announce.account = "123456789012".into();
        req.input_artifacts = vec![baton::core::engine::Artifact {
            name: "Src".into(),
            location: baton::core::engine::ArtifactLocation {
                bucket: "baton-local-eu-west-1".into(),
                key: "demo/e/Src/1.zip".into(),
            },
        }];
        let j = job(&jobs, req.clone(), vec![src]);
        let (_, vars, _, _) = succeeded(provider.run(&j).await.unwrap());
        let build = baton::ports::action_execution_id(&req.execution_id, "Build", "Act", 1);
        assert_eq!(
            vars["ARN"],
            format!("arn:aws:codebuild:eu-west-1:123456789012:build/{project}:{build}")
        );
        assert_eq!(vars["SRC"], "arn:aws:s3:::baton-local-eu-west-1/demo/e/Src/1.zip");
        assert_eq!(vars["LOG"], j.log_path.to_string_lossy());
        seen.push(vars["NUM"].clone());
    }
    assert_eq!(seen, ["1", "2", "1"], "numbered per project");
}

#[tokio::test]
async fn codebuild_runs_a_buildspec_in_one_shared_shell() {
    let dir = TempDir::new().unwrap();
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", FULL_BUILDSPEC)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let env = r#"[{"name":"OVERRIDDEN","value":"from-action","type":"PLAINTEXT"}]"#;
    let req = codebuild_request(
        &[("ProjectName", "proj"), ("EnvironmentVariables", env)],
        &["BuildOutput", "Docs"],
    );
    let exec = req.execution_id.clone();
    let j = job(&jobs, req, vec![src]);
    let (artifacts, vars, _, external_id) =
        succeeded(CodeBuildProvider::default().run(&j).await.unwrap());

    assert_eq!(
        vars.get("VERSION").map(String::as_str),
        Some("1.2.3"),
        "pre_build's variable is exported"
    );
    assert_eq!(vars.get("GREETING").map(String::as_str), Some("hello"));
    assert!(!vars.contains_key("NEVER_SET"));
    let build = baton::ports::action_execution_id(&exec, "Build", "Act", 1);
    assert_eq!(external_id, Some(format!("proj:{build}")), "one id per build");

    assert_eq!(
        artifacts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["BuildOutput", "Docs"]
    );
    let primary = zip_contents(&artifacts[0].path);
    assert_eq!(
        primary,
        BTreeMap::from([
            ("build-id.txt".to_string(), format!("proj:{build}\n")),
            ("override.txt".to_string(), "from-action\n".to_string()),
            ("version.txt".to_string(), "1.2.3\n".to_string()),
        ]),
        "base-directory out, discard-paths drops bin/, the action's variable wins"
    );
    assert_eq!(
        zip_contents(&artifacts[1].path),
        BTreeMap::from([("docs/manual.md".to_string(), "manual\n".to_string())])
    );

    let log = fs::read_to_string(&j.log_path).unwrap();
    for phase in
        ["DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS"]
    {
        assert!(
            log.contains(&format!("Phase complete: {phase} State: SUCCEEDED")),
            "{phase} in:\n{log}"
        );
    }
    assert!(log.contains("[Container] "), "{log}");
    assert!(log.contains("Entering phase BUILD"), "{log}");
    assert!(log.contains("Running command echo \"installing $GREETING\""), "{log}");
    assert!(log.contains("installing hello\n"), "{log}");
    assert!(log.contains("building 1.2.3 in out\n"), "the working directory carries over:\n{log}");
    assert!(log.contains("SHOUT codepipeline/demo\n"), "functions carry over:\n{log}");
    assert!(log.contains("post_build sees succeeding=1\n"), "{log}");
}

#[tokio::test]
async fn codebuild_failed_build_still_runs_finally_and_post_build() {
    let dir = TempDir::new().unwrap();
    let spec = r#"version: 0.2
phases:
  pre_build:
    commands:
      - echo pre-ran
  build:
    commands:
      - echo before
      - "false"
      - echo NEVER-PRINTED
    finally:
      - echo finally-ran
  post_build:
    commands:
      - echo "post_build-ran succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  files: ['**/*']
"#;
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let j = job(&jobs, codebuild_request(&[("ProjectName", "p")], &["Out"]), vec![src]);
    let (code, message) = failed(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert_eq!(message, "Error while executing command: false. Reason: exit status 1");
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains("pre-ran\n") && log.contains("before\n"), "{log}");
    assert!(!log.contains("NEVER-PRINTED\n"), "{log}");
    assert!(log.contains("finally-ran\n"), "{log}");
    assert!(log.contains("post_build-ran succeeding=0\n"), "{log}");
    assert!(log.contains("Command did not exit successfully false exit status 1"), "{log}");
    assert!(log.contains("Phase complete: BUILD State: FAILED"), "{log}");
    assert!(
        log.contains("Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1"),
        "{log}"
    );
}

#[tokio::test]
async fn codebuild_failed_install_skips_the_later_phases() {
    let dir = TempDir::new().unwrap();
    let spec = r#"version: 0.2
phases:
  install:
    commands:
      - exit 7
  pre_build:
    commands: [echo PRE-RAN]
  build:
    commands: [echo BUILD-RAN]
  post_build:
    commands: [echo POST-RAN]
"#;
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let j = job(&jobs, codebuild_request(&[("ProjectName", "p")], &[]), vec![src]);
    let (code, message) = failed(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("JobFailed", "Error while executing command: exit 7. Reason: exit status 7")
    );
    let log = fs::read_to_string(&j.log_path).unwrap();
    for never in ["PRE-RAN", "BUILD-RAN", "POST-RAN", "Entering phase PRE_BUILD"] {
        assert!(!log.contains(never), "{never} in:\n{log}");
    }
}

#[tokio::test]
async fn codebuild_on_failure_continue_and_abort() {
    let dir = TempDir::new().unwrap();
    let spec = r#"version: 0.2
phases:
  pre_build:
    on-failure: CONTINUE
    commands:
      - test 1 = 2
  build:
    on-failure: ABORT
    commands:
      - echo "build-ran succeeding=$CODEBUILD_BUILD_SUCCEEDING"
      - "false"
  post_build:
    commands:
      - echo POST-RAN
"#;
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let j = job(&jobs, codebuild_request(&[("ProjectName", "p")], &[]), vec![src]);
    let (code, message) = failed(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert_eq!(
        message, "Error while executing command: test 1 = 2. Reason: exit status 1",
        "the first failure is reported"
    );
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains("build-ran succeeding=0\n"), "CONTINUE went on to BUILD:\n{log}");
    assert!(!log.contains("POST-RAN"), "ABORT stopped before POST_BUILD:\n{log}");
}

#[tokio::test]
async fn codebuild_sees_secondary_inputs_and_the_primary_source() {
    let dir = TempDir::new().unwrap();
    let spec = r#"version: 0.2
phases:
  build:
    commands:
      - cat "$CODEBUILD_SRC_DIR_Extra/data.txt" > combined.txt
      - cat own.txt >> combined.txt
artifacts:
  files: [combined.txt]
"#;
    let extra = artifact(dir.path(), "Extra", &[("data.txt", "extra-data\n")]);
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec), ("own.txt", "own-data\n")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    // The primary source is the second input: PrimarySource decides, not the order.
    let req = codebuild_request(&[("ProjectName", "p"), ("PrimarySource", "Src")], &["Out"]);
    let j = job(&jobs, req, vec![extra, src]);
    let (artifacts, _, _, _) = succeeded(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(zip_contents(&artifacts[0].path)["combined.txt"], "extra-data\nown-data\n");
}

#[tokio::test]
async fn codebuild_uses_the_project_buildspec_and_reports_a_missing_one() {
    let dir = TempDir::new().unwrap();
    let spec = "version: 0.2\nphases:\n  build:\n    commands: [echo custom > made.txt]\nartifacts:\n  files: [made.txt]\n";
    let src = artifact(dir.path(), "Src", &[("ci/custom.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let provider = CodeBuildProvider::new(HashMap::from([(
        "custom".to_string(),
        PathBuf::from("ci/custom.yml"),
    )]));
    let j =
        job(&jobs, codebuild_request(&[("ProjectName", "custom")], &["Out"]), vec![src.clone()]);
    let (artifacts, _, _, _) = succeeded(provider.run(&j).await.unwrap());
    assert_eq!(zip_contents(&artifacts[0].path)["made.txt"], "custom\n");

    let j = job(&jobs, codebuild_request(&[("ProjectName", "other")], &["Out"]), vec![src]);
    let (code, message) = failed(provider.run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(
        message.starts_with("YAML_FILE_ERROR") && message.contains("buildspec.yml"),
        "{message}"
    );
}

#[tokio::test]
async fn codebuild_fails_when_no_artifact_file_matches() {
    let dir = TempDir::new().unwrap();
    let spec = "version: 0.2\nphases:\n  build:\n    commands: [echo hi]\nartifacts:\n  files: ['dist/**/*']\n";
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let j = job(&jobs, codebuild_request(&[("ProjectName", "p")], &["Out"]), vec![src]);
    let (code, message) = failed(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("no matching artifact paths found"), "{message}");
}

/// What `processes` lists once it lists none, or after two seconds: killed processes vanish
/// within moments, and the kernel is allowed a little time.
async fn settled(processes: impl Fn() -> Vec<String>) -> Vec<String> {
    let mut left = processes();
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes();
    }
    left
}

/// Processes of process group `group` that are still alive (zombies are dead, only unreaped).
fn live_members(group: &str) -> Vec<String> {
    let state = |stat: &String| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
    };
    group_members(group)
        .into_iter()
        .filter(|stat| !matches!(state(stat).as_deref(), Some("Z" | "X")))
        .collect()
}

#[tokio::test]
async fn codebuild_times_out_and_kills_every_process() {
    let dir = TempDir::new().unwrap();
    let spec = r#"version: 0.2
phases:
  build:
    commands:
      - ps -o pgid= -p $$ | tr -d ' ' > "$CODEBUILD_SRC_DIR/../group.txt"
      - sleep 33 &
      - sleep 30
"#;
    let src = artifact(dir.path(), "Src", &[("buildspec.yml", spec)]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let mut req = codebuild_request(&[("ProjectName", "p")], &[]);
    req.deadline = now_ms() + 1_000;
    let j = job(&jobs, req, vec![src]);
    let started = Instant::now();
    let (code, _) = failed(CodeBuildProvider::default().run(&j).await.unwrap());
    assert_eq!(code, "TimedOut");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let group = fs::read_to_string(j.work_dir.join("group.txt")).unwrap().trim().to_string();
    assert!(!group.is_empty());
    let alive = settled(|| live_members(&group)).await;
    assert!(alive.is_empty(), "still running: {alive:?}");
}

#[tokio::test]
async fn codebuild_check_refuses_secrets_with_no_store() {
    let provider = CodeBuildProvider::default();
    let t = action_type("Build", "CodeBuild");
    for kind in ["SECRETS_MANAGER", "PARAMETER_STORE"] {
        let env = format!(r#"[{{"name":"TOKEN","value":"prod/token","type":"{kind}"}}]"#);
        let err = provider
            .check(&plan(t.clone(), &[("ProjectName", "p"), ("EnvironmentVariables", &env)]))
            .await
            .unwrap_err();
        assert!(
            err.contains("TOKEN") && err.contains(kind) && err.contains("no secret store"),
            "{err}"
        );
    }
    let env = r##"[{"name":"A","value":"1","type":"PLAINTEXT"},{"name":"B","value":"#{Vars.b}"}]"##;
    assert!(
        provider
            .check(&plan(t.clone(), &[("ProjectName", "p"), ("EnvironmentVariables", env)]))
            .await
            .is_ok()
    );
    assert!(
        provider
            .check(&plan(t, &[("ProjectName", "p"), ("EnvironmentVariables", "not json")]))
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Commands

#[tokio::test]
async fn commands_run_and_produce_variables_and_artifacts() {
    let dir = TempDir::new().unwrap();
    let src = artifact(dir.path(), "Src", &[("hello.txt", "from-input")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let mut req = request(action_type("Compute", "Commands"), &[], &["Out"]);
    req.commands = vec![
        "export NAME=world".into(),
        "mkdir -p dist/sub && echo \"hi $NAME $GREETING\" > dist/sub/out.txt".into(),
        "RESULT=$(cat hello.txt)".into(),
        "echo \"src=$CODEBUILD_SRC_DIR\"".into(),
    ];
    req.output_variables = vec!["RESULT".into(), "NAME".into()];
    req.environment_variables = vec![("GREETING".into(), "there".into(), "PLAINTEXT".into())];
    req.output_artifact_files = vec![("Out".into(), vec!["dist/**/*".into()])];
    let j = job(&jobs, req, vec![src]);
    let (artifacts, vars, _, _) = succeeded(CommandsProvider::new().run(&j).await.unwrap());
    assert_eq!(vars["RESULT"], "from-input");
    assert_eq!(vars["NAME"], "world");
    assert_eq!(
        zip_contents(&artifacts[0].path),
        BTreeMap::from([("dist/sub/out.txt".to_string(), "hi world there\n".to_string())])
    );
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains(&format!("src={}\n", j.work_dir.join("src").display())), "{log}");
}

/// `artifact`, its archive held in memory as the worker holds a small input; its file is gone.
fn held(scratch: &Path, name: &str, files: &[(&str, &str)]) -> LocalArtifact {
    let file = artifact(scratch, name, files);
    let bytes = fs::read(&file.path).unwrap();
    fs::remove_file(&file.path).unwrap();
    LocalArtifact::in_memory(name, bytes, file.path)
}

#[tokio::test]
async fn inputs_held_in_memory_are_read_from_memory_and_get_no_file() {
    let dir = TempDir::new().unwrap();
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let src = held(dir.path(), "Src", &[("hello.txt", "from-memory"), ("a/b.txt", "deep")]);
    let mut req = request(action_type("Compute", "Commands"), &[], &[]);
    req.commands = vec!["RESULT=$(cat hello.txt a/b.txt)".into()];
    req.output_variables = vec!["RESULT".into()];
    let (_, vars, _, _) =
        succeeded(CommandsProvider::new().run(&job(&jobs, req, vec![src.clone()])).await.unwrap());
    assert_eq!(vars["RESULT"], "from-memorydeep");

    let s3 = dir.path().join("s3");
    let provider = S3DeployProvider::new(s3.clone());
    let t = action_type("Deploy", "S3");
    let config = [("BucketName", "web"), ("Extract", "true")];
    let deploy = job(&jobs, request(t.clone(), &config, &[]), vec![src.clone()]);
    succeeded(provider.run(&deploy).await.unwrap());
    assert_eq!(fs::read_to_string(s3.join("web/a/b.txt")).unwrap(), "deep");
    let config = [("BucketName", "web"), ("Extract", "false"), ("ObjectKey", "src.zip")];
    succeeded(
        provider.run(&job(&jobs, request(t, &config, &[]), vec![src.clone()])).await.unwrap(),
    );
    assert_eq!(fs::read(s3.join("web/src.zip")).unwrap(), *src.held.clone().unwrap());
    assert!(!src.path.exists(), "no provider needed the input as a file");
}

#[tokio::test]
async fn commands_leave_no_process_behind_not_even_a_zombie() {
    let dir = TempDir::new().unwrap();
    let src = artifact(dir.path(), "Src", &[("a.txt", "a")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let mut req = request(action_type("Compute", "Commands"), &[], &[]);
    req.commands = vec![
        "ps -o pgid= -p $$ | tr -d ' ' > \"$CODEBUILD_SRC_DIR/../group.txt\"".into(),
        "sleep 31 &".into(),
        "echo done".into(),
    ];
    let j = job(&jobs, req, vec![src]);
    succeeded(CommandsProvider::new().run(&j).await.unwrap());
    let group = fs::read_to_string(j.work_dir.join("group.txt")).unwrap().trim().to_string();
    assert!(!group.is_empty());
    // The build's first script led the group; once the action ends, nothing of the group is
    // left: the background `sleep` is killed and every process, the leader too, is reaped.
    let members = settled(|| group_members(&group)).await;
    assert!(members.is_empty(), "left behind: {members:?}");
}

#[tokio::test]
async fn commands_find_bash_on_the_path_they_declare() {
    let dir = TempDir::new().unwrap();
    let src = artifact(dir.path(), "Src", &[("a.txt", "a")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let mut req = request(action_type("Compute", "Commands"), &[], &[]);
    req.commands = vec!["echo \"ran by $BASH\"".into()];
    let bash = which_bash();
    let bin = dir.path().join("tools");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&bash, bin.join("bash")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    req.environment_variables = vec![("PATH".into(), path, "PLAINTEXT".into())];
    let j = job(&jobs, req, vec![src]);
    succeeded(CommandsProvider::new().run(&j).await.unwrap());
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains(&format!("ran by {}\n", bin.join("bash").display())), "{log}");
}

/// A one-command action whose command is a plain program runs it without a shell, as GNU
/// make runs a plain recipe line: the program's parent is the worker, not bash. Its failure
/// is logged and reported as bash's would be.
#[tokio::test]
async fn a_plain_single_command_runs_without_a_shell() {
    let script = "echo \"parent=$(ps -o comm= -p $PPID) pwd=$PWD args=$*\"\n";
    let run = |command: &str| {
        let dir = TempDir::new().unwrap();
        let src = artifact(dir.path(), "Src", &[("show.sh", script)]);
        let jobs = dir.path().join("jobs");
        fs::create_dir_all(&jobs).unwrap();
        let mut req = request(action_type("Compute", "Commands"), &[], &[]);
        req.commands = vec![command.to_owned()];
        let j = job(&jobs, req, vec![src]);
        (dir, j)
    };
    let (_dir, j) = run("sh show.sh a-1 b/2");
    succeeded(CommandsProvider::new().run(&j).await.unwrap());
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains("Running command sh show.sh a-1 b/2"), "{log}");
    let line = log.lines().find(|l| l.starts_with("parent=")).unwrap_or_else(|| panic!("{log}"));
    assert!(!line.contains("parent=bash"), "no shell between the worker and the command: {line}");
    assert!(line.ends_with("args=a-1 b/2"), "{line}");
    assert!(line.contains(&format!("pwd={}", j.work_dir.join("src").display())), "{line}");

    // With anything a shell must read (here `$`), bash runs it as before.
    let (_dir, j) = run("sh show.sh $HOME");
    succeeded(CommandsProvider::new().run(&j).await.unwrap());
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains("parent=bash"), "{log}");

    // A plain command that fails: logged and reported in bash's words.
    let (_dir, j) = run("false");
    let (code, message) = failed(CommandsProvider::new().run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("false") && message.contains("exit status 1"), "{message}");
    let log = fs::read_to_string(&j.log_path).unwrap();
    assert!(log.contains("Command did not exit successfully false exit status 1"), "{log}");
}

/// The host's `bash`, found on `PATH`.
fn which_bash() -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("bash"))
        .find(|p| p.is_file())
        .expect("bash on PATH")
}

/// Processes of process group `group`, zombies included.
fn group_members(group: &str) -> Vec<String> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == group {
            members.push(stat);
        }
    }
    members
}

#[tokio::test]
async fn commands_fail_with_codebuilds_message() {
    let dir = TempDir::new().unwrap();
    let src = artifact(dir.path(), "Src", &[("a.txt", "a")]);
    let jobs = dir.path().join("jobs");
    fs::create_dir_all(&jobs).unwrap();
    let mut req = request(action_type("Compute", "Commands"), &[], &[]);
    req.commands = vec!["echo ok".into(), "ls does-not-exist".into(), "echo NEVER".into()];
    let j = job(&jobs, req, vec![src]);
    let (code, message) = failed(CommandsProvider::new().run(&j).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert_eq!(message, "Error while executing command: ls does-not-exist. Reason: exit status 2");
    assert!(!fs::read_to_string(&j.log_path).unwrap().contains("NEVER\n"));
}

#[tokio::test]
async fn commands_check_refuses_secret_variables_with_no_store() {
    let mut p = plan(action_type("Compute", "Commands"), &[]);
    p.environment_variables = vec![("TOKEN".into(), "prod/token".into(), "SECRETS_MANAGER".into())];
    let err = CommandsProvider::new().check(&p).await.unwrap_err();
    assert!(err.contains("no secret store"), "{err}");
    let store: std::sync::Arc<dyn baton::ports::secrets::Secrets> =
        std::sync::Arc::new(baton::adapters::local::secret_files::SecretFiles::new(
            std::path::Path::new("/nonexistent"),
        ));
    assert!(CommandsProvider::with_secrets(Some(store)).check(&p).await.is_ok());
    p.environment_variables = vec![("A".into(), "1".into(), "PLAINTEXT".into())];
    assert!(CommandsProvider::new().check(&p).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Registry

#[test]
fn registry_holds_every_local_provider() {
    let reg = registry(&LocalProviderConfig::default());
    for (category, provider) in [
        ("Source", "CodeCommit"),
        ("Source", "S3"),
        ("Deploy", "S3"),
        ("Build", "CodeBuild"),
        ("Test", "CodeBuild"),
        ("Compute", "Commands"),
        ("Source", "CodeStarSourceConnection"),
    ] {
        assert!(reg.get(&action_type(category, provider)).is_some(), "{category}/{provider}");
    }
    assert!(reg.get(&action_type("Deploy", "CloudFormation")).is_none());
    let github = ActionType {
        category: "Source".into(),
        owner: "ThirdParty".into(),
        provider: "GitHub".into(),
        version: "1".into(),
    };
    assert!(reg.get(&github).is_some(), "ThirdParty/Source/GitHub");
}
