//! The control API's errors: CodePipeline's exception names, HTTP statuses and messages.

use baton_core::engine::Rejection;
use serde_json::json;
use tracing::warn;

use super::ApiReply;
use super::sigv4::AuthError;
use baton_app::ports::state::StoreError;
use baton_app::service::ServiceError;

/// A failed call, as the JSON 1.1 protocol reports it: `{"__type": code, "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The exception's name, such as `PipelineNotFoundException`.
    pub code: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// One sentence.
    pub message: String,
}

impl ApiError {
    /// A client error (HTTP 400), as every modeled CodePipeline exception but one is.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, status: 400, message: message.into() }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    /// `ValidationException` in AWS's words for a constraint on one input member.
    pub fn constraint(member: &str, value: &str, constraint: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// `PipelineNotFoundException`.
    pub fn pipeline_not_found(account: &str, name: &str) -> Self {
        Self::new(
            "PipelineNotFoundException",
            format!("Account '{account}' does not have a pipeline with name '{name}'"),
        )
    }

    /// `PipelineExecutionNotFoundException`.
    pub fn execution_not_found(pipeline: &str, id: &str) -> Self {
        Self::new(
            "PipelineExecutionNotFoundException",
            format!("Pipeline execution '{id}' does not exist in pipeline '{pipeline}'"),
        )
    }

    /// `InvalidNextTokenException`.
    pub fn invalid_next_token() -> Self {
        Self::new("InvalidNextTokenException", "The next token is not valid for this request.")
    }

    /// A failure of Baton itself (HTTP 500); the cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        warn!(error = %cause, "control API call failed");
        Self {
            code: "InternalFailure",
            status: 500,
            message: "The request processing has failed because of an unknown error.".into(),
        }
    }

    /// The reply to send.
    pub fn reply(&self) -> ApiReply {
        let body = json!({"__type": self.code, "message": self.message});
        ApiReply { status: self.status, body: body.to_string().into_bytes() }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let message = r.to_string();
        let code = match r {
            Rejection::ExecutionNotFound(_) => "PipelineExecutionNotFoundException",
            Rejection::StageNotFound(_) => "StageNotFoundException",
            Rejection::ActionNotFound { .. } => "ActionNotFoundException",
            Rejection::InvalidVariables(_) => "ValidationException",
            Rejection::StageNotRetryable(_) => "StageNotRetryableException",
            Rejection::NotLatestPipelineExecution { .. } => "NotLatestPipelineExecutionException",
            Rejection::ApprovalAlreadyCompleted => "ApprovalAlreadyCompletedException",
            Rejection::InvalidApprovalToken => "InvalidApprovalTokenException",
            Rejection::NotStoppable(_) => "PipelineExecutionNotStoppableException",
            Rejection::DuplicatedStopRequest(_) => "DuplicatedStopRequestException",
            Rejection::InvalidSourceRevision(_) => "ValidationException",
            Rejection::ConditionNotOverridable(_) => "ConditionNotOverridableException",
            Rejection::UnableToRollbackStage(_) => "UnableToRollbackStageException",
            Rejection::ExecutionOutdated(_) => "PipelineExecutionOutdatedException",
        };
        Self::new(code, message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self { code: e.code(), status: 403, message: e.to_string() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::internal(&e)
    }
}
