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
    /// The JSON does not have the shape of a pipeline declaration. `path` is a JSON path such as
    /// `pipeline.stages[1].actions[0].runOrder`.
    #[error("{path}: {message}")]
    Shape {
        /// Where in the document.
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
        let (pipeline, envelope, prefix) = match top.shift_remove("pipeline") {
            Some(inner) => (inner, Some(top.into_iter().collect()), "pipeline"),
            None => (Value::Object(top), None, ""),
        };
        let pipeline = serde_path_to_error::deserialize::<_, PipelineDeclaration>(pipeline)
            .map_err(|e| {
                let inner = e.path().to_string();
                let path = match (prefix, inner.as_str()) {
                    ("", p) => p.to_string(),
                    (pre, ".") => pre.to_string(),
                    (pre, p) => format!("{pre}.{p}"),
                };
                shape(&path, &e.into_inner().to_string())
            })?;
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
