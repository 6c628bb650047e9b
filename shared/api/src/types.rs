//! ListActionTypes: the AWS providers CodePipeline has, from Baton's catalogue.

use baton_core::catalog;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::wire::input;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListActionTypesIn {
    #[serde(default)]
    action_owner_filter: Option<String>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Every catalogued action type, then the registered custom ones (`custom`, as CodePipeline's
/// `ActionType`).
pub(super) fn list_action_types(body: Value, custom: Vec<Value>) -> Result<Value, ApiError> {
    let ListActionTypesIn { action_owner_filter, next_token } = input(body)?;
    if next_token.is_some() {
        // One page holds the whole catalogue; no token was ever given out.
        return Err(ApiError::invalid_next_token());
    }
    if let Some(owner) = action_owner_filter.as_deref()
        && !catalog::OWNERS.contains(&owner)
    {
        return Err(ApiError::constraint(
            "actionOwnerFilter",
            &format!("'{owner}'"),
            "Member must satisfy enum value set: [AWS, ThirdParty, Custom]",
        ));
    }
    let mut types: Vec<Value> = catalog::aws_providers()
        .iter()
        .filter(|p| action_owner_filter.as_deref().is_none_or(|o| o == p.owner))
        .map(|p| {
            json!({
                "id": {"category": p.category, "owner": p.owner, "provider": p.provider, "version": "1"},
                "settings": {},
                "actionConfigurationProperties": p.required.iter().map(|k| json!({
                    "name": k, "required": true, "key": true, "secret": false,
                })).collect::<Vec<_>>(),
                "inputArtifactDetails": {"minimumCount": p.inputs.min, "maximumCount": p.inputs.max},
                "outputArtifactDetails": {"minimumCount": p.outputs.min, "maximumCount": p.outputs.max},
            })
        })
        .collect();
    types.extend(custom.into_iter().filter(|t| {
        action_owner_filter.as_deref().is_none_or(|o| t["id"]["owner"].as_str() == Some(o))
    }));
    Ok(json!({"actionTypes": types}))
}
