//! Custom action types run by an external job worker, through CodePipeline's job protocol on
//! `baton serve`: the worker is written with boto3, as the Jenkins plugin and in-house pollers
//! are, and reads and writes the artifacts with the job's own S3 credentials.

use super::api::{ACCESS_KEY, SECRET_KEY, Server, run_boto3};
use super::remote::baton_with;

#[test]
fn a_boto3_job_worker_runs_a_custom_action() {
    let server = Server::start();
    let out = run_boto3(&server, "job_worker_boto3.py");
    assert!(out.contains("job worker scenario passed"), "{out}");
}

/// A partner's action (owner `ThirdParty`): `baton partner register` gives the pair a partner
/// is onboarded with, the partner's boto3 worker takes its jobs with the third-party operations,
/// and once the type is deregistered its pipeline is refused at start, saying what to do.
#[test]
fn a_partner_worker_takes_its_jobs_with_its_client_token() {
    let server = Server::start();
    let credentials = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];
    let home = server.home.path();
    let register = [
        "partner",
        "register",
        "Test/BatonPartner/1",
        "--inputs",
        "1",
        "--outputs",
        "0..1",
        "--property",
        "Suite",
        "--execution-url",
        "https://partner.example/{Config:Suite}/{ExternalExecutionId}",
    ];
    let o = baton_with(home, &server.url, &credentials, &register);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let field = |name: &str| {
        let line = out.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_default();
        line.split_whitespace().nth(1).unwrap_or_default().to_owned()
    };
    let (client_id, client_token) = (field("clientId"), field("clientToken"));
    assert_eq!(client_id.len(), 36, "{out}");
    assert!(client_token.len() >= 32, "{out}");
    let pair = serde_json::json!({"clientId": client_id, "clientToken": client_token});
    std::fs::write(home.join("partner.json"), pair.to_string()).unwrap();

    let out = run_boto3(&server, "partner_boto3.py");
    assert!(out.contains("partner scenario passed"), "{out}");

    let o = baton_with(
        home,
        &server.url,
        &credentials,
        &["partner", "deregister", "Test/BatonPartner/1"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = baton_with(home, &server.url, &credentials, &["start", "partnered"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Test/ThirdParty/BatonPartner/1") && err.contains("baton partner register"),
        "{err}"
    );
}
