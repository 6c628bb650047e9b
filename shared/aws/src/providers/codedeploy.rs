//! `AWS/Deploy/CodeDeploy` (EC2/on-premises and Lambda compute platforms): the input artifact,
//! where it lies in the action region's artifact bucket, is the deployment's S3 revision (a
//! zip); `CreateDeployment` on `ApplicationName`/`DeploymentGroupName`, then the deployment is
//! followed to its end. Output variable `DeploymentId`; the deployment's console page as the
//! external URL; a failed or stopped deployment fails the action with CodeDeploy's reason; one
//! still running at the action's time-out is stopped (and rolled back where the group says so).
//! Once it ends, its targets (instances, functions, task sets) and their lifecycle events are
//! read for `ListDeployActionExecutionTargets`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::DisplayErrorContext;
use aws_sdk_codedeploy::primitives::DateTime;
use aws_sdk_codedeploy::types::{
    BundleType, DeploymentStatus, DeploymentTarget, ErrorInformation, LifecycleEvent,
    RevisionLocation, RevisionLocationType, S3Location,
};
use baton_core::engine::{ActionRequest, DeployTarget, DeployTargetEvent, KEPT_TARGETS};
use baton_core::plan::ActionPlan;

use super::credentials::RoleCredentials;
use super::{Failure, Stop, config_for_cancel, finish, now_ms, required, sdk_config, sdk_stop};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// Deploys revisions with CodeDeploy.
#[derive(Debug)]
pub struct CodeDeployProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl CodeDeployProvider {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let application = required(&r.configuration, "ApplicationName")?;
        let group = required(&r.configuration, "DeploymentGroupName")?;
        let Some(place) = &job.in_place else {
            return Err(Failure::configuration(
                "CodeDeploy reads its revision from S3: this host keeps artifacts in local files, so run this action from a Baton deployment on AWS.",
            )
            .into());
        };
        let Some((_, location)) = place.inputs.first() else {
            return Err(Failure::configuration(
                "The CodeDeploy action needs an input artifact: the revision to deploy.",
            )
            .into());
        };
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(
                S3Location::builder()
                    .bucket(&location.bucket)
                    .key(&location.key)
                    .bundle_type(BundleType::Zip)
                    .build(),
            )
            .build();
        let client = Client::new(&sdk_config(&self.roles, r).await?);
        let created = client
            .create_deployment()
            .application_name(application)
            .deployment_group_name(group)
            .revision(revision)
            .description(format!(
                "Pipeline {} execution {}, action {}",
                r.pipeline, r.execution_id, r.action
            ))
            .send()
            .await
            .map_err(sdk_stop("CreateDeployment"))?;
        let Some(id) = created.deployment_id else {
            return Err(Failure::job("CreateDeployment gave no deployment id.").into());
        };
        Ok(JobResult::Running { external_url: Some(console_url(&r.region, &id)), external_id: id })
    }

    async fn follow(&self, job: &Job, id: &str) -> Result<JobResult, Stop> {
        follow(&self.roles, job, id).await
    }
}

/// How the deployment `id` of `job`'s attempt stands: its end, or still going (stopped past
/// the action's time-out). Blue/green ECS deployments are followed the same way.
pub(super) async fn follow(
    roles: &Arc<dyn RoleCredentials>,
    job: &Job,
    id: &str,
) -> Result<JobResult, Stop> {
    let r = &job.request;
    let client = Client::new(&sdk_config(roles, r).await?);
    let info = client
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .map_err(sdk_stop("GetDeployment"))?
        .deployment_info
        .ok_or_else(|| Failure::job(format!("Deployment {id} has no description.")))?;
    let url = console_url(&r.region, id);
    match judge(info.status.as_ref(), info.error_information.as_ref()) {
        Judgement::Succeeded => Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::from([("DeploymentId".to_owned(), id.to_owned())]),
            summary: Some(format!("Deployment {id} succeeded")),
            external_id: Some(id.to_owned()),
            external_url: Some(url),
        }),
        Judgement::Failed(why) => Err(Failure::job(format!("Deployment {id} {why}")).into()),
        Judgement::Going if now_ms() < r.deadline => {
            Ok(JobResult::Running { external_id: id.to_owned(), external_url: Some(url) })
        }
        Judgement::Going => {
            stop(&client, id).await;
            Err(Failure::timed_out(format!(
                "Deployment {id} did not end before the action's time-out; it was stopped."
            ))
            .into())
        }
    }
}

/// What deployment `id` reached, read as `job`'s role: none, with a warning, when CodeDeploy
/// cannot say (the action's outcome stands either way).
pub(super) async fn targets(
    roles: &Arc<dyn RoleCredentials>,
    job: &Job,
    id: &str,
) -> Vec<DeployTarget> {
    match read_targets(roles, job, id).await {
        Ok(targets) => targets,
        Err(why) => {
            tracing::warn!(deployment = id, error = %why, "cannot read a deployment's targets");
            Vec::new()
        }
    }
}

async fn read_targets(
    roles: &Arc<dyn RoleCredentials>,
    job: &Job,
    id: &str,
) -> Result<Vec<DeployTarget>, String> {
    let r = &job.request;
    let config = roles
        .config(r.role_arn.as_deref(), &r.region, &r.execution_id)
        .await
        .map_err(|e| e.to_string())?;
    let client = Client::new(&config);
    let mut ids = Vec::new();
    let mut next = None;
    loop {
        let page = client
            .list_deployment_targets()
            .deployment_id(id)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        ids.extend(page.target_ids().iter().cloned());
        next = page.next_token;
        if next.is_none() || ids.len() >= KEPT_TARGETS {
            break;
        }
    }
    ids.truncate(KEPT_TARGETS);
    let mut targets = Vec::with_capacity(ids.len());
    // BatchGetDeploymentTargets takes 25 ids a call.
    for chunk in ids.chunks(25) {
        let got = client
            .batch_get_deployment_targets()
            .deployment_id(id)
            .set_target_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        targets.extend(got.deployment_targets().iter().filter_map(target_of));
    }
    Ok(targets)
}

/// One of CodeDeploy's targets as CodePipeline lists it: its times are its lifecycle events'.
fn target_of(t: &DeploymentTarget) -> Option<DeployTarget> {
    let (kind, id, status, events) = if let Some(i) = t.instance_target() {
        ("InstanceTarget", i.target_id(), i.status(), i.lifecycle_events())
    } else if let Some(l) = t.lambda_target() {
        ("LambdaTarget", l.target_id(), l.status(), l.lifecycle_events())
    } else if let Some(e) = t.ecs_target() {
        ("ECSTarget", e.target_id(), e.status(), e.lifecycle_events())
    } else if let Some(c) = t.cloud_formation_target() {
        ("CloudFormationTarget", c.target_id(), c.status(), c.lifecycle_events())
    } else {
        return None;
    };
    let status = status.map_or("Unknown", |s| s.as_str()).to_owned();
    let ended = matches!(status.as_str(), "Succeeded" | "Failed" | "Skipped");
    let events: Vec<DeployTargetEvent> = events.iter().map(event_of).collect();
    Some(DeployTarget {
        id: id?.to_owned(),
        kind: kind.to_owned(),
        started_at: events.iter().filter_map(|e| e.started_at).min(),
        ended_at: ended.then(|| events.iter().filter_map(|e| e.ended_at).max()).flatten(),
        status,
        events,
    })
}

fn event_of(e: &LifecycleEvent) -> DeployTargetEvent {
    let millis = |t: Option<&DateTime>| t.and_then(|t| t.to_millis().ok());
    let message = e.diagnostics().and_then(|d| {
        let code = d.error_code().map(|c| c.as_str());
        match (code, d.script_name(), d.message()) {
            (_, _, None) => None,
            (Some(c), Some(script), Some(m)) => Some(format!("{c} ({script}): {m}")),
            (Some(c), None, Some(m)) if c != "Success" => Some(format!("{c}: {m}")),
            (_, _, Some(m)) => Some(m.to_owned()),
        }
    });
    DeployTargetEvent {
        name: e.lifecycle_event_name().unwrap_or_default().to_owned(),
        status: e.status().map_or("Unknown", |s| s.as_str()).to_owned(),
        started_at: millis(e.start_time()),
        ended_at: millis(e.end_time()),
        message,
    }
}

pub(super) async fn stop(client: &Client, id: &str) {
    // Rolled back if the deployment group rolls back stopped deployments.
    if let Err(e) =
        client.stop_deployment().deployment_id(id).auto_rollback_enabled(true).send().await
    {
        tracing::warn!(deployment = id, error = %DisplayErrorContext(&e), "cannot stop a deployment");
    }
}

pub(super) fn console_url(region: &str, id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{id}?region={region}"
    )
}

/// Where a deployment stands.
#[derive(Debug, PartialEq, Eq)]
enum Judgement {
    Going,
    Succeeded,
    Failed(String),
}

fn judge(status: Option<&DeploymentStatus>, error: Option<&ErrorInformation>) -> Judgement {
    let reason = || {
        error
            .map(|e| {
                let code = e.code().map(|c| c.as_str().to_owned()).unwrap_or_default();
                match (code.as_str(), e.message()) {
                    ("", Some(m)) => format!(": {m}"),
                    (c, Some(m)) => format!(": {c}: {m}"),
                    (c, None) if !c.is_empty() => format!(": {c}"),
                    _ => String::new(),
                }
            })
            .unwrap_or_default()
    };
    match status {
        Some(DeploymentStatus::Succeeded) => Judgement::Succeeded,
        Some(DeploymentStatus::Failed) => Judgement::Failed(format!("failed{}", reason())),
        Some(DeploymentStatus::Stopped) => Judgement::Failed(format!("was stopped{}", reason())),
        // Created, Queued, InProgress, Baking, Ready (blue/green waiting to reroute): going on.
        _ => Judgement::Going,
    }
}

#[async_trait]
impl ActionProvider for CodeDeployProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["ApplicationName", "DeploymentGroupName"],
            "the CodeDeploy action",
        )?;
        Ok(())
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        finish(self.follow(job, external_id).await)
    }

    async fn targets(&self, job: &Job, external_id: &str) -> Vec<DeployTarget> {
        targets(&self.roles, job, external_id).await
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        if let Some(config) = config_for_cancel(&self.roles, request).await? {
            stop(&Client::new(&config), external_id).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_codedeploy::types::ErrorCode;

    use super::*;

    #[test]
    fn a_deployment_is_judged_by_its_status_with_codedeploys_reason() {
        use DeploymentStatus::*;
        for going in [Created, Queued, InProgress, Baking, Ready] {
            assert_eq!(judge(Some(&going), None), Judgement::Going, "{going:?}");
        }
        assert_eq!(judge(Some(&Succeeded), None), Judgement::Succeeded);
        let error = ErrorInformation::builder()
            .code(ErrorCode::HealthConstraints)
            .message("The overall deployment failed because too many individual instances failed deployment")
            .build();
        assert_eq!(
            judge(Some(&Failed), Some(&error)),
            Judgement::Failed(
                "failed: HEALTH_CONSTRAINTS: The overall deployment failed because too many individual instances failed deployment".into()
            )
        );
        assert_eq!(judge(Some(&Stopped), None), Judgement::Failed("was stopped".into()));
    }
}
