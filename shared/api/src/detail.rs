//! Baton's own operations, under their own target prefix ([`BATON_TARGET_PREFIX`]): what the
//! `baton` CLI shows that CodePipeline's API has no answer for. No AWS tool calls them.
//!
//! `GetExecutionDetail` gives one execution whole, as the engine keeps it, with the plan of
//! the pipeline's current version, so `baton status` shows the same table against a home, a
//! `baton serve` or a deployment.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::wire::input;
use crate::{BATON_TARGET_PREFIX, Ctx};

/// Baton's own operations.
pub const BATON_OPERATIONS: [&str; 3] =
    ["GetExecutionDetail", "RegisterPartnerActionType", "DeregisterPartnerActionType"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DetailIn {
    pipeline_name: String,
    /// The id, or the first characters the views print; the latest execution when absent.
    pipeline_execution_id: Option<String>,
}

impl Ctx<'_> {
    /// `GetExecutionDetail`: `{"plan": ..., "execution": ...}`.
    pub(crate) async fn get_execution_detail(&self, body: Value) -> Result<Value, ApiError> {
        let DetailIn { pipeline_name, pipeline_execution_id } = input(body)?;
        let record = self.pipeline(&pipeline_name).await?;
        let store = &self.api.store;
        let execution = match pipeline_execution_id.as_deref() {
            None => {
                store.executions(&pipeline_name, 1).await?.into_iter().next().ok_or_else(|| {
                    ApiError::new(
                        "PipelineExecutionNotFoundException",
                        format!("pipeline \"{pipeline_name}\" has not run yet"),
                    )
                })?
            }
            Some(id) => match store.execution(&pipeline_name, id).await? {
                Some(e) => e,
                None => {
                    let mut matches: Vec<_> = store
                        .executions(&pipeline_name, 1000)
                        .await?
                        .into_iter()
                        .filter(|e| e.id.starts_with(id))
                        .collect();
                    if matches.len() > 1 {
                        return Err(ApiError::validation(format!(
                            "{id} matches several executions of \"{pipeline_name}\"; give more of the id"
                        )));
                    }
                    matches.pop().ok_or_else(|| {
                        ApiError::new(
                            "PipelineExecutionNotFoundException",
                            format!("pipeline \"{pipeline_name}\" has no execution {id}"),
                        )
                    })?
                }
            },
        };
        let (mut plan, mut execution) = (record.plan, execution);
        self.secret_keys().await?.mask_run(&mut plan, &mut execution);
        Ok(json!({"plan": plan, "execution": execution}))
    }
}

/// The operation a Baton target names (`Baton_20261201.GetExecutionDetail`), if it is one.
pub(crate) fn baton_operation(target: &str) -> Option<&str> {
    let op = target.strip_prefix(BATON_TARGET_PREFIX)?.strip_prefix('.')?;
    BATON_OPERATIONS.contains(&op).then_some(op)
}
