//! The job protocol: CreateCustomActionType, DeleteCustomActionType, PollForJobs, AcknowledgeJob,
//! GetJobDetails, PutJobSuccessResult and PutJobFailureResult, over the job desk.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::tags::{TagIn, checked_tags};
use super::wire::input;
use super::{ApiError, Ctx};
use baton_app::ports::job_queue::{
    ActionType, ArtifactCount, ConfigurationProperty, CustomActionType, JobReport, QueuedJob,
};
use baton_app::service::{CUSTOM, DeskError, JobClient, JobDesk};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTypeIn {
    category: String,
    provider: String,
    version: String,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    configuration_properties: Vec<ConfigurationProperty>,
    input_artifact_details: ArtifactCount,
    output_artifact_details: ArtifactCount,
    #[serde(default)]
    tags: Vec<TagIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeIn {
    category: String,
    provider: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PollIn {
    pub(super) action_type_id: ActionType,
    #[serde(default)]
    pub(super) max_batch_size: Option<i64>,
    #[serde(default)]
    pub(super) query_param: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobIn {
    job_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcknowledgeIn {
    job_id: String,
    nonce: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExecutionDetailsIn {
    #[serde(default)]
    pub(super) summary: Option<String>,
    #[serde(default)]
    pub(super) external_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevisionIn {
    pub(super) revision: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuccessIn {
    job_id: String,
    #[serde(default)]
    current_revision: Option<RevisionIn>,
    #[serde(default)]
    continuation_token: Option<String>,
    #[serde(default)]
    execution_details: Option<ExecutionDetailsIn>,
    #[serde(default)]
    output_variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FailureDetailsIn {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) message: String,
    #[serde(default)]
    pub(super) external_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureIn {
    job_id: String,
    failure_details: FailureDetailsIn,
}

/// CodePipeline's failure types a worker may report.
const FAILURE_TYPES: [&str; 6] = [
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
];

/// The most characters a job's output variables may hold, keys and values together.
const MAX_OUTPUT_VARIABLES_CHARS: usize = 122_880;

impl Ctx<'_> {
    pub(super) fn desk(&self) -> Result<&JobDesk, ApiError> {
        self.api.jobs.as_deref().ok_or_else(|| {
            ApiError::validation(
                "This Baton deployment does not run custom action types: its job queue is not configured",
            )
        })
    }

    pub(super) async fn create_custom_action_type(&self, body: Value) -> Result<Value, ApiError> {
        let i: CreateTypeIn = input(body)?;
        check_type_id(&i.category, &i.provider, &i.version)?;
        let tags = checked_tags(i.tags)?;
        let t = CustomActionType {
            id: ActionType {
                category: i.category,
                owner: "Custom".into(),
                provider: i.provider,
                version: i.version,
            },
            settings: i.settings,
            description: None,
            configuration_properties: i.configuration_properties,
            input_artifact_details: i.input_artifact_details,
            output_artifact_details: i.output_artifact_details,
            tags,
            deleted: false,
            client: None,
        };
        let created = self.desk()?.create_type(t).await.map_err(desk_error)?;
        let tags: Vec<Value> =
            created.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect();
        Ok(json!({"actionType": action_type_json(&created), "tags": tags}))
    }

    pub(super) async fn delete_custom_action_type(&self, body: Value) -> Result<Value, ApiError> {
        let i: TypeIn = input(body)?;
        check_type_id(&i.category, &i.provider, &i.version)?;
        let id = ActionType {
            category: i.category,
            owner: "Custom".into(),
            provider: i.provider,
            version: i.version,
        };
        self.desk()?.delete_type(&id).await.map_err(desk_error)?;
        Ok(json!({}))
    }

    /// The live custom action types, as ListActionTypes shows them; none where no job queue
    /// is configured.
    pub(super) async fn custom_action_types(&self) -> Result<Vec<Value>, ApiError> {
        let Some(desk) = self.api.jobs.as_deref() else { return Ok(Vec::new()) };
        Ok(desk.types().await.map_err(desk_error)?.iter().map(action_type_json).collect())
    }

    pub(super) async fn poll_for_jobs(&self, body: Value) -> Result<Value, ApiError> {
        let i: PollIn = input(body)?;
        let max = batch_size(i.max_batch_size)?;
        if i.query_param.len() > 1 {
            return Err(ApiError::constraint(
                "queryParam",
                "(map)",
                "Member must have length less than or equal to 1",
            ));
        }
        let query = i.query_param.iter().next().map(|(k, v)| (k.as_str(), v.as_str()));
        let jobs =
            self.desk()?.poll(CUSTOM, &i.action_type_id, max, query).await.map_err(desk_error)?;
        let account = &self.api.placement.account;
        let jobs: Vec<Value> = jobs
            .iter()
            .map(|j| json!({"id": j.id, "data": j.data, "nonce": j.nonce, "accountId": account}))
            .collect();
        Ok(json!({"jobs": jobs}))
    }

    pub(super) async fn acknowledge_job(&self, body: Value) -> Result<Value, ApiError> {
        let i: AcknowledgeIn = input(body)?;
        check_job_id(&i.job_id)?;
        let status = self
            .desk()?
            .acknowledge(&i.job_id, &i.nonce, JobClient::Worker)
            .await
            .map_err(desk_error)?;
        Ok(json!({"status": status.as_str()}))
    }

    pub(super) async fn get_job_details(&self, body: Value) -> Result<Value, ApiError> {
        let JobIn { job_id } = input(body)?;
        check_job_id(&job_id)?;
        let job: QueuedJob =
            self.desk()?.details(&job_id, JobClient::Worker).await.map_err(desk_error)?;
        Ok(json!({"jobDetails": {
            "id": job.id, "data": job.data, "accountId": self.api.placement.account,
        }}))
    }

    pub(super) async fn put_job_success_result(&self, body: Value) -> Result<Value, ApiError> {
        let i: SuccessIn = input(body)?;
        check_job_id(&i.job_id)?;
        if i.continuation_token.is_some() && !i.output_variables.is_empty() {
            return Err(ApiError::validation(
                "Output variables cannot be set on a result with a continuation token: give them with the job's last result",
            ));
        }
        let size: usize = i.output_variables.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_OUTPUT_VARIABLES_CHARS {
            return Err(ApiError::new(
                "OutputVariablesSizeExceededException",
                format!(
                    "The output variables hold {size} characters, more than the {MAX_OUTPUT_VARIABLES_CHARS} allowed"
                ),
            ));
        }
        let details = i.execution_details.unwrap_or_default();
        let report = JobReport::Succeeded {
            continuation_token: i.continuation_token,
            output_variables: i.output_variables,
            summary: details.summary,
            external_execution_id: details.external_execution_id,
            revision: i.current_revision.map(|r| r.revision),
        };
        self.desk()?.report(&i.job_id, JobClient::Worker, report).await.map_err(desk_error)?;
        Ok(json!({}))
    }

    pub(super) async fn put_job_failure_result(&self, body: Value) -> Result<Value, ApiError> {
        let FailureIn { job_id, failure_details: f } = input(body)?;
        check_job_id(&job_id)?;
        let report = failure_report(f)?;
        self.desk()?.report(&job_id, JobClient::Worker, report).await.map_err(desk_error)?;
        Ok(json!({}))
    }
}

/// `maxBatchSize`, 1 when absent.
pub(super) fn batch_size(given: Option<i64>) -> Result<usize, ApiError> {
    let max = given.unwrap_or(1);
    if max < 1 {
        return Err(ApiError::constraint(
            "maxBatchSize",
            &max.to_string(),
            "Member must have value greater than or equal to 1",
        ));
    }
    Ok(usize::try_from(max).unwrap_or(usize::MAX))
}

/// A worker's `failureDetails` as the report it makes.
pub(super) fn failure_report(f: FailureDetailsIn) -> Result<JobReport, ApiError> {
    if !FAILURE_TYPES.contains(&f.kind.as_str()) {
        return Err(ApiError::constraint(
            "failureDetails.type",
            &format!("'{}'", f.kind),
            &format!("Member must satisfy enum value set: [{}]", FAILURE_TYPES.join(", ")),
        ));
    }
    Ok(JobReport::Failed {
        kind: f.kind,
        message: f.message,
        external_execution_id: f.external_execution_id,
    })
}

/// A custom action type as CodePipeline's `ActionType`.
pub(super) fn action_type_json(t: &CustomActionType) -> Value {
    json!({
        "id": t.id,
        "settings": t.settings,
        "actionConfigurationProperties": t.configuration_properties,
        "inputArtifactDetails": t.input_artifact_details,
        "outputArtifactDetails": t.output_artifact_details,
    })
}

pub(super) fn check_type_id(category: &str, provider: &str, version: &str) -> Result<(), ApiError> {
    let name_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !baton_core::catalog::CATEGORIES.contains(&category) {
        return Err(ApiError::constraint(
            "category",
            &format!("'{category}'"),
            &format!(
                "Member must satisfy enum value set: [{}]",
                baton_core::catalog::CATEGORIES.join(", ")
            ),
        ));
    }
    if !name_ok(provider, 35) {
        return Err(ApiError::constraint(
            "provider",
            &format!("'{provider}'"),
            "Member must satisfy regular expression pattern: [0-9A-Za-z_-]+ and have length 1 to 35",
        ));
    }
    if !name_ok(version, 9) {
        return Err(ApiError::constraint(
            "version",
            &format!("'{version}'"),
            "Member must satisfy regular expression pattern: [0-9A-Za-z_-]+ and have length 1 to 9",
        ));
    }
    Ok(())
}

fn check_job_id(id: &str) -> Result<(), ApiError> {
    let shape = [8, 4, 4, 4, 12];
    let parts: Vec<&str> = id.split('-').collect();
    let ok = parts.len() == 5
        && parts.iter().zip(shape).all(|(p, n)| {
            p.len() == n && p.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::constraint(
            "jobId",
            &format!("'{id}'"),
            "Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        ))
    }
}

pub(super) fn desk_error(e: DeskError) -> ApiError {
    let message = e.to_string();
    match e {
        DeskError::JobNotFound => ApiError::new("JobNotFoundException", message),
        DeskError::InvalidNonce => ApiError::new("InvalidNonceException", message),
        DeskError::InvalidJobState(_) => ApiError::new("InvalidJobStateException", message),
        DeskError::TypeNotFound(_) => ApiError::new("ActionTypeNotFoundException", message),
        DeskError::InvalidClientToken => ApiError::new("InvalidClientTokenException", message),
        DeskError::Invalid(_) => ApiError::validation(message),
        DeskError::Limit(_) => ApiError::new("LimitExceededException", message),
        DeskError::Store(e) => e.into(),
    }
}
