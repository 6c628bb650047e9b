//! The public state-change events, shaped as CodePipeline emits them to EventBridge.
//!
//! Detail-types and detail fields are CodePipeline's; only `source` is the deployment's own, so
//! a rule written for CodePipeline works with one word changed. States are upper case and
//! spelled `CANCELED`, as in CodePipeline's events (the API enums say `Cancelled`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::engine::{ActionOutcome, ActionRequest, Artifact, Millis};
use crate::plan::{ActionType, Plan};

/// `detail-type` of pipeline execution events.
pub const PIPELINE_DETAIL_TYPE: &str = "CodePipeline Pipeline Execution State Change";
/// `detail-type` of stage execution events.
pub const STAGE_DETAIL_TYPE: &str = "CodePipeline Stage Execution State Change";
/// `detail-type` of action execution events.
pub const ACTION_DETAIL_TYPE: &str = "CodePipeline Action Execution State Change";

/// An EventBridge event, as it is put on the bus and as a rule target receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicEvent {
    /// The envelope version: always `"0"`.
    pub version: String,
    /// Derived from what the event says, so a re-sent event keeps its id and receivers can
    /// drop the copy.
    pub id: String,
    #[serde(rename = "detail-type")]
    #[allow(missing_docs)]
    pub detail_type: String,
    #[allow(missing_docs)]
    pub source: String,
    #[allow(missing_docs)]
    pub account: String,
    /// RFC 3339, seconds, UTC.
    pub time: String,
    #[allow(missing_docs)]
    pub region: String,
    /// The pipeline's ARN.
    pub resources: Vec<String>,
    #[allow(missing_docs)]
    pub detail: Value,
    /// What the event is about, typed, for the engine's events: who carries a message on one,
    /// or leaves one out, finds it by this rather than by reading its JSON. Not sent.
    #[serde(skip)]
    pub about: Option<Box<About>>,
}

/// What a public event is about: an execution, one of its stages or actions, in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    #[allow(missing_docs)]
    pub execution_id: String,
    #[allow(missing_docs)]
    pub subject: Subject,
    #[allow(missing_docs)]
    pub state: Published,
}

/// Which part of an execution an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The execution itself.
    Pipeline,
    /// A stage, by name.
    Stage(String),
    /// An action, by stage and action name.
    Action {
        #[allow(missing_docs)]
        stage: String,
        #[allow(missing_docs)]
        action: String,
    },
}

/// What every public event of an action attempt carries besides its state: whoever ends the
/// attempt (the engine, or the worker announcing its result) builds the same event from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// `source` of the public events.
    pub source: String,
    /// The pipeline's account.
    pub account: String,
    /// The pipeline's home region (the action's own region is in the detail).
    pub home_region: String,
    /// `pipeline-execution-attempt` of the attempt's stage.
    pub execution_attempt: u32,
}

impl Announce {
    /// What the events of `plan` carry, for a stage in its `execution_attempt`.
    pub fn of(plan: &Plan, execution_attempt: u32) -> Self {
        Self {
            source: plan.event_source.clone(),
            account: plan.account.clone(),
            home_region: plan.region.clone(),
            execution_attempt,
        }
    }
}

/// A `state` CodePipeline's execution, stage and action events carry. Each kind of event takes
/// some of them: STOPPING, RESUMED and SUPERSEDED are never an action's, ABANDONED only an
/// action's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    #[allow(missing_docs)]
    Started,
    #[allow(missing_docs)]
    Succeeded,
    #[allow(missing_docs)]
    Failed,
    /// CodePipeline's spelling: one L.
    Canceled,
    #[allow(missing_docs)]
    Resumed,
    #[allow(missing_docs)]
    Stopping,
    #[allow(missing_docs)]
    Stopped,
    #[allow(missing_docs)]
    Superseded,
    #[allow(missing_docs)]
    Abandoned,
}

impl Published {
    /// The state `text` spells, if the events have one so spelled.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Started,
            Self::Succeeded,
            Self::Failed,
            Self::Canceled,
            Self::Resumed,
            Self::Stopping,
            Self::Stopped,
            Self::Superseded,
            Self::Abandoned,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// As the events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Resumed => "RESUMED",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Superseded => "SUPERSEDED",
            Self::Abandoned => "ABANDONED",
        }
    }
}

/// Where an event happened, inside one execution.
pub(crate) struct Origin<'a> {
    pub(crate) pipeline: &'a str,
    /// The pipeline's structure version.
    pub(crate) version: i64,
    pub(crate) source: &'a str,
    pub(crate) account: &'a str,
    pub(crate) region: &'a str,
    pub(crate) execution_id: &'a str,
    pub(crate) now: Millis,
    /// `pipeline-execution-attempt`: 1, +1 per retry of the stage concerned.
    pub(crate) attempt: u32,
}

impl<'a> Origin<'a> {
    pub(crate) fn of(plan: &'a Plan, execution_id: &'a str, now: Millis, attempt: u32) -> Self {
        Self {
            pipeline: &plan.name,
            version: plan.version,
            source: &plan.event_source,
            account: &plan.account,
            region: &plan.region,
            execution_id,
            now,
            attempt,
        }
    }

    fn envelope(&self, detail_type: &str, detail: Map<String, Value>, key: &str) -> PublicEvent {
        let id_seed = format!("{}|{}|{}|{}", self.execution_id, detail_type, key, self.attempt);
        PublicEvent {
            version: "0".into(),
            id: uuid_from(&id_seed),
            detail_type: detail_type.into(),
            source: self.source.into(),
            account: self.account.into(),
            time: rfc3339(self.now),
            region: self.region.into(),
            resources: vec![format!(
                "arn:aws:codepipeline:{}:{}:{}",
                self.region, self.account, self.pipeline
            )],
            detail: Value::Object(detail),
            about: None,
        }
    }

    fn about(&self, subject: Subject, state: Published) -> Option<Box<About>> {
        Some(Box::new(About { execution_id: self.execution_id.into(), subject, state }))
    }

    fn base(&self, state: Published) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("pipeline".into(), json!(self.pipeline));
        d.insert("execution-id".into(), json!(self.execution_id));
        d.insert("state".into(), json!(state.as_str()));
        d.insert("version".into(), json!(self.version));
        d.insert("pipeline-execution-attempt".into(), json!(self.attempt));
        d
    }

    /// A pipeline execution event. `extra` adds `execution-trigger` (STARTED) or
    /// `stop-execution-comments` (STOPPING).
    pub(crate) fn pipeline(&self, state: Published, extra: Option<(&str, Value)>) -> PublicEvent {
        let mut d = self.base(state);
        if let Some((k, v)) = extra {
            d.insert(k.into(), v);
        }
        let event = self.envelope(PIPELINE_DETAIL_TYPE, d, state.as_str());
        PublicEvent { about: self.about(Subject::Pipeline, state), ..event }
    }

    /// A stage execution event.
    pub(crate) fn stage(&self, stage: &str, state: Published) -> PublicEvent {
        let mut d = self.base(state);
        d.insert("stage".into(), json!(stage));
        let event = self.envelope(STAGE_DETAIL_TYPE, d, &format!("{stage}|{}", state.as_str()));
        PublicEvent { about: self.about(Subject::Stage(stage.into()), state), ..event }
    }

    /// An action execution event.
    pub(crate) fn action(&self, a: ActionEvent<'_>) -> PublicEvent {
        let mut d = self.base(a.state);
        d.insert("stage".into(), json!(a.stage));
        d.insert("action".into(), json!(a.action));
        d.insert("region".into(), json!(a.region));
        d.insert("type".into(), type_json(a.action_type));
        if let Some(inputs) = a.input_artifacts {
            d.insert("input-artifacts".into(), artifacts_json(inputs));
        }
        if let Some(outputs) = a.output_artifacts {
            d.insert("output-artifacts".into(), artifacts_json(outputs));
        }
        if let Some(result) = a.result {
            d.insert("execution-result".into(), result);
        }
        let key = format!("{}|{}|{}|{}", a.stage, a.action, a.action_attempt, a.state.as_str());
        let event = self.envelope(ACTION_DETAIL_TYPE, d, &key);
        let subject = Subject::Action { stage: a.stage.into(), action: a.action.into() };
        PublicEvent { about: self.about(subject, a.state), ..event }
    }
}

/// The parts of an action event.
pub(crate) struct ActionEvent<'a> {
    pub(crate) stage: &'a str,
    pub(crate) action: &'a str,
    pub(crate) action_attempt: u32,
    pub(crate) state: Published,
    pub(crate) region: &'a str,
    pub(crate) action_type: &'a ActionType,
    pub(crate) input_artifacts: Option<&'a [Artifact]>,
    pub(crate) output_artifacts: Option<&'a [Artifact]>,
    pub(crate) result: Option<Value>,
}

/// The public SUCCEEDED or FAILED event of the attempt `request` names, ending with `outcome`:
/// the event the engine publishes when it applies that outcome. The worker publishes it itself,
/// carrying the outcome to stage-advance, so the result costs one event rather than two.
pub fn action_end(request: &ActionRequest, outcome: &ActionOutcome, now: Millis) -> PublicEvent {
    let a = &request.announce;
    let origin = Origin {
        pipeline: &request.pipeline,
        version: request.pipeline_version,
        source: &a.source,
        account: &a.account,
        region: &a.home_region,
        execution_id: &request.execution_id,
        now,
        attempt: a.execution_attempt.max(1),
    };
    let (state, outputs, result) = match outcome {
        ActionOutcome::Succeeded { artifacts, summary, external_id, external_url, .. } => (
            Published::Succeeded,
            Some(artifacts.as_slice()),
            execution_result(
                external_url.as_deref(),
                summary.as_deref(),
                external_id.as_deref(),
                None,
            ),
        ),
        ActionOutcome::Failed { error, external_id, external_url, .. } => (
            Published::Failed,
            None,
            execution_result(
                external_url.as_deref(),
                Some(&error.message),
                external_id.as_deref(),
                Some(&error.code),
            ),
        ),
    };
    origin.action(ActionEvent {
        stage: &request.stage,
        action: &request.action,
        action_attempt: request.attempt,
        state,
        region: &request.region,
        action_type: &request.action_type,
        input_artifacts: None,
        output_artifacts: outputs,
        result: Some(result),
    })
}

/// CodePipeline's `execution-result` object.
pub(crate) fn execution_result(
    url: Option<&str>,
    summary: Option<&str>,
    id: Option<&str>,
    error_code: Option<&str>,
) -> Value {
    let mut r = Map::new();
    r.insert("external-execution-url".into(), json!(url.unwrap_or("")));
    r.insert("external-execution-summary".into(), json!(summary.unwrap_or("")));
    r.insert("external-execution-id".into(), json!(id.unwrap_or("")));
    if let Some(code) = error_code {
        r.insert("error-code".into(), json!(code));
    }
    Value::Object(r)
}

/// The action type. CodePipeline's documentation shows `version` as a string, but EventBridge's
/// schema registry and live events carry a number, and `aws_lambda_events` decodes a number: so
/// a numeric version is sent as a number.
fn type_json(t: &ActionType) -> Value {
    let version = t.version.parse::<i64>().map_or_else(|_| json!(t.version), |n| json!(n));
    json!({"owner": t.owner, "category": t.category, "provider": t.provider, "version": version})
}

fn artifacts_json(artifacts: &[Artifact]) -> Value {
    Value::Array(
        artifacts
            .iter()
            .map(|a| {
                json!({"name": a.name, "s3location": {"bucket": a.location.bucket, "key": a.location.key}})
            })
            .collect(),
    )
}

/// Formats a time as CodePipeline's events do: `2020-01-24T22:03:07Z`.
pub fn rfc3339(millis: Millis) -> String {
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by Howard Hinnant's
/// algorithm, so no date crate is needed.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A UUID-formatted digest of `seed` (two FNV-1a passes). Not a secret, only a stable name.
pub fn uuid_from(seed: &str) -> String {
    let a = fnv1a(seed.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a(seed.as_bytes(), 0x8422_2325_cbf2_9ce4 ^ a);
    format_uuid((u128::from(a) << 64) | u128::from(b))
}

/// Formats 128 bits as a version-4-looking UUID.
pub fn format_uuid(bits: u128) -> String {
    let bits = (bits & !(0xf000u128 << 64) | (0x4000u128 << 64)) & !(0xc000u128 << 48)
        | (0x8000u128 << 48);
    let h = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_codepipeline_does() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_579_903_387_000), "2020-01-24T22:03:07Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = uuid_from("x");
        assert_eq!(a, uuid_from("x"));
        assert_ne!(a, uuid_from("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
