//! `AWS/Deploy/CodeDeployToECS` (ECS blue/green): the task definition file
//! (`TaskDefinitionTemplatePath`, `taskdef.json` by default, in `TaskDefinitionTemplateArtifact`)
//! with each `<ImageNContainerName>` placeholder replaced by the `ImageURI` of the
//! `imageDetail.json` in `ImageNArtifactName` (N from 1 to 4) is registered as a new revision;
//! the AppSpec file (`AppSpecTemplatePath`, `appspec.yaml` by default, in
//! `AppSpecTemplateArtifact`) with `<TASK_DEFINITION>` replaced by that revision's ARN is the
//! CodeDeploy deployment's content on `ApplicationName`/`DeploymentGroupName`, followed to its
//! end as CodeDeploy deployments are, and its task sets listed as its targets.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codedeploy::types::{AppSpecContent, RevisionLocation, RevisionLocationType};
use baton_core::engine::{ActionRequest, DeployTarget};
use baton_core::plan::ActionPlan;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, codedeploy, config_for_cancel, finish, optional, read_zip_entry, required,
    sdk_config, sdk_stop,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

/// The largest task definition or AppSpec file read (CodePipeline's limit for this action's
/// artifacts is 3 MB).
const FILE_LIMIT: u64 = 3 * 1024 * 1024;

/// Deploys ECS services blue/green through CodeDeploy.
#[derive(Debug)]
pub struct EcsBlueGreenProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl EcsBlueGreenProvider {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let c = &r.configuration;
        let application = required(c, "ApplicationName")?;
        let group = required(c, "DeploymentGroupName")?;
        let taskdef_file = optional(c, "TaskDefinitionTemplatePath").unwrap_or("taskdef.json");
        let appspec_file = optional(c, "AppSpecTemplatePath").unwrap_or("appspec.yaml");
        let taskdef = text_of(job, required(c, "TaskDefinitionTemplateArtifact")?, taskdef_file)?;
        let appspec = text_of(job, required(c, "AppSpecTemplateArtifact")?, appspec_file)?;
        let taskdef = with_images(job, taskdef, taskdef_file)?;
        let ecs = aws_sdk_ecs::Client::new(&sdk_config(&self.roles, r).await?);
        let call = super::ecs_taskdef::register_call(&taskdef, ecs.register_task_definition())
            .map_err(|why| Failure::configuration(format!("{taskdef_file}: {why}.")))?;
        let registered = call.send().await.map_err(sdk_stop("RegisterTaskDefinition"))?;
        let Some(arn) = registered
            .task_definition
            .and_then(|t| t.task_definition_arn)
            .filter(|a| !a.is_empty())
        else {
            return Err(Failure::job("RegisterTaskDefinition gave no ARN.").into());
        };
        if !appspec.contains("<TASK_DEFINITION>") {
            return Err(Failure::configuration(format!(
                "{appspec_file} has no <TASK_DEFINITION> placeholder for the new task definition."
            ))
            .into());
        }
        let content = appspec.replace("<TASK_DEFINITION>", &arn);
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().content(content).build())
            .build();
        let codedeploy = aws_sdk_codedeploy::Client::new(&sdk_config(&self.roles, r).await?);
        let created = codedeploy
            .create_deployment()
            .application_name(application)
            .deployment_group_name(group)
            .revision(revision)
            .description(format!("Pipeline {} execution {}: {arn}", r.pipeline, r.execution_id))
            .send()
            .await
            .map_err(sdk_stop("CreateDeployment"))?;
        let Some(id) = created.deployment_id else {
            return Err(Failure::job("CreateDeployment gave no deployment id.").into());
        };
        let url = codedeploy::console_url(&r.region, &id);
        Ok(JobResult::Running { external_id: id, external_url: Some(url) })
    }
}

/// The UTF-8 file `path` of the input artifact `artifact`.
fn text_of(job: &Job, artifact: &str, path: &str) -> Result<String, Failure> {
    let input = input(job, artifact)?;
    let bytes = read_zip_entry(input, path, FILE_LIMIT)?;
    String::from_utf8(bytes)
        .map_err(|_| Failure::configuration(format!("{path} in {artifact} is not UTF-8 text.")))
}

fn input<'a>(job: &'a Job, artifact: &str) -> Result<&'a LocalArtifact, Failure> {
    job.inputs.iter().find(|i| i.name == artifact).ok_or_else(|| {
        Failure::configuration(format!("The action has no input artifact named {artifact}."))
    })
}

/// `taskdef` with each declared image's placeholder replaced by its `ImageURI`.
fn with_images(job: &Job, mut taskdef: String, file: &str) -> Result<String, Failure> {
    let c = &job.request.configuration;
    for n in 1..=4 {
        let Some(artifact) = optional(c, &format!("Image{n}ArtifactName")) else { continue };
        let placeholder = optional(c, &format!("Image{n}ContainerName")).ok_or_else(|| {
            Failure::configuration(format!(
                "Image{n}ArtifactName needs Image{n}ContainerName, the placeholder it fills."
            ))
        })?;
        let detail = text_of(job, artifact, "imageDetail.json")?;
        let uri = serde_json::from_str::<serde_json::Value>(&detail)
            .ok()
            .and_then(|d| d["ImageURI"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                Failure::configuration(format!("imageDetail.json in {artifact} has no ImageURI."))
            })?;
        let marker = format!("<{placeholder}>");
        if !taskdef.contains(&marker) {
            return Err(Failure::configuration(format!(
                "{file} has no {marker} placeholder for the image of {artifact}."
            )));
        }
        taskdef = taskdef.replace(&marker, &uri);
    }
    Ok(taskdef)
}

#[async_trait]
impl ActionProvider for EcsBlueGreenProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let keys = [
            "ApplicationName",
            "DeploymentGroupName",
            "TaskDefinitionTemplateArtifact",
            "AppSpecTemplateArtifact",
        ];
        super::check_required(&action.configuration, &keys, "the ECS blue/green action")
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        // CodePipeline gives this action no output variables.
        let outcome =
            codedeploy::follow(&self.roles, job, external_id).await.map(|done| match done {
                JobResult::Succeeded {
                    output_artifacts,
                    summary,
                    external_id,
                    external_url,
                    ..
                } => JobResult::Succeeded {
                    output_artifacts,
                    output_variables: Default::default(),
                    summary,
                    external_id,
                    external_url,
                },
                other => other,
            });
        finish(outcome)
    }

    async fn targets(&self, job: &Job, external_id: &str) -> Vec<DeployTarget> {
        codedeploy::targets(&self.roles, job, external_id).await
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        if let Some(config) = config_for_cancel(&self.roles, request).await? {
            codedeploy::stop(&aws_sdk_codedeploy::Client::new(&config), external_id).await;
        }
        Ok(())
    }
}
