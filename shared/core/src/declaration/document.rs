//! Reading a declaration file in any of the three shapes users have, and writing it back.
//!
//! - what `aws codepipeline get-pipeline` prints: `{"pipeline": {...}, "metadata": {...}}`;
//! - what `create-pipeline --cli-input-json` takes: `{"pipeline": {...}, "tags": [...]}`;
//! - a bare pipeline object.
//!
//! Everything beside the pipeline (metadata, tags, unknown keys) is kept as it was.

use indexmap::IndexMap;
use serde_json::Value;

use super::model::PipelineDeclaration;

/// A parsed declaration file.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineDocument {
    /// The pipeline itself.
    pub pipeline: PipelineDeclaration,
    /// `None` for a bare pipeline object; otherwise the keys that stood beside `pipeline`
    /// (`metadata`, `tags`, ...), in their order.
    pub envelope: Option<IndexMap<String, Value>>,
}

/// Why a file is not a declaration.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not JSON. Carries the 1-based line and column where reading stopped.
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON reader expected.
        message: String,
    },
    /// The JSON does not have the shape of a pipeline declaration: `path` says where as rule
    /// errors do (`stage "Test", action "SmokeTests"`, or `pipeline`), `message` which field and
    /// what it must be.
    #[error("{path}: {message}")]
    Shape {
        /// Where in the declaration.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl PipelineDocument {
    /// Parses a declaration from JSON text.
    ///
    /// # Errors
    /// [`DocumentError::Syntax`] when the text is not JSON; [`DocumentError::Shape`] when a field
    /// has the wrong type or a required field (a stage's or an action's `name`,
    /// `actionTypeId`) is missing. Rule violations are not errors here: see
    /// [`crate::declaration::validate`].
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DocumentError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Self::from_value(value)
    }

    /// Builds a document from already-parsed JSON.
    ///
    /// # Errors
    /// [`DocumentError::Shape`] as for [`PipelineDocument::parse`].
    pub fn from_value(value: Value) -> Result<Self, DocumentError> {
        let Value::Object(mut top) = value else {
            return Err(shape("$", "a pipeline declaration must be a JSON object"));
        };
        let (pipeline, envelope) = match top.shift_remove("pipeline") {
            Some(inner) => (inner, Some(top.into_iter().collect())),
            None => (Value::Object(top), None),
        };
        let pipeline = serde_path_to_error::deserialize::<_, PipelineDeclaration>(&pipeline)
            .map_err(|e| located(&pipeline, e.path(), &e.inner().to_string()))?;
        Ok(Self { pipeline, envelope })
    }

    /// The document as JSON, in the shape it was read in.
    pub fn to_value(&self) -> Value {
        let pipeline = serde_json::to_value(&self.pipeline).unwrap_or(Value::Null);
        match &self.envelope {
            None => pipeline,
            Some(rest) => {
                let mut map = serde_json::Map::new();
                map.insert("pipeline".into(), pipeline);
                for (k, v) in rest {
                    map.insert(k.clone(), v.clone());
                }
                Value::Object(map)
            }
        }
    }

    /// The document as pretty JSON text.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }
}

/// A type error where rule errors are reported: by stage and action name, then the field and
/// what it must be (`stage "Test", action "SmokeTests": runOrder must be a number from 1 to
/// 999, not "two"`), not as a JSON path and serde's words.
fn located(pipeline: &Value, path: &serde_path_to_error::Path, message: &str) -> DocumentError {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let (mut stage, mut action, mut field) = (None, None, Vec::new());
    let mut cursor = Some(pipeline);
    let mut i = 0;
    while i < segments.len() {
        let next = segments.get(i + 1);
        match (segments[i], next) {
            (Segment::Map { key }, Some(Segment::Seq { index }))
                if field.is_empty() && (key == "stages" || key == "actions") =>
            {
                let item = cursor.and_then(|c| c.get(key.as_str())).and_then(|l| l.get(*index));
                let name = item
                    .and_then(|v| v.get("name"))
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("#{}", index + 1), |n| format!("\"{n}\""));
                if key == "stages" {
                    stage = Some(name)
                } else {
                    action = Some(name)
                }
                cursor = item;
                i += 2;
                continue;
            }
            (Segment::Map { key }, _) => field.push(key.clone()),
            (Segment::Seq { index }, _) => field.push(format!("[{index}]")),
            (Segment::Enum { variant }, _) => field.push(variant.clone()),
            (Segment::Unknown, _) => {}
        }
        i += 1;
    }
    let field = field.join(".").replace(".[", "[");
    let place = match (stage, action) {
        (Some(s), Some(a)) => format!("stage {s}, action {a}"),
        (Some(s), None) => format!("stage {s}"),
        (None, Some(a)) => format!("action {a}"),
        (None, None) => "pipeline".to_owned(),
    };
    shape(&place, &plain_words(&field, message))
}

/// serde's message about `field`, in the words of a rule: what it must be, and what it is.
fn plain_words(field: &str, message: &str) -> String {
    let name = if field.is_empty() { "the declaration" } else { field };
    if let Some(missing) = message.strip_prefix("missing field ") {
        let missing = missing.trim_matches('`');
        return if field.is_empty() {
            format!("{missing} is required")
        } else {
            format!("{field}.{missing} is required")
        };
    }
    let kind =
        message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "));
    let Some((got, expected)) = kind.and_then(|k| k.split_once(", expected ")) else {
        return format!("{name}: {message}");
    };
    let expected = match expected {
        _ if field.ends_with("runOrder") => "a number from 1 to 999",
        "i64" | "i32" | "u32" | "u64" | "u8" | "u16" | "usize" | "an integer" => "a number",
        "a sequence" => "a list",
        "a boolean" => "true or false",
        e if e == "a map" || e.starts_with("struct ") => "an object",
        e => e,
    };
    let got = match got.split_once(' ') {
        Some(("string", text)) => text.to_owned(),
        Some((_, value)) => value.trim_matches('`').to_owned(),
        None => match got {
            "map" => "an object".to_owned(),
            "sequence" => "a list".to_owned(),
            other => other.to_owned(),
        },
    };
    format!("{name} must be {expected}, not {got}")
}

fn shape(path: &str, message: &str) -> DocumentError {
    DocumentError::Shape { path: path.to_string(), message: message.to_string() }
}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_error(json: &str) -> String {
        PipelineDocument::parse(json).unwrap_err().to_string()
    }

    const HEAD: &str = r#""name": "p", "roleArn": "arn:aws:iam::111111111111:role/r",
        "artifactStore": {"type": "S3", "location": "b"}"#;

    #[test]
    fn type_errors_name_the_stage_the_action_and_the_field_as_rules_do() {
        let wrong_run_order = format!(
            r#"{{"pipeline": {{{HEAD}, "stages": [{{"name": "Test", "actions": [{{"name": "SmokeTests",
                "actionTypeId": {{"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
                "runOrder": "two"}}]}}]}}}}"#
        );
        assert_eq!(
            shape_error(&wrong_run_order),
            "stage \"Test\", action \"SmokeTests\": runOrder must be a number from 1 to 999, not \"two\""
        );
        let unnamed =
            format!(r#"{{{HEAD}, "stages": [{{"name": "S", "actions": [{{"name": 1}}]}}]}}"#);
        assert_eq!(shape_error(&unnamed), "stage \"S\", action #1: name must be a string, not 1");
        let no_type =
            format!(r#"{{{HEAD}, "stages": [{{"name": "S", "actions": [{{"name": "A"}}]}}]}}"#);
        assert_eq!(shape_error(&no_type), "stage \"S\", action \"A\": actionTypeId is required");
        let stages_object = format!(r#"{{{HEAD}, "stages": {{}}}}"#);
        assert_eq!(shape_error(&stages_object), "pipeline: stages must be a list, not an object");
        let nested = format!(
            r#"{{{HEAD}, "stages": [{{"name": "S", "actions": [{{"name": "A",
                "actionTypeId": {{"category": 5, "owner": "AWS", "provider": "S3", "version": "1"}}}}]}}]}}"#
        );
        assert_eq!(
            shape_error(&nested),
            "stage \"S\", action \"A\": actionTypeId.category must be a string, not 5"
        );
    }
}
