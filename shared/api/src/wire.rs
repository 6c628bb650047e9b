//! What crosses the wire: reading JSON 1.1 inputs, writing timestamps and enumerations.

use baton_core::engine::{ActionStatus, ExecutionStatus, Millis, StageStatus};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// The request body as a JSON object; an empty body is an empty input.
pub(super) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::new(
            "SerializationException",
            "Start of structure or map found where not expected.",
        )),
        Err(e) => Err(ApiError::new(
            "SerializationException",
            format!("The request body is not valid JSON: {e}."),
        )),
    }
}

/// Reads an operation's input. A missing required member is a `ValidationException` in AWS's
/// words; a member of the wrong type is a `SerializationException`.
pub(super) fn input<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(field) = missing_field(&inner) {
            let member = if path == "." { field } else { format!("{path}.{field}") };
            return ApiError::constraint(&member, "null", "Member must not be null");
        }
        ApiError::new("SerializationException", format!("{path}: {inner}"))
    })
}

/// `missing field `name`` -> `name`.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// A timestamp as CodePipeline's JSON has it: seconds since the epoch, with a fraction.
pub(super) fn secs(millis: Millis) -> Value {
    serde_json::json!(millis as f64 / 1000.0)
}

/// `PipelineExecutionStatus`.
pub(super) fn execution_status(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::InProgress => "InProgress",
        ExecutionStatus::Stopping => "Stopping",
        ExecutionStatus::Stopped => "Stopped",
        ExecutionStatus::Succeeded => "Succeeded",
        ExecutionStatus::Superseded => "Superseded",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::Cancelled => "Cancelled",
    }
}

/// `StageExecutionStatus`.
pub(super) fn stage_status(s: StageStatus) -> &'static str {
    match s {
        StageStatus::InProgress => "InProgress",
        StageStatus::Stopping => "Stopping",
        StageStatus::Stopped => "Stopped",
        StageStatus::Succeeded => "Succeeded",
        StageStatus::Failed => "Failed",
        StageStatus::Cancelled => "Cancelled",
        StageStatus::Skipped => "Skipped",
    }
}

/// `ActionExecutionStatus`; `None` for an action that has not started.
pub(super) fn action_status(s: ActionStatus) -> Option<&'static str> {
    match s {
        ActionStatus::Pending => None,
        ActionStatus::InProgress => Some("InProgress"),
        ActionStatus::Succeeded => Some("Succeeded"),
        ActionStatus::Failed => Some("Failed"),
        ActionStatus::Abandoned => Some("Abandoned"),
    }
}

/// Drops `null` members, as AWS leaves absent members out.
pub(super) fn compact(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
        for v in map.values_mut() {
            *v = compact(std::mem::take(v));
        }
    } else if let Value::Array(items) = &mut value {
        for v in items.iter_mut() {
            *v = compact(std::mem::take(v));
        }
    }
    value
}
