//! `baton validate`: one summary line per valid file, one line per broken rule otherwise.
//!
//! Exit status: 0 when every file is valid, 1 when some file breaks a rule, 2 when some file
//! could not be read or is not JSON (the worst outcome wins).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use baton_core::declaration::{DocumentError, PipelineDeclaration, PipelineDocument, validate};
use serde_json::{Value, json};

/// What became of one file, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Valid,
    Invalid,
    Unreadable,
}

pub(crate) fn run(files: &[PathBuf], region: &str) -> ExitCode {
    let checked: Vec<(Outcome, Value)> = files.iter().map(|f| check_file(f, region)).collect();
    if crate::output::json() {
        let reports: Vec<&Value> = checked.iter().map(|(_, report)| report).collect();
        print_line(&serde_json::to_string_pretty(&reports).unwrap_or_default());
    }
    let worst = checked.iter().map(|(outcome, _)| *outcome).max().unwrap_or(Outcome::Valid);
    match worst {
        Outcome::Valid => ExitCode::SUCCESS,
        Outcome::Invalid => ExitCode::from(1),
        Outcome::Unreadable => ExitCode::from(2),
    }
}

/// One file's outcome, printed as lines (`text`), and its report for `--output json`:
/// `{"file", "valid", "summary"}` or `{"file", "valid": false, "errors": [...]}`.
fn check_file(path: &Path, region: &str) -> (Outcome, Value) {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return report_unreadable(&file, format!("cannot read: {e}")),
    };
    let document = match PipelineDocument::parse(&text) {
        Ok(document) => document,
        Err(e @ DocumentError::Syntax { .. }) => return report_unreadable(&file, e),
        Err(e @ DocumentError::Shape { .. }) => return invalid(&file, &[e.to_string()]),
    };
    let errors = validate(&document.pipeline, region);
    if errors.is_empty() {
        let summary = summary(&document.pipeline, region);
        if !crate::output::json() {
            print_line(&format!("{file}: valid: {summary}"));
        }
        let report = json!({"file": file.to_string(), "valid": true, "summary": summary});
        return (Outcome::Valid, report);
    }
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    invalid(&file, &errors)
}

fn invalid(file: &impl Display, errors: &[String]) -> (Outcome, Value) {
    if !crate::output::json() {
        for error in errors {
            print_line(&format!("{file}: {error}"));
        }
    }
    (Outcome::Invalid, json!({"file": file.to_string(), "valid": false, "errors": errors}))
}

fn report_unreadable(file: &impl Display, reason: impl Display) -> (Outcome, Value) {
    eprintln!("{file}: {reason}");
    (
        Outcome::Unreadable,
        json!({"file": file.to_string(), "valid": false, "errors": [reason.to_string()]}),
    )
}

/// Writes a line to stdout; a closed pipe (`baton validate ... | head`) ends the command as it
/// ends the others (`quiet_on_closed_pipe` in main.rs), with 141 rather than a false 0.
fn print_line(line: &str) {
    println!("{line}");
}

/// `pipeline "release" (V2, SUPERSEDED), 5 stages, 9 actions, regions us-east-1, eu-west-1`.
fn summary(pipeline: &PipelineDeclaration, home_region: &str) -> String {
    // Absent fields take CodePipeline's defaults: V2 for new pipelines, SUPERSEDED.
    let kind = pipeline.pipeline_type.as_deref().unwrap_or("V2");
    let mode = pipeline.execution_mode.as_deref().unwrap_or("SUPERSEDED");
    let actions: usize = pipeline.stages.iter().map(|s| s.actions.len()).sum();
    let mut regions = vec![home_region];
    let action_regions =
        pipeline.stages.iter().flat_map(|s| &s.actions).filter_map(|a| a.region.as_deref());
    for region in action_regions {
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    format!(
        "pipeline \"{}\" ({kind}, {mode}), {}, {}, {} {}",
        pipeline.name,
        plural(pipeline.stages.len(), "stage"),
        plural(actions, "action"),
        if regions.len() == 1 { "region" } else { "regions" },
        regions.join(", "),
    )
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
