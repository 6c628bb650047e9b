//! The worker measures each attempt's end (provider, outcome, duration from the attempt's
//! start as the execution recorded it), and nothing for an attempt that is not current.

use std::sync::{Arc, Mutex};

use baton::ports::metrics::{Metric, Metrics};
use baton_core::engine::Millis;

use crate::pipeline_roles::requested;

#[derive(Default)]
struct Measured(Mutex<Vec<(Metric, Millis)>>);

impl Metrics for Measured {
    fn record(&self, metric: &Metric, at: Millis) {
        self.0.lock().unwrap().push((metric.clone(), at));
    }
}

#[tokio::test]
async fn an_attempts_end_is_measured_with_its_provider_and_duration() {
    let (worker, _, requests) = requested(true).await;
    let measured = Arc::new(Measured::default());
    let worker = worker.with_metrics(measured.clone());
    let mut stale = requests[0].clone();
    stale.attempt += 1;
    worker.run(stale).await.unwrap();
    assert!(
        measured.0.lock().unwrap().is_empty(),
        "an attempt that is not current is not measured"
    );

    worker.run(requests[0].clone()).await.unwrap();
    let seen = measured.0.lock().unwrap().clone();
    let [(Metric::ActionEnded { provider, succeeded, duration }, at)] = &seen[..] else {
        panic!("one action end, not {seen:?}");
    };
    assert_eq!((provider.as_str(), *succeeded), ("AWS/Source/S3", false), "the provider failed it");
    // From the start the execution recorded to the end, on the same clock.
    assert!(*duration >= 0 && *duration < 60_000, "{duration}");
    assert!(*at - *duration > 1_700_000_000_000, "the start is a real time: {at} - {duration}");
}
