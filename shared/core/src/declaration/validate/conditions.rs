//! Rules on stage conditions (V2): `onFailure`, `onSuccess` and `beforeEntry`, their results
//! and their rules.

use super::artifacts::check_inputs;
use super::config::{RULE_CONFIG, check_command_list, check_map};
use super::index::Pos;
use super::text::{self, Charset};
use super::{Context, Errors, Loc};
use crate::catalog::{self, RuleSpec};
use crate::declaration::model::{Condition, RuleDeclaration, StageDeclaration};

/// Every value of the model's `Result` enum; `onFailure` takes any of them.
const ALL_RESULTS: [&str; 4] = ["ROLLBACK", "FAIL", "RETRY", "SKIP"];

/// One of the three condition kinds, as checked in one stage.
struct Kind<'a> {
    name: &'static str,
    results: &'a [&'a str],
    /// Where its rules run, for artifact and variable visibility.
    pos: Pos,
}

pub(super) fn check(cx: &Context<'_>, si: usize, stage: &StageDeclaration, errors: &mut Errors) {
    let loc = Loc::stage(&stage.name);
    if let Some(on_failure) = &stage.on_failure {
        check_v2(cx, loc, "onFailure", errors);
        if let Some(result) = &on_failure.result {
            errors.check(loc, text::one_of("onFailure result", result, &ALL_RESULTS));
        }
        let mode = on_failure.retry_configuration.as_ref().and_then(|r| r.retry_mode.as_ref());
        if let Some(mode) = mode {
            let modes = ["FAILED_ACTIONS", "ALL_ACTIONS"];
            errors.check(loc, text::one_of("onFailure retryMode", mode, &modes));
        }
        if on_failure.result.as_deref() == Some("RETRY") && on_failure.conditions.is_some() {
            errors.add(loc, "onFailure cannot combine result RETRY with conditions");
        }
        if let Some(conditions) = &on_failure.conditions {
            let kind = Kind { name: "onFailure", results: &ALL_RESULTS, pos: Pos::stage_exit(si) };
            check_conditions(cx, loc, &kind, conditions, errors);
        }
    }
    if let Some(on_success) = &stage.on_success {
        check_v2(cx, loc, "onSuccess", errors);
        let kind =
            Kind { name: "onSuccess", results: &["ROLLBACK", "FAIL"], pos: Pos::stage_exit(si) };
        check_conditions(cx, loc, &kind, &on_success.conditions, errors);
    }
    if let Some(before_entry) = &stage.before_entry {
        check_v2(cx, loc, "beforeEntry", errors);
        let kind =
            Kind { name: "beforeEntry", results: &["FAIL", "SKIP"], pos: Pos::stage_entry(si) };
        check_conditions(cx, loc, &kind, &before_entry.conditions, errors);
    }
}

fn check_v2(cx: &Context<'_>, loc: Loc<'_>, kind: &str, errors: &mut Errors) {
    if cx.v1 {
        errors.add(loc, format!("{kind} requires pipelineType V2"));
    }
}

fn check_conditions(
    cx: &Context<'_>,
    loc: Loc<'_>,
    kind: &Kind<'_>,
    conditions: &[Condition],
    errors: &mut Errors,
) {
    errors.check(loc, text::count(kind.name, "conditions", conditions.len(), 1, 1));
    for condition in conditions {
        let result = condition.result.as_deref();
        if let Some(result) = result {
            errors.check(loc, text::one_of(&format!("{} result", kind.name), result, kind.results));
        }
        let subject = format!("the {} condition", kind.name);
        errors.check(loc, text::count(&subject, "rules", condition.rules.len(), 1, 5));
        for rule in &condition.rules {
            let prefix = format!("{} rule \"{}\": ", kind.name, rule.name);
            let messages = check_rule(cx, kind.pos, result == Some("SKIP"), rule);
            errors.extend(loc, messages.into_iter().map(|m| format!("{prefix}{m}")).collect());
        }
    }
}

fn check_rule(cx: &Context<'_>, pos: Pos, skips: bool, rule: &RuleDeclaration) -> Vec<String> {
    let mut messages = Vec::new();
    messages.extend(text::token("name", &rule.name, 1, 100, Charset::Name));
    let spec = check_rule_type(rule, &mut messages);
    if skips && spec.is_some_and(|s| !s.allows_skip) {
        messages.push("result SKIP only works with LambdaInvoke and VariableCheck rules".into());
    }
    if let Some(config) = &rule.configuration {
        messages.extend(check_map(cx, pos, config, &RULE_CONFIG));
    }
    if let Some(config) = &rule.configuration {
        messages.extend(crate::rules::configuration_errors(&rule.rule_type_id.provider, config));
    }
    for key in spec.iter().flat_map(|s| s.required) {
        if !rule.configuration.as_ref().is_some_and(|c| c.contains_key(*key)) {
            messages.push(format!(
                "{} requires configuration key \"{key}\"",
                rule.rule_type_id.provider
            ));
        }
    }
    check_rule_commands(cx, pos, spec, rule, &mut messages);
    messages.extend(check_inputs(cx, pos, rule.input_artifacts.as_deref().unwrap_or_default()));
    if let Some(arn) = &rule.role_arn {
        messages.extend(text::role_arn("roleArn", arn));
    }
    if let Some(region) = &rule.region {
        messages.extend(text::length("region", region, 4, 30));
    }
    if let Some(minutes) = rule.timeout_in_minutes {
        messages.extend(text::range("timeoutInMinutes", minutes, 5, 86400));
    }
    messages
}

fn check_rule_type(
    rule: &RuleDeclaration,
    messages: &mut Vec<String>,
) -> Option<&'static RuleSpec> {
    let id = &rule.rule_type_id;
    messages.extend(text::one_of("category", &id.category, &["Rule"]));
    if let Some(owner) = &id.owner {
        messages.extend(text::one_of("owner", owner, &["AWS"]));
    }
    if let Some(version) = &id.version {
        messages.extend(text::token("version", version, 1, 9, Charset::Token));
    }
    let spec = catalog::rule_provider(&id.provider);
    if spec.is_none() {
        let names: Vec<&str> = catalog::rule_providers().iter().map(|r| r.provider).collect();
        messages.extend(text::one_of("provider", &id.provider, &names));
    }
    spec
}

fn check_rule_commands(
    cx: &Context<'_>,
    pos: Pos,
    spec: Option<&RuleSpec>,
    rule: &RuleDeclaration,
    messages: &mut Vec<String>,
) {
    let is_commands = spec.is_some_and(|s| s.provider == "Commands");
    match &rule.commands {
        Some(commands) => {
            if !is_commands {
                messages.push("commands are only allowed on the Commands provider".into());
            }
            messages.extend(check_command_list(cx, pos, commands));
        }
        None if is_commands => messages.push("the Commands provider requires commands".into()),
        None => {}
    }
}
