//! Rules on git triggers (V2).

use super::text;
use super::{Context, Errors, Loc};
use crate::declaration::model::{GitFilter, GlobCriteria, TriggerDeclaration};

const PIPELINE: Loc<'static> = Loc::PIPELINE;
const CONNECTION: &str = "CodeStarSourceConnection";

pub(super) fn check(cx: &Context<'_>, errors: &mut Errors) {
    let Some(triggers) = &cx.pipeline.triggers else {
        return;
    };
    if cx.v1 {
        errors.add(PIPELINE, "triggers require pipelineType V2");
    }
    errors.check(PIPELINE, text::count("a pipeline", "triggers", triggers.len(), 0, 50));
    for (i, trigger) in triggers.iter().enumerate() {
        let source = &trigger.git_configuration.source_action_name;
        let prefix = format!("trigger for source action \"{source}\": ");
        let messages = check_trigger(cx, &triggers[..i], trigger);
        errors.extend(PIPELINE, messages.into_iter().map(|m| format!("{prefix}{m}")).collect());
    }
}

fn check_trigger(
    cx: &Context<'_>,
    earlier: &[TriggerDeclaration],
    trigger: &TriggerDeclaration,
) -> Vec<String> {
    let mut messages = Vec::new();
    messages.extend(text::one_of("providerType", &trigger.provider_type, &[CONNECTION]));
    let git = &trigger.git_configuration;
    let source = &git.source_action_name;
    messages.extend(check_source(cx, source));
    if earlier.iter().any(|t| &t.git_configuration.source_action_name == source) {
        messages.push("the source action already has a trigger".into());
    }
    if let Some(push) = &git.push {
        messages.extend(text::count("push", "filters", push.len(), 1, 3));
        for (i, filter) in push.iter().enumerate() {
            messages.extend(check_filter(&format!("push filter {}", i + 1), filter, false));
        }
    }
    if let Some(pull_request) = &git.pull_request {
        messages.extend(text::count("pullRequest", "filters", pull_request.len(), 1, 3));
        for (i, filter) in pull_request.iter().enumerate() {
            messages.extend(check_filter(&format!("pullRequest filter {}", i + 1), filter, true));
        }
    }
    messages
}

/// The trigger's action must be a source action on a connection.
fn check_source(cx: &Context<'_>, name: &str) -> Option<String> {
    let actions = cx.pipeline.stages.iter().flat_map(|s| &s.actions);
    let mut sources = actions.filter(|a| a.action_type_id.category == "Source");
    match sources.find(|a| a.name == name) {
        None => Some("no source action has that name".into()),
        Some(action) if action.action_type_id.provider != CONNECTION => {
            let provider = &action.action_type_id.provider;
            Some(format!("the source action's provider is {provider}, not {CONNECTION}"))
        }
        Some(_) => None,
    }
}

fn check_filter(what: &str, filter: &GitFilter, pull_request: bool) -> Vec<String> {
    let mut messages = Vec::new();
    match (&filter.events, pull_request) {
        (Some(_), false) => messages.push(format!("{what} cannot filter on events")),
        (Some(events), true) => {
            messages.extend(text::count(&format!("{what} events"), "entries", events.len(), 1, 3));
            let kinds = ["OPEN", "UPDATED", "CLOSED"];
            for event in events {
                messages.extend(text::one_of(&format!("{what} event"), event, &kinds));
            }
        }
        (None, _) => {}
    }
    if filter.tags.is_some() && pull_request {
        messages.push(format!("{what} cannot filter on tags"));
    }
    let criteria =
        [("branches", &filter.branches), ("filePaths", &filter.file_paths), ("tags", &filter.tags)];
    for (field, criteria) in criteria {
        if let Some(criteria) = criteria {
            messages.extend(check_globs(&format!("{what} {field}"), criteria));
        }
    }
    messages
}

fn check_globs(what: &str, criteria: &GlobCriteria) -> Vec<String> {
    let mut messages = Vec::new();
    for (side, patterns) in [("includes", &criteria.includes), ("excludes", &criteria.excludes)] {
        let Some(patterns) = patterns else { continue };
        let what = format!("{what} {side}");
        messages.extend(text::count(&what, "patterns", patterns.len(), 1, 8));
        for pattern in patterns {
            messages.extend(text::length(&format!("{what} pattern"), pattern, 1, 255));
        }
    }
    messages
}
