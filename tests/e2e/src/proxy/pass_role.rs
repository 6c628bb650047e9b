//! `iam:PassRole`, which IAM checks when a service is handed a role (a stack's execution role,
//! a stack set's administration role, a task's roles) and moto never checks: decided here
//! against the caller's statements as declared, with the `iam:PassedToService` condition they
//! grant it under. A refusal is the service's `AccessDenied`, and the call does not happen.
//!
//! So is `PassConnection`, which CodeConnections checks when a build is handed a connection to
//! clone with (`codeconnections:PassedToService`, or `codestar-connections:` for a connection
//! of the older ARN).

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;

use super::{Call, Proxy, form_value};

impl Proxy {
    /// Before a call that hands a role to a service: the pass, decided as IAM decides it.
    pub(super) fn pass_role_decided_here(
        &self,
        function: &str,
        call: &Call,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        let (roles, to): (Vec<String>, &str) =
            match (call.service.as_str(), call.operation.as_str()) {
                ("cloudformation", "CreateStack" | "UpdateStack" | "CreateChangeSet") => (
                    form_value(body, "RoleARN").into_iter().collect(),
                    "cloudformation.amazonaws.com",
                ),
                ("cloudformation", "CreateStackSet" | "UpdateStackSet") => (
                    form_value(body, "AdministrationRoleARN").into_iter().collect(),
                    "cloudformation.amazonaws.com",
                ),
                ("ecs", "RegisterTaskDefinition") => {
                    let request: Value = serde_json::from_slice(body).ok()?;
                    let roles = ["taskRoleArn", "executionRoleArn"]
                        .iter()
                        .filter_map(|k| request[*k].as_str().map(str::to_owned))
                        .collect();
                    (roles, "ecs-tasks.amazonaws.com")
                }
                _ => return None,
            };
        roles.iter().find_map(|role| {
            self.decided_here(function, call, ("iam", "PassRole"), role, to.to_owned())
        })
    }

    /// Before a build that clones through a connection: the pass of that connection.
    pub(super) fn connection_pass_decided_here(
        &self,
        function: &str,
        call: &Call,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        if (call.service.as_str(), call.operation.as_str()) != ("codebuild", "StartBuild") {
            return None;
        }
        let request: Value = serde_json::from_slice(body).ok()?;
        let auth = &request["sourceAuthOverride"];
        let connection = auth["resource"].as_str().filter(|_| auth["type"] == "CODECONNECTIONS")?;
        let service = connection.split(':').nth(2)?;
        let via = "codebuild.amazonaws.com".to_owned();
        self.decided_here(function, call, (service, "PassConnection"), connection, via)
    }
}
