//! What AppConfig does on AWS and moto does not: deploy a configuration version to an
//! environment (`StartDeployment`, `GetDeployment`, `StopDeployment`; moto keeps applications,
//! profiles and hosted versions, and has no environments or deployments). The counting proxy
//! answers those calls from here, once the harness has decided the caller may make them on
//! the environment's ARN. A deployment is `COMPLETE` when first looked at, as one with
//! `AppConfig.AllAtOnce` and no bake time soon is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

/// The stand-in's deployments, by environment path (`applications/A/environments/E`).
#[derive(Debug, Clone, Default)]
pub struct Deployments {
    inner: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
}

/// The operation a request to AppConfig's REST paths is, with the environment it concerns
/// (`applications/A/environments/E`), when it is one answered here.
pub fn deployment_operation(method: &str, path: &str) -> Option<(&'static str, String)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let environment = || parts[..4].join("/");
    match (method, &parts[..]) {
        ("POST", ["applications", _, "environments", _, "deployments"]) => {
            Some(("StartDeployment", environment()))
        }
        ("GET", ["applications", _, "environments", _, "deployments", _]) => {
            Some(("GetDeployment", environment()))
        }
        ("DELETE", ["applications", _, "environments", _, "deployments", _]) => {
            Some(("StopDeployment", environment()))
        }
        _ => None,
    }
}

impl Deployments {
    /// The answer to `operation` on `environment` (status and JSON body).
    pub fn answer(
        &self,
        operation: &str,
        environment: &str,
        path: &str,
        request: &Value,
    ) -> (u16, Value) {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let deployments = all.entry(environment.to_owned()).or_default();
        let number = path.rsplit('/').next().and_then(|n| n.parse::<usize>().ok());
        match (operation, number) {
            ("StartDeployment", _) => {
                let deployment = json!({
                    "DeploymentNumber": deployments.len() + 1,
                    "ConfigurationProfileId": request["ConfigurationProfileId"],
                    "DeploymentStrategyId": request["DeploymentStrategyId"],
                    "ConfigurationVersion": request["ConfigurationVersion"],
                    "Description": request["Description"],
                    "State": "DEPLOYING",
                });
                deployments.push(deployment.clone());
                (201, deployment)
            }
            ("GetDeployment" | "StopDeployment", Some(n))
                if (1..=deployments.len()).contains(&n) =>
            {
                let deployment = &mut deployments[n - 1];
                deployment["State"] = match operation {
                    "GetDeployment" => "COMPLETE".into(),
                    _ => "ROLLED_BACK".into(),
                };
                (if operation == "GetDeployment" { 200 } else { 202 }, deployment.clone())
            }
            _ => (404, json!({"Message": "Deployment not found"})),
        }
    }

    /// The deployments started on `environment`.
    pub fn of(&self, environment: &str) -> Vec<Value> {
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(environment).cloned().unwrap_or_default()
    }
}
