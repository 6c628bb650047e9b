//! What Baton does with each field of a declaration, in one table: run by the engine or a
//! provider, checked by validation, or not yet honoured (and why). A test walks every field
//! of the declarations in the fixtures and fails on one this table does not name, so a field
//! cannot be accepted and silently dropped without saying so here (and in the README).

/// How one field is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Honoured {
    /// Run as CodePipeline runs it, by the engine or a provider.
    Runs,
    /// Checked at create as CodePipeline checks it; it changes nothing at run time there either.
    Checked,
    /// Accepted and kept, but not yet run as CodePipeline runs it: why.
    NotYet(&'static str),
}

use Honoured::*;

/// Every field, by the object it is in (`action.roleArn`: `roleArn` of an action).
pub const FIELDS: [(&str, Honoured); 77] = [
    ("pipeline.name", Runs),
    ("pipeline.roleArn", Runs),
    // On AWS where the deployment allows the bucket (DeclaredArtifactBuckets); on one machine
    // the home's encrypted store stands in for every bucket, as SQLite does for DynamoDB.
    ("pipeline.artifactStore", Runs),
    ("pipeline.artifactStores", Runs),
    ("pipeline.stages", Runs),
    ("pipeline.version", Runs),
    ("pipeline.executionMode", Runs),
    ("pipeline.pipelineType", Checked),
    ("pipeline.variables", Runs),
    ("pipeline.triggers", Runs),
    ("artifactStore.type", Checked),
    ("artifactStore.location", Runs),
    ("artifactStore.encryptionKey", Runs),
    ("encryptionKey.id", Runs),
    ("encryptionKey.type", Checked),
    ("variable.name", Runs),
    ("variable.defaultValue", Runs),
    ("variable.description", Checked),
    ("trigger.providerType", Checked),
    ("trigger.gitConfiguration", Runs),
    ("gitConfiguration.sourceActionName", Runs),
    ("gitConfiguration.push", Runs),
    ("gitConfiguration.pullRequest", Runs),
    ("gitFilter.branches", Runs),
    ("gitFilter.filePaths", Runs),
    ("gitFilter.tags", Runs),
    ("gitFilter.events", Runs),
    ("globCriteria.includes", Runs),
    ("globCriteria.excludes", Runs),
    ("stage.name", Runs),
    ("stage.blockers", Checked),
    ("stage.actions", Runs),
    ("stage.onFailure", Runs),
    ("stage.onSuccess", Runs),
    ("stage.beforeEntry", Runs),
    ("onFailure.result", Runs),
    ("onFailure.retryConfiguration", Runs),
    ("onFailure.conditions", Runs),
    ("retryConfiguration.retryMode", Runs),
    ("conditions.conditions", Runs),
    ("condition.result", Runs),
    ("condition.rules", Runs),
    ("rule.name", Runs),
    ("rule.ruleTypeId", Runs),
    ("rule.configuration", Runs),
    ("rule.commands", Runs),
    ("rule.inputArtifacts", Runs),
    ("rule.roleArn", Runs),
    ("rule.region", Runs),
    ("rule.timeoutInMinutes", Runs),
    ("ruleTypeId.category", Checked),
    ("ruleTypeId.owner", Checked),
    ("ruleTypeId.provider", Runs),
    ("ruleTypeId.version", Checked),
    ("action.name", Runs),
    ("action.actionTypeId", Runs),
    ("action.runOrder", Runs),
    ("action.configuration", Runs),
    ("action.commands", Runs),
    ("action.outputArtifacts", Runs),
    ("action.inputArtifacts", Runs),
    ("action.outputVariables", Runs),
    ("action.roleArn", Runs),
    ("action.region", Runs),
    ("action.namespace", Runs),
    ("action.timeoutInMinutes", Runs),
    ("action.environmentVariables", Runs),
    ("actionTypeId.category", Runs),
    ("actionTypeId.owner", Runs),
    ("actionTypeId.provider", Runs),
    ("actionTypeId.version", Checked),
    ("inputArtifact.name", Runs),
    ("outputArtifact.name", Runs),
    ("outputArtifact.files", Runs),
    ("environmentVariable.name", Runs),
    ("environmentVariable.value", Runs),
    ("environmentVariable.type", Runs),
];

/// How `field` (`object.key`) is honoured, if this table names it.
pub fn honoured(field: &str) -> Option<Honoured> {
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, h)| *h)
}
