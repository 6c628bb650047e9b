//! One control API for every command that drives pipelines: CodePipeline's operations (and
//! Baton's own `GetExecutionDetail`), answered in process for a home or over HTTP for
//! `--endpoint`. The commands (`commands.rs`) are written once against [`Control`].

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::names::nearest;

/// Where commands send their calls.
pub(crate) trait Control {
    /// One call: its output, or the API's error body (`__type`, `message`).
    async fn exchange(&self, operation: &str, input: &Value) -> Result<Result<Value, Value>>;

    /// The sentence for a pipeline that is not there, from the API's own `refusal`.
    fn no_pipeline(&self, name: &str, refusal: &Value) -> String;

    /// After a command changed an execution: a home carries it on in this process when no
    /// other process runs the home; a server runs it already.
    async fn carry_on(&self, pipeline: &str, execution: &str) -> Result<ExitCode>;

    /// Calls `operation`: its output, or the API's error as one sentence; a missing pipeline
    /// comes with the nearest names that exist, a missing execution with the latest ones.
    async fn call(&self, operation: &str, input: &Value) -> Result<Value> {
        let refused = match self.exchange(operation, input).await? {
            Ok(output) => return Ok(output),
            Err(refused) => refused,
        };
        let wanted =
            input.get("name").or_else(|| input.get("pipelineName")).and_then(Value::as_str);
        match (refused["__type"].as_str(), wanted) {
            (Some(code), Some(wanted)) if code.ends_with("PipelineNotFoundException") => {
                let listed = self.exchange("ListPipelines", &json!({"maxResults": 1000})).await;
                let names: Vec<String> = match listed {
                    Ok(Ok(list)) => list["pipelines"]
                        .as_array()
                        .map(|p| p.iter().map(|p| text(p, "name").to_owned()).collect())
                        .unwrap_or_default(),
                    _ => return Err(api_error(&refused)),
                };
                let nearest = nearest(wanted, names.iter().map(String::as_str));
                Err(anyhow!("{}{nearest}", self.no_pipeline(wanted, &refused)))
            }
            // An execution id that is not there (not the latest of a pipeline that never ran).
            (Some(code), Some(pipeline))
                if code.ends_with("PipelineExecutionNotFoundException")
                    && input.get("pipelineExecutionId").is_some() =>
            {
                Err(anyhow!("{}{}", api_error(&refused), self.latest_executions(pipeline).await))
            }
            _ => Err(api_error(&refused)),
        }
    }

    /// For an execution id that is not there: the pipeline's latest ones, to pick from.
    async fn latest_executions(&self, pipeline: &str) -> String {
        let input = json!({"pipelineName": pipeline, "maxResults": 3});
        let Ok(Ok(listed)) = self.exchange("ListPipelineExecutions", &input).await else {
            return String::new();
        };
        let latest: Vec<String> = listed["pipelineExecutionSummaries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} ({})",
                    crate::view::short(text(e, "pipelineExecutionId")),
                    text(e, "status")
                )
            })
            .collect();
        match latest.as_slice() {
            [] => ": it has not run yet".to_owned(),
            [one] => format!(": its only one is {one}"),
            many => format!(": its latest are {}", many.join(", ")),
        }
    }
}

/// `{"__type": "...Exception", "message": ...}` as `<message> (<ExceptionName>)`.
pub(crate) fn api_error(v: &Value) -> anyhow::Error {
    let raw = v["__type"].as_str().unwrap_or("UnknownError");
    // Some services prefix a namespace (`com.amazonaws...#Name`) or suffix a URL (`Name:http...`).
    let code = raw.rsplit('#').next().unwrap_or(raw);
    let code = code.split(':').next().unwrap_or(code);
    let message = v["message"].as_str().or_else(|| v["Message"].as_str()).unwrap_or("").trim();
    if message.is_empty() {
        anyhow!("the call failed ({code})")
    } else {
        anyhow!("{message} ({code})")
    }
}

/// The string member `key` of `v`, or empty.
pub(crate) fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or("")
}
