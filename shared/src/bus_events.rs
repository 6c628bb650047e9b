//! The events the functions exchange on the bus, in EventBridge's envelope.
//!
//! Internal events use the source [`SOURCE`] and a `Baton ...` detail-type; the public,
//! CodePipeline-shaped state changes travel on the same bus with their own detail-types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `source` of the internal events.
pub const SOURCE: &str = "baton";

/// An event as it is put on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    #[allow(missing_docs)]
    pub source: String,
    #[serde(rename = "detail-type")]
    #[allow(missing_docs)]
    pub detail_type: String,
    /// ARNs the event concerns.
    #[serde(default)]
    pub resources: Vec<String>,
    #[allow(missing_docs)]
    pub detail: Value,
}

use baton_core::engine::{ActionRequest, Effect, Input};
use baton_core::plan::Plan;

/// `detail-type` of a start (trigger → stage-advance).
pub const EXECUTION_REQUESTED: &str = "Baton Execution Requested";
/// `detail-type` of an action request (stage-advance → action-worker or approval).
pub const ACTION_REQUESTED: &str = "Baton Action Requested";
/// `detail-type` of an action result (action-worker → stage-advance).
pub const ACTION_COMPLETED: &str = "Baton Action Completed";
/// `detail-type` of an approval decision (approval → stage-advance).
pub const APPROVAL_DECIDED: &str = "Baton Approval Decided";
/// `detail-type` of a stop, retry or transition change (API → stage-advance).
pub const STAGE_COMMAND: &str = "Baton Stage Command";
/// `detail-type` of the sweeper's tick (time passing: timeouts).
pub const TICK: &str = "Baton Tick";
/// `detail-type` of a failure notice for people.
pub const FAILURE_NOTICE: &str = "Baton Failure Notice";

/// The detail of every event stage-advance consumes: which pipeline, and the engine input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub input: Input,
}

/// Why an event cannot be used. Never worth a retry: the event is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The detail-type is not one this consumer handles.
    #[error("unexpected detail-type \"{0}\"")]
    UnexpectedType(String),
    /// The detail does not have the expected shape.
    #[error("malformed \"{detail_type}\" detail: {source}")]
    Malformed {
        #[allow(missing_docs)]
        detail_type: String,
        #[allow(missing_docs)]
        source: serde_json::Error,
    },
}

impl BusEvent {
    fn internal(detail_type: &str, resources: Vec<String>, detail: Value) -> Self {
        Self { source: SOURCE.into(), detail_type: detail_type.into(), resources, detail }
    }

    /// The event that carries `input` to stage-advance.
    pub fn for_input(pipeline: &str, input: Input) -> Self {
        let detail_type = match input {
            Input::Start { .. } => EXECUTION_REQUESTED,
            Input::ActionCompleted { .. } => ACTION_COMPLETED,
            Input::ApprovalDecided { .. } => APPROVAL_DECIDED,
            Input::Tick => TICK,
            Input::Stop { .. }
            | Input::Retry { .. }
            | Input::DisableTransition { .. }
            | Input::EnableTransition { .. } => STAGE_COMMAND,
        };
        let detail = PipelineInput { pipeline: pipeline.into(), input };
        Self::internal(detail_type, vec![], serde_json::to_value(detail).unwrap_or(Value::Null))
    }

    /// The event for one engine effect.
    pub fn for_effect(plan: &Plan, effect: Effect) -> Self {
        let arn = plan.arn();
        match effect {
            Effect::Publish(e) => Self {
                source: e.source,
                detail_type: e.detail_type,
                resources: e.resources,
                detail: e.detail,
            },
            Effect::RequestAction(r) => Self::internal(
                ACTION_REQUESTED,
                vec![arn],
                serde_json::to_value(*r).unwrap_or(Value::Null),
            ),
            Effect::NotifyFailure(n) => Self::internal(
                FAILURE_NOTICE,
                vec![arn],
                serde_json::to_value(n).unwrap_or(Value::Null),
            ),
        }
    }

    /// Decodes the input of an event for stage-advance.
    ///
    /// # Errors
    /// [`DecodeError`] for any other event or a malformed detail.
    pub fn pipeline_input(&self) -> Result<PipelineInput, DecodeError> {
        match self.detail_type.as_str() {
            EXECUTION_REQUESTED | ACTION_COMPLETED | APPROVAL_DECIDED | STAGE_COMMAND | TICK => {
                self.decode()
            }
            other => Err(DecodeError::UnexpectedType(other.into())),
        }
    }

    /// Decodes an action request.
    ///
    /// # Errors
    /// [`DecodeError`] for any other event or a malformed detail.
    pub fn action_request(&self) -> Result<ActionRequest, DecodeError> {
        match self.detail_type.as_str() {
            ACTION_REQUESTED => self.decode(),
            other => Err(DecodeError::UnexpectedType(other.into())),
        }
    }

    /// Decodes the detail as `T`.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`].
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_value(self.detail.clone()).map_err(|source| DecodeError::Malformed {
            detail_type: self.detail_type.clone(),
            source,
        })
    }
}
