//! Partners' actions (owner `ThirdParty`): CodePipeline's `PollForThirdPartyJobs`,
//! `GetThirdPartyJobDetails`, `AcknowledgeThirdPartyJob`, `PutThirdPartyJobSuccessResult` and
//! `PutThirdPartyJobFailureResult`, and Baton's own `RegisterPartnerActionType` and
//! `DeregisterPartnerActionType`, which stand in for AWS's partner onboarding: registering a
//! type gives its partner the `clientId` and `clientToken` pair every job call is checked with.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::jobs::{
    ExecutionDetailsIn, FailureDetailsIn, PollIn, RevisionIn, action_type_json, batch_size,
    check_type_id, desk_error, failure_report,
};
use super::wire::input;
use super::{ApiError, Ctx};
use baton_app::ports::job_queue::{
    ActionType, ArtifactCount, ConfigurationProperty, CustomActionType, JobReport,
};
use baton_app::service::{JobClient, THIRD_PARTY};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterIn {
    category: String,
    provider: String,
    version: String,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    configuration_properties: Vec<ConfigurationProperty>,
    input_artifact_details: ArtifactCount,
    output_artifact_details: ArtifactCount,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TypeIn {
    category: String,
    provider: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobIn {
    job_id: String,
    client_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcknowledgeIn {
    job_id: String,
    nonce: String,
    client_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuccessIn {
    job_id: String,
    client_token: String,
    #[serde(default)]
    current_revision: Option<RevisionIn>,
    #[serde(default)]
    continuation_token: Option<String>,
    #[serde(default)]
    execution_details: Option<ExecutionDetailsIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureIn {
    job_id: String,
    client_token: String,
    failure_details: FailureDetailsIn,
}

impl Ctx<'_> {
    pub(super) async fn register_partner_action_type(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let i: RegisterIn = input(body)?;
        check_type_id(&i.category, &i.provider, &i.version)?;
        let t = CustomActionType {
            id: partner_type(i.category, i.provider, i.version),
            settings: i.settings,
            description: None,
            configuration_properties: i.configuration_properties,
            input_artifact_details: i.input_artifact_details,
            output_artifact_details: i.output_artifact_details,
            tags: Vec::new(),
            deleted: false,
            client: None,
        };
        let registered = self.desk()?.register_partner(t).await.map_err(desk_error)?;
        let client_id = registered.action_type.client.as_ref().map(|c| c.id.clone());
        Ok(json!({
            "actionType": action_type_json(&registered.action_type),
            "clientId": client_id,
            "clientToken": registered.client_token,
        }))
    }

    pub(super) async fn deregister_partner_action_type(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let i: TypeIn = input(body)?;
        check_type_id(&i.category, &i.provider, &i.version)?;
        let id = partner_type(i.category, i.provider, i.version);
        self.desk()?.deregister_partner(&id).await.map_err(desk_error)?;
        Ok(json!({}))
    }

    pub(super) async fn poll_for_third_party_jobs(&self, body: Value) -> Result<Value, ApiError> {
        let i: PollIn = input(body)?;
        let max = batch_size(i.max_batch_size)?;
        let desk = self.desk()?;
        let jobs =
            desk.poll(THIRD_PARTY, &i.action_type_id, max, None).await.map_err(desk_error)?;
        // Every job handed out is of the one type polled for: its client is read once.
        let Some(first) = jobs.first() else { return Ok(json!({"jobs": []})) };
        let client = desk.type_of(first).await.map_err(desk_error)?.and_then(|t| t.client);
        let client_id = client.map(|c| c.id);
        let out: Vec<Value> =
            jobs.iter().map(|j| json!({"jobId": j.id, "clientId": client_id})).collect();
        Ok(json!({"jobs": out}))
    }

    pub(super) async fn get_third_party_job_details(&self, body: Value) -> Result<Value, ApiError> {
        let JobIn { job_id, client_token } = input(body)?;
        check(&job_id, &client_token)?;
        let client = JobClient::Partner(&client_token);
        let job = self.desk()?.details(&job_id, client).await.map_err(desk_error)?;
        Ok(json!({"jobDetails": {"id": job.id, "data": job.data, "nonce": job.nonce}}))
    }

    pub(super) async fn acknowledge_third_party_job(&self, body: Value) -> Result<Value, ApiError> {
        let i: AcknowledgeIn = input(body)?;
        check(&i.job_id, &i.client_token)?;
        let client = JobClient::Partner(&i.client_token);
        let status =
            self.desk()?.acknowledge(&i.job_id, &i.nonce, client).await.map_err(desk_error)?;
        Ok(json!({"status": status.as_str()}))
    }

    pub(super) async fn put_third_party_job_success_result(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let i: SuccessIn = input(body)?;
        check(&i.job_id, &i.client_token)?;
        let details = i.execution_details.unwrap_or_default();
        let report = JobReport::Succeeded {
            continuation_token: i.continuation_token,
            // CodePipeline takes output variables from its own account's workers only.
            output_variables: BTreeMap::new(),
            summary: details.summary,
            external_execution_id: details.external_execution_id,
            revision: i.current_revision.map(|r| r.revision),
        };
        let client = JobClient::Partner(&i.client_token);
        self.desk()?.report(&i.job_id, client, report).await.map_err(desk_error)?;
        Ok(json!({}))
    }

    pub(super) async fn put_third_party_job_failure_result(
        &self,
        body: Value,
    ) -> Result<Value, ApiError> {
        let FailureIn { job_id, client_token, failure_details } = input(body)?;
        check(&job_id, &client_token)?;
        let report = failure_report(failure_details)?;
        let client = JobClient::Partner(&client_token);
        self.desk()?.report(&job_id, client, report).await.map_err(desk_error)?;
        Ok(json!({}))
    }
}

fn partner_type(category: String, provider: String, version: String) -> ActionType {
    ActionType { category, owner: THIRD_PARTY.into(), provider, version }
}

/// The lengths CodePipeline's model gives `jobId` (1 to 512) and `clientToken` (1 to 256).
fn check(job_id: &str, client_token: &str) -> Result<(), ApiError> {
    for (field, value, max) in [("jobId", job_id, 512), ("clientToken", client_token, 256)] {
        if value.is_empty() || value.len() > max {
            return Err(ApiError::constraint(
                field,
                "(hidden)",
                &format!("Member must have length between 1 and {max}"),
            ));
        }
    }
    Ok(())
}
