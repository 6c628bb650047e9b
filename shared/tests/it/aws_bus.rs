//! The EventBridge bus and the SNS notifier: delivery through moto into SQS queues, and the
//! batching and partial-failure retries against a fake `PutEvents`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use baton::adapters::aws::eventbridge_bus::{
    Entry, EventBridgeBus, MAX_ENTRIES, PutEvents, RetryPolicy, publish_batched,
};
use baton::adapters::aws::sns_notifier::SnsNotifier;
use baton::bus_events::BusEvent;
use baton::ports::BoxError;
use baton::ports::bus::{BusError, EventBus};
use baton::ports::notices::{Notice, Notifier};
use serde_json::{Value, json};

use crate::aws_support::{queue, receive, sdk_config, unique};

const REGION: &str = "eu-west-1";

fn event(source: &str, n: usize) -> BusEvent {
    BusEvent {
        source: source.into(),
        detail_type: "Baton Test".into(),
        resources: vec![format!("arn:aws:codepipeline:{REGION}:123456789012:p{n}")],
        detail: json!({ "n": n, "nested": { "text": "ünïcode ✓", "list": [1, 2, 3] } }),
        trace: None,
    }
}

/// A bus with one rule matching `pattern`, targeting a fresh queue; returns the queue URL.
pub(crate) async fn bus_with_rule(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    pattern: &Value,
) -> String {
    let (url, arn) = queue(sqs, &unique("baton-bus-q")).await;
    rule_to_queue(events, bus, pattern, arn).await;
    url
}

/// A rule on `bus` with `pattern`, sending to the queue `arn`.
async fn rule_to_queue(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    pattern: &Value,
    arn: String,
) {
    let rule = unique("baton-rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    let target =
        aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule(&rule).event_bus_name(bus).targets(target).send().await.unwrap();
}

#[tokio::test]
async fn twenty_three_events_reach_a_rule_target_intact_and_a_non_matching_rule_gets_none() {
    let config = sdk_config(REGION).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique("baton-bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let source = unique("baton.test");
    let matching = bus_with_rule(
        &events,
        &sqs,
        &bus,
        &json!({ "source": [source], "detail-type": ["Baton Test"] }),
    )
    .await;
    let other = bus_with_rule(&events, &sqs, &bus, &json!({ "source": ["somebody.else"] })).await;
    let sent: Vec<BusEvent> = (0..23).map(|n| event(&source, n)).collect();

    EventBridgeBus::new(events, bus).publish(&sent).await.unwrap();

    let bodies = receive(&sqs, &matching, 23, Duration::from_secs(20)).await;
    assert_eq!(bodies.len(), 23);
    let mut received: Vec<Value> =
        bodies.iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    received.sort_by_key(|e| e["detail"]["n"].as_u64());
    for (envelope, original) in received.iter().zip(&sent) {
        assert_eq!(envelope["source"], json!(source));
        assert_eq!(envelope["detail-type"], json!("Baton Test"));
        assert_eq!(envelope["detail"], original.detail, "the detail arrives as it was sent");
        assert_eq!(envelope["resources"], json!(original.resources));
    }
    let stray = receive(&sqs, &other, 0, Duration::from_secs(2)).await;
    assert!(stray.is_empty(), "a pattern that does not match delivers nothing: {stray:?}");
}

#[tokio::test]
async fn a_notice_reaches_its_topic_or_the_default_one_with_an_acceptable_subject() {
    let config = sdk_config(REGION).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = |name: String| {
        let sns = sns.clone();
        async move { sns.create_topic().name(name).send().await.unwrap().topic_arn.unwrap() }
    };
    let subscribe = |topic: String, queue_arn: String, raw: bool| {
        let sns = sns.clone();
        async move {
            sns.subscribe()
                .topic_arn(topic)
                .protocol("sqs")
                .endpoint(queue_arn)
                .attributes("RawMessageDelivery", raw.to_string())
                .send()
                .await
                .unwrap();
        }
    };
    let default_topic = topic(unique("baton-notices")).await;
    let approvals = topic(unique("baton-approvals")).await;
    let (raw_url, raw_arn) = queue(&sqs, &unique("baton-raw")).await;
    let (envelope_url, envelope_arn) = queue(&sqs, &unique("baton-envelope")).await;
    let (approvals_url, approvals_arn) = queue(&sqs, &unique("baton-approvals-q")).await;
    subscribe(default_topic.clone(), raw_arn, true).await;
    subscribe(default_topic.clone(), envelope_arn, false).await;
    subscribe(approvals.clone(), approvals_arn, true).await;
    let notifier = SnsNotifier::new(sns.clone(), default_topic);

    // A local topic name means nothing on AWS: the default topic gets it.
    let failure = Notice {
        topic: Some("ops".into()),
        subject: format!("Pipeline «release» failed\nin stage {}", "Deploy".repeat(30)),
        message: "Execution 1 failed.\nline two".into(),
        text: None,
    };
    notifier.send(&failure).await.unwrap();
    // With a text for people, mail gets the text and every other protocol the JSON.
    let approval = Notice {
        topic: Some(approvals),
        subject: "Approve?".into(),
        message: r#"{"approval":{"pipelineName":"app"}}"#.into(),
        text: Some("Approve: https://example.invalid/a".into()),
    };
    notifier.send(&approval).await.unwrap();

    let raw = receive(&sqs, &raw_url, 1, Duration::from_secs(10)).await;
    assert_eq!(raw, vec![failure.message.clone()], "raw delivery carries the message verbatim");
    let envelope = receive(&sqs, &envelope_url, 1, Duration::from_secs(10)).await;
    let envelope: Value = serde_json::from_str(&envelope[0]).unwrap();
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(subject.len() < 100, "{subject}");
    assert!(subject.starts_with("Pipeline ?release? failed in stage Deploy"), "{subject}");
    assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{subject}");
    assert_eq!(envelope["Message"], json!(failure.message));
    let approvals = receive(&sqs, &approvals_url, 1, Duration::from_secs(10)).await;
    assert_eq!(
        approvals,
        vec![r#"{"approval":{"pipelineName":"app"}}"#.to_owned()],
        "a topic ARN in the notice is used, and machines get the JSON"
    );
}

/// A `PutEvents` that refuses entries as scripted and records every request.
#[derive(Default)]
struct FakePutEvents {
    /// Event index -> how many more times it is refused.
    refusals: Mutex<HashMap<usize, u32>>,
    /// Request number (from 0) -> fail the whole request.
    broken_requests: Vec<usize>,
    requests: Mutex<Vec<Vec<usize>>>,
}

impl FakePutEvents {
    fn refusing(refusals: &[(usize, u32)]) -> Self {
        Self { refusals: Mutex::new(refusals.iter().copied().collect()), ..Self::default() }
    }

    fn requests(&self) -> Vec<Vec<usize>> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl PutEvents for FakePutEvents {
    async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<Option<String>>, BoxError> {
        let mut requests = self.requests.lock().unwrap();
        let number = requests.len();
        requests.push(entries.iter().map(|e| e.index).collect());
        assert!(entries.len() <= MAX_ENTRIES, "a request of {} entries", entries.len());
        if self.broken_requests.contains(&number) {
            return Err("connection reset".into());
        }
        let mut refusals = self.refusals.lock().unwrap();
        Ok(entries
            .iter()
            .map(|e| match refusals.get_mut(&e.index) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    Some("ThrottlingException: slow down".to_owned())
                }
                _ => None,
            })
            .collect())
    }
}

const NO_WAIT: RetryPolicy = RetryPolicy { attempts: 3, backoff: Duration::ZERO };

fn events(count: usize) -> Vec<BusEvent> {
    (0..count).map(|n| event("baton.test", n)).collect()
}

#[tokio::test]
async fn batches_of_ten_carry_every_event_once() {
    let fake = FakePutEvents::default();

    publish_batched(&fake, &events(23), NO_WAIT).await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
    assert_eq!(requests.concat(), (0..23).collect::<Vec<_>>());
}

#[tokio::test]
async fn refused_entries_are_sent_again_until_accepted() {
    let fake = FakePutEvents::refusing(&[(4, 1), (17, 2)]);

    publish_batched(&fake, &events(23), NO_WAIT).await.unwrap();

    let requests = fake.requests();
    assert_eq!(&requests[3..], &[vec![4, 17], vec![17]], "only refused entries are resent");
}

#[tokio::test]
async fn entries_still_refused_after_the_last_attempt_are_reported_by_index() {
    let fake = FakePutEvents::refusing(&[(2, 99), (12, 99), (13, 1)]);

    let result = publish_batched(&fake, &events(15), NO_WAIT).await;

    assert!(matches!(&result, Err(BusError::Partial(ix)) if ix == &[2, 12]), "{result:?}");
    assert_eq!(fake.requests().len(), 2 + 2, "two batches, then two retries");
}

#[tokio::test]
async fn an_event_over_256_kb_is_reported_and_never_sent() {
    let fake = FakePutEvents::default();
    let mut sent = events(3);
    sent[1].detail = json!({ "blob": "x".repeat(256 * 1024) });

    let result = publish_batched(&fake, &sent, NO_WAIT).await;

    assert!(matches!(&result, Err(BusError::Partial(ix)) if ix == &[1]), "{result:?}");
    assert_eq!(fake.requests(), vec![vec![0, 2]]);
}

#[tokio::test]
async fn requests_stay_under_256_kb_together() {
    let fake = FakePutEvents::default();
    let mut sent = events(4);
    for e in &mut sent {
        e.detail = json!({ "blob": "x".repeat(100 * 1024) });
    }

    publish_batched(&fake, &sent, NO_WAIT).await.unwrap();

    assert_eq!(fake.requests(), vec![vec![0, 1], vec![2, 3]]);
}

#[tokio::test]
async fn a_failed_request_is_unavailable_first_and_partial_after_progress() {
    let broken_first = FakePutEvents { broken_requests: vec![0], ..FakePutEvents::default() };
    let result = publish_batched(&broken_first, &events(15), NO_WAIT).await;
    assert!(matches!(result, Err(BusError::Unavailable(_))), "{result:?}");

    let broken_second = FakePutEvents { broken_requests: vec![1], ..FakePutEvents::default() };
    let result = publish_batched(&broken_second, &events(25), NO_WAIT).await;
    let expected: Vec<usize> = (10..25).collect();
    assert!(matches!(&result, Err(BusError::Partial(ix)) if ix == &expected), "{result:?}");
}

#[tokio::test]
async fn eventbridge_keeps_the_event_bus_contract_with_the_templates_rules() {
    use baton::routing::{Target, rules};
    let config = sdk_config(REGION).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique("baton-contract");
    events.create_event_bus().name(&bus).send().await.unwrap();
    // One queue per function stands in for it (moto cannot invoke Lambda): every rule of
    // the function sends there.
    let mut queues: HashMap<Target, (String, String)> = HashMap::new();
    for rule in rules() {
        if let std::collections::hash_map::Entry::Vacant(slot) = queues.entry(rule.target) {
            slot.insert(queue(&sqs, &unique("baton-contract-q")).await);
        }
        rule_to_queue(&events, &bus, &rule.pattern, queues[&rule.target].1.clone()).await;
    }
    let eventbridge = EventBridgeBus::new(events, bus);
    let delivered = |target: Target, expected: usize| {
        let (sqs, url) = (sqs.clone(), queues[&target].0.clone());
        async move {
            let patience = Duration::from_secs(if expected == 0 { 2 } else { 20 });
            receive(&sqs, &url, expected, patience)
                .await
                .iter()
                .map(|body| {
                    let e: Value = serde_json::from_str(body).unwrap();
                    BusEvent {
                        source: e["source"].as_str().unwrap().into(),
                        detail_type: e["detail-type"].as_str().unwrap().into(),
                        resources: serde_json::from_value(e["resources"].clone()).unwrap(),
                        detail: e["detail"].clone(),
                        trace: None,
                    }
                })
                .collect::<Vec<_>>()
        }
    };
    baton_testkit::event_bus_contract(&eventbridge, delivered).await;
}
