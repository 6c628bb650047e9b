//! Rules on one action: name, type, placement, runOrder, region, role, namespace and timeout.
//! Configuration and artifacts have their own modules.

use super::index::Pos;
use super::text::{self, Charset};
use super::{Context, Errors, Loc, artifacts, config};
use crate::catalog::{self, CATEGORIES, OWNERS, ProviderSpec};
use crate::declaration::model::{ActionDeclaration, StageDeclaration};

/// An action and what its rules need to know about where it is.
pub(super) struct ActionAt<'p> {
    pub(super) stage: usize,
    pub(super) index: usize,
    pub(super) action: &'p ActionDeclaration,
    pub(super) pos: Pos,
    pub(super) loc: Loc<'p>,
    /// The catalogue entry, for AWS providers CodePipeline has.
    pub(super) spec: Option<&'static ProviderSpec>,
}

impl ActionAt<'_> {
    pub(super) fn is_source(&self) -> bool {
        self.action.action_type_id.category == "Source"
    }

    /// Whether this is the AWS `Commands` compute action.
    pub(super) fn is_commands(&self) -> bool {
        self.spec.is_some_and(|s| s.provider == "Commands")
    }
}

pub(super) fn check(
    cx: &Context<'_>,
    si: usize,
    ai: usize,
    stage: &StageDeclaration,
    action: &ActionDeclaration,
    errors: &mut Errors,
) {
    let id = &action.action_type_id;
    let at = ActionAt {
        stage: si,
        index: ai,
        action,
        pos: Pos::of(si, action),
        loc: Loc::action(&stage.name, &action.name),
        spec: catalog::provider(&id.category, &id.owner, &id.provider),
    };
    check_name(stage, &at, errors);
    check_type(cx, &at, errors);
    check_placement(&at, errors);
    if let Some(run_order) = action.run_order {
        errors.check(at.loc, text::range("runOrder", run_order, 1, 999));
    }
    config::check_configuration(cx, &at, errors);
    config::check_commands(cx, &at, errors);
    artifacts::check(cx, &at, errors);
    config::check_output_variables(&at, errors);
    if let Some(arn) = &action.role_arn {
        errors.check(at.loc, text::role_arn("roleArn", arn));
    }
    check_region(cx, &at, errors);
    check_namespace(cx, &at, errors);
    if let Some(minutes) = action.timeout_in_minutes {
        errors.check(at.loc, text::range("timeoutInMinutes", minutes, 5, 86400));
    }
    config::check_environment(cx, &at, errors);
}

fn check_name(stage: &StageDeclaration, at: &ActionAt<'_>, errors: &mut Errors) {
    let name = &at.action.name;
    errors.check(at.loc, text::token("action name", name, 1, 100, Charset::Name));
    if stage.actions[..at.index].iter().any(|a| &a.name == name) {
        errors.add(at.loc, format!("another action in this stage is already named \"{name}\""));
    }
}

fn check_type(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let id = &at.action.action_type_id;
    errors.check(at.loc, text::one_of("category", &id.category, &CATEGORIES));
    errors.check(at.loc, text::one_of("owner", &id.owner, &OWNERS));
    let provider = text::token("provider", &id.provider, 1, 35, Charset::Token);
    let well_formed = provider.is_none();
    errors.check(at.loc, provider);
    errors.check(at.loc, text::token("version", &id.version, 1, 9, Charset::Token));
    let known_category = CATEGORIES.contains(&id.category.as_str());
    if id.owner == "AWS" && known_category && well_formed && at.spec.is_none() {
        errors.add(at.loc, format!("\"{}\" is not an AWS {} provider", id.provider, id.category));
    }
    if cx.v1 && at.spec.is_some_and(|s| s.v2_only) {
        errors.add(at.loc, format!("provider \"{}\" requires pipelineType V2", id.provider));
    }
}

fn check_placement(at: &ActionAt<'_>, errors: &mut Errors) {
    let category = at.action.action_type_id.category.as_str();
    if !CATEGORIES.contains(&category) {
        return;
    }
    if at.stage == 0 && !at.is_source() {
        errors.add(
            at.loc,
            format!("the first stage may only contain source actions, not a {category} action"),
        );
    } else if at.stage > 0 && at.is_source() {
        errors.add(at.loc, "source actions are only allowed in the first stage");
    }
}

fn check_region(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let Some(region) = &at.action.region else {
        return;
    };
    errors.check(at.loc, text::length("region", region, 4, 30));
    // Naming the pipeline's own region changes nothing, so it is accepted on every action.
    if region == cx.home_region {
        return;
    }
    let owner = at.action.action_type_id.owner.as_str();
    let message = if at.is_source() {
        "source actions cannot run in another region".to_string()
    } else if owner == "ThirdParty" || owner == "Custom" {
        format!("{owner} actions cannot run in another region")
    } else if let Some(stores) = &cx.pipeline.artifact_stores {
        if stores.contains_key(region.as_str()) {
            return;
        }
        format!("artifactStores has no store for region \"{region}\"")
    } else if cx.pipeline.artifact_store.is_some() {
        let home = cx.home_region;
        format!(
            "region \"{region}\" is not the pipeline's region \"{home}\"; cross-region actions need artifactStores instead of artifactStore"
        )
    } else {
        // The missing store is reported once, for the pipeline.
        return;
    };
    errors.add(at.loc, message);
}

fn check_namespace(cx: &Context<'_>, at: &ActionAt<'_>, errors: &mut Errors) {
    let Some(ns) = &at.action.namespace else {
        return;
    };
    errors.check(at.loc, text::token("namespace", ns, 1, 100, Charset::Namespace));
    if let Some(first) = cx.index.first_namespace(ns).filter(|s| !s.is(at.stage, at.index)) {
        let (stage, action) = (first.stage_name, first.action_name);
        errors.add(
            at.loc,
            format!("namespace \"{ns}\" is already used by stage \"{stage}\", action \"{action}\""),
        );
    }
    if cx.index.is_artifact(ns) {
        errors.add(at.loc, format!("namespace \"{ns}\" is also the name of an artifact"));
    }
}
