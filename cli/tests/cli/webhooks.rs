//! Signed webhook deliveries on `baton serve`, shaped as GitHub's and GitLab's documentation
//! gives them: a connection source pipeline starts on the pushed (or pull request's) commit
//! when its V2 triggers match, and not for a bad signature, a replay, or a change its filters
//! exclude.

use std::path::Path;
use std::process::Command;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::api::{Aws, Server, git, poll, post, tool};

const SECRET: &str = "webhook-s3cret";

fn web_pipeline() -> Value {
    json!({"pipeline": {
    "name": "web",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "pipelineType": "V2",
    "executionMode": "PARALLEL",
    "triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Checkout",
        "push": [{"branches": {"includes": ["main", "release/**"]},
                  "filePaths": {"includes": ["src/**"], "excludes": ["**/*.md"]}}],
        "pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]}}]}}],
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/abc",
                "FullRepositoryId": "octo/app", "BranchName": "main", "OutputArtifactFormat": "CODE_ZIP"},
            "outputArtifacts": [{"name": "Src"}], "namespace": "SourceVariables"}]},
        {"name": "Build", "actions": [{"name": "Show",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["cat src/version.txt"],
            "inputArtifacts": [{"name": "Src"}]}]}
    ]}})
}

fn commit(repo: &Path, version: &str) -> String {
    std::fs::write(repo.join("src/version.txt"), version).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", version]);
    let out = Command::new("git").arg("-C").arg(repo).args(["rev-parse", "HEAD"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// POSTs a delivery to `/webhooks/{host}`; the status and JSON reply.
fn deliver(server: &Server, host: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let addr = server.url.trim_start_matches("http://");
    let mut all = vec![
        ("host".to_string(), addr.to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.clone())));
    post(server, &format!("/webhooks/{host}"), &all, body.as_bytes())
}

fn github(
    server: &Server,
    event: &str,
    delivery: &str,
    payload: &Value,
    secret: &str,
) -> (u16, Value) {
    let body = payload.to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let headers = [
        ("X-GitHub-Event", event.to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        ("X-Hub-Signature-256", signature),
    ];
    deliver(server, "github", &headers, &body)
}

fn push(branch: &str, after: &str, files: &[&str]) -> Value {
    json!({"ref": format!("refs/heads/{branch}"), "before": "0", "after": after,
        "repository": {"full_name": "octo/app"},
        "commits": [{"id": after, "added": [], "removed": [], "modified": files}]})
}

fn started(reply: &Value) -> Vec<String> {
    reply["started"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pipelineExecutionId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn signed_deliveries_start_the_pipelines_their_triggers_match_on_the_pushed_commit() {
    let server = Server::start_with(&format!("\n[webhooks]\ngithub_secret = \"{SECRET}\"\n"));
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let repo = server.home.path().join("git/octo/app");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let first = commit(&repo, "one");
    let head = commit(&repo, "two");
    let file = server.home.path().join("web.json");
    std::fs::write(&file, web_pipeline().to_string()).unwrap();
    aws.ok(&["create-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);

    // A push naming the first commit runs that commit, not the branch's head.
    let (status, reply) =
        github(&server, "push", "d-1", &push("main", &first, &["src/version.txt"]), SECRET);
    assert_eq!(status, 202, "{reply}");
    let ids = started(&reply);
    assert_eq!(ids.len(), 1, "{reply}");
    let execution = poll("the pushed commit runs", || {
        let e = aws.ok(&[
            "get-pipeline-execution",
            "--pipeline-name",
            "web",
            "--pipeline-execution-id",
            &ids[0],
        ])["pipelineExecution"]
            .clone();
        (e["status"] == "Succeeded").then_some(e)
    });
    assert_eq!(execution["artifactRevisions"], json!([{"name": "Src", "revisionId": first}]));
    assert_eq!(execution["trigger"]["triggerType"], "WebhookV2");
    let actions = aws.ok(&[
        "list-action-executions",
        "--pipeline-name",
        "web",
        "--filter",
        &format!("pipelineExecutionId={}", ids[0]),
    ]);
    let checkout = actions["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actionName"] == "Checkout")
        .unwrap()
        .clone();
    assert_eq!(checkout["output"]["outputVariables"]["CommitId"], first.as_str());
    assert_eq!(checkout["output"]["outputVariables"]["FullRepositoryName"], "octo/app");

    // The same delivery again starts nothing new.
    let (_, again) =
        github(&server, "push", "d-1", &push("main", &first, &["src/version.txt"]), SECRET);
    assert_eq!(started(&again), ids, "a redelivery names the same execution");
    // A bad signature, a filtered file, another branch, a tag: nothing starts.
    let (status, _) =
        github(&server, "push", "d-2", &push("main", &head, &["src/version.txt"]), "guess");
    assert_eq!(status, 401);
    let (_, docs) = github(&server, "push", "d-3", &push("main", &head, &["src/notes.md"]), SECRET);
    assert!(started(&docs).is_empty(), "{docs}");
    let (_, dev) =
        github(&server, "push", "d-4", &push("dev", &head, &["src/version.txt"]), SECRET);
    assert!(started(&dev).is_empty(), "{dev}");
    let tag = json!({"ref": "refs/tags/v1", "after": head, "repository": {"full_name": "octo/app"}, "commits": []});
    let (_, tagged) = github(&server, "push", "d-5", &tag, SECRET);
    assert!(started(&tagged).is_empty(), "{tagged}");
    // A pull request opened into main runs its head.
    let pr = json!({"action": "opened", "repository": {"full_name": "octo/app"},
        "pull_request": {"head": {"ref": "topic", "sha": head}, "base": {"ref": "main"}}});
    let (_, opened) = github(&server, "pull_request", "d-6", &pr, SECRET);
    assert_eq!(started(&opened).len(), 1, "{opened}");
    let pr_run = started(&opened)[0].clone();
    let checkout = poll("the pull request's source runs", || {
        let actions = aws.ok(&[
            "list-action-executions",
            "--pipeline-name",
            "web",
            "--filter",
            &format!("pipelineExecutionId={pr_run}"),
        ]);
        actions["actionExecutionDetails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["actionName"] == "Checkout" && a["status"] == "Succeeded")
            .cloned()
    });
    assert_eq!(
        checkout["output"]["outputVariables"]["BranchName"], "topic",
        "the branch it runs from"
    );
    let listed = aws.ok(&["list-pipeline-executions", "--pipeline-name", "web"]);
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().unwrap().len(), 2);
    // A connection with nowhere to fetch from is refused at start, saying what to configure.
    let mut missing = web_pipeline();
    missing["pipeline"]["name"] = json!("elsewhere");
    missing["pipeline"]["stages"][0]["actions"][0]["configuration"]["FullRepositoryId"] =
        json!("octo/missing");
    std::fs::write(&file, missing.to_string()).unwrap();
    aws.ok(&["create-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);
    let (code, message) = aws.err(&["start-pipeline-execution", "--name", "elsewhere"]);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("[connections]") && message.contains("octo/missing"), "{message}");
    // A host with no secret configured is refused, saying what to set.
    let (status, reply) = deliver(&server, "gitlab", &[("X-Gitlab-Token", SECRET.into())], "{}");
    assert_eq!(status, 403);
    assert!(reply["message"].as_str().unwrap().contains("gitlab_token"), "{reply}");
}

fn baton(server: &Server, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("--home")
        .arg(server.home.path())
        .args(args)
        .env_remove("BATON_HOME")
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "baton {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn executions(aws: &Aws<'_>) -> usize {
    let listed = aws.ok(&["list-pipeline-executions", "--pipeline-name", "web"]);
    listed["pipelineExecutionSummaries"].as_array().unwrap().len()
}

/// A local repository starts its pipelines by itself, under the same triggers: `baton push`
/// with the files the commit changed, and the hooks `baton hooks install` writes.
#[test]
fn local_commits_start_connection_pipelines_under_their_triggers() {
    let server = Server::start();
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let repo = server.home.path().join("git/octo/app");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let base = commit(&repo, "one");
    let file = server.home.path().join("web.json");
    std::fs::write(&file, web_pipeline().to_string()).unwrap();
    aws.ok(&["create-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);

    let out = baton(&server, &["push", "octo/app", "main"]);
    assert!(out.contains("started execution"), "{out}");
    assert_eq!(executions(&aws), 1);
    // A commit touching only docs is filtered out; since the base, src changed too.
    std::fs::write(repo.join("NOTES.md"), "notes").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "notes"]);
    let out = baton(&server, &["push", "octo/app", "main"]);
    assert!(out.contains("No pipeline watches"), "{out}");
    std::fs::write(repo.join("src/version.txt"), "three").unwrap();
    git(&repo, &["commit", "-q", "-am", "three"]);
    std::fs::write(repo.join("NOTES.md"), "more notes").unwrap();
    git(&repo, &["commit", "-q", "-am", "more notes"]);
    let out = baton(&server, &["push", "octo/app", "main", "--since", &base]);
    assert!(out.contains("started execution"), "{out}");
    assert_eq!(executions(&aws), 2);

    // With the hooks, a commit is enough.
    let out = baton(&server, &["hooks", "install", repo.to_str().unwrap()]);
    assert!(out.contains("octo/app"), "{out}");
    std::fs::write(repo.join("src/version.txt"), "four").unwrap();
    git(&repo, &["commit", "-q", "-am", "four"]);
    poll("the commit's hook starts an execution", || (executions(&aws) == 3).then_some(()));
}

fn v1_pipeline() -> Value {
    json!({"pipeline": {
    "name": "legacy",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStore": {"type": "S3", "location": "artifacts"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": "octo", "Repo": "app", "Branch": "main",
                "OAuthToken": "****", "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [{"name": "Show",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["cat src/version.txt"],
            "inputArtifacts": [{"name": "Src"}]}]}
    ]}})
}

fn webhook(name: &str, auth: &str, config: Value) -> Value {
    json!({"webhook": {"name": name, "targetPipeline": "legacy", "targetAction": "Checkout",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
                    {"jsonPath": "$.repository.name", "matchEquals": "app"}],
        "authentication": auth, "authenticationConfiguration": config}})
}

/// POSTs a GitHub push, signed with `secret` if one is given, to a webhook's URL.
fn to_url(
    server: &Server,
    url: &str,
    delivery: &str,
    body: &Value,
    secret: Option<&str>,
) -> (u16, Value) {
    let body = body.to_string();
    let path = url.strip_prefix(&server.url).expect("the webhook's URL is on the server");
    let mut headers = vec![
        ("host".to_string(), server.url.trim_start_matches("http://").to_string()),
        ("content-type".to_string(), "application/json".to_string()),
        ("X-GitHub-Event".to_string(), "push".to_string()),
        ("X-GitHub-Delivery".to_string(), delivery.to_string()),
    ];
    if let Some(secret) = secret {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.push(("X-Hub-Signature-256".to_string(), signature));
    }
    post(server, path, &headers, body.as_bytes())
}

/// CodePipeline's own webhooks for GitHub (v1) sources, through the stock AWS CLI: put, list,
/// a delivery that passes every filter starts the pipeline once, and deliveries that are not
/// signed with the SecretToken, that a filter leaves out, or that come from outside the
/// allowed range start nothing.
#[test]
fn codepipeline_webhooks_start_github_v1_pipelines_through_their_filters() {
    let server = Server::start();
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let repo = server.home.path().join("git/octo/app");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let head = commit(&repo, "one");
    let file = server.home.path().join("legacy.json");
    std::fs::write(&file, v1_pipeline().to_string()).unwrap();
    aws.ok(&["create-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);

    let hook = webhook("legacy-hook", "GITHUB_HMAC", json!({"SecretToken": SECRET}));
    let put = aws.ok(&["put-webhook", "--cli-input-json", &hook.to_string()]);
    let url = put["webhook"]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/trigger?t=", server.url)), "{put}");
    assert_eq!(put["webhook"]["definition"], hook["webhook"]);
    let pipeline_arn = aws.ok(&["get-pipeline", "--name", "legacy"])["metadata"]["pipelineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let arn = pipeline_arn.replace(":legacy", ":webhook:legacy-hook");
    assert_eq!(put["webhook"]["arn"], arn.as_str(), "in the pipeline's account and region");
    // Put again: the same URL.
    let again = aws.ok(&["put-webhook", "--cli-input-json", &hook.to_string()]);
    assert_eq!(again["webhook"]["url"], url.as_str());

    let push = |branch: &str, name: &str| json!({"ref": format!("refs/heads/{branch}"), "after": head, "repository": {"name": name, "full_name": format!("octo/{name}")}});
    let (status, reply) = to_url(&server, &url, "g-1", &push("main", "app"), Some(SECRET));
    assert_eq!(status, 202, "{reply}");
    let id = reply["pipelineExecutionId"].as_str().unwrap().to_string();
    let execution = poll("the webhook's execution runs", || {
        let e = aws.ok(&[
            "get-pipeline-execution",
            "--pipeline-name",
            "legacy",
            "--pipeline-execution-id",
            &id,
        ])["pipelineExecution"]
            .clone();
        (e["status"] == "Succeeded").then_some(e)
    });
    assert_eq!(execution["trigger"]["triggerType"], "Webhook");
    assert_eq!(execution["artifactRevisions"][0]["revisionId"], head.as_str());
    // Redelivered: the same execution, nothing new.
    let (_, twice) = to_url(&server, &url, "g-1", &push("main", "app"), Some(SECRET));
    assert_eq!(twice["pipelineExecutionId"], id.as_str(), "{twice}");
    // Signed with another secret, or not at all: refused.
    assert_eq!(to_url(&server, &url, "g-2", &push("main", "app"), Some("guess")).0, 401);
    assert_eq!(to_url(&server, &url, "g-3", &push("main", "app"), None).0, 401);
    // A filter leaves it out: answered, nothing started.
    let (status, ignored) = to_url(&server, &url, "g-4", &push("dev", "app"), Some(SECRET));
    assert_eq!(status, 200, "{ignored}");
    let (_, other) = to_url(&server, &url, "g-5", &push("main", "web"), Some(SECRET));
    assert!(other["ignored"].is_string(), "{other}");
    // A URL with another token is no webhook.
    let wrong = format!("{}/trigger?t=0000&v=1", server.url);
    assert_eq!(to_url(&server, &wrong, "g-6", &push("main", "app"), Some(SECRET)).0, 404);
    let listed = aws.ok(&["list-pipeline-executions", "--pipeline-name", "legacy"]);
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().unwrap().len(), 1);

    // IP ranges: loopback is outside 10.0.0.0/8.
    let by_ip = webhook("by-ip", "IP", json!({"AllowedIPRange": "10.0.0.0/8"}));
    let put = aws.ok(&["put-webhook", "--cli-input-json", &by_ip.to_string()]);
    let ip_url = put["webhook"]["url"].as_str().unwrap().to_string();
    assert_eq!(to_url(&server, &ip_url, "g-7", &push("main", "app"), None).0, 401);

    let listed = aws.ok(&["list-webhooks"]);
    let names: Vec<&str> = listed["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["definition"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["by-ip", "legacy-hook"]);
    assert!(
        listed["webhooks"][1]["lastTriggered"].is_string()
            || listed["webhooks"][1]["lastTriggered"].is_number(),
        "{listed}"
    );

    // CodePipeline's refusals.
    let mut bad = webhook("bad", "GITHUB_HMAC", json!({}));
    let (code, message) = aws.err(&["put-webhook", "--cli-input-json", &bad.to_string()]);
    assert_eq!(code, "InvalidWebhookAuthenticationParametersException", "{message}");
    bad["webhook"]["authenticationConfiguration"] = json!({"SecretToken": "x"});
    bad["webhook"]["filters"][0]["jsonPath"] = json!("$[?");
    let (code, _) = aws.err(&["put-webhook", "--cli-input-json", &bad.to_string()]);
    assert_eq!(code, "InvalidWebhookFilterPatternException");
    let mut elsewhere = webhook("elsewhere", "UNAUTHENTICATED", json!({}));
    elsewhere["webhook"]["targetPipeline"] = json!("missing");
    let (code, _) = aws.err(&["put-webhook", "--cli-input-json", &elsewhere.to_string()]);
    assert_eq!(code, "PipelineNotFoundException");

    aws.ok(&["delete-webhook", "--name", "legacy-hook"]);
    aws.ok(&["delete-webhook", "--name", "by-ip"]);
    assert_eq!(aws.ok(&["list-webhooks"])["webhooks"], json!([]));
    assert_eq!(to_url(&server, &url, "g-8", &push("main", "app"), Some(SECRET)).0, 404);
}

/// GitHub's repository hooks API, as far as Baton calls it, on loopback: the hooks of
/// `octo/app`, for the token `good-token` only.
struct FakeGitHub {
    url: String,
    hooks: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    /// Every request's method and the token it carried.
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeGitHub {
    fn start() -> Self {
        use axum::extract::{Path as At, State};
        use axum::http::{HeaderMap, Method, StatusCode};
        use axum::routing::{get, patch};
        type Shared = (
            std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
            std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
        );
        async fn hooks(
            State((hooks, seen)): State<Shared>,
            method: Method,
            headers: HeaderMap,
            At(path): At<Vec<String>>,
            body: Option<axum::Json<Value>>,
        ) -> (StatusCode, axum::Json<Value>) {
            let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            seen.lock().unwrap().push((method.to_string(), token.to_string()));
            if token != "Bearer good-token" {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"message": "Bad credentials"})),
                );
            }
            if path[..2] != ["octo".to_string(), "app".to_string()] {
                return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"})));
            }
            let mut hooks = hooks.lock().unwrap();
            let id = path.get(2).and_then(|id| id.parse::<u64>().ok());
            let at = id.and_then(|id| hooks.iter().position(|h| h["id"] == id));
            match (method.as_str(), at, body) {
                ("GET", _, _) => (StatusCode::OK, axum::Json(json!(*hooks))),
                ("POST", _, Some(axum::Json(mut hook))) => {
                    hook["id"] = json!(hooks.len() as u64 + 1);
                    hooks.push(hook.clone());
                    (StatusCode::CREATED, axum::Json(hook))
                }
                ("PATCH", Some(i), Some(axum::Json(mut hook))) => {
                    hook["id"] = hooks[i]["id"].clone();
                    hooks[i] = hook.clone();
                    (StatusCode::OK, axum::Json(hook))
                }
                ("DELETE", Some(i), _) => {
                    hooks.remove(i);
                    (StatusCode::NO_CONTENT, axum::Json(Value::Null))
                }
                _ => (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"}))),
            }
        }
        let shared: Shared = Default::default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/repos/{owner}/{repo}/hooks", get(hooks).post(hooks))
            .route("/repos/{owner}/{repo}/hooks/{id}", patch(hooks).delete(hooks))
            .with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { url, hooks: shared.0, seen: shared.1, _runtime: runtime }
    }

    fn hooks(&self) -> Vec<Value> {
        self.hooks.lock().unwrap().clone()
    }
}

/// RegisterWebhookWithThirdParty and DeregisterWebhookWithThirdParty through the stock AWS CLI:
/// the webhook is added to the GitHub repository's hooks with the action's OAuthToken, with its
/// URL and secret, once however often it is registered, and removed again; what GitHub or the
/// declaration refuses comes back as CodePipeline's exception, saying why.
#[test]
fn webhooks_are_registered_with_github_through_its_api() {
    let github = FakeGitHub::start();
    let (server, _) =
        Server::spawn("", &[], &[("BATON_GITHUB_API_URL", github.url.as_str())]).unwrap();
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let file = server.home.path().join("legacy.json");
    std::fs::write(&file, v1_pipeline().to_string()).unwrap();
    aws.ok(&["create-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);
    let hook = webhook("legacy-hook", "GITHUB_HMAC", json!({"SecretToken": SECRET}));
    let url = aws.ok(&["put-webhook", "--cli-input-json", &hook.to_string()])["webhook"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let register = ["register-webhook-with-third-party", "--webhook-name", "legacy-hook"];

    // The declaration's token is masked, as get-pipeline prints it: nothing to register with.
    let (code, message) = aws.err(&register);
    assert_eq!(code, "ValidationException", "{message}");
    assert!(message.contains("OAuthToken") && message.contains("****"), "{message}");
    assert!(github.seen.lock().unwrap().is_empty(), "GitHub was called without a token");

    let with_token = |token: &str| {
        let mut p = v1_pipeline();
        p["pipeline"]["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!(token);
        std::fs::write(&file, p.to_string()).unwrap();
        aws.ok(&["update-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);
    };
    with_token("good-token");
    // The token reads back masked, and the masked declaration sent back keeps it.
    let got = aws.ok(&["get-pipeline", "--name", "legacy"]);
    let configuration = &got["pipeline"]["stages"][0]["actions"][0]["configuration"];
    assert_eq!(configuration["OAuthToken"], "****", "{got}");
    let masked = json!({"pipeline": got["pipeline"]});
    std::fs::write(&file, masked.to_string()).unwrap();
    aws.ok(&["update-pipeline", "--cli-input-json", &format!("file://{}", file.display())]);
    assert_eq!(aws.ok(&register), Value::Null);
    aws.ok(&register);
    let hooks = github.hooks();
    assert_eq!(hooks.len(), 1, "registered twice, one hook: {hooks:?}");
    assert_eq!(hooks[0]["config"]["url"], url.as_str());
    assert_eq!(hooks[0]["config"]["secret"], SECRET);
    assert_eq!(hooks[0]["config"]["content_type"], "json");
    assert_eq!(hooks[0]["events"], json!(["push"]));
    assert_eq!(hooks[0]["active"], true);
    let methods: Vec<String> = github.seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PATCH"]);

    aws.ok(&["deregister-webhook-with-third-party", "--webhook-name", "legacy-hook"]);
    assert!(github.hooks().is_empty());

    // GitHub's refusal, in its words, with what to do.
    with_token("stale-token");
    let (code, message) = aws.err(&register);
    assert_eq!(code, "ValidationException", "{message}");
    assert!(message.contains("Bad credentials") && message.contains("OAuthToken"), "{message}");
    // Only a GitHub (v1) source's repository can be registered with.
    let mut elsewhere = webhook("to-build", "UNAUTHENTICATED", json!({}));
    elsewhere["webhook"]["targetAction"] = json!("Show");
    aws.ok(&["put-webhook", "--cli-input-json", &elsewhere.to_string()]);
    let (code, message) =
        aws.err(&["register-webhook-with-third-party", "--webhook-name", "to-build"]);
    assert_eq!(code, "ValidationException", "{message}");
    assert!(message.contains("GitHub (v1) source"), "{message}");
    let (code, _) = aws.err(&["register-webhook-with-third-party", "--webhook-name", "nope"]);
    assert_eq!(code, "WebhookNotFoundException");
}
