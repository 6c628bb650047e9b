//! CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines.

use baton_core::declaration::{PipelineDeclaration, PipelineDocument};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::Page;
use super::tags::{TagIn, checked_tags, tags_json};
use super::wire::{input, secs};
use super::{ApiError, Ctx};
use baton_app::ports::state::StoreError;
use baton_app::service::AdminError;

#[derive(Deserialize)]
struct CreateIn {
    pipeline: Value,
    #[serde(default)]
    tags: Vec<TagIn>,
}

#[derive(Deserialize)]
struct UpdateIn {
    pipeline: Value,
}

#[derive(Deserialize)]
struct NameIn {
    name: String,
    #[serde(default)]
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListIn {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
}

impl Ctx<'_> {
    pub(super) async fn create_pipeline(&self, body: Value) -> Result<Value, ApiError> {
        let CreateIn { pipeline, tags } = input(body)?;
        let declaration = self.with_role(declaration(pipeline)?)?;
        let tags = checked_tags(tags)?;
        let record =
            self.api.admin().create(declaration, tags).await.map_err(|e| self.refused(e))?;
        let shown = self.shown(&record.declaration).await?;
        Ok(json!({"pipeline": shown, "tags": tags_json(&record.tags)}))
    }

    pub(super) async fn get_pipeline(&self, body: Value) -> Result<Value, ApiError> {
        let NameIn { name, version } = input(body)?;
        let record = self.pipeline(&name).await?;
        if let Some(v) = version
            && v != record.plan.version
        {
            // Only the current structure is kept.
            return Err(ApiError::new(
                "PipelineVersionNotFoundException",
                format!(
                    "Pipeline '{name}' has no version {v}; its current version is {}",
                    record.plan.version
                ),
            ));
        }
        Ok(json!({
            "pipeline": self.shown(&record.declaration).await?,
            "metadata": {
                "pipelineArn": record.plan.arn(),
                "created": secs(record.created),
                "updated": secs(record.updated),
            },
        }))
    }

    pub(super) async fn update_pipeline(&self, body: Value) -> Result<Value, ApiError> {
        let UpdateIn { mut pipeline } = input(body)?;
        // A secret sent back as get-pipeline printed it (`****`) keeps its value.
        if let Some(name) = pipeline["name"].as_str()
            && let Some(stored) = self.api.store.get_pipeline(name).await?
        {
            let stored = serde_json::to_value(&stored.declaration).unwrap_or_default();
            self.secret_keys().await?.keep_stored(&mut pipeline, &stored);
        }
        let declaration = self.with_role(declaration(pipeline)?)?;
        let record = self.api.admin().update(declaration).await.map_err(|e| self.refused(e))?;
        Ok(json!({"pipeline": self.shown(&record.declaration).await?}))
    }

    /// CodePipeline requires a `roleArn`. So does a host that runs actions as the pipeline's
    /// role: its worker has no permission of its own to run them with. A host that runs them
    /// with its own credentials (one machine) takes a declaration without one.
    fn with_role(&self, d: PipelineDeclaration) -> Result<PipelineDeclaration, ApiError> {
        if self.api.pipeline_roles.is_some() && d.role_arn.is_none() {
            return Err(ApiError::constraint(
                "pipeline.roleArn",
                "null",
                "Member must not be null",
            ));
        }
        Ok(d)
    }

    pub(super) async fn delete_pipeline(&self, body: Value) -> Result<Value, ApiError> {
        let NameIn { name, .. } = input(body)?;
        match self.api.store.delete_pipeline(&name).await {
            // CodePipeline answers a delete of a missing pipeline with success.
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(json!({})),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list_pipelines(&self, body: Value) -> Result<Value, ApiError> {
        let ListIn { next_token, max_results } = input(body)?;
        let page = Page::read("pipelines", next_token.as_deref(), max_results, 100, 1000)?;
        let names = self.api.store.list_pipelines().await?;
        let (names, next) = page.slice("pipelines", names);
        let mut summaries = Vec::with_capacity(names.len());
        for name in names {
            // A pipeline deleted since the listing is left out.
            let Some(r) = self.api.store.get_pipeline(&name).await? else { continue };
            summaries.push(json!({
                "name": r.plan.name,
                "version": r.plan.version,
                "pipelineType": r.declaration.pipeline_type.as_deref().unwrap_or("V1"),
                "executionMode": r.plan.mode.as_str(),
                "created": secs(r.created),
                "updated": secs(r.updated),
            }));
        }
        let mut out = json!({"pipelines": summaries});
        if let Some(token) = next {
            out["nextToken"] = json!(token);
        }
        Ok(out)
    }
}

impl Ctx<'_> {
    /// A declaration as the API prints it: its secrets masked.
    async fn shown(&self, declaration: &PipelineDeclaration) -> Result<Value, ApiError> {
        let mut shown = serde_json::to_value(declaration).unwrap_or_default();
        self.secret_keys().await?.mask_declaration(&mut shown);
        Ok(shown)
    }

    /// CodePipeline's exception for what the pipeline admin refused.
    pub(super) fn refused(&self, e: AdminError) -> ApiError {
        match e {
            AdminError::Invalid(_) => ApiError::new("InvalidStructureException", e.to_string()),
            AdminError::NameInUse(_) => ApiError::new("PipelineNameInUseException", e.to_string()),
            AdminError::NotFound(name) => {
                ApiError::pipeline_not_found(&self.api.placement.account, &name)
            }
            AdminError::NotRunnable(_) => ApiError::validation(e.to_string()),
            AdminError::Store(e) => e.into(),
        }
    }
}

/// The `pipeline` member as a declaration; a shape it cannot have is an invalid structure.
fn declaration(pipeline: Value) -> Result<PipelineDeclaration, ApiError> {
    if !pipeline.is_object() {
        return Err(ApiError::new("InvalidStructureException", "pipeline must be a JSON object"));
    }
    let doc = PipelineDocument::from_value(pipeline).map_err(|e| {
        ApiError::new(
            "InvalidStructureException",
            format!("The pipeline declaration is malformed: {e}"),
        )
    })?;
    Ok(doc.pipeline)
}
