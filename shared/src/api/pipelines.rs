//! CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines.

use baton_core::declaration::{PipelineDeclaration, PipelineDocument};
use baton_core::engine::Input;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pagination::Page;
use super::tags::{TagIn, checked_tags, tags_json};
use super::wire::{input, secs};
use super::{ApiError, Ctx};
use crate::bus_events::PipelineInput;
use crate::embedded::{EmbeddedError, plan_pipeline};
use crate::ports::state::{PipelineRecord, StoreError};

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
        let mut declaration = declaration(pipeline)?;
        let tags = checked_tags(tags)?;
        if self.api.store.get_pipeline(&declaration.name).await?.is_some() {
            return Err(name_in_use(&declaration.name));
        }
        declaration.version = Some(1);
        let plan = self.plan(&declaration)?;
        let now = self.api.clock.now();
        let record = PipelineRecord { declaration, plan, created: now, updated: now, tags };
        match self.api.store.create_pipeline(&record).await {
            Ok(()) => {}
            Err(StoreError::Exists(_)) => return Err(name_in_use(&record.plan.name)),
            Err(e) => return Err(e.into()),
        }
        Ok(json!({"pipeline": record.declaration, "tags": tags_json(&record.tags)}))
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
            "pipeline": record.declaration,
            "metadata": {
                "pipelineArn": record.plan.arn(),
                "created": secs(record.created),
                "updated": secs(record.updated),
            },
        }))
    }

    pub(super) async fn update_pipeline(&self, body: Value) -> Result<Value, ApiError> {
        let UpdateIn { pipeline } = input(body)?;
        let mut declaration = declaration(pipeline)?;
        let existing = self.pipeline(&declaration.name).await?;
        declaration.version = Some(existing.plan.version + 1);
        let plan = self.plan(&declaration)?;
        let record = PipelineRecord {
            declaration,
            plan,
            created: existing.created,
            updated: self.api.clock.now(),
            tags: existing.tags,
        };
        self.api.store.update_pipeline(&record).await?;
        // CodePipeline cancels executions of the old declaration at once; so does a tick.
        let tick = PipelineInput { pipeline: record.plan.name.clone(), input: Input::Tick };
        if let Err(e) = self.api.stage_advance.handle(tick).await {
            tracing::warn!(error = %e, "executions of the old declaration are cancelled at the next sweep");
        }
        Ok(json!({"pipeline": record.declaration}))
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

    /// Validates the declaration and refuses what this runtime cannot run, as `baton run` does.
    fn plan(&self, declaration: &PipelineDeclaration) -> Result<baton_core::plan::Plan, ApiError> {
        plan_pipeline(declaration, &self.api.placement, &self.api.providers).map_err(|e| match e {
            EmbeddedError::Invalid(messages) => {
                ApiError::new("InvalidStructureException", messages.join("; "))
            }
            other => ApiError::internal(&other),
        })
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

fn name_in_use(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNameInUseException",
        format!("A pipeline with the name '{name}' already exists"),
    )
}
