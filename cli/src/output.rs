//! `--output text|json|table` (or `BATON_OUTPUT`): how a command prints its result.
//!
//! - `text`, the default: sentences and tables for a person.
//! - `json`: one JSON document on standard output, for scripts (`jq`). Where the command does
//!   what a CodePipeline operation does, the document is that operation's answer, with
//!   CodePipeline's member names, so a script written for the AWS CLI's output reads it.
//!   Everything else a command prints on the way (the live view, notes) goes to standard error.
//! - `table`: lists as aligned columns under a header; other results as `text`.

use std::fmt::Display;
use std::sync::OnceLock;

use serde_json::Value;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
    Table,
}

static CHOSEN: OnceLock<Output> = OnceLock::new();

/// Sets the output for this process (once, from the command line).
pub(crate) fn choose(output: Output) {
    let _ = CHOSEN.set(output);
}

/// The output this process prints in.
pub(crate) fn chosen() -> Output {
    CHOSEN.get().copied().unwrap_or_default()
}

/// Whether results are one JSON document.
pub(crate) fn json() -> bool {
    chosen() == Output::Json
}

/// A command's result: `document` under `--output json`, else `text`.
pub(crate) fn result(document: &Value, text: impl Display) {
    if json() {
        println!("{}", serde_json::to_string_pretty(document).unwrap_or_default());
    } else {
        println!("{text}");
    }
}

/// A line said on the way (not the result): standard error under `--output json`, so standard
/// output holds the document alone.
pub(crate) fn note(line: impl Display) {
    if json() {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// A server's address once it listens: one JSON line on standard output under `--output
/// json` (the banner is on standard error either way).
pub(crate) fn ready(document: &Value) {
    use std::io::Write;
    if json() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{document}");
        let _ = out.flush();
    }
}

/// `rows` as columns under `header`, each as wide as its widest cell (the last left ragged).
pub(crate) fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(
                |(i, c)| {
                    if i == last { (*c).to_owned() } else { format!("{c:<w$}", w = widths[i]) }
                },
            )
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_under_their_header() {
        let rows = vec![
            vec!["a1".to_owned(), "Succeeded".to_owned(), "done".to_owned()],
            vec!["b".to_owned(), "Failed".to_owned(), String::new()],
        ];
        let drawn = columns(&["ID", "STATUS", "SUMMARY"], &rows);
        assert_eq!(drawn, "ID  STATUS     SUMMARY\na1  Succeeded  done\nb   Failed");
    }
}
