//! The delivery loop: what EventBridge does with a rule's matches on AWS. Each rule's queue is
//! polled; a match is handed to the function the rule names, as the EventBridge envelope, and
//! deleted once the function took it. A function error leaves the message to come back (the
//! rule's retry policy). The failure rule's SNS target is done here too: moto cannot deliver
//! from a rule to SNS.
//!
//! Faults are injected here, where a real bus would misbehave: delivering twice, delivering
//! two completions at the same instant, and a function killed in the middle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Notify;

use crate::runtime::Pool;
use crate::stack::{RuleQueue, Stack};
use crate::template::RuleTarget;

/// Faults to inject.
#[derive(Default)]
pub struct Faults {
    /// Every match on the functions' bus is delivered a second time once the first delivery
    /// was handled.
    pub duplicate: bool,
    /// Action requests (public STARTED events) of this stage are held until two arrived, then
    /// both are delivered at once: the two workers read the same state, and their ends race
    /// to save it.
    pub racing_actions_of: Option<String>,
    /// The first match of `detail_type` for the kill's function goes to `pool` instead (one
    /// whose save lands but is never answered), which is killed once it saved.
    pub kill: Option<std::sync::Arc<Kill>>,
}

/// A function to kill mid-invocation.
pub struct Kill {
    /// The function (its binary's name) whose invocation is killed.
    pub function: String,
    #[allow(missing_docs)]
    pub detail_type: String,
    /// The doomed function.
    pub pool: tokio::sync::Mutex<Pool>,
    /// Shows when the doomed function saved.
    pub proxy: crate::proxy::Proxy,
    /// Set once the process was killed with saved, unpublished events.
    pub done: AtomicBool,
    /// Woken when `done` is set.
    pub notify: Notify,
    /// How many writes the doomed function made before the kill.
    pub writes_at_kill: Mutex<usize>,
}

/// Messages the harness read from a queue it collects (public events, notices).
pub type Collected = Arc<Mutex<Vec<Value>>>;

/// Runs the delivery loop until dropped.
pub struct Delivery {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Public events (`source: baton.codepipeline`) as delivered by the catch-all rule.
    pub public_events: Collected,
    /// SNS notifications on the approvals topic (the SQS subscription's envelopes).
    pub approval_notices: Collected,
    /// SNS notifications on the failures topic.
    pub failure_notices: Collected,
    /// Delivery failures the functions reported (error documents), for the test's messages.
    pub errors: Collected,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Ctx {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    pools: BTreeMap<String, Arc<Pool>>,
    faults: Faults,
    /// The first request of the stage, waiting for the second; `None` once they have raced,
    /// after which the stage's other requests (a third action's) go through as they come.
    held: Mutex<Option<Vec<(Value, String)>>>,
    errors: Collected,
    /// Topic ARN by logical id, for the rules that target SNS.
    topics: BTreeMap<String, String>,
}

impl Delivery {
    /// Starts polling every rule queue of `stack`, handing matches to `pools` (by binary name).
    /// `sns`: where rules' SNS deliveries go, when not straight to moto; `streams`: how the
    /// table's stream is read, when not as the stack's administrator.
    pub async fn start(
        stack: &Stack,
        pools: BTreeMap<String, Arc<Pool>>,
        faults: Faults,
        sns: Option<String>,
        streams: Option<aws_config::SdkConfig>,
    ) -> Result<Self> {
        let sdk = stack.sdk(crate::stack::HOME).await;
        let sns_sdk = match sns {
            Some(url) => sdk.to_builder().endpoint_url(url).build(),
            None => sdk.clone(),
        };
        let errors: Collected = Arc::default();
        let ctx = Arc::new(Ctx {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sns_sdk),
            pools,
            faults,
            held: Mutex::new(Some(Vec::new())),
            errors: errors.clone(),
            topics: BTreeMap::from([
                ("FailureTopic".to_owned(), stack.failure_topic.clone()),
                ("ApprovalTopic".to_owned(), stack.approval_topic.clone()),
            ]),
        });
        let mut tasks = Vec::new();
        if let Some(arn) = &stack.stream_arn {
            let streams = aws_sdk_dynamodbstreams::Client::new(streams.as_ref().unwrap_or(&sdk));
            for source in &stack.stream_sources {
                let Some(pool) = ctx.pools.get(&source.function).cloned() else { continue };
                tasks.push(tokio::spawn(crate::streams::relay(
                    streams.clone(),
                    arn.clone(),
                    source.clone(),
                    pool,
                    ctx.faults.duplicate,
                    errors.clone(),
                )));
            }
        }
        for route in &stack.rules {
            let (ctx, route) = (ctx.clone(), route.clone());
            tasks.push(tokio::spawn(async move { ctx.route(route).await }));
        }
        let mut collect = |queue: &str| {
            let store: Collected = Arc::default();
            let (ctx, queue, into) = (ctx.clone(), queue.to_owned(), store.clone());
            tasks.push(tokio::spawn(async move { ctx.collect(&queue, &into).await }));
            store
        };
        Ok(Self {
            public_events: collect(&stack.public_events_queue),
            approval_notices: collect(&stack.approval_notices_queue),
            failure_notices: collect(&stack.failure_notices_queue),
            errors,
            tasks,
        })
    }
}

/// A snapshot of `c`.
pub fn snapshot(c: &Collected) -> Vec<Value> {
    c.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

impl Ctx {
    async fn receive(&self, queue: &str) -> Vec<(Value, String)> {
        let Ok(out) = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Vec::new();
        };
        out.messages()
            .iter()
            .map(|m| {
                let body = serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
                (body, m.receipt_handle().unwrap_or_default().to_owned())
            })
            .collect()
    }

    async fn delete(&self, queue: &str, handle: &str) {
        let _ = self.sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await;
    }

    /// Lets a message come back at once (a retry) instead of after the visibility timeout.
    async fn release(&self, queue: &str, handle: &str) {
        let _ = self
            .sqs
            .change_message_visibility()
            .queue_url(queue)
            .receipt_handle(handle)
            .visibility_timeout(1)
            .send()
            .await;
    }

    async fn collect(&self, queue: &str, into: &Collected) {
        loop {
            for (body, handle) in self.receive(queue).await {
                into.lock().unwrap_or_else(PoisonError::into_inner).push(body);
                self.delete(queue, &handle).await;
            }
        }
    }

    async fn route(self: Arc<Self>, route: RuleQueue) {
        loop {
            for (event, handle) in self.receive(&route.queue_url).await {
                let (ctx, route) = (self.clone(), route.clone());
                tokio::spawn(async move { ctx.deliver(&route, event, handle).await });
            }
        }
    }

    async fn deliver(self: Arc<Self>, route: &RuleQueue, event: Value, handle: String) {
        let queue = &route.queue_url;
        match &route.rule.target {
            RuleTarget::Topic { logical_id, input_path } => {
                // A plain `$.a.b` path, as the template's InputPath is.
                let path = input_path.as_deref().unwrap_or("$").trim_start_matches('$');
                let message =
                    path.split('.').filter(|p| !p.is_empty()).fold(&event, |v, part| &v[part]);
                let topic = self.topics.get(logical_id).cloned().unwrap_or_default();
                let sent =
                    self.sns.publish().topic_arn(topic).message(message.to_string()).send().await;
                if sent.is_ok() {
                    self.delete(queue, &handle).await;
                }
            }
            RuleTarget::Function(name) => {
                let Some(pool) = self.pools.get(name).cloned() else {
                    // A rule whose function this scenario does not run (none today).
                    return;
                };
                if self.hold(&event, &handle, queue, &pool).await {
                    return;
                }
                if self.kill_here(name, &event).await {
                    // Left in the queue: Lambda retries the killed invocation later.
                    self.release(queue, &handle).await;
                    return;
                }
                let ok = self.invoke(&pool, event.clone()).await;
                if ok {
                    self.delete(queue, &handle).await;
                    // Every event, the S3 "Object Created" that starts the run included (the
                    // trigger derives the execution id from the event id).
                    if self.faults.duplicate {
                        self.invoke(&pool, event).await;
                    }
                } else {
                    self.release(queue, &handle).await;
                }
            }
        }
    }

    async fn invoke(&self, pool: &Pool, event: Value) -> bool {
        match pool.invoke(event).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                self.errors.lock().unwrap_or_else(PoisonError::into_inner).push(e);
                false
            }
            Err(e) => {
                self.errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Value::String(format!("{e:#}")));
                false
            }
        }
    }

    /// Holds the first action request of the configured stage until a sibling arrives, then
    /// delivers both at the same instant. Returns whether the event was taken care of.
    async fn hold(&self, event: &Value, handle: &str, queue: &str, pool: &Arc<Pool>) -> bool {
        let Some(stage) = &self.faults.racing_actions_of else { return false };
        let request = &event["detail"];
        if request["state"] != "STARTED"
            || request["stage"] != **stage
            || request.get("baton-action-request").is_none()
        {
            return false;
        }
        let pair = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(waiting) = held.as_mut() else { return false };
            waiting.push((event.clone(), handle.to_owned()));
            if waiting.len() < 2 {
                return true;
            }
            held.take().unwrap_or_default()
        };
        // Both invocations are in flight at the same instant, on two processes.
        let (a, b) = tokio::join!(
            self.invoke(pool, pair[0].0.clone()),
            self.invoke(pool, pair[1].0.clone())
        );
        for ((_, h), ok) in pair.iter().zip([a, b]) {
            if ok {
                self.delete(queue, h).await;
            } else {
                self.release(queue, h).await;
            }
        }
        true
    }

    /// Runs the first event of the kill fault's type for `function` on the doomed function and
    /// kills it once its state is saved; returns whether this event was the one.
    async fn kill_here(&self, function: &str, event: &Value) -> bool {
        let Some(kill) = &self.faults.kill else { return false };
        if kill.function != function
            || event["detail-type"] != *kill.detail_type
            || kill.done.load(Ordering::SeqCst)
        {
            return false;
        }
        let doomed_name = format!("{function}-doomed");
        let mut pool = kill.pool.lock().await;
        if kill.done.load(Ordering::SeqCst) {
            return false;
        }
        let doomed = event.clone();
        let invocation = {
            let pool: &Pool = &pool;
            // The invocation never ends (its save is never answered); it is raced against
            // the save landing.
            let call = pool.invoke(doomed);
            let deadline = Instant::now() + Duration::from_secs(30);
            let watch = async {
                loop {
                    let writes = kill
                        .proxy
                        .calls()
                        .iter()
                        .filter(|c| {
                            // The save: the one write whose answer never comes (a worker's
                            // claim, a PutItem, comes first).
                            c.function == doomed_name && c.operation == "UpdateItem"
                        })
                        .count();
                    if writes > 0 || Instant::now() > deadline {
                        return writes;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                pending = watch => Some(pending),
                _ = call => None,
            }
        };
        if let Some(instance) = pool.instances.first_mut() {
            let _ = instance.kill().await;
        }
        *kill.writes_at_kill.lock().unwrap_or_else(PoisonError::into_inner) =
            invocation.unwrap_or(0);
        kill.done.store(true, Ordering::SeqCst);
        kill.notify.notify_waiters();
        true
    }
}
