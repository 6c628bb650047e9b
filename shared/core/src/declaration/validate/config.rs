//! Rules on what an action is told to do: configuration, commands, output variables and
//! environment variables, including the `#{...}` references inside them.

use indexmap::IndexMap;

use super::action::ActionAt;
use super::index::Pos;
use super::text::{self, Charset};
use super::{Context, Errors, Loc, refs};

/// Limits on a configuration map: actions allow 1000-character values, rules 10000.
pub(super) struct ConfigLimits {
    pub(super) max_value: usize,
}

pub(super) const ACTION_CONFIG: ConfigLimits = ConfigLimits { max_value: 1000 };
pub(super) const RULE_CONFIG: ConfigLimits = ConfigLimits { max_value: 10_000 };

pub(super) fn check_configuration(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let empty = IndexMap::new();
    let config = at.action.configuration.as_ref().unwrap_or(&empty);
    if at.action.configuration.is_some() {
        let messages = check_map(cx, at.pos, config, &ACTION_CONFIG);
        errors.extend(at.loc, messages);
    }
    let Some(spec) = at.spec else { return };
    let provider = spec.provider;
    for key in spec.required.iter().filter(|k| !config.contains_key(**k)) {
        errors.add(at.loc, format!("{provider} requires configuration key \"{key}\""));
    }
    let inputs = at.action.input_artifacts.as_ref().map_or(0, Vec::len);
    if provider == "CodeBuild" && inputs > 1 && !config.contains_key("PrimarySource") {
        let message = "CodeBuild requires configuration key \"PrimarySource\" when it has more than one input artifact";
        errors.add(at.loc, message);
    }
    let extract = config.get("Extract").map(String::as_str);
    let unextracted = extract.is_some_and(|e| e.eq_ignore_ascii_case("false"));
    if (spec.category, provider) == ("Deploy", "S3")
        && unextracted
        && !config.contains_key("ObjectKey")
    {
        errors.add(at.loc, "S3 requires configuration key \"ObjectKey\" when Extract is false");
    }
}

/// Checks the size, keys, values and references of the configuration of an action or a rule
/// that runs at `pos`.
pub(super) fn check_map(
    cx: &Context<'_>,
    pos: Pos,
    config: &IndexMap<String, String>,
    limits: &ConfigLimits,
) -> Vec<String> {
    let mut messages = Vec::new();
    messages.extend(text::count("configuration", "entries", config.len(), 0, 200));
    for (key, value) in config {
        messages.extend(text::length(&format!("configuration key \"{key}\""), key, 1, 50));
        let place = format!("configuration \"{key}\"");
        messages.extend(text::length(&format!("{place} value"), value, 1, limits.max_value));
        messages.extend(refs::check(cx, pos, &place, value));
    }
    messages
}

pub(super) fn check_commands(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    match &at.action.commands {
        Some(commands) => {
            if !at.is_commands() {
                errors.add(at.loc, "commands are only allowed on the Commands provider");
            }
            errors.extend(at.loc, check_command_list(cx, at.pos, commands));
        }
        None if at.is_commands() => errors.add(at.loc, "the Commands provider requires commands"),
        None => {}
    }
}

/// Checks a `commands` list of an action or a rule.
pub(super) fn check_command_list(cx: &Context<'_>, pos: Pos, commands: &[String]) -> Vec<String> {
    let mut messages = Vec::new();
    messages.extend(text::count("commands", "entries", commands.len(), 1, 50));
    for (i, command) in commands.iter().enumerate() {
        let place = format!("command {}", i + 1);
        messages.extend(text::length(&place, command, 1, 1000));
        if command.contains(['\n', '\r']) {
            messages.push(format!("{place} must be a single line"));
        }
        messages.extend(refs::check(cx, pos, &place, command));
    }
    messages
}

pub(super) fn check_output_variables(at: &ActionAt<'_>, errors: &mut Errors) {
    let Some(names) = &at.action.output_variables else {
        return;
    };
    errors.check(at.loc, text::count("outputVariables", "entries", names.len(), 1, 15));
    for name in names {
        errors.check(at.loc, text::length(&format!("output variable \"{name}\""), name, 1, 128));
    }
}

pub(super) fn check_environment(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let Some(variables) = &at.action.environment_variables else {
        return;
    };
    let loc: Loc<'_> = at.loc;
    errors.check(loc, text::count("environmentVariables", "entries", variables.len(), 1, 10));
    for variable in variables {
        let name = &variable.name;
        let what = "environment variable name";
        errors.check(loc, text::token(what, name, 1, 128, Charset::EnvName));
        let place = format!("environment variable \"{name}\"");
        errors.check(loc, text::length(&format!("{place} value"), &variable.value, 1, 2000));
        if let Some(kind) = &variable.var_type {
            let kinds = ["PLAINTEXT", "SECRETS_MANAGER"];
            errors.check(loc, text::one_of(&format!("{place} type"), kind, &kinds));
        }
        errors.extend(loc, refs::check(cx, at.pos, &place, &variable.value));
    }
}
