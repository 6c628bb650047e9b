//! GetActionType and UpdateActionType: a registered custom action type as CodePipeline's
//! `ActionTypeDeclaration`, the newer shape of what CreateCustomActionType registers.
//!
//! Baton runs custom types with job workers (`JobWorker`) that poll this API, so the
//! declaration's executor is a job worker polled from this account; what only a Lambda
//! executor, another account or a job timeout would mean is refused on update, naming it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::jobs::{check_type_id, desk_error};
use super::wire::input;
use super::{ApiError, Ctx};
use baton_app::ports::job_queue::{
    ActionType, ArtifactCount, ConfigurationProperty, CustomActionType,
};

/// `urls` member -> the `settings` key CreateCustomActionType gives it.
const URLS: [(&str, &str); 4] = [
    ("configurationUrl", "thirdPartyConfigurationUrl"),
    ("entityUrlTemplate", "entityUrlTemplate"),
    ("executionUrlTemplate", "executionUrlTemplate"),
    ("revisionUrlTemplate", "revisionUrlTemplate"),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetIn {
    category: String,
    owner: String,
    provider: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyIn {
    name: String,
    optional: bool,
    key: bool,
    no_echo: bool,
    #[serde(default)]
    queryable: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutorIn {
    #[serde(rename = "type")]
    kind: String,
    configuration: Value,
    #[serde(default)]
    policy_statements_template: Option<String>,
    #[serde(default)]
    job_timeout: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeclarationIn {
    #[serde(default)]
    description: Option<String>,
    executor: ExecutorIn,
    id: GetIn,
    input_artifact_details: ArtifactCount,
    output_artifact_details: ArtifactCount,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default)]
    properties: Vec<PropertyIn>,
    #[serde(default)]
    urls: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIn {
    action_type: DeclarationIn,
}

impl Ctx<'_> {
    /// The live custom action type `id`, or CodePipeline's `ActionTypeNotFoundException`.
    async fn registered(&self, id: &ActionType) -> Result<CustomActionType, ApiError> {
        let types = self.desk()?.types().await.map_err(desk_error)?;
        types.into_iter().find(|t| &t.id == id).ok_or_else(|| {
            ApiError::new(
                "ActionTypeNotFoundException",
                format!("The specified action type cannot be found: {}", id.key()),
            )
        })
    }

    pub(super) async fn get_action_type(&self, body: Value) -> Result<Value, ApiError> {
        let id = type_id(input(body)?)?;
        let t = self.registered(&id).await?;
        Ok(json!({"actionType": declaration(&t, &self.api.placement.account)}))
    }

    pub(super) async fn update_action_type(&self, body: Value) -> Result<Value, ApiError> {
        let UpdateIn { action_type: d } = input(body)?;
        let id = type_id(d.id)?;
        let account = &self.api.placement.account;
        check_executor(&d.executor, account)?;
        if let Some(p) = &d.permissions {
            let allowed = p["allowedAccounts"].as_array().cloned().unwrap_or_default();
            if allowed.iter().any(|a| a.as_str() != Some(account)) {
                return Err(ApiError::validation(format!(
                    "permissions.allowedAccounts: Baton's custom action types are used in their own account ({account}) only"
                )));
            }
        }
        let mut settings = BTreeMap::new();
        for (member, value) in d.urls {
            let Some((_, key)) = URLS.iter().find(|(m, _)| *m == member) else {
                return Err(ApiError::validation(format!(
                    "urls.{member} is not an ActionTypeUrls member"
                )));
            };
            settings.insert((*key).to_owned(), value);
        }
        let old = self.registered(&id).await?;
        let t = CustomActionType {
            id,
            settings,
            description: d.description,
            configuration_properties: d
                .properties
                .into_iter()
                .map(|p| {
                    // ActionTypeProperty has no type: the registered one is kept.
                    let kind = old
                        .configuration_properties
                        .iter()
                        .find(|o| o.name == p.name)
                        .and_then(|o| o.kind.clone());
                    ConfigurationProperty {
                        name: p.name,
                        required: !p.optional,
                        key: p.key,
                        secret: p.no_echo,
                        queryable: p.queryable,
                        description: p.description,
                        kind,
                    }
                })
                .collect(),
            input_artifact_details: d.input_artifact_details,
            output_artifact_details: d.output_artifact_details,
            tags: Vec::new(),
            deleted: false,
            client: None,
        };
        self.desk()?.update_type(t).await.map_err(desk_error)?;
        Ok(json!({}))
    }
}

fn type_id(i: GetIn) -> Result<ActionType, ApiError> {
    check_type_id(&i.category, &i.provider, &i.version)?;
    if i.owner != "Custom" {
        return Err(ApiError::new(
            "ActionTypeNotFoundException",
            format!(
                "The specified action type cannot be found: {}/{}/{}/{} (Baton registers action types owned by Custom)",
                i.category, i.owner, i.provider, i.version
            ),
        ));
    }
    Ok(ActionType {
        category: i.category,
        owner: i.owner,
        provider: i.provider,
        version: i.version,
    })
}

/// What Baton runs: job workers polling from this account, with no time-out of their own.
fn check_executor(e: &ExecutorIn, account: &str) -> Result<(), ApiError> {
    let refuse = |m: String| Err(ApiError::validation(m));
    if e.kind != "JobWorker" {
        return refuse(format!(
            "executor.type {}: Baton runs custom action types with job workers (JobWorker) only",
            e.kind
        ));
    }
    if e.policy_statements_template.is_some() {
        return refuse("executor.policyStatementsTemplate applies to Lambda executors, which Baton does not run".into());
    }
    if e.job_timeout.is_some() {
        return refuse(
            "executor.jobTimeout is not honoured by Baton: a job times out with its action".into(),
        );
    }
    let worker = &e.configuration["jobWorkerExecutorConfiguration"];
    let accounts = worker["pollingAccounts"].as_array().cloned().unwrap_or_default();
    if accounts.iter().any(|a| a.as_str() != Some(account)) {
        return refuse(format!(
            "executor.configuration.jobWorkerExecutorConfiguration.pollingAccounts: workers poll Baton from its own account ({account}) only"
        ));
    }
    let principals = worker["pollingServicePrincipals"].as_array().map_or(0, Vec::len);
    if principals > 0 || e.configuration.get("lambdaExecutorConfiguration").is_some() {
        return refuse(
            "executor.configuration: only jobWorkerExecutorConfiguration.pollingAccounts is honoured"
                .into(),
        );
    }
    Ok(())
}

/// A custom action type as CodePipeline's `ActionTypeDeclaration`.
fn declaration(t: &CustomActionType, account: &str) -> Value {
    let properties: Vec<Value> = t
        .configuration_properties
        .iter()
        .map(|p| {
            let mut v = json!({"name": p.name, "optional": !p.required, "key": p.key,
                "noEcho": p.secret});
            if let Some(q) = p.queryable {
                v["queryable"] = json!(q);
            }
            if let Some(d) = &p.description {
                v["description"] = json!(d);
            }
            v
        })
        .collect();
    let urls: serde_json::Map<String, Value> = URLS
        .iter()
        .filter_map(|(member, key)| Some(((*member).to_owned(), json!(t.settings.get(*key)?))))
        .collect();
    let mut d = json!({
        "executor": {"type": "JobWorker", "configuration": {
            "jobWorkerExecutorConfiguration": {"pollingAccounts": [account]}}},
        "id": t.id,
        "inputArtifactDetails": t.input_artifact_details,
        "outputArtifactDetails": t.output_artifact_details,
        "permissions": {"allowedAccounts": [account]},
        "properties": properties,
        "urls": urls,
    });
    if let Some(text) = &t.description {
        d["description"] = json!(text);
    }
    d
}
