//! Custom action types run by an external job worker, through CodePipeline's job protocol on
//! `baton serve`: the worker is written with boto3, as the Jenkins plugin and in-house pollers
//! are, and reads and writes the artifacts with the job's own S3 credentials.

use std::path::Path;
use std::process::Command;

use super::api::{ACCESS_KEY, SECRET_KEY, Server, tool};

#[test]
fn a_boto3_job_worker_runs_a_custom_action() {
    let server = Server::start();
    let python = tool("BATON_TEST_PYTHON", "python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/job_worker_boto3.py");
    let o = Command::new(python)
        .arg(script)
        .arg(&server.url)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
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
    assert!(o.status.success(), "the job worker scenario failed:\n{out}");
    assert!(out.contains("job worker scenario passed"), "{out}");
    assert!(out.contains("answered as botocore's model says"), "{out}");
    println!("{}", out.lines().find(|l| l.starts_with("shapes:")).unwrap_or_default());
}
