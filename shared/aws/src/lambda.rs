//! What the four Lambda functions share: turning an invocation into a bus event, keeping what
//! can never succeed in the dead-letter queue, and telling Lambda which failures to retry.
//!
//! A handler returns an error only for failures worth a retry (a dependency was unavailable).
//! A malformed event or one that can never apply is logged and dead-lettered, then reported as
//! handled: returning an error would make Lambda and EventBridge retry it until it expires.

use lambda_runtime::Diagnostic;
use serde_json::Value;
use tracing::{error, warn};

use baton_app::ports::dead_letters::DeadLetters;
use baton_app::service::{ErrorKind, Relay, ServiceError, StreamRecord};
use baton_protocol::bus_events::BusEvent;

/// Where malformed events go: the SQS queue `template.yaml` gives every function.
pub struct DeadLetterQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: Option<String>,
}

impl DeadLetterQueue {
    #[allow(missing_docs)]
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: Option<String>) -> Self {
        Self { sqs, queue_url }
    }
}

#[async_trait::async_trait]
impl DeadLetters for DeadLetterQueue {
    async fn keep(&self, function: &str, reason: &str, payload: &Value) {
        warn!(function, reason, "dead-lettering an event that can never succeed");
        let Some(url) = &self.queue_url else { return };
        let body = serde_json::json!({"function": function, "reason": reason, "event": payload});
        if let Err(e) =
            self.sqs.send_message().queue_url(url).message_body(body.to_string()).send().await
        {
            error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "cannot reach the dead-letter queue");
        }
    }
}

/// A failure Lambda should retry; its `error_type` says which dependency failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HandlerError(#[from] pub ServiceError);

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e.0 {
            ServiceError::Store(_) => "Baton.StateUnavailable",
            ServiceError::Bus(_) => "Baton.BusUnavailable",
            ServiceError::Artifacts(_) => "Baton.ArtifactsUnavailable",
            ServiceError::Provider(_) => "Baton.ProviderUnavailable",
            ServiceError::Notice(_) => "Baton.NoticeUnavailable",
            _ => "Baton.Failed",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// What one invocation carries, decided once by [`Invocation::decode`]. Each handler takes the
/// kinds its function is subscribed to and dead-letters any other.
#[derive(Debug)]
pub enum Invocation {
    /// An EventBridge event: Baton's own, or an AWS service's routed to a function.
    Event(BusEvent),
    /// A batch of the state table's stream records (the outbox relay).
    StreamRecords(Vec<Value>),
    /// One of the schedules `template.yaml` declares.
    Schedule(Schedule),
    /// A request to the function's URL (the approval pages).
    FunctionUrl(Box<aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest>),
}

/// The schedules of `template.yaml`; each sends `{"schedule": "<name>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Schedule {
    /// Stage-advance lets time pass on every pipeline (timeouts, waiting conditions).
    Sweep,
    /// The action worker looks at running jobs whose end may not have been announced.
    CheckRunningJobs,
    /// The trigger looks for new revisions of sources with `PollForSourceChanges: "true"`.
    PollSources,
}

impl Invocation {
    /// Decodes a payload as Lambda hands it over. The payload is taken as plain JSON so that a
    /// malformed one reaches our code (and the dead-letter queue) instead of failing inside the
    /// runtime's decoder.
    ///
    /// # Errors
    /// A sentence saying what the payload lacks.
    pub fn decode(payload: &Value) -> Result<Self, String> {
        // Each source has its own envelope: DynamoDB Streams `Records`, function URLs
        // `requestContext` with `rawPath`, the schedules the input `template.yaml` gives them,
        // EventBridge `source` and `detail-type`.
        if let Some(records) = payload.get("Records") {
            let records = records.as_array().ok_or("the stream batch's Records is not a list")?;
            return Ok(Self::StreamRecords(records.clone()));
        }
        if let Some(name) = payload.get("schedule") {
            return serde_json::from_value(name.clone())
                .map(Self::Schedule)
                .map_err(|_| format!("no schedule is named {name}"));
        }
        if payload.get("requestContext").is_some() && payload.get("rawPath").is_some() {
            return serde_json::from_value(payload.clone())
                .map(|r| Self::FunctionUrl(Box::new(r)))
                .map_err(|e| format!("the function URL request does not decode: {e}"));
        }
        bus_event(payload).map(Self::Event)
    }

    /// What this is, for a sentence saying a function does not take it.
    pub fn kind(&self) -> String {
        match self {
            Self::Event(e) => format!("{} events from {}", e.detail_type, e.source),
            Self::StreamRecords(_) => "stream records".into(),
            Self::Schedule(s) => format!("the {s:?} schedule"),
            Self::FunctionUrl(_) => "function URL requests".into(),
        }
    }

    /// The sentence a handler dead-letters an invocation its function does not take with.
    pub fn not_for(&self, function: &str) -> ServiceError {
        ServiceError::Permanent(format!("the {function} function does not take {}", self.kind()))
    }
}

/// Reads an EventBridge invocation as a bus event. The payload is taken as plain JSON so that
/// a malformed event reaches our code (and the dead-letter queue) instead of failing inside the
/// runtime's decoder.
///
/// # Errors
/// A sentence saying what is missing.
fn bus_event(payload: &Value) -> Result<BusEvent, String> {
    let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let source = text("source").ok_or("the event has no source")?;
    let detail_type = text("detail-type").ok_or("the event has no detail-type")?;
    let detail = payload.get("detail").cloned().ok_or("the event has no detail")?;
    let resources = payload
        .get("resources")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(BusEvent { source, detail_type, resources, detail, trace: None })
}

/// The body of a function URL request as bytes: Lambda base64-encodes bodies it does not take
/// for text, and a body that does not decode is empty (the operation then refuses it).
pub fn function_url_body(
    request: &aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest,
) -> Vec<u8> {
    use base64::Engine as _;
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    }
}

/// Maps a service result to what the handler returns: success, dead-letter, or retry.
///
/// # Errors
/// Only retryable failures.
pub async fn settle(
    function: &str,
    result: Result<(), ServiceError>,
    dead_letters: &dyn DeadLetters,
    payload: &Value,
) -> Result<(), HandlerError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Permanent => {
            dead_letters.keep(function, &e.to_string(), payload).await;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The AWS side of every function, built once per cold start from [`Config`]: the same
/// services as the embedded runtime, on DynamoDB, S3 with KMS, EventBridge and SNS.
pub struct Aws {
    store: std::sync::Arc<crate::adapters::dynamodb_state::DynamoDbStateStore>,
    bus: std::sync::Arc<crate::adapters::eventbridge_bus::EventBridgeBus>,
    artifacts: std::sync::Arc<crate::adapters::s3_artifacts::S3ArtifactStore>,
    roles: std::sync::Arc<crate::adapters::sts_roles::RoleAssumer>,
    config: baton_app::config::Config,
    sdk: aws_config::SdkConfig,
    dead_letters: std::sync::Arc<DeadLetterQueue>,
}

impl Aws {
    /// Makes the clients and adapters, with the SDK's configuration chain.
    pub async fn connect(config: &baton_app::config::Config) -> Self {
        Self::connect_with(config, crate::adapters::sdk::load(None).await)
    }

    /// Makes the clients and adapters on a given SDK configuration (tests: a local emulator).
    pub fn connect_with(config: &baton_app::config::Config, sdk: aws_config::SdkConfig) -> Self {
        use crate::adapters::{dynamodb_state, eventbridge_bus, s3_artifacts, sts_roles};
        let buckets = config
            .artifact_places()
            .into_iter()
            .map(|(region, (bucket, kms_key_arn))| {
                (region, s3_artifacts::ArtifactBucket { bucket, kms_key_arn })
            })
            .collect();
        Self {
            store: std::sync::Arc::new(dynamodb_state::DynamoDbStateStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                config.table.clone(),
                config.retention_days,
            )),
            bus: std::sync::Arc::new(eventbridge_bus::EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&sdk),
                config.bus.clone(),
            )),
            artifacts: std::sync::Arc::new(
                s3_artifacts::S3ArtifactStore::new(sdk.clone(), buckets)
                    .with_declared_buckets(&config.declared_artifact_buckets),
            ),
            roles: std::sync::Arc::new(sts_roles::RoleAssumer::new(sdk.clone())),
            dead_letters: std::sync::Arc::new(DeadLetterQueue::new(
                aws_sdk_sqs::Client::new(&sdk),
                config.dead_letter_queue.clone(),
            )),
            config: config.clone(),
            sdk,
        }
    }

    /// The stage-advance service.
    pub fn stage_advance(&self) -> baton_app::service::StageAdvance {
        baton_app::service::StageAdvance::new(
            self.store.clone(),
            self.bus.clone(),
            std::sync::Arc::new(baton_app::ports::clock::SystemClock),
        )
    }

    /// The action-worker service, with the AWS providers; scratch space in `/tmp`.
    pub fn action_worker(&self) -> baton_app::service::ActionWorker {
        let worker = baton_app::service::ActionWorker::new(
            self.store.clone(),
            self.bus.clone(),
            self.artifacts.clone(),
            self.providers(),
            self.store.clone(),
            std::env::temp_dir().join("baton"),
        )
        .with_claims(self.store.clone())
        .with_metrics(std::sync::Arc::new(crate::adapters::emf_metrics::EmfMetrics::stdout()))
        // An action's end is saved with the next step here, so the next action starts one hop
        // (the stream relay, then EventBridge) after it, not two.
        // A sibling's end saved first costs a read and a try more here, less than the bus's
        // event, invocation and two reads.
        .with_advance(std::sync::Arc::new(self.stage_advance().with_tries_as_read(3)));
        if self.config.assume_pipeline_roles { worker.with_pipeline_roles() } else { worker }
    }

    /// GitHub's API: api.github.com, or the Enterprise Server the deployment names.
    fn github_api(&self) -> &str {
        self.config.github_api.as_deref().unwrap_or(baton_app::adapters::github::GITHUB_API)
    }

    /// CodePipeline's webhooks (GitHub v1 sources), kept in the state table.
    pub fn webhooks(&self) -> baton_app::service::webhooks::v1::Webhooks {
        let github = baton_app::adapters::github::GitHubHooks::new(self.github_api());
        baton_app::service::webhooks::v1::Webhooks::new(
            self.store.clone(),
            self.store.clone(),
            std::sync::Arc::new(baton_app::ports::clock::SystemClock),
        )
        .with_repository_hooks(Some(std::sync::Arc::new(github)))
    }

    /// The trigger service.
    pub fn trigger(&self) -> baton_app::service::Trigger {
        // A pipeline with an action no AWS provider runs is refused before anything runs,
        // as the API's start refuses it.
        let trigger = baton_app::service::Trigger::new(
            self.store.clone(),
            std::sync::Arc::new(self.stage_advance()),
        )
        .with_providers(self.providers());
        if self.config.assume_pipeline_roles { trigger.with_pipeline_roles() } else { trigger }
    }

    /// The AWS providers, as the worker runs them.
    fn providers(&self) -> baton_app::ports::provider::ProviderRegistry {
        let mut providers = baton_app::ports::provider::ProviderRegistry::default().on_aws();
        crate::providers::register(&mut providers, self.roles.clone());
        let github = baton_app::adapters::github::GitHubApi::new(self.github_api());
        crate::providers::register_github(&mut providers, std::sync::Arc::new(github));
        let buckets = self.config.artifact_places();
        crate::providers::register_large_templates(&mut providers, self.roles.clone(), buckets);
        if let Some(project) = &self.config.commands_project {
            crate::providers::register_commands(&mut providers, self.roles.clone(), project);
        }
        crate::providers::register_rules(
            &mut providers,
            self.roles.clone(),
            self.config.account_id.clone(),
        );
        // The target of a pipeline invoke is started unchecked: checking would need these
        // providers, and the worker fails an action it cannot run, naming it.
        let starter = baton_app::service::Trigger::new(
            self.store.clone(),
            std::sync::Arc::new(self.stage_advance()),
        );
        providers.register(
            "Invoke",
            "AWS",
            "CodePipeline",
            std::sync::Arc::new(
                baton_app::providers::pipeline_invoke::PipelineInvokeProvider::new(
                    std::sync::Arc::new(baton_app::service::StarterSlot::with(starter)),
                ),
            ),
        );
        // Jobs for external workers and Lambda functions need a role to lend artifacts with.
        if let Some(role) = &self.config.job_role_arn {
            let grants = std::sync::Arc::new(crate::adapters::sts_job_grants::StsJobGrants::new(
                &self.sdk,
                role.clone(),
            ));
            let clock = std::sync::Arc::new(baton_app::ports::clock::SystemClock);
            let job_workers =
                std::sync::Arc::new(baton_app::providers::job_worker::JobWorkerProvider::new(
                    self.store.clone(),
                    grants.clone(),
                    clock.clone(),
                    self.config.account_id.clone(),
                ));
            providers.register_owner("Custom", job_workers.clone());
            providers.register_owner("ThirdParty", job_workers);
            crate::providers::register_invoke(
                &mut providers,
                self.roles.clone(),
                self.store.clone(),
                grants,
                clock,
                self.config.account_id.clone(),
            );
        }
        providers
    }

    /// Approval notices on the approvals topic (or the action's `NotificationArn`), and the
    /// pages behind their links.
    pub fn approvals(&self) -> baton_app::service::Approvals {
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let notifier = crate::adapters::sns_notifier::SnsNotifier::new(
            sns,
            self.config.approval_topic.clone(),
        );
        baton_app::service::Approvals::new(
            self.store.clone(),
            self.store.clone(),
            self.bus.clone(),
            std::sync::Arc::new(notifier),
            std::sync::Arc::new(baton_app::ports::clock::SystemClock),
            baton_app::service::ApprovalSettings {
                base_url: self.config.approval_url.clone().unwrap_or_default(),
            },
        )
    }

    /// Each repository host's webhook secret, read now from the secret `BATON_WEBHOOK_SECRETS`
    /// names (so a rotated secret holds from the next delivery); none without it.
    ///
    /// # Errors
    /// A sentence when Secrets Manager cannot be read or the secret is not a JSON object.
    pub async fn webhook_secrets(
        &self,
    ) -> Result<std::collections::HashMap<baton_app::service::webhooks::Host, String>, String> {
        let Some(id) = &self.config.webhook_secrets else { return Ok(Default::default()) };
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let value = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
            let e = aws_sdk_secretsmanager::error::DisplayErrorContext(&e);
            warn!(error = %e, "cannot read the webhook secret");
            "the webhook secret cannot be read now; the host may deliver again later".to_owned()
        })?;
        let json: Value = value
            .secret_string()
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(Value::is_object)
            .ok_or("the webhook secret is not a JSON object of host secrets")?;
        Ok(baton_app::service::webhooks::secrets_from_json(&json))
    }

    /// The configuration the functions were started with.
    pub fn config(&self) -> &baton_app::config::Config {
        &self.config
    }

    /// Custom action types and jobs, where the job desk keeps them.
    pub fn job_queue(&self) -> std::sync::Arc<dyn baton_app::ports::job_queue::JobQueue> {
        self.store.clone()
    }

    /// The control API, for the API function: IAM verifies callers before the function runs,
    /// so no credentials are configured here.
    pub fn control_api(&self) -> baton_api::ControlApi {
        baton_api::ControlApi::new(baton_api::ApiParts {
            store: self.store.clone(),
            stage_advance: std::sync::Arc::new(self.stage_advance()),
            providers: self.providers(),
            placement: baton_core::plan::Placement {
                account: self.config.account_id.clone(),
                region: self.sdk.region().map_or_else(|| "us-east-1".to_owned(), |r| r.to_string()),
                event_source: "baton.codepipeline".into(),
            },
            credentials: baton_api::Credentials::new(),
            jobs: Some(std::sync::Arc::new(
                baton_app::service::JobDesk::new(
                    self.store.clone(),
                    self.store.clone(),
                    std::sync::Arc::new(baton_app::ports::clock::SystemClock),
                )
                .with_bus(self.bus.clone()),
            )),
            declared_stores: Some(self.artifacts.clone()),
            pipeline_roles: self.pipeline_roles(),
            webhooks: Some(std::sync::Arc::new(self.webhooks())),
        })
        .with_webhook_url(self.config.webhook_url.clone())
    }

    /// The check of pipelines' roles at create and update, where the worker assumes them and
    /// knows its own role.
    fn pipeline_roles(&self) -> Option<std::sync::Arc<dyn baton_app::ports::roles::PipelineRoles>> {
        let c = &self.config;
        let worker = c.worker_role_arn.clone().filter(|_| c.assume_pipeline_roles)?;
        Some(std::sync::Arc::new(crate::adapters::iam_pipeline_roles::IamPipelineRoles::new(
            aws_sdk_iam::Client::new(&self.sdk),
            c.account_id.clone(),
            c.pipeline_role_pattern.clone(),
            worker,
        )))
    }

    /// Where malformed events go.
    pub fn dead_letters(&self) -> &DeadLetterQueue {
        &self.dead_letters
    }

    /// Relays a batch of the table's stream records ([`Relay`]): Lambda's batch response names
    /// the record to read again from, if one could not be published.
    pub async fn relay(&self, records: &[Value]) -> Value {
        use crate::adapters::dynamodb_relay::{record_events, sequence_number};
        let records = records
            .iter()
            .map(|raw| StreamRecord {
                sequence: sequence_number(raw).unwrap_or_default().to_owned(),
                events: record_events(raw),
                raw: raw.clone(),
            })
            .collect();
        let relay = Relay::new(self.bus.clone(), self.dead_letters.clone())
            .with_metrics(std::sync::Arc::new(crate::adapters::emf_metrics::EmfMetrics::stdout()));
        let failed = relay.relay(records).await;
        let failures: Vec<Value> =
            failed.into_iter().map(|seq| serde_json::json!({"itemIdentifier": seq})).collect();
        serde_json::json!({"batchItemFailures": failures})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eventbridge_envelope_becomes_a_bus_event() {
        let payload = serde_json::json!({"version": "0", "id": "1", "source": "baton",
            "detail-type": "Baton Tick", "resources": ["arn:x"], "detail": {"pipeline": "p"}});
        let e = bus_event(&payload).unwrap();
        assert_eq!((e.source.as_str(), e.detail_type.as_str()), ("baton", "Baton Tick"));
        assert_eq!(e.resources, vec!["arn:x"]);
    }

    #[test]
    fn each_source_is_decoded_by_its_own_envelope() {
        let decode = |v: Value| Invocation::decode(&v);
        let records = decode(serde_json::json!({"Records": [{"eventName": "INSERT"}]}));
        assert!(matches!(records, Ok(Invocation::StreamRecords(r)) if r.len() == 1));
        let sweep = decode(serde_json::json!({"schedule": "Sweep"}));
        assert!(matches!(sweep, Ok(Invocation::Schedule(Schedule::Sweep))));
        let look = decode(serde_json::json!({"schedule": "CheckRunningJobs"}));
        assert!(matches!(look, Ok(Invocation::Schedule(Schedule::CheckRunningJobs))));
        let event =
            decode(serde_json::json!({"source": "baton", "detail-type": "T", "detail": {}}));
        assert!(matches!(event, Ok(Invocation::Event(e)) if e.detail_type == "T"));
        assert_eq!(
            decode(serde_json::json!({"schedule": "Often"})).unwrap_err(),
            "no schedule is named \"Often\""
        );
        assert!(decode(serde_json::json!({"Records": {}})).is_err());
        assert!(decode(serde_json::json!({"sweep": true})).is_err(), "no guessing by keys");
    }

    #[test]
    fn an_envelope_without_detail_type_is_refused_with_a_reason() {
        let payload = serde_json::json!({"source": "baton", "detail": {}});
        assert_eq!(bus_event(&payload).unwrap_err(), "the event has no detail-type");
    }

    #[test]
    fn a_retryable_failure_names_its_dependency() {
        let e = HandlerError(ServiceError::Store(baton_app::ports::state::StoreError::Conflict(
            "p".into(),
        )));
        assert_eq!(Diagnostic::from(e).error_type, "Baton.StateUnavailable");
    }
}
