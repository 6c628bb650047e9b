//! Metrics in CloudWatch's embedded metric format: one JSON object per line on the function's
//! standard output, which CloudWatch Logs turns into metrics in the namespace `Baton`. No API
//! call and no permission beyond the logs the function already writes.
//!
//! | metric | unit | dimension |
//! |--------|------|-----------|
//! | `ExecutionsStarted`, `ExecutionsSucceeded`, `ExecutionsFailed`, `ExecutionsStopped`, `ExecutionsSuperseded` | Count | `Pipeline` |
//! | `ActionsSucceeded`, `ActionsFailed` | Count | `Provider` (`Owner/Category/Provider`) |
//! | `ActionDuration` | Milliseconds | `Provider` |

use std::io::Write;
use std::sync::Mutex;

use baton_app::ports::metrics::{Metric, Metrics};
use baton_core::engine::Millis;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of Baton's metrics.
pub const NAMESPACE: &str = "Baton";

/// Writes each metric as an EMF line.
pub struct EmfMetrics {
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfMetrics {
    /// To standard output, where Lambda sends it to CloudWatch Logs.
    pub fn stdout() -> Self {
        Self::to(Box::new(std::io::stdout()))
    }

    /// To `out` (tests).
    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Self { out: Mutex::new(out) }
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, metric: &Metric, at: Millis) {
        let mut line = line(metric, at).to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A metric lost to a closed stdout must not fail the work it measured.
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

/// The EMF object of `metric`, taken at `at`.
pub fn line(metric: &Metric, at: Millis) -> Value {
    let (dimension, value, values): (&str, &str, Vec<(&str, &str, Value)>) = match metric {
        Metric::ExecutionStarted { pipeline } => {
            ("Pipeline", pipeline, vec![("ExecutionsStarted", "Count", json!(1))])
        }
        Metric::ExecutionEnded { pipeline, status } => {
            let name = match status.as_str() {
                "SUCCEEDED" => "ExecutionsSucceeded",
                "FAILED" => "ExecutionsFailed",
                "STOPPED" => "ExecutionsStopped",
                _ => "ExecutionsSuperseded",
            };
            ("Pipeline", pipeline, vec![(name, "Count", json!(1))])
        }
        Metric::ActionEnded { provider, succeeded, duration } => {
            let count = if *succeeded { "ActionsSucceeded" } else { "ActionsFailed" };
            (
                "Provider",
                provider,
                vec![
                    (count, "Count", json!(1)),
                    ("ActionDuration", "Milliseconds", json!(duration)),
                ],
            )
        }
    };
    let definitions: Vec<Value> =
        values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect();
    let mut object = Map::new();
    object.insert(
        "_aws".into(),
        json!({"Timestamp": at, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [[dimension]], "Metrics": definitions}]}),
    );
    object.insert(dimension.into(), json!(value));
    for (name, _, v) in values {
        object.insert(name.into(), v);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_metric_is_one_emf_line_with_its_dimension_and_unit() {
        let captured = Captured::default();
        let metrics = EmfMetrics::to(Box::new(captured.clone()));
        metrics.record(&Metric::ExecutionStarted { pipeline: "app".into() }, 1_000);
        let ended = Metric::ExecutionEnded { pipeline: "app".into(), status: "FAILED".into() };
        metrics.record(&ended, 2_000);
        let action = Metric::ActionEnded {
            provider: "AWS/Build/CodeBuild".into(),
            succeeded: true,
            duration: 1_500,
        };
        metrics.record(&action, 3_000);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");

        assert_eq!(
            lines[0],
            json!({"_aws": {"Timestamp": 1_000, "CloudWatchMetrics": [{"Namespace": "Baton",
                "Dimensions": [["Pipeline"]],
                "Metrics": [{"Name": "ExecutionsStarted", "Unit": "Count"}]}]},
                "Pipeline": "app", "ExecutionsStarted": 1})
        );
        assert_eq!(lines[1]["ExecutionsFailed"], 1);
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "ExecutionsFailed"
        );
        let a = &lines[2];
        assert_eq!(a["Provider"], "AWS/Build/CodeBuild");
        assert_eq!(
            (a["ActionsSucceeded"].clone(), a["ActionDuration"].clone()),
            (json!(1), json!(1_500))
        );
        assert_eq!(
            a["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "ActionDuration", "Unit": "Milliseconds"})
        );
        // Every metric a line declares is a member of it, as EMF requires.
        for l in &lines {
            for m in l["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                assert!(l.get(m["Name"].as_str().unwrap()).is_some(), "{l}");
            }
        }
    }
}
