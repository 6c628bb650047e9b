//! Secret configuration values, hidden as CodePipeline hides them: a GitHub (v1) source's
//! `OAuthToken`, and each property a custom or partner's action type marks `secret`, are read
//! back as `****` by every operation but the job handed to a worker; an update that sends
//! `****` for one keeps the value it had.

use std::collections::HashMap;

use baton_core::engine::{ActionRun, Execution};
use baton_core::plan::{ActionType, Plan};
use indexmap::IndexMap;
use serde_json::Value;

use super::{ApiError, Ctx, jobs::desk_error};

/// What a secret value reads as.
pub(super) const MASK: &str = "****";

/// The secret configuration keys of each action type this host knows.
pub(super) struct SecretKeys(HashMap<String, Vec<String>>);

impl SecretKeys {
    fn of(&self, t: &ActionType) -> &[String] {
        self.0.get(&t.key()).map_or(&[], Vec::as_slice)
    }

    /// The keys of the action type an `actionTypeId` names.
    fn of_json(&self, type_id: &Value) -> &[String] {
        serde_json::from_value::<ActionType>(type_id.clone()).map_or(&[], |t| self.of(&t))
    }

    /// Masks every action of a declaration (`{"stages": [...]}`).
    pub(super) fn mask_declaration(&self, declaration: &mut Value) {
        for action in actions(declaration) {
            let keys = self.of_json(&action["actionTypeId"]).to_vec();
            mask_json(action.get_mut("configuration"), &keys);
        }
    }

    /// Puts back, in an incoming declaration, each secret sent as `****` with the value the
    /// stored declaration's action of the same stage and name has.
    pub(super) fn keep_stored(&self, incoming: &mut Value, stored: &Value) {
        let mut stored_values: HashMap<(String, String), Value> = HashMap::new();
        for stage in stored["stages"].as_array().into_iter().flatten() {
            for action in stage["actions"].as_array().into_iter().flatten() {
                let at = (text(&stage["name"]), text(&action["name"]));
                stored_values.insert(at, action["configuration"].clone());
            }
        }
        for stage in incoming.get_mut("stages").and_then(Value::as_array_mut).into_iter().flatten()
        {
            let stage_name = text(&stage["name"]);
            let actions = stage.get_mut("actions").and_then(Value::as_array_mut);
            for action in actions.into_iter().flatten() {
                let keys = self.of_json(&action["actionTypeId"]).to_vec();
                let Some(old) = stored_values.get(&(stage_name.clone(), text(&action["name"])))
                else {
                    continue;
                };
                let Some(configuration) = action.get_mut("configuration") else { continue };
                for key in keys {
                    if let Some(value) = configuration.get_mut(&key)
                        && *value == MASK
                        && old[&key].is_string()
                    {
                        *value = old[&key].clone();
                    }
                }
            }
        }
    }

    /// Masks a plan's configuration and, with it, what an execution resolved.
    pub(super) fn mask_run(&self, plan: &mut Plan, execution: &mut Execution) {
        for (stage, run) in plan.stages.iter_mut().zip(&mut execution.stages) {
            for (action, r) in stage.actions.iter_mut().zip(&mut run.actions) {
                let keys = self.of(&action.action_type);
                if keys.is_empty() {
                    continue;
                }
                mask_map(&mut action.configuration, keys);
                mask_attempt(r, keys);
            }
        }
    }

    /// Masks `ActionExecutionDetail`s' configuration, as given and as resolved.
    pub(super) fn mask_details(&self, details: &mut Value) {
        for detail in details.as_array_mut().into_iter().flatten() {
            let keys = self.of_json(&detail["input"]["actionTypeId"]).to_vec();
            let Some(input) = detail.get_mut("input") else { continue };
            mask_json(input.get_mut("configuration"), &keys);
            mask_json(input.get_mut("resolvedConfiguration"), &keys);
        }
    }
}

impl Ctx<'_> {
    /// The secret keys of GitHub (v1) sources and of the types registered here.
    pub(super) async fn secret_keys(&self) -> Result<SecretKeys, ApiError> {
        let mut keys = HashMap::from([(
            "Source/ThirdParty/GitHub/1".to_owned(),
            vec!["OAuthToken".to_owned()],
        )]);
        if let Some(desk) = self.api.jobs.as_deref() {
            for t in desk.types().await.map_err(desk_error)? {
                let secret: Vec<String> = t
                    .configuration_properties
                    .iter()
                    .filter(|p| p.secret)
                    .map(|p| p.name.clone())
                    .collect();
                if !secret.is_empty() {
                    keys.insert(t.id.key(), secret);
                }
            }
        }
        Ok(SecretKeys(keys))
    }
}

fn mask_attempt(r: &mut ActionRun, keys: &[String]) {
    if let Some(resolved) = &mut r.resolved_configuration {
        mask_map(resolved, keys);
    }
    for earlier in &mut r.earlier {
        mask_attempt(earlier, keys);
    }
}

fn mask_map(configuration: &mut IndexMap<String, String>, keys: &[String]) {
    for key in keys {
        if let Some(value) = configuration.get_mut(key) {
            MASK.clone_into(value);
        }
    }
}

/// Indexing a JSON object mutably adds the key it asks for, so a missing configuration is left
/// alone rather than read as `null`.
fn mask_json(configuration: Option<&mut Value>, keys: &[String]) {
    let Some(configuration) = configuration else { return };
    for key in keys {
        if let Some(value) = configuration.get_mut(key).filter(|v| v.is_string()) {
            *value = Value::String(MASK.into());
        }
    }
}

fn actions(declaration: &mut Value) -> impl Iterator<Item = &mut Value> {
    declaration.get_mut("stages").and_then(Value::as_array_mut).into_iter().flatten().flat_map(
        |stage| stage.get_mut("actions").and_then(Value::as_array_mut).into_iter().flatten(),
    )
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> SecretKeys {
        SecretKeys(HashMap::from([(
            "Source/ThirdParty/GitHub/1".to_owned(),
            vec!["OAuthToken".to_owned()],
        )]))
    }

    fn declaration(token: &str) -> Value {
        json!({"stages": [{"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": "octo", "Repo": "app", "OAuthToken": token}}]}]})
    }

    #[test]
    fn a_token_reads_back_masked_and_an_update_sending_the_mask_keeps_it() {
        let mut shown = declaration("ghp_real");
        keys().mask_declaration(&mut shown);
        assert_eq!(shown, declaration(MASK));
        let mut update = declaration(MASK);
        keys().keep_stored(&mut update, &declaration("ghp_real"));
        assert_eq!(update, declaration("ghp_real"));
        // A new token replaces the old one.
        let mut update = declaration("ghp_new");
        keys().keep_stored(&mut update, &declaration("ghp_real"));
        assert_eq!(update, declaration("ghp_new"));
        // Nothing is added where nothing was given.
        let mut bare = json!({"stages": [{"name": "Source", "actions": [{"name": "A",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}}]}]});
        let before = bare.clone();
        keys().mask_declaration(&mut bare);
        keys().keep_stored(&mut bare, &declaration("ghp_real"));
        assert_eq!(bare, before);
    }
}
