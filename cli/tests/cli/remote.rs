//! `baton --endpoint URL`: the `baton` commands driving a `baton serve` through its control
//! API, from a different (empty) home: a release with a failing stage retried, a transition held
//! and let go, an approval by the waiting token, a stop; the API's errors as one sentence; and
//! the commands that need a local home refusing.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::api::{ACCESS_KEY, SECRET_KEY, Server, call, poll, stage};

/// `baton --home HOME --endpoint URL ARGS...`, with `env` set and no ambient AWS settings.
pub(crate) fn baton_with(
    home: &Path,
    endpoint: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command.arg("--home").arg(home).args(["--endpoint", endpoint]).args(args);
    for name in [
        "BATON_HOME",
        "BATON_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; its standard output.
fn ok(home: &Path, server: &Server, args: &[&str]) -> String {
    let o = baton_with(home, &server.url, &[], args);
    assert!(o.status.success(), "baton {args:?} failed: {}{}", stderr(&o), stdout(&o));
    stdout(&o)
}

/// Runs a command that must fail as CLI errors do (exit 2, one `baton: ` line); that line.
fn refused(o: &Output, what: &str) -> String {
    assert_eq!(o.status.code(), Some(2), "{what}: {}{}", stderr(o), stdout(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: not one sentence: {err}");
    assert!(err.starts_with("baton: "), "{what}: {err}");
    err.trim_end().to_owned()
}

fn execution_status(server: &Server, id: &str) -> Value {
    let e = call(
        server,
        "GetPipelineExecution",
        &json!({"pipelineName": "app", "pipelineExecutionId": id}),
    );
    e["pipelineExecution"]["status"].clone()
}

#[test]
fn the_baton_command_drives_a_remote_baton_through_its_api() {
    let server = Server::start();
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(server.pipeline_file()).unwrap()).unwrap();
    call(&server, "CreatePipeline", &input);
    // Nothing of the pipeline is here: every command must go through the API.
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let started = ok(home, &server, &["start", "app"]);
    let id = started
        .strip_prefix("Started execution ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no execution id in {started:?}"))
        .to_owned();
    assert!(started.contains("of pipeline \"app\""), "{started}");
    assert_eq!(execution_status(&server, &id), json!("InProgress"));

    // Check fails until the pass file exists; then a retry of the stage carries on.
    let failed = poll("Check fails", || {
        let out = ok(home, &server, &["status", "app"]);
        out.contains("Failed").then_some(out)
    });
    assert!(failed.contains(&format!("execution {}", &id[..8])), "{failed}");
    assert!(failed.lines().any(|l| l.contains("Check") && l.contains("Gate")), "{failed}");
    std::fs::write(server.pass_flag(), "").unwrap();
    // The transition is held before the retry, so the execution waits at Approve's door.
    let held = ok(home, &server, &["disable-transition", "app", "Approve", "--reason", "freeze"]);
    assert!(held.contains("disabled"), "{held}");
    let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
    assert_eq!(stage(&state, "Approve")["inboundTransitionState"]["enabled"], json!(false));
    let retried = ok(home, &server, &["retry", "app", "Check"]);
    assert!(retried.contains(&format!("Retrying stage Check of execution {}", &id[..8])));
    let waiting = poll("the execution waits for the transition", || {
        let out = ok(home, &server, &["status", "app"]);
        out.lines().any(|l| l.contains("Approve") && l.contains("Waiting")).then_some(out)
    });
    assert!(waiting.contains("transition into Approve disabled: freeze"), "{waiting}");
    ok(home, &server, &["enable-transition", "app", "Approve"]);

    let shown = poll("the approval waits", || {
        let out = ok(home, &server, &["status", "app"]);
        out.contains("approval Approve/Release is waiting; token ").then_some(out)
    });
    let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
    let token = stage(&state, "Approve")["actionStates"][0]["latestExecution"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown.contains(&format!("token {token}")), "{shown}");

    let approved =
        ok(home, &server, &["approve", "app", "Approve", "Release", "--summary", "ok from afar"]);
    assert!(approved.contains("Approved Approve/Release"), "{approved}");
    let history = poll("history shows the execution succeeded", || {
        let out = ok(home, &server, &["history", "app"]);
        out.lines()
            .next()
            .is_some_and(|l| l.starts_with(&id) && l.contains("Succeeded"))
            .then_some(out)
    });
    assert!(history.contains("StartPipelineExecution"), "{history}");
    let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
    let release = &stage(&state, "Approve")["actionStates"][0]["latestExecution"];
    assert_eq!(release["summary"], json!("ok from afar"), "{release}");

    // Nothing waits any more: the CLI says so rather than sending a stale token.
    let again = baton_with(home, &server.url, &[], &["approve", "app", "Approve", "Release"]);
    let again = refused(&again, "a second approval");
    assert!(again.contains("waiting for approval at Approve/Release"), "{again}");

    // A second execution, stopped by its short id while it waits for approval.
    let second = ok(home, &server, &["start", "app"]);
    let second = second.split_whitespace().nth(2).unwrap().to_owned();
    poll("the second execution waits for approval", || {
        let state = call(&server, "GetPipelineState", &json!({"name": "app"}));
        let latest = &stage(&state, "Approve")["actionStates"][0]["latestExecution"];
        (stage(&state, "Approve")["latestExecution"]["pipelineExecutionId"] == second.as_str()
            && latest["status"] == "InProgress")
            .then_some(())
    });
    let stopping = ok(home, &server, &["stop", "app", &second[..8], "--abandon"]);
    assert!(stopping.contains(&format!("Stopping execution {}", &second[..8])), "{stopping}");
    poll("the second execution stops", || {
        (execution_status(&server, &second) == "Stopped").then_some(())
    });

    assert!(
        std::fs::read_dir(home).unwrap().next().is_none(),
        "the local home was used: {:?}",
        std::fs::read_dir(home).unwrap().flatten().map(|e| e.path()).collect::<Vec<_>>()
    );
}

#[test]
fn api_errors_and_wrong_credentials_are_one_sentence() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let o = baton_with(home, &server.url, &[], &["approve", "nope", "Approve", "Release"]);
    let err = refused(&o, "approve on a missing pipeline");
    assert!(err.contains("(PipelineNotFoundException)"), "{err}");
    assert!(err.contains("'nope'") && err.ends_with(": there are none"), "{err}");
    // With pipelines there, the nearest names come with the refusal.
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(server.pipeline_file()).unwrap()).unwrap();
    call(&server, "CreatePipeline", &input);
    let o = baton_with(home, &server.url, &[], &["history", "apq"]);
    let err = refused(&o, "history of a misspelt pipeline");
    assert!(err.ends_with("(PipelineNotFoundException): the only one is \"app\""), "{err}");

    let wrong_secret = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", "wrong")];
    let o = baton_with(home, &server.url, &wrong_secret, &["history", "app"]);
    let err = refused(&o, "a wrong secret");
    assert!(err.ends_with("(InvalidSignatureException)"), "{err}");

    let unknown_key = [("AWS_ACCESS_KEY_ID", "stranger"), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];
    let o = baton_with(home, &server.url, &unknown_key, &["status", "app"]);
    let err = refused(&o, "an unknown access key");
    assert!(err.ends_with("(UnrecognizedClientException)"), "{err}");

    // The region is part of what is signed: another one is refused too.
    let o = baton_with(home, &server.url, &[("AWS_REGION", "eu-west-3")], &["history", "app"]);
    let err = refused(&o, "another region");
    assert!(err.ends_with("(InvalidSignatureException)"), "{err}");
}

#[test]
fn local_only_commands_and_other_schemes_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("pipeline.json");
    std::fs::write(&file, "{}").unwrap();
    let file = file.to_str().unwrap();
    let endpoint = "http://127.0.0.1:9";

    for args in [
        vec!["run", file],
        vec!["wait", "app"],
        vec!["logs", "app", "0123"],
        vec!["push", "app"],
        vec!["serve"],
        vec!["validate", file],
        vec!["simulate", file],
    ] {
        let o = baton_with(home.path(), endpoint, &[], &args);
        let err = refused(&o, &format!("{args:?}"));
        assert!(
            err.contains(&format!("`baton {}` works on a local Baton home only", args[0]))
                && err.contains("--endpoint"),
            "{err}"
        );
    }
    assert!(!home.path().join("baton.db").exists(), "a refused command opened the home");

    let o = baton_with(home.path(), "ftp://baton.example.com", &[], &["status", "app"]);
    let err = refused(&o, "an endpoint that is not http(s)");
    assert!(err.contains("http://host:port or https://host:port"), "{err}");

    // Nothing listens on port 9: the error names the endpoint.
    let o = baton_with(home.path(), endpoint, &[], &["history", "app"]);
    let err = refused(&o, "an unreachable endpoint");
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");
}
