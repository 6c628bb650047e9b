//! The control API: CodePipeline's own protocol (JSON 1.1 over `POST /`, `X-Amz-Target`
//! naming the operation, SigV4), so the AWS CLI, boto3 and the AWS SDKs work unchanged against
//! Baton. Transport-agnostic: a server hands each request to [`ControlApi::handle`] and sends
//! back the [`ApiReply`].
//!
//! Commands go through the stage-advance service synchronously, so what the engine refuses comes
//! back to the caller as CodePipeline's exception (see [`error`]).

mod action_types;
mod conditions;
mod deploy_targets;
mod detail;
pub mod error;
mod executions;
mod job_reports;
mod jobs;
mod masking;
mod pagination;
mod partner_jobs;
mod pipelines;
pub mod s3_objects;
pub mod sigv4;
mod state;
mod tags;
mod types;
mod webhooks;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use baton_core::engine::Input;
use baton_core::plan::Placement;
use serde_json::Value;

pub use error::ApiError;

use baton_app::ports::artifacts::ArtifactStore;
use baton_app::ports::clock::{Clock, SystemClock};
use baton_app::ports::provider::ProviderRegistry;
use baton_app::ports::roles::PipelineRoles;
use baton_app::ports::state::{PipelineRecord, StateStore};
use baton_app::service::webhooks::v1::Webhooks;
use baton_app::service::{JobDesk, Outcome, PipelineAdmin, StageAdvance};
use baton_protocol::bus_events::PipelineInput;

/// `X-Amz-Target` is this prefix, a dot, and the operation's name.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709";

/// The target prefix of Baton's own operations ([`BATON_OPERATIONS`]).
pub const BATON_TARGET_PREFIX: &str = "Baton_20261201";

pub use detail::BATON_OPERATIONS;

/// The operation an `X-Amz-Target` names, CodePipeline's or Baton's own; empty for neither.
pub fn operation_of(target: &str) -> &str {
    if let Some(op) = detail::baton_operation(target) {
        return op;
    }
    target
        .strip_prefix(TARGET_PREFIX)
        .and_then(|t| t.strip_prefix('.'))
        .filter(|op| OPERATIONS.contains(op))
        .unwrap_or_default()
}

/// The service name credentials are scoped to.
pub const SIGNING_SERVICE: &str = "codepipeline";

/// The content type of requests and replies.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The operations Baton answers.
pub const OPERATIONS: [&str; 44] = [
    "CreatePipeline",
    "GetPipeline",
    "UpdatePipeline",
    "DeletePipeline",
    "ListPipelines",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "GetPipelineExecution",
    "ListPipelineExecutions",
    "GetPipelineState",
    "ListActionExecutions",
    "ListDeployActionExecutionTargets",
    "RetryStageExecution",
    "PutApprovalResult",
    "EnableStageTransition",
    "DisableStageTransition",
    "ListActionTypes",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "OverrideStageCondition",
    "RollbackStage",
    "ListRuleExecutions",
    "ListRuleTypes",
    "PutActionRevision",
    "CreateCustomActionType",
    "DeleteCustomActionType",
    "PollForJobs",
    "AcknowledgeJob",
    "GetJobDetails",
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "PollForThirdPartyJobs",
    "GetThirdPartyJobDetails",
    "AcknowledgeThirdPartyJob",
    "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult",
    "PutWebhook",
    "ListWebhooks",
    "DeleteWebhook",
    "RegisterWebhookWithThirdParty",
    "DeregisterWebhookWithThirdParty",
    "GetActionType",
    "UpdateActionType",
];

/// An HTTP answer: the status and a JSON body (`application/x-amz-json-1.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReply {
    #[allow(missing_docs)]
    pub status: u16,
    #[allow(missing_docs)]
    pub body: Vec<u8>,
}

impl ApiReply {
    /// CodePipeline's answer to a request that carries no credentials.
    pub fn missing_authentication() -> Self {
        ApiError::from(sigv4::AuthError::Missing).reply()
    }

    /// The body as JSON (`Null` if it is not), for tests and logs.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP request, as the transport received it.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// `POST` for every operation.
    pub method: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// Every header.
    pub headers: &'a [(String, String)],
    #[allow(missing_docs)]
    pub body: &'a [u8],
}

/// The access keys the API accepts: access key id -> secret access key.
pub type Credentials = HashMap<String, String>;

/// What the control API works with.
pub struct ApiParts {
    /// Pipelines and executions.
    pub store: Arc<dyn StateStore>,
    /// Applies commands (start, stop, retry, approvals, transitions) synchronously.
    pub stage_advance: Arc<StageAdvance>,
    /// What can run here: pipelines with other actions are refused.
    pub providers: ProviderRegistry,
    /// The account and region pipelines are created in.
    pub placement: Placement,
    /// Accepted access keys.
    pub credentials: Credentials,
    /// Custom action types and their jobs, where this host runs them.
    pub jobs: Option<Arc<JobDesk>>,
    /// The artifact store, where this host keeps artifacts in the stores pipelines declare:
    /// a declaration whose stores it cannot use is refused at create and update.
    pub declared_stores: Option<Arc<dyn ArtifactStore>>,
    /// Where this host runs actions as the pipeline's role: a declaration whose role it
    /// cannot assume is refused at create and update, as CodePipeline refuses it.
    pub pipeline_roles: Option<Arc<dyn PipelineRoles>>,
    /// CodePipeline's webhooks, where this host takes their deliveries.
    pub webhooks: Option<Arc<Webhooks>>,
}

/// CodePipeline's API over Baton's store and services.
pub struct ControlApi {
    store: Arc<dyn StateStore>,
    stage_advance: Arc<StageAdvance>,
    providers: ProviderRegistry,
    placement: Placement,
    credentials: Credentials,
    jobs: Option<Arc<JobDesk>>,
    declared_stores: Option<Arc<dyn ArtifactStore>>,
    pipeline_roles: Option<Arc<dyn PipelineRoles>>,
    webhooks: Option<Arc<Webhooks>>,
    /// Where webhook deliveries are sent (`{url}/trigger?t=...`).
    webhook_url: Option<String>,
    clock: Arc<dyn Clock>,
}

impl ControlApi {
    #[allow(missing_docs)]
    pub fn new(parts: ApiParts) -> Self {
        Self {
            store: parts.store,
            stage_advance: parts.stage_advance,
            providers: parts.providers,
            placement: parts.placement,
            credentials: parts.credentials,
            jobs: parts.jobs,
            declared_stores: parts.declared_stores,
            pipeline_roles: parts.pipeline_roles,
            webhooks: parts.webhooks,
            webhook_url: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Webhooks' URLs start with `url`, where this host takes their deliveries.
    pub fn with_webhook_url(mut self, url: Option<String>) -> Self {
        self.webhook_url = url;
        self
    }

    /// Uses `clock` instead of the system's (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Creates and updates pipelines, as `baton run` does.
    fn admin(&self) -> PipelineAdmin {
        PipelineAdmin::new(
            self.store.clone(),
            self.stage_advance.clone(),
            self.placement.clone(),
            self.clock.clone(),
        )
        .with_store_check(self.declared_stores.clone())
        .with_role_check(self.pipeline_roles.clone())
    }

    /// The region the API answers for.
    pub fn region(&self) -> &str {
        &self.placement.region
    }

    /// The ARN recorded for a caller who signs with `access_key`.
    pub fn caller(&self, access_key: &str) -> String {
        format!("arn:aws:iam::{}:user/{access_key}", self.placement.account)
    }

    /// Answers one HTTP request: checks the signature, reads `X-Amz-Target`, runs the operation.
    pub async fn handle(&self, request: &ApiRequest<'_>) -> ApiReply {
        match self.authenticate(request) {
            Ok(access_key) => {
                let target = request
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default();
                let operation = operation_of(target);
                let caller = self.caller(&access_key);
                if request.method != "POST" || (request.path != "/" && !request.path.is_empty()) {
                    return unknown_operation();
                }
                self.call(operation, request.body, &caller).await
            }
            Err(e) => ApiError::from(e).reply(),
        }
    }

    fn authenticate(&self, request: &ApiRequest<'_>) -> Result<String, sigv4::AuthError> {
        let signable = sigv4::Signable {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        let now = self.clock.now().div_euclid(1_000);
        let expected =
            sigv4::Expected { region: &self.placement.region, service: SIGNING_SERVICE, now };
        sigv4::verify(&signable, &expected, |key| self.credentials.get(key).cloned())
    }

    /// Runs `operation` on a JSON 1.1 `body` for `caller` (an ARN, recorded where CodePipeline
    /// records who did something).
    pub async fn call(&self, operation: &str, body: &[u8], caller: &str) -> ApiReply {
        if !OPERATIONS.contains(&operation) && !BATON_OPERATIONS.contains(&operation) {
            return unknown_operation();
        }
        let input = match wire::parse_body(body) {
            Ok(v) => v,
            Err(e) => return e.reply(),
        };
        let ctx = Ctx { api: self, caller };
        reply(ctx.dispatch(operation, input).await)
    }
}

/// An operation's answer on the wire.
fn reply(result: Result<Value, ApiError>) -> ApiReply {
    match result {
        Ok(output) => ApiReply { status: 200, body: output.to_string().into_bytes() },
        Err(e) => e.reply(),
    }
}

fn unknown_operation() -> ApiReply {
    ApiError::new("UnknownOperationException", "The operation is not supported by this service.")
        .reply()
}

/// One call's context: the API and who is calling.
struct Ctx<'a> {
    api: &'a ControlApi,
    caller: &'a str,
}

impl Ctx<'_> {
    async fn dispatch(&self, operation: &str, input: Value) -> Result<Value, ApiError> {
        match operation {
            "CreatePipeline" => self.create_pipeline(input).await,
            "GetPipeline" => self.get_pipeline(input).await,
            "UpdatePipeline" => self.update_pipeline(input).await,
            "DeletePipeline" => self.delete_pipeline(input).await,
            "ListPipelines" => self.list_pipelines(input).await,
            "StartPipelineExecution" => self.start_execution(input).await,
            "StopPipelineExecution" => self.stop_execution(input).await,
            "GetPipelineExecution" => self.get_execution(input).await,
            "ListPipelineExecutions" => self.list_executions(input).await,
            "GetPipelineState" => self.get_state(input).await,
            "ListActionExecutions" => self.list_action_executions(input).await,
            "ListDeployActionExecutionTargets" => self.list_deploy_targets(input).await,
            "RetryStageExecution" => self.retry_stage(input).await,
            "PutApprovalResult" => self.put_approval_result(input).await,
            "EnableStageTransition" => self.enable_transition(input).await,
            "DisableStageTransition" => self.disable_transition(input).await,
            "ListActionTypes" => types::list_action_types(input, self.custom_action_types().await?),
            "OverrideStageCondition" => self.override_condition(input).await,
            "RollbackStage" => self.rollback_stage(input).await,
            "ListRuleExecutions" => self.list_rule_executions(input).await,
            "ListRuleTypes" => {
                conditions::list_rule_types(input, |p| self.api.providers.rule(p).is_some())
            }
            "PutActionRevision" => self.put_action_revision(input).await,
            "CreateCustomActionType" => self.create_custom_action_type(input).await,
            "DeleteCustomActionType" => self.delete_custom_action_type(input).await,
            "PollForJobs" => self.poll_for_jobs(input).await,
            "AcknowledgeJob" => self.acknowledge_job(input).await,
            "GetJobDetails" => self.get_job_details(input).await,
            "PutJobSuccessResult" => self.put_job_success_result(input).await,
            "PutJobFailureResult" => self.put_job_failure_result(input).await,
            "PollForThirdPartyJobs" => self.poll_for_third_party_jobs(input).await,
            "GetThirdPartyJobDetails" => self.get_third_party_job_details(input).await,
            "AcknowledgeThirdPartyJob" => self.acknowledge_third_party_job(input).await,
            "PutThirdPartyJobSuccessResult" => self.put_third_party_job_success_result(input).await,
            "PutThirdPartyJobFailureResult" => self.put_third_party_job_failure_result(input).await,
            "RegisterPartnerActionType" => self.register_partner_action_type(input).await,
            "DeregisterPartnerActionType" => self.deregister_partner_action_type(input).await,
            "GetActionType" => self.get_action_type(input).await,
            "UpdateActionType" => self.update_action_type(input).await,
            "PutWebhook" => self.put_webhook(input).await,
            "ListWebhooks" => self.list_webhooks(input).await,
            "DeleteWebhook" => self.delete_webhook(input).await,
            "RegisterWebhookWithThirdParty" => self.register_webhook_with_third_party(input).await,
            "DeregisterWebhookWithThirdParty" => {
                self.deregister_webhook_with_third_party(input).await
            }
            "GetExecutionDetail" => self.get_execution_detail(input).await,
            "TagResource" => self.tag_resource(input).await,
            "UntagResource" => self.untag_resource(input).await,
            "ListTagsForResource" => self.list_tags(input).await,
            _ => Err(ApiError::new("UnknownOperationException", "")),
        }
    }

    /// The pipeline called `name`, or `PipelineNotFoundException`.
    async fn pipeline(&self, name: &str) -> Result<PipelineRecord, ApiError> {
        self.api
            .store
            .get_pipeline(name)
            .await?
            .ok_or_else(|| ApiError::pipeline_not_found(&self.api.placement.account, name))
    }

    /// Applies a command now; the engine's refusals become CodePipeline's exceptions.
    async fn apply(&self, pipeline: &str, input: Input) -> Result<Outcome, ApiError> {
        let outcome = self
            .api
            .stage_advance
            .handle(PipelineInput { pipeline: pipeline.into(), input })
            .await?;
        match outcome {
            Outcome::Rejected(r) => Err(r.into()),
            other => Ok(other),
        }
    }
}
