//! `AWS/Source/ECR`: the image `ImageTag` (`latest` unless given) of `RepositoryName`, or the
//! digest a start pins (`IMAGE_DIGEST`: the pushed image an ECR event names), becomes the
//! output artifact's `imageDetail.json`, as CodePipeline writes it for ECS and CodeDeploy
//! actions to read; output variables `RegistryId`, `RepositoryName`, `ImageTag`, `ImageDigest`
//! and `ImageURI`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::types::{ImageDetail, ImageIdentifier};
use baton_core::plan::ActionPlan;
use serde_json::json;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, finish, has_reference, optional, required, sdk_config, sdk_stop, write_zip,
};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_core::engine::SourceRevision;

/// Reads images from ECR as a source.
#[derive(Debug)]
pub struct EcrSourceProvider {
    roles: Arc<dyn RoleCredentials>,
}

impl EcrSourceProvider {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let repository = required(&r.configuration, "RepositoryName")?;
        let tag = optional(&r.configuration, "ImageTag").unwrap_or("latest");
        let pinned = r.source_revision.as_ref().filter(|p| p.revision_type == "IMAGE_DIGEST");
        let id = match pinned {
            Some(p) => ImageIdentifier::builder().image_digest(&p.value).build(),
            None => ImageIdentifier::builder().image_tag(tag).build(),
        };
        let client = Client::new(&sdk_config(&self.roles, r).await?);
        let described = client
            .describe_images()
            .repository_name(repository)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DescribeImagesError::ImageNotFoundException(_)) => {
                    Stop::Failed(Failure::configuration(match pinned {
                        Some(p) => format!("The image {} is not in {repository}.", p.value),
                        None => format!("No image of {repository} is tagged {tag}."),
                    }))
                }
                Some(DescribeImagesError::RepositoryNotFoundException(_)) => Stop::Failed(
                    Failure::configuration(format!("The repository {repository} does not exist.")),
                ),
                _ => sdk_stop("DescribeImages")(e),
            })?;
        let Some(image) = described.image_details().first() else {
            return Err(Failure::configuration(format!(
                "No image of {repository} is tagged {tag}."
            ))
            .into());
        };
        let detail = image_detail(image, &r.region, tag);
        let name = r.output_artifacts.first().cloned().unwrap_or_else(|| "SourceArtifact".into());
        let path = job.work_dir.join(format!("{name}.zip"));
        let text = serde_json::to_vec_pretty(&detail.file)
            .map_err(|e| Failure::job(format!("imageDetail.json cannot be written: {e}.")))?;
        write_zip(&path, Some(("imageDetail.json", &text)))?;
        Ok(JobResult::Succeeded {
            output_artifacts: vec![LocalArtifact::file(name, path)],
            summary: Some(format!("Image {}", detail.variables["ImageURI"])),
            external_id: Some(detail.variables["ImageDigest"].clone()),
            external_url: None,
            output_variables: detail.variables,
        })
    }
}

/// What an image gives the pipeline: the `imageDetail.json` file and the output variables.
struct Detail {
    file: serde_json::Value,
    variables: BTreeMap<String, String>,
}

fn image_detail(image: &ImageDetail, region: &str, tag: &str) -> Detail {
    let registry = image.registry_id().unwrap_or_default();
    let repository = image.repository_name().unwrap_or_default();
    let digest = image.image_digest().unwrap_or_default();
    let uri = format!("{registry}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}");
    let tags = image.image_tags();
    // The tag the action watches when the image has it, else the image's first.
    let tag =
        if tags.iter().any(|t| t == tag) { tag } else { tags.first().map_or("", String::as_str) };
    let pushed = image.image_pushed_at().map(|t| t.to_string()).unwrap_or_default();
    let file = json!({
        "ImageSizeInBytes": image.image_size_in_bytes().map(|n| n.to_string()).unwrap_or_default(),
        "ImageDigest": digest,
        "Version": "1.0",
        "ImagePushedAt": pushed,
        "RegistryId": registry,
        "RepositoryName": repository,
        "ImageURI": uri,
        "ImageTags": tags,
    });
    let variables = BTreeMap::from([
        ("RegistryId".to_owned(), registry.to_owned()),
        ("RepositoryName".to_owned(), repository.to_owned()),
        ("ImageTag".to_owned(), tag.to_owned()),
        ("ImageDigest".to_owned(), digest.to_owned()),
        ("ImageURI".to_owned(), uri),
    ]);
    Detail { file, variables }
}

#[async_trait]
impl ActionProvider for EcrSourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        match action.configuration.get("RepositoryName").map(|v| v.trim()) {
            Some(name) if !name.is_empty() => Ok(()),
            _ => Err("the ECR source needs RepositoryName".into()),
        }
    }

    /// The digest the watched tag names now (`PollForSourceChanges`).
    async fn latest_revision(&self, action: &ActionPlan) -> Option<SourceRevision> {
        let repository = optional(&action.configuration, "RepositoryName")?;
        let tag = optional(&action.configuration, "ImageTag").unwrap_or("latest");
        if has_reference(repository) || has_reference(tag) {
            return None;
        }
        let client = Client::new(&super::poll_config(&self.roles, action).await?);
        let described = client
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await
            .ok()?;
        Some(SourceRevision {
            revision_type: "IMAGE_DIGEST".into(),
            value: described.image_details().first()?.image_digest()?.to_owned(),
            branch: None,
        })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.fetch(job).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_uri_names_its_registry_region_repository_and_digest() {
        let image = ImageDetail::builder()
            .registry_id("111122223333")
            .repository_name("web")
            .image_digest("sha256:abc")
            .image_tags("v2")
            .image_tags("latest")
            .build();
        let d = image_detail(&image, "eu-west-1", "latest");
        assert_eq!(
            d.variables["ImageURI"],
            "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:abc"
        );
        assert_eq!(d.variables["ImageTag"], "latest");
        assert_eq!(d.file["ImageURI"], d.variables["ImageURI"]);
        assert_eq!(d.file["ImageTags"], json!(["v2", "latest"]));
        assert_eq!(image_detail(&image, "eu-west-1", "gone").variables["ImageTag"], "v2");
    }
}
