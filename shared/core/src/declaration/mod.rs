//! CodePipeline pipeline declarations: the model, reading and writing files, and validation.

mod document;
mod model;
mod validate;

pub use document::{DocumentError, PipelineDocument};
pub use model::*;
pub use validate::{ValidationError, validate};
