//! The stock AWS CLI and boto3, signing for `codepipeline` as they always do, against the
//! deployment's API function (its URL with IAM auth, on moto with IAM enforced) through
//! `baton --endpoint URL proxy`, which signs each call again for `lambda` with the caller's own
//! keys: they create, start and read a pipeline; a principal IAM does not let in is refused.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton_e2e::scenario::{Release, s3_client};
use baton_e2e::stack::{AccountKeys, HOME};
use baton_e2e::{FaultPlan, Harness};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::assert_no_call_refused;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_aws_cli_and_boto3_reach_the_api_function_through_baton_proxy() {
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "cli");
    release.prepare(&h.stack, &release.project).await.unwrap();
    let s3 = s3_client(&h.stack.sdk(HOME).await);
    let put = s3.put_object().bucket(&release.source_bucket).key(&release.source_key);
    put.body(crate::jobs::zipped().into()).send().await.unwrap();
    h.enforce().await.unwrap();
    let user = h.api_user("arn:aws:sts::111111111111:assumed-role/release-engineer/cli-e2e");
    let user = user.await.unwrap();
    let home = baton_e2e::workspace().join("target/e2e").join(&h.stack.name).join("cli-home");
    std::fs::create_dir_all(&home).unwrap();

    let (_proxy, through) = proxy(user.url(), &h.stack.keys).await;
    let pipeline = format!("{}-cli", release.pipeline);
    let store = &h.stack.buckets[HOME];
    let declaration = release.upload_then_approve(&h.stack, &pipeline, store, false);
    let input = home.join("pipeline.json");
    std::fs::write(&input, declaration.to_string()).unwrap();
    let cli_input = format!("file://{}", input.display());
    let keys = &h.stack.keys;
    let created = aws(&through, keys, &home, &["create-pipeline", "--cli-input-json", &cli_input])
        .await
        .unwrap();
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["pipeline"]["version"], 1, "{created}");
    let started = aws(&through, keys, &home, &["start-pipeline-execution", "--name", &pipeline])
        .await
        .unwrap();
    let started: Value = serde_json::from_str(&started).unwrap();
    let execution = started["pipelineExecutionId"].as_str().unwrap().to_owned();

    // boto3 reads what the AWS CLI made, and waits for the approval the execution reaches.
    let script = r#"
import sys, time, boto3
cp = boto3.client("codepipeline", endpoint_url=sys.argv[1])
name, execution = sys.argv[2], sys.argv[3]
assert cp.get_pipeline(name=name)["pipeline"]["stages"][1]["name"] == "Approve"
for _ in range(300):
    state = cp.get_pipeline_state(name=name)
    approve = state["stageStates"][1]
    if approve.get("latestExecution", {}).get("pipelineExecutionId") == execution:
        print(approve["actionStates"][0]["latestExecution"]["status"])
        break
    time.sleep(0.1)
else:
    sys.exit(f"the execution never reached the approval: {state}")
"#;
    let python = venv().join("bin/python");
    let read = run(&python, keys, &home, &["-c", script, &through, &pipeline, &execution]).await;
    assert_eq!(read.unwrap().trim(), "InProgress", "boto3 sees the approval waiting");

    // A principal the function URL's IAM does not let in: refused there, not by the proxy.
    let stranger = AccountKeys {
        access_key: "AKIAE2ESTRANGER00000".into(),
        secret_key: "a-secret-iam-does-not-know".into(),
        session_token: String::new(),
    };
    let (_refused, refused_at) = proxy(user.url(), &stranger).await;
    let denied = aws(&refused_at, &stranger, &home, &["list-pipelines"]).await;
    let denied = denied.expect_err("a principal IAM does not know got in");
    assert!(denied.contains("403") || denied.contains("Forbidden"), "{denied}");
    assert_no_call_refused(&h);
}

fn venv() -> PathBuf {
    let root = baton_e2e::workspace();
    std::env::var_os("EMU_DIR").map_or_else(|| root.join("target/emu"), PathBuf::from).join("venv")
}

/// `baton --endpoint URL proxy` signing with `keys`; the process and the URL it listens on.
async fn proxy(endpoint: &str, keys: &AccountKeys) -> (tokio::process::Child, String) {
    let root = baton_e2e::workspace();
    let baton = baton_e2e::runtime::binary(&root, "baton");
    let baton = if baton.is_file() { baton } else { root.join("target/debug/baton") };
    let mut child = tokio::process::Command::new(baton)
        .args(["--endpoint", endpoint, "proxy", "--port", "0", "--region", HOME])
        .env("AWS_ACCESS_KEY_ID", &keys.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_key)
        .env("AWS_SESSION_TOKEN", &keys.session_token)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("BATON_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line =
                lines.next_line().await.unwrap().expect("the proxy stopped before listening");
            if let Some(url) = line.strip_prefix("Listening on ") {
                return url.trim().to_owned();
            }
        }
    });
    let url = url.await.expect("the proxy did not listen within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// `aws codepipeline ARGS` against `endpoint` with `keys`: its output, or its error output.
async fn aws(
    endpoint: &str,
    keys: &AccountKeys,
    home: &Path,
    args: &[&str],
) -> Result<String, String> {
    let mut all = vec!["codepipeline"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--endpoint-url", endpoint, "--output", "json"]);
    run(&venv().join("bin/aws"), keys, home, &all).await
}

/// `program ARGS` with only `keys` as AWS credentials, in `home`.
async fn run(
    program: &Path,
    keys: &AccountKeys,
    home: &Path,
    args: &[&str],
) -> Result<String, String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", &keys.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_key)
        .env("AWS_DEFAULT_REGION", HOME)
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "");
    if !keys.session_token.is_empty() {
        command.env("AWS_SESSION_TOKEN", &keys.session_token);
    }
    let out = command.output().await.map_err(|e| format!("{}: {e}", program.display()))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match out.status.success() {
        true => Ok(text(&out.stdout)),
        false => Err(format!("{}{}", text(&out.stdout), text(&out.stderr))),
    }
}
