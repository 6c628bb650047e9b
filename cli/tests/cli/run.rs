//! `baton run` and the commands around it, as a person uses them: separate processes on one
//! Baton home, including a `kill -9` in the middle of an execution.

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn baton(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_baton"));
    c.arg("--home").arg(home).env_remove("BATON_HOME").env("CI", "true");
    c
}

fn output(mut c: Command) -> Output {
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
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
    assert!(ok);
}

/// Source -> Build (counts its runs) -> Test (sleeps, then counts) -> Approval -> Deploy.
fn setup(home: &Path, test_sleep: u32) -> std::path::PathBuf {
    let repo = home.join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    let counts = home.join("counts");
    std::fs::create_dir_all(&counts).unwrap();
    let c = counts.display();
    std::fs::write(
        repo.join("buildspec.yml"),
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo run >> {c}/build\n      - mkdir -p out && echo site > out/index.html\nartifacts:\n  files: ['**/*']\n  base-directory: out\n"
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("test.yml"),
        format!("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep {test_sleep}\n      - echo run >> {c}/test\n"),
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    std::fs::write(home.join("baton.toml"), "[projects]\napp-test = \"test.yml\"\n").unwrap();
    let pipeline = home.join("pipeline.json");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    pipeline
}

const PIPELINE: &str = r#"{"name": "app", "roleArn": "arn:aws:iam::111111111111:role/p",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [{"name": "Compile",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Site"}]}]},
    {"name": "Test", "actions": [{"name": "Slow",
      "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "app-test"}, "inputArtifacts": [{"name": "Src"}]}]},
    {"name": "Approve", "actions": [{"name": "Gate",
      "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
    {"name": "Deploy", "actions": [{"name": "Site",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Site"}]}]}
  ]}"#;

/// Every file under `dir`, at any depth.
pub(crate) fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `baton status` until the approval waits; when it never does, says what the process
/// that should have got there printed.
fn wait_for_the_approval(home: &Path, runner: &mut Child) {
    let start = Instant::now();
    loop {
        let status = text(&output({
            let mut c = baton(home);
            c.args(["status", "app"]);
            c
        }));
        if status.contains("approval Approve/Gate is waiting") {
            return;
        }
        let ended = runner.try_wait().unwrap().is_some();
        if ended || start.elapsed() > Duration::from_secs(60) {
            let _ = runner.kill();
            let mut printed = String::new();
            for pipe in [
                runner.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read>),
                runner.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read>),
            ]
            .into_iter()
            .flatten()
            {
                let mut pipe = pipe;
                let _ = pipe.read_to_string(&mut printed);
            }
            panic!(
                "the approval never waited (runner ended: {ended}); status:\n{status}\nrunner printed:\n{printed}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_run(home: &Path, pipeline: &Path) -> Child {
    let mut c = baton(home);
    c.arg("run").arg(pipeline).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn an_approval_from_another_process_lets_the_run_finish() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = setup(home.path(), 0);
    let mut run = spawn_run(home.path(), &pipeline);
    wait_for_the_approval(home.path(), &mut run);
    let mut approve = baton(home.path());
    approve.args(["approve", "app", "Approve", "Gate", "--summary", "looks good"]);
    let o = output(approve);
    assert!(o.status.success(), "{}", text(&o));
    let o = run.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Succeeded"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(home.path().join("s3/site/index.html")).unwrap().trim(),
        "site"
    );
    // A second approval finds nothing waiting: one clear sentence, no panic.
    let mut again = baton(home.path());
    again.args(["approve", "app", "Approve", "Gate"]);
    let o = output(again);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).starts_with("baton: no execution of \"app\" is waiting for approval"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_run_killed_midway_resumes_without_running_finished_actions_again() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = setup(home.path(), 3);
    let mut run = spawn_run(home.path(), &pipeline);
    let counts = home.path().join("counts");
    // Kill -9 while the slow test runs: the build has finished, the test has not.
    wait_until("the test action runs", || {
        lines(&counts.join("build")) == 1
            && std::fs::read_dir(home.path().join("logs/app")).is_ok_and(|mut d| {
                d.next().is_some_and(|e| e.is_ok_and(|e| e.path().join("Test.Slow.1.log").exists()))
            })
    });
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(lines(&counts.join("test")), 0, "the test was interrupted");

    // Approve in advance is impossible; resume, approve when asked, and finish.
    let mut resume = baton(home.path());
    resume.args(["wait", "app"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut resumed = resume.spawn().unwrap();
    wait_for_the_approval(home.path(), &mut resumed);
    let mut approve = baton(home.path());
    approve.args(["approve", "app", "Approve", "Gate"]);
    assert!(output(approve).status.success());
    let o = resumed.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&counts.join("build")), 1, "a finished action ran again");
    assert_eq!(
        lines(&counts.join("test")),
        1,
        "the interrupted action did not finish exactly once"
    );
}

#[test]
fn commands_on_unknown_things_fail_with_one_sentence() {
    let home = tempfile::tempdir().unwrap();
    for args in [vec!["status", "nope"], vec!["start", "nope"], vec!["retry", "nope", "Build"]] {
        let mut c = baton(home.path());
        c.args(&args);
        let o = output(c);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let t = text(&o);
        assert_eq!(t.trim().lines().count(), 1, "{t}");
        assert!(t.starts_with("baton: there is no pipeline named \"nope\""), "{t}");
        assert!(t.trim_end().ends_with(": there are none"), "{t}");
    }
    // A name that is nearly right: the nearest that exist are listed.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/release-pipeline.json");
    let mut c = baton(home.path());
    c.args(["simulate", "--fail", "Biuld/Compile", example]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert_eq!(t.trim().lines().count(), 1, "{t}");
    assert!(
        t.contains("no action STAGE/ACTION like that: the nearest are \"Build/Compile\""),
        "{t}"
    );
}

#[test]
fn a_pipeline_updated_during_a_run_cancels_the_old_execution_and_nothing_breaks() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = setup(home.path(), 0);
    let mut run = spawn_run(home.path(), &pipeline);
    wait_for_the_approval(home.path(), &mut run);
    run.kill().unwrap();
    run.wait().unwrap();

    // Version 2 has one more stage before the approval.
    let extra = r#"{"name": "Extra", "actions": [{"name": "Hold",
      "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
    {"name": "Approve""#;
    let v2 = home.path().join("pipeline-v2.json");
    std::fs::write(&v2, PIPELINE.replacen(r#"{"name": "Approve""#, extra, 1)).unwrap();
    let mut updated = spawn_run(home.path(), &v2);
    let history = || {
        text(&output({
            let mut c = baton(home.path());
            c.args(["history", "app"]);
            c
        }))
    };
    wait_until("the old execution is cancelled", || history().contains("Cancelled"));
    let old =
        history().lines().find(|l| l.contains("Cancelled")).map(|l| l[..8].to_owned()).unwrap();
    assert!(history().contains("declaration was updated"), "{}", history());

    // Its status says which version it ran instead of reading it through the new stages.
    let mut status = baton(home.path());
    status.args(["status", "app", &old]);
    let o = output(status);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ran version 1"), "{}", text(&o));
    // Its approval is gone: one sentence, no panic.
    let mut approve = baton(home.path());
    approve.args(["approve", "app", "Approve", "Gate"]);
    let o = output(approve);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).starts_with("baton: no execution of \"app\" is waiting"), "{}", text(&o));
    updated.kill().unwrap();
    updated.wait().unwrap();
}

#[test]
fn a_relative_home_runs_like_an_absolute_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let pipeline = setup(&home, 0);
    // Tools such as git run in other folders: a path relative to here must still hold.
    let mut c = Command::new(env!("CARGO_BIN_EXE_baton"));
    c.current_dir(dir.path())
        .args(["--home", "h", "run"])
        .arg(&pipeline)
        .env_remove("BATON_HOME")
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut run = c.spawn().unwrap();
    wait_for_the_approval(&home, &mut run);
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn completion_scripts_cover_every_command_for_each_shell() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let mut c = baton(home.path());
        c.args(["completions", shell]);
        let o = output(c);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&o.stdout).to_string();
        for command in ["run", "approve", "disable-transition", "serve", "completions"] {
            assert!(script.contains(command), "{shell} completes no {command}");
        }
    }
}

/// `baton logs --follow` prints what the actions print as they print it while another process
/// runs the home: the whole execution's lines, each after its action's name, until the
/// execution ends; or one action's own lines until it ends.
#[test]
fn logs_follow_an_execution_that_another_process_runs() {
    use super::api::{Server, call, pipeline, poll, stage};
    use serde_json::json;
    let server = Server::start();
    std::fs::write(server.pass_flag(), "").unwrap();
    call(&server, "CreatePipeline", &json!({"pipeline": pipeline()}));
    let started = call(&server, "StartPipelineExecution", &json!({"name": "app"}));
    let id = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    let follow = |args: &[&str]| {
        baton(server.home.path())
            .args(["logs", "app", &id])
            .args(args)
            .arg("--follow")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let whole = follow(&[]);
    let one = follow(&["Deploy", "Warmup"]);
    let token = poll("the approval waits", || {
        let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
        let latest = &stage(&state, "Approve")["actionStates"][0]["latestExecution"];
        latest["token"].as_str().filter(|_| latest["status"] == "InProgress").map(str::to_owned)
    });
    call(
        &server,
        "PutApprovalResult",
        &json!({"pipelineName": "app", "stageName": "Approve", "actionName": "Release",
            "token": token, "result": {"summary": "ok", "status": "Approved"}}),
    );
    let ended = |child: Child, what: &str| {
        let start = Instant::now();
        let mut child = child;
        while child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(90), "{what} never ended");
            std::thread::sleep(Duration::from_millis(100));
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Live: the action's first line arrives while the action still runs (it prints for 4 s).
    let mut one = one;
    let mut lines = std::io::BufReader::new(one.stdout.take().unwrap()).lines();
    let mut early = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let first_tick = line.contains("tick 1") && !line.contains("Running");
        early.push(line);
        if first_tick {
            break;
        }
    }
    let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
    let warmup = &stage(&state, "Deploy")["actionStates"][0]["latestExecution"]["status"];
    assert_eq!(warmup, "InProgress", "the first line came only once the action ended: {early:?}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let one_out = early.into_iter().chain(rest).collect::<Vec<_>>().join("\n");
    let whole = ended(whole, "following the execution");
    let ticks: Vec<&str> = whole
        .lines()
        .filter(|l| {
            l.starts_with("Deploy/Warmup | ") && l.contains("tick") && !l.contains("Running")
        })
        .collect();
    assert_eq!(ticks.len(), 4, "{whole}");
    assert!(ticks[0].contains("tick 1") && ticks[3].contains("tick 4"), "{whole}");
    assert!(whole.lines().any(|l| l.starts_with("Build/Compile | ")), "{whole}");
    assert!(one.wait().unwrap().success(), "following one action failed");
    let one = one_out;
    let own: Vec<&str> =
        one.lines().filter(|l| l.contains("tick") && !l.contains("Running")).collect();
    assert_eq!(own.len(), 4, "{one}");
    assert!(!one.contains(" | "), "one action's lines carry no name: {one}");
    let status = call(
        &server,
        "GetPipelineExecution",
        &json!({"pipelineName": "app", "pipelineExecutionId": id}),
    );
    assert_eq!(status["pipelineExecution"]["status"], "Succeeded", "{status}");
    // A stage alone: every action of that stage, and only those.
    let o = baton(server.home.path()).args(["logs", "app", &id, "Deploy"]).output().unwrap();
    let deploy = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let headers: Vec<&str> = deploy.lines().filter(|l| l.starts_with("==> ")).collect();
    assert!(
        !headers.is_empty() && headers.iter().all(|h| h.starts_with("==> Deploy/")),
        "{deploy}"
    );
    assert!(deploy.contains("==> Deploy/Warmup"), "{deploy}");
    let o = baton(server.home.path()).args(["logs", "app", &id, "Deploi"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no stage \"Deploi\": the nearest are \"Deploy\""), "{err}");
    // A name that is not there is one sentence naming the nearest that are.
    for (args, said) in [
        (["Deploi", "Warmup"], "no stage \"Deploi\": the nearest are \"Deploy\""),
        (["Deploy", "Warmpu"], "no action \"Warmpu\": the nearest are \"Warmup\""),
    ] {
        let o = baton(server.home.path())
            .args(["logs", "app", &id])
            .args(args)
            .arg("-f")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(said) && err.trim_end().lines().count() == 1, "{err}");
    }
}
