//! The events the functions exchange on the bus, in EventBridge's envelope.
//!
//! The functions' messages ride on the public, CodePipeline-shaped state changes, in a field of
//! their own: an action's request on its `STARTED` event, its result on its `SUCCEEDED` or
//! `FAILED` event, a failure notice on the execution's `FAILED` event. So a run publishes
//! CodePipeline's events and nothing else. What has no public event to ride on (a command, the
//! sweeper's tick) is an internal event: source [`SOURCE`], a `Baton ...` detail-type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `source` of the internal events.
pub const SOURCE: &str = "baton";

/// An event as it is put on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    #[allow(missing_docs)]
    pub source: String,
    #[serde(rename = "detail-type")]
    #[allow(missing_docs)]
    pub detail_type: String,
    /// ARNs the event concerns.
    #[serde(default)]
    pub resources: Vec<String>,
    #[allow(missing_docs)]
    pub detail: Value,
    /// The X-Ray trace of the invocation that made the event, sent as PutEvents' `TraceHeader`
    /// so the functions it reaches join that trace (and log its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

use baton_core::engine::{ActionOutcome, ActionRequest, Effect, Input, Millis, RuleRequest};
use baton_core::events::{
    ACTION_DETAIL_TYPE, About, PIPELINE_DETAIL_TYPE, Published, STAGE_DETAIL_TYPE, Subject,
    action_end,
};
use baton_core::plan::Plan;

/// `detail-type` of an action result where no public event carries it: the request of an
/// attempt started by a version of Baton whose requests did not say how to announce.
///
/// Starts, approval decisions, stops, retries, transitions and ticks have no event: whoever
/// receives them (the trigger, the approval pages, the API, the sweeper) applies them through
/// stage-advance at once.
pub const ACTION_COMPLETED: &str = "Baton Action Completed";
/// `detail-type` of a rule evaluation asked of the worker (no public event carries it: CodePipeline
/// publishes none for rules).
pub const RULE_REQUESTED: &str = "Baton Rule Requested";
/// `detail-type` of a rule's answer (worker → stage-advance).
pub const RULE_COMPLETED: &str = "Baton Rule Completed";
/// A worker reported on a job of the job protocol: the attempt waiting on it is looked at now
/// (on AWS; one machine looks every second anyway).
pub const JOB_REPORTED: &str = "Baton Job Reported";

/// `source` of the public, CodePipeline-shaped events (CodePipeline's own is `aws.codepipeline`).
pub const PUBLIC_SOURCE: &str = "baton.codepipeline";
/// The field of a public action `STARTED` event that carries the attempt's [`ActionRequest`] to
/// the worker (or, for a manual approval, to the approval function).
pub const REQUEST_FIELD: &str = "baton-action-request";
/// The field of a public action `SUCCEEDED`/`FAILED` event, published by whoever ran the action,
/// that carries the completion ([`PipelineInput`]) to stage-advance.
pub const COMPLETION_FIELD: &str = "baton-action-completion";
/// The field of a public pipeline `FAILED` event that carries the [`FailureNotice`] for people.
///
/// [`FailureNotice`]: baton_core::engine::FailureNotice
pub const FAILURE_FIELD: &str = "baton-failure-notice";

/// The detail of every event stage-advance consumes: which pipeline, and the engine input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInput {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub input: Input,
}

/// Why an event cannot be used. Never worth a retry: the event is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The detail-type is not one this consumer handles.
    #[error("unexpected detail-type \"{0}\"")]
    UnexpectedType(String),
    /// The detail does not have the expected shape.
    #[error("malformed \"{detail_type}\" detail: {source}")]
    Malformed {
        #[allow(missing_docs)]
        detail_type: String,
        #[allow(missing_docs)]
        source: serde_json::Error,
    },
}

impl BusEvent {
    fn internal(detail_type: &str, resources: Vec<String>, detail: Value) -> Self {
        Self {
            source: SOURCE.into(),
            detail_type: detail_type.into(),
            resources,
            detail,
            trace: None,
        }
    }

    /// The internal event that carries a result (`detail_type` names which) to stage-advance.
    fn for_result(detail_type: &str, pipeline: &str, input: Input) -> Self {
        let detail = PipelineInput { pipeline: pipeline.into(), input };
        Self::internal(detail_type, vec![], serde_json::to_value(detail).unwrap_or(Value::Null))
    }

    /// The events for an engine step's effects, in order.
    ///
    /// Internal messages ride on the public events they go with, so a run costs no events
    /// beyond CodePipeline's own: an action request on its action's `STARTED` event
    /// ([`REQUEST_FIELD`]), a failure notice on its execution's `FAILED` event
    /// ([`FAILURE_FIELD`]). The engine always publishes those events just before; should one be
    /// missing, the message gets a bare event of the same detail-type, so it is never lost.
    pub fn for_effects(plan: &Plan, effects: Vec<Effect>) -> Vec<Self> {
        let mut events: Vec<Self> = Vec::with_capacity(effects.len());
        // What each event in `events` is about, where the engine said: a message rides on the
        // event its `About` names.
        let mut abouts: Vec<Option<About>> = Vec::with_capacity(effects.len());
        for effect in effects {
            let (carrier, field, detail) = match effect {
                Effect::Publish(e) => {
                    abouts.push(e.about.map(|a| *a));
                    events.push(Self {
                        source: e.source,
                        detail_type: e.detail_type,
                        resources: e.resources,
                        detail: e.detail,
                        trace: None,
                    });
                    continue;
                }
                Effect::RequestAction(r) => {
                    let detail = serde_json::to_value(&*r).unwrap_or(Value::Null);
                    let subject =
                        Subject::Action { stage: r.stage.clone(), action: r.action.clone() };
                    let about = About {
                        execution_id: r.execution_id.clone(),
                        subject,
                        state: Published::Started,
                    };
                    (about, REQUEST_FIELD, detail)
                }
                Effect::RequestRule(r) => {
                    let resources = vec![plan.arn()];
                    let detail = serde_json::to_value(&*r).unwrap_or(Value::Null);
                    abouts.push(None);
                    events.push(Self::internal(RULE_REQUESTED, resources, detail));
                    continue;
                }
                Effect::NotifyFailure(n) => {
                    let about = About {
                        execution_id: n.execution_id.clone(),
                        subject: Subject::Pipeline,
                        state: Published::Failed,
                    };
                    let detail = serde_json::to_value(&n).unwrap_or(Value::Null);
                    (about, FAILURE_FIELD, detail)
                }
            };
            let found = abouts.iter().rposition(|a| a.as_ref() == Some(&carrier));
            let at = found.unwrap_or_else(|| {
                // The engine announced nothing it could ride on: it goes on an event of its own
                // that says what it is about.
                events.push(public(plan, &carrier));
                abouts.push(Some(carrier));
                events.len() - 1
            });
            if let Some(d) = events[at].detail.as_object_mut() {
                d.insert(field.into(), detail);
            }
        }
        events
    }

    /// The public end of an action attempt, published by whoever ran it: CodePipeline's
    /// `SUCCEEDED` or `FAILED` event, carrying the completion to stage-advance
    /// ([`COMPLETION_FIELD`]).
    ///
    /// A request recorded before requests said how to announce (`announce` empty: a build
    /// started by an older version) gets the internal event instead, so its result still
    /// arrives.
    pub fn action_completed(request: &ActionRequest, outcome: ActionOutcome, now: Millis) -> Self {
        let event = action_end(request, &outcome, now);
        let input = request.completion(outcome);
        if request.announce.source.is_empty() {
            return Self::for_result(ACTION_COMPLETED, &request.pipeline, input);
        }
        let completion = PipelineInput { pipeline: request.pipeline.clone(), input };
        let mut detail = event.detail;
        if let Some(d) = detail.as_object_mut() {
            d.insert(COMPLETION_FIELD.into(), serde_json::to_value(completion).unwrap_or_default());
        }
        Self {
            source: event.source,
            detail_type: event.detail_type,
            resources: event.resources,
            detail,
            trace: None,
        }
    }

    /// The answer to `request`, for stage-advance, with what the rule's next request is to
    /// pick up ([`RuleRequest::handle`]).
    pub fn rule_completed(
        request: &RuleRequest,
        verdict: baton_core::rules::Verdict,
        handle: Option<String>,
    ) -> Self {
        let input = Input::RuleCompleted {
            execution_id: request.execution_id.clone(),
            stage: request.stage.clone(),
            condition: request.condition,
            rule: request.rule.clone(),
            request: request.request,
            verdict,
            handle,
        };
        Self::for_result(RULE_COMPLETED, &request.pipeline, input)
    }

    /// The rule evaluation this event asks for, if it asks for one.
    pub fn rule_request(&self) -> Option<Result<RuleRequest, DecodeError>> {
        (self.source == SOURCE && self.detail_type == RULE_REQUESTED).then(|| self.decode())
    }

    /// The event telling the worker that the running job `key` has news.
    pub fn job_reported(key: &str) -> Self {
        Self::internal(JOB_REPORTED, Vec::new(), serde_json::json!({"running-job": key}))
    }

    /// The running job a [`JOB_REPORTED`] event names.
    pub fn reported_job(&self) -> Option<&str> {
        (self.source == SOURCE && self.detail_type == JOB_REPORTED)
            .then(|| self.detail["running-job"].as_str())
            .flatten()
    }

    /// The state a public action event announced, when it carries a completion: stage-advance
    /// must not publish that event again.
    pub fn announced_end(&self) -> Option<&str> {
        if self.detail_type != ACTION_DETAIL_TYPE || self.detail.get(COMPLETION_FIELD).is_none() {
            return None;
        }
        self.detail["state"].as_str()
    }

    /// Decodes the input of an event for stage-advance.
    ///
    /// # Errors
    /// [`DecodeError`] for any other event or a malformed detail.
    pub fn pipeline_input(&self) -> Result<PipelineInput, DecodeError> {
        match self.detail_type.as_str() {
            ACTION_COMPLETED | RULE_COMPLETED => self.decode(),
            ACTION_DETAIL_TYPE => self.field(COMPLETION_FIELD),
            other => Err(DecodeError::UnexpectedType(other.into())),
        }
    }

    /// Decodes an action request.
    ///
    /// # Errors
    /// [`DecodeError`] for any other event or a malformed detail.
    pub fn action_request(&self) -> Result<ActionRequest, DecodeError> {
        match self.detail_type.as_str() {
            ACTION_DETAIL_TYPE => self.field(REQUEST_FIELD),
            other => Err(DecodeError::UnexpectedType(other.into())),
        }
    }

    /// Decodes the failure notice a pipeline `FAILED` event carries.
    ///
    /// # Errors
    /// [`DecodeError`] for any other event or a malformed detail.
    pub fn failure_notice(&self) -> Result<baton_core::engine::FailureNotice, DecodeError> {
        match self.detail_type.as_str() {
            PIPELINE_DETAIL_TYPE => self.field(FAILURE_FIELD),
            other => Err(DecodeError::UnexpectedType(other.into())),
        }
    }

    /// Decodes the detail's `field` as `T`; a missing field is malformed.
    fn field<T: serde::de::DeserializeOwned>(&self, field: &str) -> Result<T, DecodeError> {
        let value = self.detail.get(field).cloned().unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|source| DecodeError::Malformed {
            detail_type: format!("{} ({field})", self.detail_type),
            source,
        })
    }

    /// Decodes the detail as `T`.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`].
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_value(self.detail.clone()).map_err(|source| DecodeError::Malformed {
            detail_type: self.detail_type.clone(),
            source,
        })
    }
}

/// A bare public event of `detail_type` for `plan`, with `key` as its detail: what a message
/// rides on when the event it goes with is missing.
/// A public event of `plan` that says only what `about` names.
fn public(plan: &Plan, about: &About) -> BusEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("pipeline".into(), Value::String(plan.name.clone()));
    detail.insert("execution-id".into(), Value::String(about.execution_id.clone()));
    let detail_type = match &about.subject {
        Subject::Pipeline => PIPELINE_DETAIL_TYPE,
        Subject::Stage(stage) => {
            detail.insert("stage".into(), Value::String(stage.clone()));
            STAGE_DETAIL_TYPE
        }
        Subject::Action { stage, action } => {
            detail.insert("stage".into(), Value::String(stage.clone()));
            detail.insert("action".into(), Value::String(action.clone()));
            ACTION_DETAIL_TYPE
        }
    };
    detail.insert("state".into(), Value::String(about.state.as_str().into()));
    BusEvent {
        source: plan.event_source.clone(),
        detail_type: detail_type.into(),
        resources: vec![plan.arn()],
        detail: Value::Object(detail),
        trace: None,
    }
}

#[cfg(test)]
mod tests {
    use baton_core::engine::{ActionError, FailureNotice};
    use baton_core::events::{ACTION_DETAIL_TYPE, PIPELINE_DETAIL_TYPE, PublicEvent};
    use serde_json::json;

    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "p".into(),
            version: 1,
            mode: baton_core::plan::ExecutionMode::Superseded,
            account: "111111111111".into(),
            region: "us-east-1".into(),
            event_source: PUBLIC_SOURCE.into(),
            role_arn: None,
            artifact_stores: vec![],
            variables: vec![],
            stages: vec![],
        }
    }

    /// An engine's event: what it is about, as its detail says.
    fn public(detail_type: &str, detail: Value) -> Effect {
        let text = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
        let subject = match (detail.get("stage"), detail.get("action")) {
            (Some(_), Some(_)) => Subject::Action { stage: text("stage"), action: text("action") },
            (Some(_), None) => Subject::Stage(text("stage")),
            _ => Subject::Pipeline,
        };
        let about = About {
            execution_id: text("execution-id"),
            subject,
            state: Published::parse(&text("state")).unwrap(),
        };
        Effect::Publish(PublicEvent {
            about: Some(Box::new(about)),
            version: "0".into(),
            id: "x".into(),
            detail_type: detail_type.into(),
            source: PUBLIC_SOURCE.into(),
            account: "111111111111".into(),
            time: "t".into(),
            region: "us-east-1".into(),
            resources: vec![],
            detail,
        })
    }

    fn request(action: &str) -> ActionRequest {
        serde_json::from_value(json!({
            "pipeline": "p", "pipeline_version": 1, "execution_id": "e1", "stage": "Build",
            "action": action, "attempt": 1, "region": "us-east-1", "deadline": 0,
            "action_type": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {}, "commands": [], "input_artifacts": [], "output_artifacts": [],
            "output_artifact_files": [], "output_variables": [], "environment_variables": [],
            "announce": {"source": PUBLIC_SOURCE, "account": "111111111111",
                "home_region": "us-east-1", "execution_attempt": 1}
        }))
        .unwrap()
    }

    #[test]
    fn requests_and_notices_ride_on_their_own_public_events() {
        let started = |action: &str| {
            public(
                ACTION_DETAIL_TYPE,
                json!({"execution-id": "e1", "stage": "Build", "action": action, "state": "STARTED"}),
            )
        };
        let notice = FailureNotice {
            pipeline: "p".into(),
            execution_id: "e1".into(),
            stage: "Build".into(),
            failures: vec!["A: boom".into()],
        };
        let effects = vec![
            started("A"),
            Effect::RequestAction(Box::new(request("A"))),
            started("B"),
            Effect::RequestAction(Box::new(request("B"))),
            public(PIPELINE_DETAIL_TYPE, json!({"execution-id": "e1", "state": "FAILED"})),
            Effect::NotifyFailure(notice.clone()),
        ];
        let events = BusEvent::for_effects(&plan(), effects);
        assert_eq!(events.len(), 3, "no event of their own: {events:#?}");
        assert_eq!(events[0].action_request().unwrap().action, "A");
        assert_eq!(events[1].action_request().unwrap().action, "B");
        assert_eq!(events[2].failure_notice().unwrap(), notice);
    }

    #[test]
    fn a_request_without_its_started_event_still_gets_an_event_that_reaches_the_worker() {
        let events =
            BusEvent::for_effects(&plan(), vec![Effect::RequestAction(Box::new(request("A")))]);
        assert_eq!(events.len(), 1);
        let rules = crate::routing::rules();
        assert_eq!(
            crate::routing::targets(&rules, &events[0]),
            vec![crate::routing::Target::ActionWorker]
        );
        assert_eq!(events[0].action_request().unwrap(), request("A"));
    }

    #[test]
    fn a_result_is_the_public_end_and_carries_the_completion() {
        let failed = ActionOutcome::Failed {
            error: ActionError { code: "JobFailed".into(), message: "boom".into() },
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        };
        let event = BusEvent::action_completed(&request("A"), failed.clone(), 0);
        assert_eq!(
            (event.source.as_str(), event.detail_type.as_str()),
            (PUBLIC_SOURCE, ACTION_DETAIL_TYPE)
        );
        assert_eq!(event.announced_end(), Some("FAILED"));
        let input = event.pipeline_input().unwrap();
        assert!(matches!(input.input, Input::ActionCompleted { outcome, .. } if outcome == failed));

        let older = ActionRequest { announce: Default::default(), ..request("A") };
        let event = BusEvent::action_completed(&older, failed, 0);
        assert_eq!(event.detail_type, ACTION_COMPLETED, "a request without `announce`");
        assert_eq!(event.announced_end(), None);
    }

    /// A rule evaluation has no public event to ride on: it goes to the worker on its own, and
    /// its answer goes to stage-advance.
    #[test]
    fn a_rule_request_and_its_answer_reach_the_worker_and_stage_advance() {
        use crate::routing::{Target, rules, targets};
        use baton_core::engine::{ConditionKind, RuleRequest};
        use baton_core::rules::Verdict;
        let request = RuleRequest {
            pipeline: "p".into(),
            pipeline_version: 1,
            execution_id: "e1".into(),
            stage: "Deploy".into(),
            condition: ConditionKind::OnSuccess,
            rule: "Smoke".into(),
            request: 3,
            provider: "Commands".into(),
            configuration: Default::default(),
            commands: vec!["true".into()],
            input_artifacts: vec![],
            region: "us-east-1".into(),
            role_arn: None,
            pipeline_role_arn: None,
            artifact_stores: Vec::new(),
            handle: None,
            started_at: 0,
            deadline: 1,
        };
        let events =
            BusEvent::for_effects(&plan(), vec![Effect::RequestRule(Box::new(request.clone()))]);
        assert_eq!(events.len(), 1);
        assert_eq!(targets(&rules(), &events[0]), vec![Target::ActionWorker]);
        assert_eq!(events[0].rule_request().unwrap().unwrap(), request);
        assert!(events[0].action_request().is_err(), "not an action's request");

        let answer = BusEvent::rule_completed(&request, Verdict::Fail("exit 1".into()), None);
        assert_eq!(targets(&rules(), &answer), vec![Target::StageAdvance]);
        let input = answer.pipeline_input().unwrap();
        assert_eq!(input.pipeline, "p");
        assert!(matches!(input.input,
            Input::RuleCompleted { request: 3, verdict: Verdict::Fail(m), .. } if m == "exit 1"));
    }
}
