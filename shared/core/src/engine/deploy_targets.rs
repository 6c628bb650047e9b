//! What a deploy action reached: the instances, functions or task sets of a CodeDeploy
//! deployment, each with its lifecycle events, as `ListDeployActionExecutionTargets` lists them.
//! They are kept with the attempt, within bounds that keep an execution well inside a DynamoDB
//! item.

use serde::{Deserialize, Serialize};

use super::Millis;

/// The most targets an attempt keeps; a deployment to more lists its first ones.
pub const KEPT_TARGETS: usize = 40;
/// The most lifecycle events a target keeps (CodeDeploy's EC2 hooks are nine).
pub(super) const KEPT_EVENTS: usize = 16;
/// The longest event message kept, in characters.
pub(super) const KEPT_MESSAGE: usize = 256;

/// One target of a deploy action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployTarget {
    /// The instance id, function, or task set the deployment names.
    pub id: String,
    /// `InstanceTarget`, `LambdaTarget`, `ECSTarget`, `CloudFormationTarget`.
    pub kind: String,
    /// `Pending`, `InProgress`, `Succeeded`, `Failed`, `Skipped`, `Ready`, `Unknown`.
    pub status: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    /// Its lifecycle events, in the order they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<DeployTargetEvent>,
}

/// One lifecycle event of a target (`BeforeInstall`, `AfterAllowTraffic`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployTargetEvent {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub status: String,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    /// What the deployment said about it (a failed hook's diagnostics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `targets` cut to what an attempt keeps.
#[must_use]
pub(super) fn bounded(targets: &[DeployTarget]) -> Vec<DeployTarget> {
    targets
        .iter()
        .take(KEPT_TARGETS)
        .map(|t| DeployTarget {
            events: t
                .events
                .iter()
                .take(KEPT_EVENTS)
                .map(|e| DeployTargetEvent {
                    message: e.message.as_ref().map(|m| m.chars().take(KEPT_MESSAGE).collect()),
                    ..e.clone()
                })
                .collect(),
            ..t.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_cut_to_what_an_attempt_keeps() {
        let event = DeployTargetEvent {
            name: "ApplicationStart".into(),
            status: "Failed".into(),
            started_at: Some(1),
            ended_at: Some(2),
            message: Some("é".repeat(1000)),
        };
        let target = DeployTarget {
            id: "i-1".into(),
            kind: "InstanceTarget".into(),
            status: "Failed".into(),
            started_at: None,
            ended_at: None,
            events: vec![event; 30],
        };
        let kept = bounded(&vec![target; 100]);
        assert_eq!(kept.len(), KEPT_TARGETS);
        assert_eq!(kept[0].events.len(), KEPT_EVENTS);
        let message = kept[0].events[0].message.as_deref().unwrap();
        assert_eq!(message.chars().count(), KEPT_MESSAGE, "cut on a character, not a byte");
        assert_eq!(kept[0].events[0].started_at, Some(1));
    }
}
