//! `#{namespace.variable}` references in configuration values, commands and environment values.

use super::Context;
use super::index::Pos;

/// The reserved namespace of per-execution values.
const CODEPIPELINE: &str = "codepipeline";
/// The reserved namespace of pipeline-level variables.
const VARIABLES: &str = "variables";
/// The only key of the `codepipeline` namespace the user guide documents.
const CODEPIPELINE_KEYS: [&str; 1] = ["PipelineExecutionId"];

/// One `#{...}` found in a text.
#[derive(Debug, PartialEq, Eq)]
enum Reference<'a> {
    /// `#{namespace.key}`; `raw` is the whole reference.
    Variable { raw: &'a str, namespace: &'a str, key: &'a str },
    /// `#{...}` without a non-empty namespace and key around a dot.
    Malformed(&'a str),
    /// `#{` with no closing brace; holds the rest of the text.
    Unterminated(&'a str),
}

fn scan(text: &str) -> Vec<Reference<'_>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        let from = &rest[start..];
        let Some(end) = from.find('}') else {
            found.push(Reference::Unterminated(from));
            break;
        };
        let raw = &from[..=end];
        found.push(match raw[2..end].split_once('.') {
            Some((namespace, key)) if !namespace.is_empty() && !key.is_empty() => {
                Reference::Variable { raw, namespace, key }
            }
            _ => Reference::Malformed(raw),
        });
        rest = &from[end + 1..];
    }
    found
}

/// Every problem with the references in `text`, which sits at `place` (for example
/// `configuration "UserParameters"`) of something that runs at `pos`.
pub(super) fn check(cx: &Context<'_>, pos: Pos, place: &str, text: &str) -> Vec<String> {
    scan(text)
        .into_iter()
        .filter_map(|r| problem(cx, pos, &r))
        .map(|m| format!("{place}: {m}"))
        .collect()
}

fn problem(cx: &Context<'_>, pos: Pos, reference: &Reference<'_>) -> Option<String> {
    match *reference {
        Reference::Unterminated(rest) => Some(format!("unterminated variable reference \"{rest}\"")),
        Reference::Malformed(raw) => {
            Some(format!("variable reference \"{raw}\" must have the form #{{namespace.variable}}"))
        }
        Reference::Variable { raw, namespace: CODEPIPELINE, key } => {
            (!CODEPIPELINE_KEYS.contains(&key)).then(|| {
                format!("\"{raw}\" is not a codepipeline variable; the only one is PipelineExecutionId")
            })
        }
        Reference::Variable { raw, namespace: VARIABLES, key } => (!cx.index.has_variable(key))
            .then(|| format!("\"{raw}\" refers to pipeline variable \"{key}\", which is not declared")),
        Reference::Variable { raw, namespace, .. } => (!cx.index.namespace_before(namespace, pos))
            .then(|| {
                format!(
                    "\"{raw}\" refers to namespace \"{namespace}\", which no action that runs earlier declares"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_every_reference() {
        let found = scan("a #{ns.k} b #{variables.v.x} #{nodot} #{.k} #{open");
        assert_eq!(
            found,
            vec![
                Reference::Variable { raw: "#{ns.k}", namespace: "ns", key: "k" },
                Reference::Variable { raw: "#{variables.v.x}", namespace: "variables", key: "v.x" },
                Reference::Malformed("#{nodot}"),
                Reference::Malformed("#{.k}"),
                Reference::Unterminated("#{open"),
            ]
        );
    }

    #[test]
    fn plain_text_has_no_reference() {
        assert!(scan("echo ${HOME} # comment {x}").is_empty());
    }
}
