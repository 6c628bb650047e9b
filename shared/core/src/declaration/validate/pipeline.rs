//! Rules on the pipeline as a whole: its name, role, artifact stores, size, type, mode and
//! variables.

use super::text::{self, Charset};
use super::{Context, Errors, Loc};
use crate::declaration::model::{ArtifactStore, VariableDeclaration};

const PIPELINE: Loc<'static> = Loc::PIPELINE;

/// The fields before `stages`, and the limits on the stage list itself.
pub(super) fn check_head(cx: &Context<'_>, errors: &mut Errors) {
    let p = cx.pipeline;
    errors.check(PIPELINE, text::token("pipeline name", &p.name, 1, 100, Charset::Name));
    match &p.role_arn {
        Some(arn) => errors.check(PIPELINE, text::role_arn("roleArn", arn)),
        None => errors.add(PIPELINE, "roleArn is required"),
    }
    check_stores(cx, errors);
    errors.check(PIPELINE, text::count("a pipeline", "stages", p.stages.len(), 2, 50));
    let actions = p.stages.iter().map(|s| s.actions.len()).sum();
    errors.check(PIPELINE, text::count("a pipeline", "actions", actions, 0, 500));
}

/// The rules that need every stage seen, and the fields after `stages`.
pub(super) fn check_tail(cx: &Context<'_>, errors: &mut Errors) {
    let p = cx.pipeline;
    let mut actions = p.stages.iter().flat_map(|s| &s.actions);
    // A single-stage pipeline already fails the stage count; this would only repeat it.
    if p.stages.len() >= 2 && actions.all(|a| a.action_type_id.category == "Source") {
        errors.add(PIPELINE, "a pipeline needs at least one action that is not a source action");
    }
    if let Some(version) = p.version {
        errors.check(
            PIPELINE,
            (version < 1).then(|| format!("version must be at least 1, not {version}")),
        );
    }
    check_mode_and_type(cx, errors);
    if let Some(variables) = &p.variables {
        check_variables(cx, variables, errors);
    }
}

fn check_stores(cx: &Context<'_>, errors: &mut Errors) {
    let p = cx.pipeline;
    match (&p.artifact_store, &p.artifact_stores) {
        (Some(_), Some(_)) => {
            errors.add(PIPELINE, "set either artifactStore or artifactStores, not both")
        }
        (None, None) => errors.add(PIPELINE, "artifactStore or artifactStores is required"),
        _ => {}
    }
    if let Some(store) = &p.artifact_store {
        check_store("artifactStore", store, errors);
    }
    let Some(stores) = &p.artifact_stores else {
        return;
    };
    for (region, store) in stores {
        let what = format!("artifactStores region \"{region}\"");
        errors.check(PIPELINE, text::length(&what, region, 4, 30));
        check_store(&format!("artifactStores \"{region}\""), store, errors);
    }
    if !stores.contains_key(cx.home_region) {
        let home = cx.home_region;
        errors.add(
            PIPELINE,
            format!("artifactStores has no store for the pipeline's region \"{home}\""),
        );
    }
}

fn check_store(what: &str, store: &ArtifactStore, errors: &mut Errors) {
    errors.check(PIPELINE, text::one_of(&format!("{what} type"), &store.store_type, &["S3"]));
    let location = format!("{what} location");
    errors.check(PIPELINE, text::token(&location, &store.location, 3, 63, Charset::Bucket));
    if let Some(key) = &store.encryption_key {
        let what = format!("{what} encryptionKey");
        errors.check(PIPELINE, text::length(&format!("{what} id"), &key.id, 1, 400));
        errors.check(PIPELINE, text::one_of(&format!("{what} type"), &key.key_type, &["KMS"]));
    }
}

fn check_mode_and_type(cx: &Context<'_>, errors: &mut Errors) {
    let p = cx.pipeline;
    if let Some(mode) = &p.execution_mode {
        let modes = ["QUEUED", "SUPERSEDED", "PARALLEL"];
        errors.check(PIPELINE, text::one_of("executionMode", mode, &modes));
        if cx.v1 && (mode == "QUEUED" || mode == "PARALLEL") {
            errors.add(PIPELINE, format!("executionMode {mode} requires pipelineType V2"));
        }
    }
    if let Some(kind) = &p.pipeline_type {
        errors.check(PIPELINE, text::one_of("pipelineType", kind, &["V1", "V2"]));
    }
}

fn check_variables(cx: &Context<'_>, variables: &[VariableDeclaration], errors: &mut Errors) {
    if cx.v1 {
        errors.add(PIPELINE, "variables require pipelineType V2");
    }
    errors.check(PIPELINE, text::count("a pipeline", "variables", variables.len(), 0, 50));
    for (i, variable) in variables.iter().enumerate() {
        let name = &variable.name;
        errors.check(PIPELINE, text::token("variable name", name, 1, 128, Charset::Namespace));
        if variables[..i].iter().any(|v| &v.name == name) {
            errors.add(PIPELINE, format!("variable \"{name}\" is declared more than once"));
        }
        if let Some(value) = &variable.default_value {
            let what = format!("variable \"{name}\" defaultValue");
            errors.check(PIPELINE, text::length(&what, value, 1, 1000));
        }
        if let Some(description) = &variable.description {
            let what = format!("variable \"{name}\" description");
            errors.check(PIPELINE, text::length(&what, description, 0, 200));
        }
    }
}
