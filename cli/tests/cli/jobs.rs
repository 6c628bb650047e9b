//! Custom action types run by an external job worker, through CodePipeline's job protocol on
//! `baton serve`: the worker is written with boto3, as the Jenkins plugin and in-house pollers
//! are, and reads and writes the artifacts with the job's own S3 credentials.

use super::api::{Server, run_boto3};

#[test]
fn a_boto3_job_worker_runs_a_custom_action() {
    let server = Server::start();
    let out = run_boto3(&server, "job_worker_boto3.py");
    assert!(out.contains("job worker scenario passed"), "{out}");
}
