//! CodePipeline pipeline declarations: the model, reading and writing files, and validation.

mod document;
pub mod honoured;
mod model;
mod printed;
mod validate;

pub use document::{DocumentError, PipelineDocument};
pub use model::*;
pub use printed::fill_as_codepipeline_does;
pub use validate::{ValidationError, validate};
