//! `baton partner`: partners' action types (owner `ThirdParty`). AWS onboards a partner and
//! hands it a client id and token; here registering the type does, over the same control API
//! whether the pipelines live in a local home or behind `--endpoint`.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use crate::PartnerAction;
use crate::control::{Control, text};

pub(crate) async fn run(c: &impl Control, action: PartnerAction) -> Result<ExitCode> {
    match action {
        PartnerAction::Register { action_type, inputs, outputs, execution_url, properties } => {
            let mut input = type_id(&action_type)?;
            input["inputArtifactDetails"] = counts("--inputs", &inputs)?;
            input["outputArtifactDetails"] = counts("--outputs", &outputs)?;
            if let Some(url) = execution_url {
                input["settings"] = json!({"executionUrlTemplate": url});
            }
            input["configurationProperties"] = properties
                .iter()
                .map(|name| json!({"name": name, "required": true, "key": true, "secret": false}))
                .collect();
            let out = c.call("RegisterPartnerActionType", &input).await?;
            let said = format!(
                "Registered ThirdParty/{action_type}; give its partner this pair:\n  clientId     {}\n  clientToken  {}\nThe token is not shown again: registering again replaces it.",
                text(&out, "clientId"),
                text(&out, "clientToken")
            );
            crate::output::result(&out, said);
        }
        PartnerAction::Deregister { action_type } => {
            let out = c.call("DeregisterPartnerActionType", &type_id(&action_type)?).await?;
            crate::output::result(&out, format_args!("Deregistered ThirdParty/{action_type}."));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `CATEGORY/PROVIDER/VERSION` as the operation's fields.
fn type_id(given: &str) -> Result<Value> {
    let parts: Vec<&str> = given.split('/').collect();
    let [category, provider, version] = parts[..] else {
        bail!("{given} is not CATEGORY/PROVIDER/VERSION (for instance Test/BlazeMeter/1)");
    };
    Ok(json!({"category": category, "provider": provider, "version": version}))
}

/// `MIN..MAX` or `N` as CodePipeline's `ArtifactDetails`.
fn counts(flag: &str, given: &str) -> Result<Value> {
    let (min, max) = given.split_once("..").unwrap_or((given, given));
    let number = |s: &str| {
        s.trim().parse::<u32>().map_err(|_| anyhow!("{flag} {given}: write MIN..MAX, as 0..1"))
    };
    Ok(json!({"minimumCount": number(min)?, "maximumCount": number(max)?}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_and_its_counts_are_read_as_written() {
        assert_eq!(
            type_id("Test/Ghost/1").unwrap(),
            json!({"category": "Test", "provider": "Ghost", "version": "1"})
        );
        assert!(type_id("ThirdParty/Test/Ghost/1").is_err());
        assert_eq!(counts("--inputs", "0..2").unwrap()["maximumCount"], 2);
        assert_eq!(counts("--inputs", "1").unwrap()["minimumCount"], 1);
        assert!(counts("--inputs", "one").unwrap_err().to_string().contains("MIN..MAX"));
    }
}
