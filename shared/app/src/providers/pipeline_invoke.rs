//! `AWS/Invoke/CodePipeline`: starts another pipeline of this host (`PipelineName`) with the
//! `Variables` and `SourceRevisions` the action gives, as CodePipeline's pipeline invoke does.
//! The action succeeds once the target's execution has started; it does not wait for it.
//!
//! The target's execution id is derived from the attempt, so a request delivered twice starts
//! it once.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use baton_core::engine::{ActionRequest, SourceRevision};
use baton_core::plan::ActionPlan;
use serde::Deserialize;

use super::{Failure, has_reference};
use crate::ports::provider::{
    ActionProvider, Job, JobResult, PipelineStarter, ProviderError, StartError,
};

/// The revision types a pinned revision may have, as `StartPipelineExecution` takes them.
const REVISION_TYPES: [&str; 4] =
    ["COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"];

/// Starts the target pipeline through the host's trigger.
pub struct PipelineInvokeProvider {
    starter: Arc<dyn PipelineStarter>,
}

impl PipelineInvokeProvider {
    #[allow(missing_docs)]
    pub fn new(starter: Arc<dyn PipelineStarter>) -> Self {
        Self { starter }
    }
}

#[derive(Deserialize)]
struct VariableIn {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionIn {
    action_name: String,
    revision_type: String,
    revision_value: String,
}

/// The target, its variables and its pinned revisions, from the action's configuration.
type Invocation = (String, BTreeMap<String, String>, BTreeMap<String, SourceRevision>);

fn read(configuration: &indexmap::IndexMap<String, String>) -> Result<Invocation, String> {
    let pipeline = configuration
        .get("PipelineName")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or("the CodePipeline invoke action needs PipelineName")?;
    let variables = match configuration.get("Variables") {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str::<Vec<VariableIn>>(text)
            .map_err(|e| format!("Variables must be a JSON list of {{\"name\", \"value\"}}: {e}"))?
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect(),
    };
    let mut revisions = BTreeMap::new();
    if let Some(text) = configuration.get("SourceRevisions") {
        let given: Vec<RevisionIn> = serde_json::from_str(text).map_err(|e| {
            format!(
                "SourceRevisions must be a JSON list of {{\"actionName\", \"revisionType\", \"revisionValue\"}}: {e}"
            )
        })?;
        for r in given {
            if !REVISION_TYPES.contains(&r.revision_type.as_str()) {
                return Err(format!(
                    "SourceRevisions: revisionType {} of action {} is not one of {}",
                    r.revision_type,
                    r.action_name,
                    REVISION_TYPES.join(", ")
                ));
            }
            let revision = SourceRevision {
                revision_type: r.revision_type,
                value: r.revision_value,
                branch: None,
            };
            revisions.insert(r.action_name, revision);
        }
    }
    Ok((pipeline, variables, revisions))
}

impl PipelineInvokeProvider {
    async fn invoke(&self, r: &ActionRequest) -> Result<JobResult, ProviderError> {
        let (pipeline, variables, revisions) = match read(&r.configuration) {
            Ok(found) => found,
            Err(why) => return Ok(Failure::configuration(format!("{why}.")).into()),
        };
        if pipeline == r.pipeline {
            return Ok(Failure::configuration("A pipeline cannot invoke itself.").into());
        }
        let execution_id = crate::ports::stable_id(
            &r.execution_id,
            &format!("invoke\n{}\n{}\n{}", r.stage, r.action, r.attempt),
        );
        let by = format!("arn:aws:codepipeline:{}:{}", r.region, r.pipeline);
        match self.starter.start_pipeline(&pipeline, &execution_id, &by, variables, revisions).await
        {
            Ok(()) => Ok(JobResult::Succeeded {
                output_artifacts: Vec::new(),
                output_variables: BTreeMap::new(),
                summary: Some(format!("Started execution {execution_id} of pipeline {pipeline}")),
                external_id: Some(execution_id),
                external_url: None,
            }),
            Err(StartError::Refused(why)) => {
                Ok(Failure::job(format!("Cannot start pipeline {pipeline}: {why}")).into())
            }
            Err(StartError::Unavailable(e)) => Err(ProviderError::Unavailable(e)),
        }
    }
}

#[async_trait]
impl ActionProvider for PipelineInvokeProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        if action.configuration.values().any(|v| has_reference(v)) {
            // Judged once its variables are resolved.
            return Ok(());
        }
        read(&action.configuration).map(|_| ())
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        self.invoke(&job.request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> indexmap::IndexMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_configuration_reads_as_codepipeline_documents_it() {
        let (pipeline, variables, revisions) = read(&config(&[
            ("PipelineName", "downstream"),
            ("Variables", r#"[{"name":"Build","value":"42"}]"#),
            (
                "SourceRevisions",
                r#"[{"actionName":"Source","revisionType":"S3_OBJECT_VERSION_ID","revisionValue":"v1"}]"#,
            ),
        ]))
        .unwrap();
        assert_eq!(pipeline, "downstream");
        assert_eq!(variables, BTreeMap::from([("Build".to_owned(), "42".to_owned())]));
        assert_eq!(revisions["Source"].value, "v1");
        assert!(read(&config(&[])).unwrap_err().contains("PipelineName"));
        let bad = config(&[("PipelineName", "d"), ("Variables", "{}")]);
        assert!(read(&bad).unwrap_err().contains("Variables"));
        let bad_type = config(&[
            ("PipelineName", "d"),
            ("SourceRevisions", r#"[{"actionName":"S","revisionType":"TAG","revisionValue":"x"}]"#),
        ]);
        assert!(read(&bad_type).unwrap_err().contains("TAG"));
    }
}
