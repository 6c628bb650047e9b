//! Stage conditions (V2) as the engine runs them: each condition's result and rules, and the
//! rules the engine decides by itself, from the execution's variables and the input's time.
//!
//! `VariableCheck` and `DeploymentWindow` need nothing outside the engine, so they are decided
//! where the condition is met, with no round trip. Rules that ask a service
//! ([`SERVICE_RULES`]) are requested from the action worker, which answers with a [`Verdict`];
//! a host refuses to start a pipeline that uses one it cannot run, naming it.

pub mod window;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::engine::Millis;

/// What a failed condition engages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConditionResult {
    /// The stage fails.
    Fail,
    /// The stage is skipped (`beforeEntry` only).
    Skip,
    /// The stage fails and the last execution that succeeded in it runs it again.
    Rollback,
    /// The stage is retried (`onFailure` only).
    Retry,
}

impl ConditionResult {
    /// Reads the declaration's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "FAIL" => Self::Fail,
            "SKIP" => Self::Skip,
            "ROLLBACK" => Self::Rollback,
            "RETRY" => Self::Retry,
            _ => return None,
        })
    }
}

/// One rule of a condition, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePlan {
    #[allow(missing_docs)]
    pub name: String,
    /// `ruleTypeId.provider`.
    pub provider: String,
    /// As declared; references are resolved when the rule runs.
    pub configuration: IndexMap<String, String>,
    /// How long a rule that waits (a closed window, a service's answer) may wait.
    pub timeout_minutes: u32,
    /// As declared (`Commands` rules); references are resolved when the rule runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The artifacts the rule reads, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_artifacts: Vec<String>,
    /// Where a rule that asks a service asks it; the pipeline's region when not declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The role a rule that asks a service asks it as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl RulePlan {
    /// Whether the engine decides this rule itself; the others ask a service, through the
    /// action worker.
    pub fn is_decided_by_engine(&self) -> bool {
        ENGINE_RULES.contains(&self.provider.as_str())
    }
}

/// A condition: its result, engaged when any of its rules fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionPlan {
    #[allow(missing_docs)]
    pub result: ConditionResult,
    #[allow(missing_docs)]
    pub rules: Vec<RulePlan>,
}

/// The rule providers the engine decides itself.
pub const ENGINE_RULES: [&str; 2] = ["VariableCheck", "DeploymentWindow"];

/// The rule providers that ask a service, which the action worker evaluates.
pub const SERVICE_RULES: [&str; 3] = ["Commands", "CloudWatchAlarm", "LambdaInvoke"];

/// A rule's default time to wait: a day, so a window closed overnight is waited for.
pub const DEFAULT_RULE_TIMEOUT_MINUTES: u32 = 24 * 60;

/// What one evaluation of a rule found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "summary")]
pub enum Verdict {
    /// The rule passes; why.
    Pass(String),
    /// The rule fails; why.
    Fail(String),
    /// The rule does not pass yet and may later (a closed window); why.
    Wait(String),
}

/// Evaluates `rule` with its configuration resolved, at `now`.
pub fn evaluate(rule: &RulePlan, resolved: &IndexMap<String, String>, now: Millis) -> Verdict {
    let get = |key: &str| resolved.get(key).map(String::as_str);
    match rule.provider.as_str() {
        "VariableCheck" => variable_check(
            get("Variable").unwrap_or_default(),
            get("Operator").unwrap_or_default(),
            get("Value").unwrap_or_default(),
        ),
        "DeploymentWindow" => {
            let cron = get("Cron").unwrap_or_default();
            match window::Window::parse(cron, get("TimeZone")) {
                Err(why) => Verdict::Fail(why),
                Ok(w) if w.contains(now) => Verdict::Pass(format!("Inside the window {cron}")),
                Ok(_) => Verdict::Wait(format!("Outside the window {cron}; waiting for it")),
            }
        }
        other => Verdict::Fail(format!("{other} rules are not decided by the engine")),
    }
}

fn variable_check(variable: &str, operator: &str, value: &str) -> Verdict {
    let holds = match operator {
        "EQ" => variable == value,
        "NE" => variable != value,
        "CONTAINS" => variable.contains(value),
        // Java's String.matches, which CodePipeline uses: the whole value must match.
        "MATCHES" => match regex_lite::Regex::new(&format!("^(?:{value})$")) {
            Ok(re) => re.is_match(variable),
            Err(e) => {
                return Verdict::Fail(format!(
                    "Value \"{value}\" is not a regular expression: {e}"
                ));
            }
        },
        other => {
            return Verdict::Fail(format!(
                "Operator must be EQ, NE, CONTAINS or MATCHES, not \"{other}\""
            ));
        }
    };
    let said = format!("\"{variable}\" {operator} \"{value}\"");
    if holds {
        Verdict::Pass(format!("{said} holds"))
    } else {
        Verdict::Fail(format!("{said} does not hold"))
    }
}

/// What is wrong with a rule's configuration that create can already tell, as sentence
/// fragments; values holding `#{...}` references are judged when the rule runs.
pub fn configuration_errors(
    provider: &str,
    configuration: &IndexMap<String, String>,
) -> Vec<String> {
    let literal =
        |key: &str| configuration.get(key).map(String::as_str).filter(|v| !v.contains("#{"));
    match provider {
        "VariableCheck" => match literal("Operator") {
            Some(op) if !["EQ", "NE", "CONTAINS", "MATCHES"].contains(&op) => {
                vec![format!("Operator must be EQ, NE, CONTAINS or MATCHES, not \"{op}\"")]
            }
            _ => vec![],
        },
        "DeploymentWindow" => match (literal("Cron"), configuration.get("TimeZone")) {
            (Some(cron), tz) if !tz.is_some_and(|t| t.contains("#{")) => {
                window::Window::parse(cron, tz.map(String::as_str)).err().into_iter().collect()
            }
            _ => vec![],
        },
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(variable: &str, operator: &str, value: &str) -> bool {
        matches!(variable_check(variable, operator, value), Verdict::Pass(_))
    }

    #[test]
    fn variable_check_operators() {
        assert!(check("main", "EQ", "main"));
        assert!(!check("main", "EQ", "Main"));
        assert!(check("main", "NE", "dev"));
        assert!(check("release/1.2", "CONTAINS", "release/"));
        assert!(check("release/1.2", "MATCHES", r"release/\d+\.\d+"));
        assert!(!check("xrelease/1.2", "MATCHES", r"release/\d+\.\d+"), "whole value");
        assert!(
            matches!(variable_check("a", "MATCHES", "("), Verdict::Fail(m) if m.contains("regular expression"))
        );
        assert!(
            matches!(variable_check("a", "GT", "b"), Verdict::Fail(m) if m.contains("Operator"))
        );
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let config = |pairs: &[(&str, &str)]| -> IndexMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let bad_op = configuration_errors("VariableCheck", &config(&[("Operator", "GT")]));
        assert_eq!(bad_op, vec!["Operator must be EQ, NE, CONTAINS or MATCHES, not \"GT\""]);
        let bad_cron =
            configuration_errors("DeploymentWindow", &config(&[("Cron", "* * 99 * * ?")]));
        assert!(bad_cron[0].contains("hours"), "{bad_cron:?}");
        let later =
            configuration_errors("DeploymentWindow", &config(&[("Cron", "#{variables.cron}")]));
        assert!(later.is_empty(), "references are judged when the rule runs");
    }
}
