//! Which function receives which event: the rules of the bus, and EventBridge's pattern
//! matching for the in-process bus.
//!
//! The rules here are the ones `template.yaml` gives EventBridge, so a routing mistake shows up on
//! one machine too.

use serde_json::{Value, json};

use baton_core::events::{ACTION_DETAIL_TYPE, PIPELINE_DETAIL_TYPE};

use crate::bus_events::*;

/// A function that consumes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Applies inputs to executions.
    StageAdvance,
    /// Runs action providers.
    ActionWorker,
    /// Sends approval notices and takes decisions.
    Approval,
    /// Sends failure notices.
    Notices,
}

impl Target {
    /// The name used in the delivery queue and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::StageAdvance => "stage-advance",
            Self::ActionWorker => "action-worker",
            Self::Approval => "approval",
            Self::Notices => "notices",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::StageAdvance, Self::ActionWorker, Self::Approval, Self::Notices]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// A rule: events matching `pattern` go to `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's logical name in `template.yaml`.
    pub name: &'static str,
    #[allow(missing_docs)]
    pub target: Target,
    /// An EventBridge event pattern.
    pub pattern: Value,
}

/// The bus's rules.
///
/// Action requests, results and failure notices ride on the public events they go with (see
/// [`BusEvent::for_effects`]), so the rules that route them match CodePipeline's detail-types
/// and the field that carries the message.
pub fn rules() -> Vec<Rule> {
    let started = |category: Value| {
        json!({"source": [PUBLIC_SOURCE], "detail-type": [ACTION_DETAIL_TYPE],
            "detail": {"state": ["STARTED"],
                REQUEST_FIELD: {"action_type": {"category": [category]}}}})
    };
    vec![
        Rule {
            name: "StageAdvanceRule",
            target: Target::StageAdvance,
            pattern: json!({"source": [SOURCE], "detail-type": [ACTION_COMPLETED, RULE_COMPLETED]}),
        },
        Rule {
            name: "ActionResultRule",
            target: Target::StageAdvance,
            pattern: json!({"source": [PUBLIC_SOURCE], "detail-type": [ACTION_DETAIL_TYPE],
                "detail": {"state": ["SUCCEEDED", "FAILED"],
                    COMPLETION_FIELD: {"pipeline": [{"exists": true}]}}}),
        },
        Rule {
            name: "ActionWorkerRule",
            target: Target::ActionWorker,
            pattern: started(json!({"anything-but": "Approval"})),
        },
        Rule {
            name: "JobReportedRule",
            target: Target::ActionWorker,
            pattern: json!({"source": [SOURCE], "detail-type": [JOB_REPORTED]}),
        },
        Rule {
            name: "RuleRequestRule",
            target: Target::ActionWorker,
            pattern: json!({"source": [SOURCE], "detail-type": [RULE_REQUESTED]}),
        },
        Rule {
            name: "ApprovalRule",
            target: Target::Approval,
            pattern: started(json!("Approval")),
        },
        Rule {
            name: "FailureNoticeRule",
            target: Target::Notices,
            pattern: json!({"source": [PUBLIC_SOURCE], "detail-type": [PIPELINE_DETAIL_TYPE],
                "detail": {"state": ["FAILED"], FAILURE_FIELD: {"pipeline": [{"exists": true}]}}}),
        },
    ]
}

/// The targets whose rules match `event`.
pub fn targets(rules: &[Rule], event: &BusEvent) -> Vec<Target> {
    let envelope = json!({
        "source": event.source, "detail-type": event.detail_type,
        "resources": event.resources, "detail": event.detail});
    let mut found: Vec<Target> =
        rules.iter().filter(|r| matches(&r.pattern, &envelope)).map(|r| r.target).collect();
    found.sort();
    found.dedup();
    found
}

/// EventBridge pattern matching: every field of the pattern must match; a list matches when
/// any of its entries matches the value (or, for an array value, any of its elements).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let (Value::Object(pattern), Value::Object(event)) = (pattern, event) else {
        return false;
    };
    pattern.iter().all(|(key, wanted)| {
        let actual = event.get(key);
        match wanted {
            Value::Object(_) => actual.is_some_and(|a| matches(wanted, a)),
            Value::Array(options) => options.iter().any(|o| field_matches(o, actual)),
            _ => false,
        }
    })
}

fn field_matches(option: &Value, actual: Option<&Value>) -> bool {
    if let Value::Object(op) = option
        && let Some(Value::Bool(should_exist)) = op.get("exists")
    {
        return actual.is_some() == *should_exist;
    }
    match actual {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|v| value_matches(option, v)),
        Some(v) => value_matches(option, v),
    }
}

fn value_matches(option: &Value, v: &Value) -> bool {
    let Value::Object(op) = option else { return option == v };
    let text = v.as_str();
    if let Some(Value::String(p)) = op.get("prefix") {
        return text.is_some_and(|t| t.starts_with(p.as_str()));
    }
    if let Some(Value::String(s)) = op.get("suffix") {
        return text.is_some_and(|t| t.ends_with(s.as_str()));
    }
    if let Some(Value::String(s)) = op.get("equals-ignore-case") {
        return text.is_some_and(|t| t.eq_ignore_ascii_case(s));
    }
    if let Some(but) = op.get("anything-but") {
        return match but {
            Value::Array(list) => !list.contains(v),
            Value::Object(inner) => match inner.get("prefix") {
                Some(Value::String(p)) => !text.is_some_and(|t| t.starts_with(p.as_str())),
                _ => false,
            },
            literal => literal != v,
        };
    }
    if let Some(Value::Array(conditions)) = op.get("numeric") {
        return v.as_f64().is_some_and(|n| numeric(conditions, n));
    }
    false
}

fn numeric(conditions: &[Value], n: f64) -> bool {
    conditions.chunks(2).all(|pair| {
        match (pair.first().and_then(Value::as_str), pair.get(1).and_then(Value::as_f64)) {
            (Some("<"), Some(x)) => n < x,
            (Some("<="), Some(x)) => n <= x,
            (Some(">"), Some(x)) => n > x,
            (Some(">="), Some(x)) => n >= x,
            (Some("="), Some(x)) => (n - x).abs() < f64::EPSILON,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail_type: &str, detail: Value) -> BusEvent {
        BusEvent {
            source: SOURCE.into(),
            detail_type: detail_type.into(),
            resources: vec![],
            detail,
            trace: None,
        }
    }

    fn started(category: &str) -> BusEvent {
        BusEvent {
            source: PUBLIC_SOURCE.into(),
            detail_type: ACTION_DETAIL_TYPE.into(),
            resources: vec![],
            detail: json!({"state": "STARTED",
                REQUEST_FIELD: {"action_type": {"category": category}}}),
            trace: None,
        }
    }

    #[test]
    fn action_requests_go_to_the_worker_or_to_approval_by_category() {
        let rules = rules();
        assert_eq!(targets(&rules, &started("Build")), vec![Target::ActionWorker]);
        assert_eq!(targets(&rules, &started("Approval")), vec![Target::Approval]);
    }

    #[test]
    fn results_go_to_stage_advance_and_plain_public_events_nowhere() {
        let rules = rules();
        let mut result = started("Build");
        result.detail = json!({"state": "SUCCEEDED", COMPLETION_FIELD: {"pipeline": "p"}});
        assert_eq!(targets(&rules, &result), vec![Target::StageAdvance]);
        assert_eq!(targets(&rules, &event(RULE_COMPLETED, json!({}))), vec![Target::StageAdvance]);
        let mut failed = started("Build");
        failed.detail_type = PIPELINE_DETAIL_TYPE.into();
        failed.detail = json!({"state": "FAILED", FAILURE_FIELD: {"pipeline": "p"}});
        assert_eq!(targets(&rules, &failed), vec![Target::Notices]);
        // What users see without a carried message, and a STARTED event of another source.
        for (detail_type, detail) in [
            (PIPELINE_DETAIL_TYPE, json!({"state": "FAILED"})),
            (ACTION_DETAIL_TYPE, json!({"state": "STARTED"})),
            (ACTION_DETAIL_TYPE, json!({"state": "SUCCEEDED"})),
        ] {
            let plain = BusEvent { detail_type: detail_type.into(), detail, ..started("Build") };
            assert!(targets(&rules, &plain).is_empty(), "{plain:?} reaches nothing");
        }
        let foreign = BusEvent { source: "aws.codepipeline".into(), ..started("Build") };
        assert!(targets(&rules, &foreign).is_empty());
    }

    #[test]
    fn pattern_operators_follow_eventbridge() {
        let e = json!({"source": "aws.codecommit", "detail": {"referenceName": "main", "n": 3,
            "tags": ["a", "b"], "event": "referenceUpdated"}});
        let yes = [
            json!({"source": [{"prefix": "aws."}]}),
            json!({"detail": {"referenceName": ["dev", "main"]}}),
            json!({"detail": {"n": [{"numeric": [">", 1, "<=", 3]}]}}),
            json!({"detail": {"tags": ["b"]}}),
            json!({"detail": {"missing": [{"exists": false}]}}),
            json!({"detail": {"event": [{"anything-but": ["referenceDeleted"]}]}}),
            json!({"detail": {"referenceName": [{"equals-ignore-case": "MAIN"}]}}),
            json!({"source": [{"suffix": "commit"}]}),
        ];
        for p in yes {
            assert!(matches(&p, &e), "{p} should match");
        }
        let no = [
            json!({"source": ["aws.s3"]}),
            json!({"detail": {"n": [{"numeric": [">", 3]}]}}),
            json!({"detail": {"referenceName": [{"exists": false}]}}),
            json!({"detail": {"missing": ["x"]}}),
            json!({"detail": {"event": [{"anything-but": {"prefix": "reference"}}]}}),
        ];
        for p in no {
            assert!(!matches(&p, &e), "{p} should not match");
        }
    }
}
