//! Rules on the artifacts an action produces and consumes.

use super::action::ActionAt;
use super::text::{self, Charset};
use super::{Context, Errors};
use crate::catalog::Count;
use crate::declaration::model::{InputArtifact, OutputArtifact};

pub(super) fn check(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let outputs = at.action.output_artifacts.as_deref().unwrap_or_default();
    for (i, output) in outputs.iter().enumerate() {
        check_output(cx, at, &outputs[..i], output, errors);
    }
    let inputs = at.action.input_artifacts.as_deref().unwrap_or_default();
    errors.extend(at.loc, check_inputs(cx, at.pos, inputs));
    let Some(spec) = at.spec else { return };
    let provider = spec.provider;
    if !spec.inputs.allows(inputs.len()) {
        let bounds = bounds(spec.inputs, "input");
        errors.add(at.loc, format!("{provider} takes {bounds}, not {}", inputs.len()));
    }
    if !spec.outputs.allows(outputs.len()) {
        let bounds = bounds(spec.outputs, "output");
        errors.add(at.loc, format!("{provider} produces {bounds}, not {}", outputs.len()));
    }
}

fn check_output(
    cx: &Context<'_>,
    at: &ActionAt<'_>,
    earlier: &[OutputArtifact],
    output: &OutputArtifact,
    errors: &mut Errors,
) {
    let name = &output.name;
    errors.check(at.loc, text::token("output artifact name", name, 1, 100, Charset::Artifact));
    let first = cx.index.first_producer(name).filter(|s| !s.is(at.stage, at.index));
    if earlier.iter().any(|o| &o.name == name) {
        errors.add(at.loc, format!("output artifact \"{name}\" is listed more than once"));
    } else if let Some(first) = first {
        let (stage, action) = (first.stage_name, first.action_name);
        let message = format!(
            "output artifact \"{name}\" is already produced by stage \"{stage}\", action \"{action}\""
        );
        errors.add(at.loc, message);
    }
    let Some(files) = &output.files else { return };
    let what = format!("output artifact \"{name}\" files");
    errors.check(at.loc, text::count(&what, "paths", files.len(), 1, 10));
    for file in files {
        errors.check(at.loc, text::length(&format!("{what} path"), file, 1, 128));
    }
}

/// Checks the input artifacts of an action or a rule that runs at `pos`.
pub(super) fn check_inputs(
    cx: &Context<'_>,
    pos: super::index::Pos,
    inputs: &[InputArtifact],
) -> Vec<String> {
    let mut messages = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = &input.name;
        messages.extend(text::token("input artifact name", name, 1, 100, Charset::Artifact));
        if inputs[..i].iter().any(|earlier| &earlier.name == name) {
            messages.push(format!("input artifact \"{name}\" is listed more than once"));
        } else if !cx.index.produced_before(name, pos) {
            messages
                .push(format!("input artifact \"{name}\" is not produced by an earlier action"));
        }
    }
    messages
}

/// `1 to 5 input artifacts`, `exactly 1 output artifact`, `no input artifacts`.
fn bounds(count: Count, kind: &str) -> String {
    match (count.min, count.max) {
        (0, 0) => format!("no {kind} artifacts"),
        (1, 1) => format!("exactly 1 {kind} artifact"),
        (min, max) if min == max => format!("exactly {min} {kind} artifacts"),
        (min, max) => format!("{min} to {max} {kind} artifacts"),
    }
}
