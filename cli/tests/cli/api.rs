//! `baton serve` driven by real clients: the AWS CLI, boto3 and the Rust `aws-sdk-codepipeline`,
//! each through one release scenario (create, start, a failing stage retried, an approval by
//! token, transitions, a stop, an update, tags, delete) and CodePipeline's errors; and raw HTTP
//! for what the clients never send (bad signatures, unknown operations, bodies that are not JSON).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const ACCESS_KEY: &str = "baton";
pub(crate) const SECRET_KEY: &str = "baton-local-secret";
const REGION: &str = "us-east-1";

/// A `baton serve` on a free loopback port, in a home of its own; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) home: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A home with the `app` repository and its buildspecs, and `baton serve` running on it.
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// As [`Server::start`], with `extra` appended to the home's `baton.toml`.
    pub(crate) fn start_with(extra: &str) -> Self {
        let (server, banner) = Self::spawn(extra, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            banner.contains(ACCESS_KEY) && banner.contains(SECRET_KEY),
            "the default credentials are not printed:\n{banner}"
        );
        server
    }

    /// `baton serve` on a home set up as [`Server::start`]'s, with `extra` appended to its
    /// `baton.toml` (made private), `args` after `serve` and `env` set: the server and what
    /// it printed before listening, or everything it printed if it stopped before listening.
    pub(crate) fn spawn(
        extra: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Self, String), String> {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        setup(home.path());
        let toml = home.path().join("baton.toml");
        let settings = std::fs::read_to_string(&toml).unwrap() + extra;
        std::fs::write(&toml, settings).unwrap();
        std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("--home")
            .arg(home.path())
            .args(["serve", "--port", "0", "--region", REGION])
            .args(args)
            .env_remove("BATON_HOME")
            .env_remove("BATON_API_ACCESS_KEY_ID")
            .env_remove("BATON_API_SECRET_ACCESS_KEY")
            .envs(env.iter().copied())
            .env("CI", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = String::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return Err(seen);
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(url) = line.strip_prefix("Listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok((Self { child, url, home }, seen))
    }

    /// The file that lets the `Check` stage pass.
    pub(crate) fn pass_flag(&self) -> PathBuf {
        self.home.path().join("pass")
    }

    /// The pipeline declaration file (`create-pipeline` input shape).
    pub(crate) fn pipeline_file(&self) -> PathBuf {
        self.home.path().join("pipeline.json")
    }
}

/// The scenario's pipeline: Source -> Build -> Check (fails until the pass file exists) ->
/// Approve -> Deploy (a slow action, then the site to a local bucket).
pub(crate) fn pipeline() -> Value {
    let build = |name: &str,
                 category: &str,
                 project: &str,
                 inputs: Value,
                 outputs: Value,
                 run_order: i64| {
        json!({"name": name,
            "actionTypeId": {"category": category, "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "runOrder": run_order,
            "configuration": {"ProjectName": project},
            "inputArtifacts": inputs, "outputArtifacts": outputs})
    };
    json!({
        "name": "app",
        "roleArn": "arn:aws:iam::111111111111:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "SUPERSEDED",
        "variables": [{"name": "Greeting", "defaultValue": "hello", "description": "said by the build"}],
        "stages": [
            {"name": "Source", "actions": [{"name": "Checkout",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "runOrder": 1,
                "configuration": {"RepositoryName": "app", "BranchName": "main"},
                "outputArtifacts": [{"name": "Src"}], "namespace": "SourceVariables"}]},
            {"name": "Build", "actions": [build("Compile", "Build", "app-build", json!([{"name": "Src"}]), json!([{"name": "Site"}]), 1)]},
            {"name": "Check", "actions": [build("Gate", "Test", "app-check", json!([{"name": "Src"}]), json!([]), 1)]},
            {"name": "Approve", "actions": [{"name": "Release",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "runOrder": 1}]},
            {"name": "Deploy", "actions": [
                build("Warmup", "Test", "app-slow", json!([{"name": "Src"}]), json!([]), 1),
                {"name": "Site",
                 "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                 "runOrder": 2,
                 "configuration": {"BucketName": "site", "Extract": "true"},
                 "inputArtifacts": [{"name": "Site"}]}]}
        ]
    })
}

/// The same pipeline with an action reading an artifact nobody produces.
pub(crate) fn invalid_pipeline() -> Value {
    let mut p = pipeline();
    p["name"] = json!("broken");
    p["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nowhere"}]);
    p
}

pub(crate) fn git(repo: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn setup(home: &Path) {
    let repo = home.join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    let flag = home.join("pass");
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && echo site > out/index.html\nartifacts:\n  files: ['**/*']\n  base-directory: out\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("check.yml"),
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f {}\n",
            flag.display()
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("slow.yml"),
        // Four seconds of output, coloured and with markup in it, for the console's log view.
        "version: 0.2\nphases:\n  build:\n    commands:\n      - for i in 1 2 3 4; do printf '\\033[32mtick %s\\033[0m <script>window.__xss=3</script>\\n' \"$i\"; sleep 1; done\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    std::fs::write(
        home.join("baton.toml"),
        "[projects]\napp-check = \"check.yml\"\napp-slow = \"slow.yml\"\n",
    )
    .unwrap();
    let input = json!({"pipeline": pipeline(), "tags": [{"key": "team", "value": "release"}]});
    std::fs::write(home.join("pipeline.json"), serde_json::to_string_pretty(&input).unwrap())
        .unwrap();
    std::fs::write(home.join("invalid.json"), json!({"pipeline": invalid_pipeline()}).to_string())
        .unwrap();
}

/// The folder of the test emulators' virtualenv (where `scripts/emulators.sh install` puts it).
pub(crate) fn venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    std::env::var_os("EMU_DIR").map_or_else(|| root.join("target/emu"), PathBuf::from).join("venv")
}

pub(crate) fn tool(env_var: &str, name: &str) -> PathBuf {
    let path =
        std::env::var_os(env_var).map_or_else(|| venv().join("bin").join(name), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/emulators.sh install` (or set {env_var})",
        path.display()
    );
    path
}

/// Waits until `f` gives something, for at most 90 seconds.
pub(crate) fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

// ---- the AWS CLI ------------------------------------------------------------------------------

pub(crate) struct Aws<'a> {
    pub(crate) server: &'a Server,
    pub(crate) cli: PathBuf,
}

impl Aws<'_> {
    pub(crate) fn command(&self, args: &[&str]) -> Output {
        let home = self.server.home.path();
        Command::new(&self.cli)
            .arg("codepipeline")
            .args(args)
            .args(["--endpoint-url", &self.server.url, "--output", "json"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_PAGER", "")
            .current_dir(home)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; its JSON output (`null` when it prints nothing).
    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        let o = self.command(args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "aws {args:?} failed: {}{out}",
            String::from_utf8_lossy(&o.stderr)
        );
        if out.trim().is_empty() { Value::Null } else { serde_json::from_str(&out).unwrap() }
    }

    /// Runs a command that must fail; the exception's name and the whole message.
    pub(crate) fn err(&self, args: &[&str]) -> (String, String) {
        let o = self.command(args);
        let text = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(
            !o.status.success(),
            "aws {args:?} succeeded: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let code = text
            .split_once("An error occurred (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(code, _)| code.to_string())
            .unwrap_or_else(|| panic!("aws {args:?}: no error code in {text}"));
        (code, text)
    }

    fn execution(&self, id: &str) -> Value {
        self.ok(&[
            "get-pipeline-execution",
            "--pipeline-name",
            "app",
            "--pipeline-execution-id",
            id,
        ])["pipelineExecution"]
            .clone()
    }

    fn wait_status(&self, id: &str, status: &str) -> Value {
        poll(&format!("execution {id} is {status}"), || {
            let e = self.execution(id);
            (e["status"] == status).then_some(e)
        })
    }

    fn state(&self) -> Value {
        self.ok(&["get-pipeline-state", "--name", "app"])
    }

    /// The approval token once `Approve/Release` waits in execution `id`.
    fn approval_token(&self, id: &str) -> String {
        poll("the approval waits", || {
            let state = self.state();
            let stage = stage(&state, "Approve");
            let latest = &stage["actionStates"][0]["latestExecution"];
            let waiting = stage["latestExecution"]["pipelineExecutionId"] == id
                && latest["status"] == "InProgress";
            waiting.then(|| latest["token"].as_str().unwrap().to_string())
        })
    }
}

pub(crate) fn stage<'v>(state: &'v Value, name: &str) -> &'v Value {
    state["stageStates"].as_array().unwrap().iter().find(|s| s["stageName"] == name).unwrap()
}

fn strip_version(mut p: Value) -> Value {
    p.as_object_mut().unwrap().remove("version");
    p
}

/// The scenario's pipeline as CodePipeline prints it back: the actions given without
/// artifacts show empty lists (as `get-pipeline`'s documented output does).
fn printed() -> Value {
    let mut p = pipeline();
    p["stages"][0]["actions"][0]["inputArtifacts"] = json!([]);
    p["stages"][3]["actions"][0]["inputArtifacts"] = json!([]);
    p["stages"][3]["actions"][0]["outputArtifacts"] = json!([]);
    p["stages"][4]["actions"][1]["outputArtifacts"] = json!([]);
    p
}

#[test]
fn the_aws_cli_runs_a_release_through_baton_serve() {
    let server = Server::start();
    let aws = Aws { server: &server, cli: tool("BATON_TEST_AWS_CLI", "aws") };
    let file = format!("file://{}", server.pipeline_file().display());
    let invalid = format!("file://{}", server.home.path().join("invalid.json").display());

    // Create from a file, read it back as given.
    let created = aws.ok(&["create-pipeline", "--cli-input-json", &file]);
    assert_eq!(created["pipeline"]["version"], 1);
    assert_eq!(created["tags"], json!([{"key": "team", "value": "release"}]));
    let got = aws.ok(&["get-pipeline", "--name", "app"]);
    assert_eq!(strip_version(got["pipeline"].clone()), printed());
    assert_eq!(got["metadata"]["pipelineArn"], "arn:aws:codepipeline:us-east-1:000000000000:app");
    let (code, _) = aws.err(&["create-pipeline", "--cli-input-json", &file]);
    assert_eq!(code, "PipelineNameInUseException");
    let (code, message) = aws.err(&["create-pipeline", "--cli-input-json", &invalid]);
    assert_eq!(code, "InvalidStructureException");
    assert!(
        message.contains("Build") && message.contains("Compile") && message.contains("Nowhere"),
        "{message}"
    );
    let listed = aws.ok(&["list-pipelines"]);
    assert_eq!(listed["pipelines"].as_array().unwrap().len(), 1);
    assert_eq!(listed["pipelines"][0]["name"], "app");
    let (code, _) = aws.err(&["get-pipeline", "--name", "nope"]);
    assert_eq!(code, "PipelineNotFoundException");

    // Start: the Check stage fails until the pass file exists; only it can be retried.
    let started = aws.ok(&[
        "start-pipeline-execution",
        "--name",
        "app",
        "--variables",
        "name=Greeting,value=hi",
    ]);
    let first = started["pipelineExecutionId"].as_str().unwrap().to_string();
    let failed = aws.wait_status(&first, "Failed");
    assert_eq!(stage(&aws.state(), "Check")["latestExecution"]["status"], "Failed");
    assert!(
        failed["variables"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "Greeting", "resolvedValue": "hi"}))
    );
    let retry = |stage: &str| {
        vec![
            "retry-stage-execution",
            "--pipeline-name",
            "app",
            "--stage-name",
            stage,
            "--pipeline-execution-id",
            &first,
            "--retry-mode",
            "FAILED_ACTIONS",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let args = retry("Build");
    let (code, _) = aws.err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, "StageNotRetryableException");
    let args = retry("Nope");
    let (code, _) = aws.err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, "StageNotFoundException");
    std::fs::write(server.pass_flag(), "").unwrap();
    let args = retry("Check");
    let retried = aws.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(retried["pipelineExecutionId"], first.as_str());

    // The approval: its token is in the state; a wrong one and a used one are refused.
    let token = aws.approval_token(&first);
    let approve = |token: &str| {
        vec![
            "put-approval-result",
            "--pipeline-name",
            "app",
            "--stage-name",
            "Approve",
            "--action-name",
            "Release",
            "--result",
            "summary=ship it,status=Approved",
            "--token",
            token,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let args = approve("11111111-2222-4333-8444-555555555555");
    let (code, _) = aws.err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, "InvalidApprovalTokenException");
    let args = approve(&token);
    let approved = aws.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(approved["approvedAt"].is_string() || approved["approvedAt"].is_number(), "{approved}");
    let (code, _) = aws.err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, "ApprovalAlreadyCompletedException");
    aws.wait_status(&first, "Succeeded");
    let site = std::fs::read_to_string(server.home.path().join("s3/site/index.html")).unwrap();
    assert_eq!(site.trim(), "site", "the site reached the bucket");

    // History and action executions.
    let history = aws.ok(&["list-pipeline-executions", "--pipeline-name", "app"]);
    let summaries = history["pipelineExecutionSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["status"], "Succeeded");
    assert_eq!(summaries[0]["trigger"]["triggerType"], "StartPipelineExecution");
    let in_deploy = aws.ok(&[
        "list-pipeline-executions",
        "--pipeline-name",
        "app",
        "--filter",
        "succeededInStage={stageName=Deploy}",
    ]);
    assert_eq!(in_deploy["pipelineExecutionSummaries"][0]["pipelineExecutionId"], first.as_str());
    let actions = aws.ok(&[
        "list-action-executions",
        "--pipeline-name",
        "app",
        "--filter",
        &format!("pipelineExecutionId={first}"),
    ]);
    let details = actions["actionExecutionDetails"].as_array().unwrap();
    assert_eq!(details.len(), 7, "every attempt of every action: the check ran twice");
    let checks: Vec<&Value> = details.iter().filter(|d| d["actionName"] == "Gate").collect();
    let statuses: Vec<&str> = checks.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["Succeeded", "Failed"], "the latest attempt first");
    let checkout = details.iter().find(|d| d["actionName"] == "Checkout").unwrap();
    assert_eq!(checkout["output"]["outputVariables"]["BranchName"], "main");
    assert_eq!(checkout["output"]["outputVariables"]["CommitId"].as_str().unwrap().len(), 40);
    let compile = details.iter().find(|d| d["actionName"] == "Compile").unwrap();
    assert_eq!(compile["input"]["resolvedConfiguration"]["ProjectName"], "app-build");
    assert_eq!(compile["status"], "Succeeded");
    let release = details.iter().find(|d| d["actionName"] == "Release").unwrap();
    assert_eq!(release["updatedBy"], "arn:aws:iam::000000000000:user/baton");

    // A held transition keeps the next execution out of Build until it is enabled again.
    aws.ok(&[
        "disable-stage-transition",
        "--pipeline-name",
        "app",
        "--stage-name",
        "Build",
        "--transition-type",
        "Inbound",
        "--reason",
        "code freeze",
    ]);
    let second = aws.ok(&[
        "start-pipeline-execution",
        "--name",
        "app",
        "--client-request-token",
        "release-2",
    ])["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let again = aws.ok(&[
        "start-pipeline-execution",
        "--name",
        "app",
        "--client-request-token",
        "release-2",
    ]);
    assert_eq!(again["pipelineExecutionId"], second.as_str(), "the same token starts nothing new");
    poll("the execution waits before Build", || {
        let state = aws.state();
        let build = stage(&state, "Build");
        (build["inboundExecution"]["pipelineExecutionId"] == second.as_str()).then(|| {
            assert_eq!(build["inboundTransitionState"]["enabled"], false);
            assert_eq!(build["inboundTransitionState"]["disabledReason"], "code freeze");
        })
    });
    let (code, _) = aws.err(&[
        "disable-stage-transition",
        "--pipeline-name",
        "app",
        "--stage-name",
        "Nope",
        "--transition-type",
        "Inbound",
        "--reason",
        "x",
    ]);
    assert_eq!(code, "StageNotFoundException");
    aws.ok(&[
        "enable-stage-transition",
        "--pipeline-name",
        "app",
        "--stage-name",
        "Build",
        "--transition-type",
        "Inbound",
    ]);
    aws.approval_token(&second);

    // Stop it at the approval, abandoning it; a second stop is refused.
    let stop = [
        "stop-pipeline-execution",
        "--pipeline-name",
        "app",
        "--pipeline-execution-id",
        &second,
        "--abandon",
        "--reason",
        "enough",
    ];
    aws.ok(&stop);
    let stopped = aws.wait_status(&second, "Stopped");
    assert_eq!(stopped["statusSummary"], "enough");
    let (code, _) = aws.err(&stop);
    assert_eq!(code, "PipelineExecutionNotStoppableException");
    let (code, _) = aws.err(&[
        "get-pipeline-execution",
        "--pipeline-name",
        "app",
        "--pipeline-execution-id",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert_eq!(code, "PipelineExecutionNotFoundException");
    let history =
        aws.ok(&["list-pipeline-executions", "--pipeline-name", "app", "--max-items", "1"]);
    assert_eq!(history["pipelineExecutionSummaries"][0]["pipelineExecutionId"], second.as_str());
    assert!(history["NextToken"].is_string(), "the CLI pages: {history}");

    // Update: version 2, tags kept; tags; action types; delete.
    let mut changed = pipeline();
    changed["variables"][0]["defaultValue"] = json!("bonjour");
    let update_file = server.home.path().join("update.json");
    std::fs::write(&update_file, json!({"pipeline": changed}).to_string()).unwrap();
    let updated = aws.ok(&[
        "update-pipeline",
        "--cli-input-json",
        &format!("file://{}", update_file.display()),
    ]);
    assert_eq!(updated["pipeline"]["version"], 2);
    assert_eq!(
        aws.ok(&["get-pipeline", "--name", "app"])["pipeline"]["variables"][0]["defaultValue"],
        "bonjour"
    );
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:app";
    aws.ok(&["tag-resource", "--resource-arn", arn, "--tags", "key=stage,value=prod"]);
    let tags = aws.ok(&["list-tags-for-resource", "--resource-arn", arn]);
    assert_eq!(
        tags["tags"],
        json!([{"key": "team", "value": "release"}, {"key": "stage", "value": "prod"}])
    );
    aws.ok(&["untag-resource", "--resource-arn", arn, "--tag-keys", "team"]);
    assert_eq!(
        aws.ok(&["list-tags-for-resource", "--resource-arn", arn])["tags"],
        json!([{"key": "stage", "value": "prod"}])
    );
    let (code, _) = aws.err(&[
        "list-tags-for-resource",
        "--resource-arn",
        "arn:aws:codepipeline:us-east-1:000000000000:nope",
    ]);
    assert_eq!(code, "ResourceNotFoundException");
    let types = aws.ok(&["list-action-types", "--action-owner-filter", "AWS"]);
    assert!(
        types["actionTypes"].as_array().unwrap().iter().any(|t| t["id"]["provider"] == "Manual")
    );
    aws.ok(&["delete-pipeline", "--name", "app"]);
    let (code, _) = aws.err(&["get-pipeline", "--name", "app"]);
    assert_eq!(code, "PipelineNotFoundException");
    assert_eq!(aws.ok(&["list-pipelines"])["pipelines"], json!([]));
}

// ---- boto3 ------------------------------------------------------------------------------------

/// Runs the boto3 script `name` (in `tests/cli/`) against `server` with its credentials; what
/// it printed, once it passed.
pub(crate) fn run_boto3(server: &Server, name: &str) -> String {
    let python = tool("BATON_TEST_PYTHON", "python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli").join(name);
    let o = Command::new(python)
        .arg(script)
        .arg(&server.url)
        .arg(server.home.path())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", server.home.path().join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", server.home.path().join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let out =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{name} failed:\n{out}");
    // Every answer was checked against botocore's model of its output.
    assert!(out.contains("answered as botocore's model says"), "{out}");
    println!("{}", out.lines().find(|l| l.starts_with("shapes:")).unwrap_or_default());
    out
}

#[test]
fn boto3_runs_the_same_release() {
    let server = Server::start();
    let out = run_boto3(&server, "api_boto3.py");
    assert!(out.contains("boto3 scenario passed"), "{out}");
}

// ---- raw HTTP ---------------------------------------------------------------------------------

/// Runs one of the headless-Chromium scripts beside these tests with `args` and a fresh
/// browser profile (the script's last argument); fails the test, with what it printed, unless
/// every check in it held.
pub(crate) fn run_browser(script: &str, args: &[&std::ffi::OsStr]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli").join(script);
    let profile = tempfile::tempdir().unwrap();
    let browser = Command::new(tool("BATON_TEST_PYTHON", "python"))
        .arg(path)
        .args(args)
        .arg(profile.path())
        .output()
        .unwrap();
    assert!(
        browser.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&browser.stdout),
        String::from_utf8_lossy(&browser.stderr)
    );
}

/// One API call, signed with the default credentials; its answer, which must be a success.
pub(crate) fn call(server: &Server, operation: &str, body: &Value) -> Value {
    let bytes = body.to_string().into_bytes();
    let (status, reply) =
        http(server, &signed(server, operation, &bytes, ACCESS_KEY, SECRET_KEY), &bytes);
    assert_eq!(status, 200, "{operation}: {reply}");
    reply
}

/// One HTTP/1.1 request to `addr` (host:port) with extra `headers` ("name: value"): the status,
/// the head (lowercased) and the body.
pub(crate) fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

/// Sends one HTTP/1.1 request to `/`; the status and the JSON body.
pub(crate) fn http(server: &Server, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    post(server, "/", headers, body)
}

/// POSTs `body` to `path`; the status and the JSON body.
pub(crate) fn post(
    server: &Server,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Value) {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("POST {path} HTTP/1.1\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Headers of a call to `operation`, signed with `secret` for `access_key`.
pub(crate) fn signed(
    server: &Server,
    operation: &str,
    body: &[u8],
    access_key: &str,
    secret: &str,
) -> Vec<(String, String)> {
    use baton::api::sigv4;
    let host = server.url.split_once("://").map_or(server.url.as_str(), |(_, h)| h).to_string();
    let mut headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amz-target".to_string(), format!("CodePipeline_20150709.{operation}")),
    ];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let request = sigv4::Signable { method: "POST", path: "/", query: "", headers: &headers, body };
    let key = sigv4::SigningKey {
        access_key,
        secret_key: secret,
        region: REGION,
        service: "codepipeline",
    };
    let (date, authorization) = sigv4::sign(&request, &key, now);
    headers.push(("x-amz-date".into(), date));
    headers.push(("authorization".into(), authorization));
    headers
}

#[test]
fn raw_requests_get_the_protocols_errors() {
    let server = Server::start();
    let body = b"{}";

    let good = signed(&server, "ListPipelines", body, ACCESS_KEY, SECRET_KEY);
    let (status, reply) = http(&server, &good, body);
    assert_eq!((status, &reply), (200, &json!({"pipelines": []})));

    let unsigned: Vec<(String, String)> =
        good.iter().filter(|(n, _)| n != "authorization").cloned().collect();
    let (status, reply) = http(&server, &unsigned, body);
    assert_eq!(
        (status, reply["__type"].as_str()),
        (403, Some("MissingAuthenticationTokenException"))
    );

    let wrong = signed(&server, "ListPipelines", body, ACCESS_KEY, "not-the-secret");
    let (status, reply) = http(&server, &wrong, body);
    assert_eq!((status, reply["__type"].as_str()), (403, Some("InvalidSignatureException")));
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated does not match")
    );

    let stranger = signed(&server, "ListPipelines", body, "AKIASOMEONEELSE", SECRET_KEY);
    let (status, reply) = http(&server, &stranger, body);
    assert_eq!((status, reply["__type"].as_str()), (403, Some("UnrecognizedClientException")));

    // A body changed after signing no longer matches.
    let (status, reply) = http(&server, &good, br#"{"maxResults": 5}"#);
    assert_eq!((status, reply["__type"].as_str()), (403, Some("InvalidSignatureException")));

    let unknown = signed(&server, "LaunchRockets", body, ACCESS_KEY, SECRET_KEY);
    let (status, reply) = http(&server, &unknown, body);
    assert_eq!((status, reply["__type"].as_str()), (400, Some("UnknownOperationException")));

    let not_json = b"name=app";
    let headers = signed(&server, "GetPipeline", not_json, ACCESS_KEY, SECRET_KEY);
    let (status, reply) = http(&server, &headers, not_json);
    assert_eq!((status, reply["__type"].as_str()), (400, Some("SerializationException")));
}

/// The README's table of CodePipeline's operations lists exactly the operations of botocore's
/// model, and says "served" for exactly those the control API answers.
#[test]
fn the_readme_lists_every_operation_of_codepipeline_with_its_state() {
    let python = tool("BATON_TEST_PYTHON", "python");
    let model = Command::new(python)
        .args([
            "-c",
            "import botocore.session, json; s = botocore.session.get_session(); \
             print(json.dumps(sorted(s.get_service_model('codepipeline').operation_names)))",
        ])
        .output()
        .unwrap();
    assert!(model.status.success(), "{}", String::from_utf8_lossy(&model.stderr));
    let operations: Vec<String> = serde_json::from_slice(&model.stdout).unwrap();
    assert_eq!(operations.len(), 44, "{operations:?}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme.split("<!-- operations:").nth(1).expect("the README's operations table");
    let rows: Vec<(String, String, String)> = table
        .lines()
        .skip_while(|l| !l.starts_with("| operation"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_owned(), cells[2].to_owned(), cells[3].to_owned())
        })
        .collect();
    let listed: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(listed, operations.iter().map(String::as_str).collect::<Vec<_>>());
    for (op, local, aws) in &rows {
        let served = baton::api::OPERATIONS.contains(&op.as_str());
        let said = |cell: &str| cell == "served";
        assert_eq!((said(local), said(aws)), (served, served), "{op}: {local} / {aws}");
    }
}
