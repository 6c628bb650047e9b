//! Every structural rule CodePipeline enforces on a declaration. All errors are reported at once.
//!
//! The rules come from the botocore model (patterns, lengths, ranges, enums), the user guide's
//! structure rules and the quotas page. Where a source is vague the rule accepts: refusing a
//! pipeline CodePipeline would take is worse than letting the service report a rare mistake.

mod action;
mod artifacts;
mod conditions;
mod config;
mod index;
mod pipeline;
mod refs;
mod stage;
mod text;
mod triggers;

#[cfg(test)]
mod tests;

use std::fmt;

use super::model::PipelineDeclaration;
use index::Index;

/// One broken rule, with where it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The stage the rule is broken in, if any.
    pub stage: Option<String>,
    /// The action the rule is broken in, if any.
    pub action: Option<String>,
    /// The rule, as a sentence fragment: `runOrder must be between 1 and 999, not 0`.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.stage, &self.action) {
            (Some(s), Some(a)) => write!(f, "stage \"{s}\", action \"{a}\": {}", self.message),
            (Some(s), None) => write!(f, "stage \"{s}\": {}", self.message),
            (None, Some(a)) => write!(f, "action \"{a}\": {}", self.message),
            (None, None) => write!(f, "pipeline: {}", self.message),
        }
    }
}

/// Checks `pipeline` against CodePipeline's rules; `home_region` is the pipeline's own region.
/// Returns every broken rule, in document order; an empty list means the pipeline is valid.
pub fn validate(pipeline: &PipelineDeclaration, home_region: &str) -> Vec<ValidationError> {
    let cx = Context::new(pipeline, home_region);
    let mut errors = Errors::default();
    pipeline::check_head(&cx, &mut errors);
    for (si, stage) in pipeline.stages.iter().enumerate() {
        stage::check(&cx, si, stage, &mut errors);
    }
    pipeline::check_tail(&cx, &mut errors);
    triggers::check(&cx, &mut errors);
    errors.0
}

/// What every rule may look at.
struct Context<'p> {
    pipeline: &'p PipelineDeclaration,
    home_region: &'p str,
    /// Whether V2-only features are refused. Only an explicit `"V1"` does that: CodePipeline
    /// creates a pipeline without `pipelineType` as V2 (its default since December 2024).
    v1: bool,
    index: Index<'p>,
}

impl<'p> Context<'p> {
    fn new(pipeline: &'p PipelineDeclaration, home_region: &'p str) -> Self {
        Self {
            pipeline,
            home_region,
            v1: pipeline.pipeline_type.as_deref() == Some("V1"),
            index: Index::new(pipeline),
        }
    }
}

/// Where an error is reported.
#[derive(Debug, Clone, Copy)]
struct Loc<'p> {
    stage: Option<&'p str>,
    action: Option<&'p str>,
}

impl<'p> Loc<'p> {
    const PIPELINE: Loc<'static> = Loc { stage: None, action: None };

    fn stage(stage: &'p str) -> Self {
        Self { stage: Some(stage), action: None }
    }

    fn action(stage: &'p str, action: &'p str) -> Self {
        Self { stage: Some(stage), action: Some(action) }
    }
}

/// The errors found so far, in the order they were found.
#[derive(Debug, Default)]
struct Errors(Vec<ValidationError>);

impl Errors {
    fn add(&mut self, loc: Loc<'_>, message: impl Into<String>) {
        self.0.push(ValidationError {
            stage: loc.stage.map(str::to_string),
            action: loc.action.map(str::to_string),
            message: message.into(),
        });
    }

    /// Adds the message of a check that may have passed.
    fn check(&mut self, loc: Loc<'_>, outcome: Option<String>) {
        if let Some(message) = outcome {
            self.add(loc, message);
        }
    }

    fn extend(&mut self, loc: Loc<'_>, messages: Vec<String>) {
        for message in messages {
            self.add(loc, message);
        }
    }
}
