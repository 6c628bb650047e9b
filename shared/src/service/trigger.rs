//! trigger: starts executions, from the API or from a source change (a push, an upload).

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::engine::{Input, Trigger as ExecutionTrigger};
use baton_core::events::format_uuid;

use super::ServiceError;
use crate::bus_events::BusEvent;
use crate::ports::bus::EventBus;
use crate::ports::clock::entropy;
use crate::ports::state::StateStore;

/// A change in a source: a push to a branch of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePush {
    /// The CodeCommit repository name.
    pub repository: String,
    /// The branch pushed to.
    pub branch: String,
    /// The commit pushed, if known.
    pub commit: Option<String>,
}

/// The trigger service.
pub struct Trigger {
    store: Arc<dyn StateStore>,
    bus: Arc<dyn EventBus>,
}

impl Trigger {
    #[allow(missing_docs)]
    pub fn new(store: Arc<dyn StateStore>, bus: Arc<dyn EventBus>) -> Self {
        Self { store, bus }
    }

    /// Starts an execution of `pipeline`; returns its id.
    ///
    /// # Errors
    /// [`ServiceError::Permanent`] when the pipeline does not exist; retryable errors when the
    /// bus is unavailable.
    pub async fn start(
        &self,
        pipeline: &str,
        trigger: ExecutionTrigger,
        variables: BTreeMap<String, String>,
    ) -> Result<String, ServiceError> {
        if self.store.get_pipeline(pipeline).await?.is_none() {
            return Err(ServiceError::Permanent(format!("pipeline {pipeline} does not exist")));
        }
        let bits = entropy().map_err(|e| ServiceError::Permanent(format!("no randomness: {e}")))?;
        let execution_id = format_uuid(bits);
        let input = Input::Start { execution_id: execution_id.clone(), trigger, variables };
        self.bus.publish(&[BusEvent::for_input(pipeline, input)]).await?;
        Ok(execution_id)
    }

    /// Starts every pipeline whose CodeCommit source action watches the pushed branch, the way
    /// an EventBridge rule on CodeCommit's "Repository State Change" does. Returns the
    /// (pipeline, execution id) pairs started.
    ///
    /// # Errors
    /// As [`Trigger::start`].
    pub async fn on_push(&self, push: &SourcePush) -> Result<Vec<(String, String)>, ServiceError> {
        let mut started = Vec::new();
        for name in self.store.list_pipelines().await? {
            let Some(record) = self.store.get_pipeline(&name).await? else { continue };
            let Some(first) = record.plan.stages.first() else { continue };
            let watches = first.actions.iter().any(|a| {
                a.action_type.provider == "CodeCommit"
                    && a.configuration.get("RepositoryName") == Some(&push.repository)
                    && a.configuration.get("BranchName") == Some(&push.branch)
            });
            if watches {
                let detail = match &push.commit {
                    Some(c) => format!("{}/{}@{c}", push.repository, push.branch),
                    None => format!("{}/{}", push.repository, push.branch),
                };
                let trigger = ExecutionTrigger {
                    trigger_type: "CloudWatchEvent".into(),
                    trigger_detail: detail,
                };
                let id = self.start(&name, trigger, BTreeMap::new()).await?;
                started.push((name, id));
            }
        }
        Ok(started)
    }
}
