//! `AWS/Invoke/StepFunctions`: starts an execution of `StateMachineArn`, named after the action
//! execution (with `ExecutionNamePrefix` and a hyphen before it), with `Input` as given
//! (`InputType` `Literal`, the default, `{}` when absent) or read from a file of the input
//! artifact (`FilePath`); follows it to its end. Output variables `StateMachineArn` and
//! `ExecutionArn`; the output artifact, if declared, holds the execution's output as
//! `output.json`. A failed, timed-out or aborted execution fails the action with its error and
//! cause.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, config_for_cancel, finish, has_reference, now_ms, optional, read_zip_entry,
    required, sdk_config, sdk_stop, url_encode, write_zip,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// The largest input Step Functions takes (256 KiB).
const MAX_INPUT_BYTES: u64 = 256 * 1024;

/// Starts and follows state machine executions.
#[derive(Debug)]
pub struct StepFunctionsProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl StepFunctionsProvider {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn start(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let machine = required(&r.configuration, "StateMachineArn")?;
        let input = match optional(&r.configuration, "InputType").unwrap_or("Literal") {
            "Literal" => optional(&r.configuration, "Input").unwrap_or("{}").to_owned(),
            "FilePath" => {
                let path = required(&r.configuration, "Input")?;
                let Some(artifact) = job.inputs.first() else {
                    return Err(Failure::configuration(
                        "InputType FilePath needs an input artifact to read Input from.",
                    )
                    .into());
                };
                let bytes = read_zip_entry(artifact, path, MAX_INPUT_BYTES)?;
                String::from_utf8(bytes).map_err(|_| {
                    Failure::configuration(format!("The input file {path} is not UTF-8 text."))
                })?
            }
            other => {
                return Err(Failure::configuration(format!(
                    "InputType must be Literal or FilePath, not {other}."
                ))
                .into());
            }
        };
        let id =
            baton_app::ports::action_execution_id(&r.execution_id, &r.stage, &r.action, r.attempt);
        let name = match optional(&r.configuration, "ExecutionNamePrefix") {
            Some(prefix) => format!("{prefix}-{id}"),
            None => id,
        };
        let client = Client::new(&sdk_config(&self.roles, r).await?);
        let started = client
            .start_execution()
            .state_machine_arn(machine)
            .name(&name)
            .input(input)
            .send()
            .await;
        let arn = match started {
            Ok(out) => out.execution_arn,
            // Started by an earlier delivery of this attempt: the same name is the same run.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => {
                execution_arn(machine, &name)
            }
            Err(e) => return Err(sdk_stop("StartExecution")(e)),
        };
        Ok(JobResult::Running {
            external_url: Some(console_url(&r.region, &arn)),
            external_id: arn,
        })
    }

    async fn follow(&self, job: &Job, arn: &str) -> Result<JobResult, Stop> {
        let r = &job.request;
        let client = Client::new(&sdk_config(&self.roles, r).await?);
        let out = client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(sdk_stop("DescribeExecution"))?;
        let url = console_url(&r.region, arn);
        match out.status {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive if now_ms() < r.deadline => {
                Ok(JobResult::Running { external_id: arn.to_owned(), external_url: Some(url) })
            }
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                let _ = client
                    .stop_execution()
                    .execution_arn(arn)
                    .cause("The CodePipeline action timed out")
                    .send()
                    .await;
                Err(Failure::timed_out(format!(
                    "Execution {arn} did not end before the action's time-out; it was stopped."
                ))
                .into())
            }
            ExecutionStatus::Succeeded => {
                let mut outputs = Vec::new();
                if let Some(name) = r.output_artifacts.first() {
                    let path = job.work_dir.join(format!("{name}.zip"));
                    let output = out.output.unwrap_or_else(|| "{}".into());
                    write_zip(&path, Some(("output.json", output.as_bytes())))?;
                    outputs.push(LocalArtifact::file(name.clone(), path));
                }
                let variables = BTreeMap::from([
                    ("StateMachineArn".to_owned(), out.state_machine_arn),
                    ("ExecutionArn".to_owned(), arn.to_owned()),
                ]);
                Ok(JobResult::Succeeded {
                    output_artifacts: outputs,
                    output_variables: variables,
                    summary: Some(format!("Execution {arn} succeeded")),
                    external_id: Some(arn.to_owned()),
                    external_url: Some(url),
                })
            }
            status => {
                let why = [out.error, out.cause].into_iter().flatten().collect::<Vec<_>>();
                let why =
                    if why.is_empty() { String::new() } else { format!(": {}", why.join(": ")) };
                Err(Failure::job(format!("Execution {arn} ended {}{why}", status.as_str())).into())
            }
        }
    }
}

/// The ARN an execution `name` of `machine` has.
fn execution_arn(machine: &str, name: &str) -> String {
    format!("{}:{name}", machine.replacen(":stateMachine:", ":execution:", 1))
}

fn console_url(region: &str, arn: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
        url_encode(arn)
    )
}

#[async_trait]
impl ActionProvider for StepFunctionsProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let c = &action.configuration;
        match c.get("StateMachineArn").map(|v| v.trim()) {
            Some(arn) if arn.starts_with("arn:") || has_reference(arn) => {}
            Some(arn) if !arn.is_empty() => {
                return Err(format!("StateMachineArn must be an ARN, not {arn}"));
            }
            _ => return Err("the Step Functions action needs StateMachineArn".into()),
        }
        match c.get("InputType").map(String::as_str) {
            None | Some("Literal") => Ok(()),
            Some("FilePath") if c.get("Input").is_some_and(|v| !v.trim().is_empty()) => Ok(()),
            Some("FilePath") => Err("InputType FilePath needs Input, the file to read".into()),
            Some(other) => Err(format!("InputType must be Literal or FilePath, not {other}")),
        }
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.start(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.follow(job, external_id).await)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let Some(config) = config_for_cancel(&self.roles, request).await? else { return Ok(()) };
        let stopped = Client::new(&config)
            .stop_execution()
            .execution_arn(external_id)
            .cause("The CodePipeline execution no longer waits for it")
            .send()
            .await;
        if let Err(e) = stopped {
            tracing::warn!(execution = external_id, error = %aws_sdk_sfn::error::DisplayErrorContext(&e), "cannot stop a state machine execution");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_arn_is_its_machines_with_its_name() {
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:stateMachine:etl", "release-abc"),
            "arn:aws:states:us-east-1:1:execution:etl:release-abc"
        );
    }
}
