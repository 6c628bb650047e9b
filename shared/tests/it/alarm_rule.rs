//! The `CloudWatchAlarm` rule on the embedded runtime with `[aws]`: the AWS SDK reads the alarm
//! through CloudWatch's own protocol (Smithy RPC v2 CBOR, which the pinned emulator does not
//! speak) from a loopback endpoint that plays CloudWatch with a few alarms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_core::engine::{ExecutionStatus, RuleStatus, StageStatus};
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};

use crate::embedded::{start_runtime_on_aws, start_with_variable, wait_for};
use crate::lambda_invoke::{read_request, response};

const PIPELINE: &str = r##"{"pipeline": {
  "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
  "artifactStore": {"type": "S3", "location": "artifacts"},
  "variables": [{"name": "Alarm", "defaultValue": "quiet"}],
  "stages": [
    {"name": "Source", "actions": [{"name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Deploy",
     "onSuccess": {"conditions": [{"result": "FAIL", "rules": [{"name": "Healthy",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
        "configuration": {"AlarmName": "#{variables.Alarm}", "WaitTime": "5"}}]}]},
     "actions": [{"name": "Ship",
      "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
      "commands": ["true"], "inputArtifacts": [{"name": "Src"}]}]}
  ]}}"##;

fn text(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    assert!(n < 256);
    if n < 24 {
        out.push(0x60 | n as u8);
    } else {
        out.extend_from_slice(&[0x78, n as u8]);
    }
    out.extend_from_slice(s.as_bytes());
}

/// `{"MetricAlarms": [{"AlarmName": name, "StateValue": state}], "CompositeAlarms": []}`, or no
/// alarm at all, in CBOR.
fn alarms(found: Option<(&str, &str)>) -> Vec<u8> {
    let mut out = vec![0xA2];
    text(&mut out, "MetricAlarms");
    match found {
        None => out.push(0x80),
        Some((name, state)) => {
            out.extend_from_slice(&[0x81, 0xA2]);
            text(&mut out, "AlarmName");
            text(&mut out, name);
            text(&mut out, "StateValue");
            text(&mut out, state);
        }
    }
    text(&mut out, "CompositeAlarms");
    out.push(0x80);
    out
}

/// CloudWatch with `site-errors` in ALARM, `quiet` OK, and `flapping` in ALARM on its first
/// look and OK after; every operation asked for is kept.
async fn cloudwatch() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let looks = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let kept = asked.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (asked, looks) = (asked.clone(), looks.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some((_, path, _, body)) = read_request(&mut read, &mut write).await {
                    asked.lock().unwrap().push(path.clone());
                    let named = |n: &str| body.windows(n.len()).any(|w| w == n.as_bytes());
                    let found = ["site-errors", "quiet", "flapping"].into_iter().find(|n| named(n));
                    let state = found.map(|name| {
                        let mut looks = looks.lock().unwrap();
                        let seen = looks.entry(name.to_owned()).or_default();
                        *seen += 1;
                        match name {
                            "site-errors" => "ALARM",
                            "flapping" if *seen == 1 => "ALARM",
                            _ => "OK",
                        }
                    });
                    let headers = [
                        ("content-type".to_owned(), "application/cbor".to_owned()),
                        ("smithy-protocol".to_owned(), "rpc-v2-cbor".to_owned()),
                    ];
                    let body = alarms(found.zip(state));
                    if write.write_all(&response(200, &headers, &body)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, kept)
}

async fn start(rt: &baton::embedded::Embedded, alarm: &str) -> String {
    start_with_variable(rt, "Alarm", alarm).await
}

#[tokio::test]
async fn an_alarm_rule_fails_the_stage_while_the_alarm_fires_and_waits_for_one_that_clears() {
    let (url, asked) = cloudwatch().await;
    let running = start_runtime_on_aws(&url, PIPELINE).await;
    let rt = &running.rt;

    let quiet = start(rt, "quiet").await;
    let done = wait_for(rt, &quiet, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{done:#?}");
    assert!(asked.lock().unwrap()[0].ends_with("/operation/DescribeAlarms"));

    let firing = start(rt, "site-errors").await;
    let wait = wait_for(rt, &firing, "waits for the alarm", |e| {
        e.stages[1].conditions.on_success.as_ref().is_some_and(|c| {
            c.rules[0].status == RuleStatus::InProgress && c.rules[0].summary.contains("ALARM")
        })
    })
    .await;
    assert_eq!(wait.status(), ExecutionStatus::InProgress, "the alarm may yet clear");

    // A flapping alarm is looked at again, clears, and the stage succeeds.
    let api = rt.control_api("us-east-1", baton::api::Credentials::new());
    let stop = json!({"pipelineName": "app", "pipelineExecutionId": firing, "abandon": true});
    api.call("StopPipelineExecution", stop.to_string().as_bytes(), "t").await;
    wait_for(rt, &firing, "stopped", |e| e.status().is_ended()).await;
    let flapping = start(rt, "flapping").await;
    let done = wait_for(rt, &flapping, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{done:#?}");
    let rule = &done.stages[1].conditions.on_success.as_ref().unwrap().rules[0];
    assert_eq!(rule.summary, "flapping is OK");
    assert!(rule.requests >= 2, "looked at again after the first ALARM");

    let gone = start(rt, "gone").await;
    let failed = wait_for(rt, &gone, "ended", |e| e.status().is_ended()).await;
    assert_eq!(failed.status(), ExecutionStatus::Failed);
    assert_eq!(failed.stages[1].status, Some(StageStatus::Failed));
    let summary = failed.status_summary.clone().unwrap_or_default();
    assert!(summary.contains("there is no CloudWatch alarm named gone"), "{summary}");
}
