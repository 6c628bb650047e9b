//! A loopback CodeDeploy that answers the two calls moto lacks, `ListDeploymentTargets` and
//! `BatchGetDeploymentTargets`, over CodeDeploy's own JSON 1.1 protocol, for one deployment
//! with `instances` targets of which `i-00003` failed its `ApplicationStart` hook. It records
//! each call's target and body so a test can check how the client paged.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use crate::aws_support::serve_on_loopback;

/// What the fake was asked, in order: `(operation, body)`.
pub(crate) type Calls = Arc<Mutex<Vec<(String, Value)>>>;

#[derive(Clone)]
struct Fake {
    deployment: String,
    instances: usize,
    calls: Calls,
}

/// Serves the fake on loopback; returns its endpoint and the calls it records.
pub(crate) async fn serve(deployment: &str, instances: usize) -> (String, Calls) {
    let calls = Calls::default();
    let fake = Fake { deployment: deployment.into(), instances, calls: calls.clone() };
    let app = Router::new().route("/", post(answer)).with_state(fake);
    (serve_on_loopback(app).await, calls)
}

/// Pages of 20 ids, as a service that pages would give them.
const PAGE: usize = 20;

async fn answer(State(fake): State<Fake>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let operation = target.strip_prefix("CodeDeploy_20141006.").unwrap_or(target).to_owned();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    fake.calls.lock().unwrap().push((operation.clone(), body.clone()));
    if body["deploymentId"] != fake.deployment.as_str() {
        let missing =
            json!({"__type": "DeploymentDoesNotExistException", "message": "no such deployment"});
        return (StatusCode::BAD_REQUEST, missing.to_string());
    }
    let reply = match operation.as_str() {
        "ListDeploymentTargets" => {
            let start: usize = body["nextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + PAGE).min(fake.instances);
            let ids: Vec<String> = (start..end).map(|n| format!("i-{n:05}")).collect();
            let next = (end < fake.instances).then(|| end.to_string());
            json!({"targetIds": ids, "nextToken": next})
        }
        "BatchGetDeploymentTargets" => {
            let ids = body["targetIds"].as_array().cloned().unwrap_or_default();
            if ids.len() > 25 {
                let refused = json!({"__type": "DeploymentTargetListSizeExceededException", "message": "at most 25"});
                return (StatusCode::BAD_REQUEST, refused.to_string());
            }
            let targets: Vec<Value> = ids.iter().filter_map(Value::as_str).map(instance).collect();
            json!({"deploymentTargets": targets})
        }
        other => {
            let unknown = json!({"__type": "UnknownOperationException", "message": other});
            return (StatusCode::BAD_REQUEST, unknown.to_string());
        }
    };
    (StatusCode::OK, reply.to_string())
}

/// An EC2 instance target: `i-00003` failed its start script, the rest succeeded.
fn instance(id: &str) -> Value {
    let failed = id == "i-00003";
    let status = if failed { "Failed" } else { "Succeeded" };
    let start = if failed {
        json!({"lifecycleEventName": "ApplicationStart", "status": "Failed",
            "startTime": 1_700_000_030.0, "endTime": 1_700_000_042.5,
            "diagnostics": {"errorCode": "ScriptFailed", "scriptName": "scripts/start.sh",
                "message": "Script at specified location: scripts/start.sh run as user root failed with exit code 1",
                "logTail": "[stderr] port 8080 in use"}})
    } else {
        json!({"lifecycleEventName": "ApplicationStart", "status": "Succeeded",
            "startTime": 1_700_000_030.0, "endTime": 1_700_000_035.0,
            "diagnostics": {"errorCode": "Success", "message": "Succeeded"}})
    };
    json!({
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": "d-FAKE", "targetId": id,
            "targetArn": format!("arn:aws:ec2:eu-west-1:123456789012:instance/{id}"),
            "status": status, "lastUpdatedAt": 1_700_000_042.5,
            "lifecycleEvents": [
                {"lifecycleEventName": "BeforeInstall", "status": "Succeeded",
                    "startTime": 1_700_000_000.0, "endTime": 1_700_000_010.0},
                start
            ]
        }
    })
}
