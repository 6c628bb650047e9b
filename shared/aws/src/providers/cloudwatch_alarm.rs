//! The `CloudWatchAlarm` rule: the alarm `AlarmName` (metric or composite), read as the rule's
//! role in its region. The rule fails while the alarm is in one of `AlarmStates` (`ALARM` when
//! not given), after waiting up to `WaitTime` minutes for it to leave them; it passes once the
//! alarm is in any other state. An alarm that does not exist fails the rule, naming it.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::AlarmType;
use baton_core::rules::{RulePlan, Verdict};

use super::credentials::{RoleCredentials, RoleError};
use super::{SdkFault, classify, has_reference, optional};
use baton_app::ports::provider::{ProviderError, RuleCheck, RuleProvider};

const STATES: [&str; 3] = ["ALARM", "OK", "INSUFFICIENT_DATA"];

/// Evaluates `CloudWatchAlarm` rules.
#[derive(Debug)]
pub struct CloudWatchAlarmRule {
    roles: Arc<dyn RoleCredentials>,
}

impl CloudWatchAlarmRule {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }
}

/// The states the rule watches, from `AlarmStates` (comma-separated); why not, when one is
/// not an alarm state.
fn watched(states: Option<&str>) -> Result<Vec<String>, String> {
    let Some(states) = states.filter(|s| !s.trim().is_empty()) else {
        return Ok(vec!["ALARM".into()]);
    };
    states
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .map(|s| {
            if STATES.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(format!("AlarmStates must be ALARM, OK or INSUFFICIENT_DATA, not \"{s}\""))
            }
        })
        .collect()
}

/// `WaitTime` in milliseconds (0 when not given); why not, when it is not whole minutes.
fn wait_millis(wait: Option<&str>) -> Result<i64, String> {
    match wait.map(str::trim).filter(|w| !w.is_empty()) {
        None => Ok(0),
        Some(w) => w
            .parse::<u32>()
            .map(|m| i64::from(m) * 60_000)
            .map_err(|_| format!("WaitTime must be a whole number of minutes, not \"{w}\"")),
    }
}

/// What the rule finds with the alarm in `state`, `waited` milliseconds into the rule.
pub fn judge(alarm: &str, state: &str, watched: &[String], waited: i64, wait: i64) -> Verdict {
    if !watched.iter().any(|w| w == state) {
        return Verdict::Pass(format!("{alarm} is {state}"));
    }
    if waited < wait {
        return Verdict::Wait(format!(
            "{alarm} is {state}; waiting up to {} minutes for it to change",
            wait / 60_000
        ));
    }
    Verdict::Fail(format!("{alarm} is {state}"))
}

#[async_trait]
impl RuleProvider for CloudWatchAlarmRule {
    async fn check(&self, rule: &RulePlan) -> Result<(), String> {
        let get = |k: &str| rule.configuration.get(k).map(String::as_str);
        if get("AlarmName").is_none_or(|n| n.trim().is_empty()) {
            return Err("a CloudWatchAlarm rule needs AlarmName".into());
        }
        if !get("AlarmStates").is_some_and(has_reference) {
            watched(get("AlarmStates"))?;
        }
        if !get("WaitTime").is_some_and(has_reference) {
            wait_millis(get("WaitTime"))?;
        }
        Ok(())
    }

    async fn evaluate(&self, check: &RuleCheck) -> Result<Verdict, ProviderError> {
        let r = &check.request;
        let config = &r.configuration;
        let Some(alarm) = optional(config, "AlarmName") else {
            return Ok(Verdict::Fail("The rule configuration needs AlarmName.".into()));
        };
        let (watched, wait) = match (
            watched(config.get("AlarmStates").map(String::as_str)),
            wait_millis(config.get("WaitTime").map(String::as_str)),
        ) {
            (Ok(s), Ok(w)) => (s, w),
            (Err(why), _) | (_, Err(why)) => return Ok(Verdict::Fail(why)),
        };
        let sdk = match self.roles.config(r.role_arn.as_deref(), &r.region, &r.execution_id).await {
            Ok(sdk) => sdk,
            Err(e @ RoleError::Denied { .. }) => return Ok(Verdict::Fail(e.to_string())),
            Err(e) => return Err(ProviderError::Unavailable(Box::new(e))),
        };
        let found = Client::new(&sdk)
            .describe_alarms()
            .alarm_names(alarm)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await;
        let out = match found {
            Ok(out) => out,
            Err(e) => {
                return match classify("DescribeAlarms", e) {
                    SdkFault::Refused { code, message } => {
                        Ok(Verdict::Fail(format!("DescribeAlarms failed: {code}: {message}")))
                    }
                    SdkFault::Unavailable(source) => Err(ProviderError::Unavailable(source)),
                };
            }
        };
        let state = out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(alarm))
            .and_then(|a| a.state_value())
            .or_else(|| {
                out.composite_alarms()
                    .iter()
                    .find(|a| a.alarm_name() == Some(alarm))
                    .and_then(|a| a.state_value())
            });
        Ok(match state {
            None => {
                Verdict::Fail(format!("there is no CloudWatch alarm named {alarm} in {}", r.region))
            }
            Some(state) => judge(alarm, state.as_str(), &watched, check.now - r.started_at, wait),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_in_a_watched_state_waits_then_fails_and_passes_otherwise() {
        let alarm = watched(None).unwrap();
        assert_eq!(alarm, ["ALARM"]);
        assert_eq!(judge("errors", "OK", &alarm, 0, 0), Verdict::Pass("errors is OK".into()));
        assert!(
            matches!(judge("errors", "ALARM", &alarm, 60_000, 120_000), Verdict::Wait(m) if m.contains("2 minutes"))
        );
        assert_eq!(
            judge("errors", "ALARM", &alarm, 120_000, 120_000),
            Verdict::Fail("errors is ALARM".into())
        );
        let both = watched(Some("alarm, INSUFFICIENT_DATA")).unwrap();
        assert!(matches!(judge("e", "INSUFFICIENT_DATA", &both, 0, 0), Verdict::Fail(_)));
        assert!(watched(Some("ALARM,RED")).unwrap_err().contains("\"RED\""));
        assert!(wait_millis(Some("ten")).unwrap_err().contains("WaitTime"));
    }
}
