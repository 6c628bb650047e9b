//! `AWS/Deploy/ECS` (standard rolling deployment): the images in the input artifact's
//! `imagedefinitions.json` (or `FileName`) go into a new revision of the service's task
//! definition, the service is updated to it, and the action follows the deployment until the
//! service is stable, the deployment fails, or `DeploymentTimeout` (minutes, 60 by default)
//! passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{DeploymentRolloutState, TaskDefinition};
use serde::Deserialize;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, finish, now_ms, optional, read_zip_entry, required, sdk_config, sdk_stop,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// The largest image definitions file read.
const DEFINITIONS_LIMIT: u64 = 1024 * 1024;

/// Deploys to ECS services.
pub struct EcsDeployProvider {
    roles: Arc<dyn RoleCredentials>,
}

/// One entry of `imagedefinitions.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageDefinition {
    name: String,
    image_uri: String,
}

/// What a running deployment is followed by: `cluster|service|task definition|deadline`.
struct Deployment {
    cluster: String,
    service: String,
    task_definition: String,
    deadline: i64,
}

impl Deployment {
    fn id(&self) -> String {
        format!("{}|{}|{}|{}", self.cluster, self.service, self.task_definition, self.deadline)
    }

    fn parse(id: &str) -> Option<Self> {
        let mut parts = id.split('|');
        Some(Self {
            cluster: parts.next()?.to_owned(),
            service: parts.next()?.to_owned(),
            task_definition: parts.next()?.to_owned(),
            deadline: parts.next()?.parse().ok()?,
        })
    }
}

impl EcsDeployProvider {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let request = &job.request;
        let config = &request.configuration;
        let cluster = required(config, "ClusterName")?;
        let service = required(config, "ServiceName")?;
        let file = optional(config, "FileName").unwrap_or("imagedefinitions.json");
        let minutes: i64 = match optional(config, "DeploymentTimeout") {
            Some(m) => m.parse().ok().filter(|m| (1..=60).contains(m)).ok_or_else(|| {
                Failure::configuration(format!(
                    "DeploymentTimeout must be 1 to 60 minutes, not {m}."
                ))
            })?,
            None => 60,
        };
        let input = job.inputs.first().ok_or_else(|| {
            Failure::configuration(
                "The action needs an input artifact holding the image definitions.",
            )
        })?;
        let bytes = read_zip_entry(input, file, DEFINITIONS_LIMIT)?;
        let images: Vec<ImageDefinition> = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::configuration(format!(
                "{file} must be a JSON list of {{\"name\", \"imageUri\"}} objects: {e}"
            ))
        })?;
        if images.is_empty() {
            return Err(Failure::configuration(format!("{file} names no image.")).into());
        }
        let client = Client::new(&sdk_config(&self.roles, request).await?);
        let described = client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(sdk_stop("DescribeServices"))?;
        let current = described
            .services()
            .first()
            .and_then(|s| s.task_definition())
            .ok_or_else(|| {
                Failure::configuration(format!(
                    "The service {service} does not exist in the cluster {cluster}."
                ))
            })?
            .to_owned();
        let task = client
            .describe_task_definition()
            .task_definition(&current)
            .send()
            .await
            .map_err(sdk_stop("DescribeTaskDefinition"))?
            .task_definition
            .ok_or_else(|| {
                Failure::job(format!("The task definition {current} has no description."))
            })?;
        let registered = self.register(&client, &task, &images, file).await?;
        client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(&registered)
            .send()
            .await
            .map_err(sdk_stop("UpdateService"))?;
        let deployment = Deployment {
            cluster: cluster.to_owned(),
            service: service.to_owned(),
            task_definition: registered,
            deadline: now_ms() + minutes * 60_000,
        };
        self.look(job, &deployment).await
    }

    /// A new revision of `task`, with each named container's image replaced.
    async fn register(
        &self,
        client: &Client,
        task: &TaskDefinition,
        images: &[ImageDefinition],
        file: &str,
    ) -> Result<String, Stop> {
        let mut containers = task.container_definitions().to_vec();
        for image in images {
            let container = containers
                .iter_mut()
                .find(|c| c.name() == Some(image.name.as_str()))
                .ok_or_else(|| {
                    Failure::configuration(format!(
                        "{file} names the container {}, which the service's task definition {} does not have.",
                        image.name,
                        task.family().unwrap_or_default()
                    ))
                })?;
            container.image = Some(image.image_uri.clone());
        }
        let registered = client
            .register_task_definition()
            .family(task.family().unwrap_or_default())
            .set_container_definitions(Some(containers))
            .set_task_role_arn(task.task_role_arn().map(str::to_owned))
            .set_execution_role_arn(task.execution_role_arn().map(str::to_owned))
            .set_network_mode(task.network_mode().cloned())
            .set_volumes(Some(task.volumes().to_vec()))
            .set_placement_constraints(Some(task.placement_constraints().to_vec()))
            .set_requires_compatibilities(Some(task.requires_compatibilities().to_vec()))
            .set_cpu(task.cpu().map(str::to_owned))
            .set_memory(task.memory().map(str::to_owned))
            .set_pid_mode(task.pid_mode().cloned())
            .set_ipc_mode(task.ipc_mode().cloned())
            .set_proxy_configuration(task.proxy_configuration().cloned())
            .set_ephemeral_storage(task.ephemeral_storage().cloned())
            .set_runtime_platform(task.runtime_platform().cloned())
            .send()
            .await
            .map_err(sdk_stop("RegisterTaskDefinition"))?;
        registered
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| Failure::job("RegisterTaskDefinition gave no ARN.").into())
    }

    /// How the deployment of the new task definition stands.
    async fn look(&self, job: &Job, d: &Deployment) -> Result<JobResult, Stop> {
        let client = Client::new(&sdk_config(&self.roles, &job.request).await?);
        let described = client
            .describe_services()
            .cluster(&d.cluster)
            .services(&d.service)
            .send()
            .await
            .map_err(sdk_stop("DescribeServices"))?;
        let service = described.services().first().ok_or_else(|| {
            Failure::job(format!(
                "The service {} is gone from the cluster {}.",
                d.service, d.cluster
            ))
        })?;
        let stable = match judge(service, &d.task_definition) {
            Judgement::Stable => true,
            Judgement::Rolling => false,
            Judgement::Failed(why) => return Err(Failure::job(why).into()),
        };
        if stable {
            return Ok(JobResult::Succeeded {
                output_artifacts: Vec::new(),
                output_variables: BTreeMap::new(),
                summary: Some(format!("{} runs {}", d.service, d.task_definition)),
                external_id: Some(d.task_definition.clone()),
                external_url: None,
            });
        }
        if now_ms() >= d.deadline.min(job.request.deadline) {
            return Err(Failure::timed_out(format!(
                "The service {} did not become stable on {} within the deployment's timeout.",
                d.service, d.task_definition
            ))
            .into());
        }
        Ok(JobResult::Running { external_id: d.id(), external_url: None })
    }
}

/// Where a deployment of one task definition stands.
#[derive(Debug, PartialEq, Eq)]
enum Judgement {
    Stable,
    Rolling,
    Failed(String),
}

/// Judges the deployment of `task_definition` to `service`.
fn judge(service: &aws_sdk_ecs::types::Service, task_definition: &str) -> Judgement {
    let name = service.service_name().unwrap_or_default();
    if service.task_definition() != Some(task_definition) {
        return Judgement::Failed(format!(
            "The service {name} no longer deploys {task_definition}: another deployment replaced it."
        ));
    }
    let ours = service.deployments().iter().find(|x| x.task_definition() == Some(task_definition));
    match ours.and_then(|o| o.rollout_state()) {
        Some(DeploymentRolloutState::Completed) => Judgement::Stable,
        Some(DeploymentRolloutState::Failed) => {
            let why = ours.and_then(|o| o.rollout_state_reason()).unwrap_or("it failed");
            Judgement::Failed(format!("The deployment to {name} failed: {why}"))
        }
        // Without a rollout state (no circuit breaker), or a deployment list an emulator does
        // not keep: stable once one deployment runs, fully.
        _ => {
            let (running, desired) = match ours {
                Some(o) => (o.running_count(), o.desired_count()),
                None => (service.running_count(), service.desired_count()),
            };
            if service.deployments().len() <= 1 && running == desired {
                Judgement::Stable
            } else {
                Judgement::Rolling
            }
        }
    }
}

#[async_trait]
impl ActionProvider for EcsDeployProvider {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        let Some(deployment) = Deployment::parse(external_id) else {
            return Ok(Failure::job(format!(
                "{external_id} is not an ECS deployment Baton started."
            ))
            .into());
        };
        finish(self.look(job, &deployment).await)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{Deployment as Rollout, Service};

    use super::*;

    const NEW: &str = "arn:aws:ecs:eu-west-1:1:task-definition/web:2";
    const OLD: &str = "arn:aws:ecs:eu-west-1:1:task-definition/web:1";

    fn rollout(td: &str, running: i32, state: Option<DeploymentRolloutState>) -> Rollout {
        let r = Rollout::builder().task_definition(td).running_count(running).desired_count(2);
        r.set_rollout_state(state).rollout_state_reason("circuit breaker tripped").build()
    }

    fn service(td: &str, rollouts: Vec<Rollout>) -> Service {
        let s = Service::builder().service_name("site").task_definition(td);
        s.set_deployments(Some(rollouts)).running_count(2).desired_count(2).build()
    }

    #[test]
    fn a_deployment_is_judged_by_its_rollout_then_by_its_counts() {
        use DeploymentRolloutState::*;
        let completed = service(NEW, vec![rollout(NEW, 2, Some(Completed))]);
        assert_eq!(judge(&completed, NEW), Judgement::Stable);
        let failed = service(NEW, vec![rollout(NEW, 0, Some(Failed)), rollout(OLD, 2, None)]);
        assert!(
            matches!(judge(&failed, NEW), Judgement::Failed(m) if m.contains("circuit breaker"))
        );
        let draining = service(NEW, vec![rollout(NEW, 2, None), rollout(OLD, 1, None)]);
        assert_eq!(judge(&draining, NEW), Judgement::Rolling, "the old tasks still run");
        let starting = service(NEW, vec![rollout(NEW, 1, None)]);
        assert_eq!(judge(&starting, NEW), Judgement::Rolling);
        assert_eq!(judge(&service(NEW, vec![rollout(NEW, 2, None)]), NEW), Judgement::Stable);
        let replaced = service(OLD, vec![rollout(OLD, 2, None)]);
        assert!(matches!(judge(&replaced, NEW), Judgement::Failed(m) if m.contains("replaced")));
    }
}
