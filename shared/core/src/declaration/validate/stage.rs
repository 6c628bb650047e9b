//! Rules on one stage: its name, its size, where source actions may be, then its actions and
//! conditions.

use super::text::{self, Charset};
use super::{Context, Errors, Loc, action, conditions};
use crate::catalog::CATEGORIES;
use crate::declaration::model::StageDeclaration;

pub(super) fn check(cx: &Context<'_>, si: usize, stage: &StageDeclaration, errors: &mut Errors) {
    let loc = Loc::stage(&stage.name);
    errors.check(loc, text::token("stage name", &stage.name, 1, 100, Charset::Name));
    if cx.pipeline.stages[..si].iter().any(|s| s.name == stage.name) {
        errors.add(loc, format!("another stage is already named \"{}\"", stage.name));
    }
    errors.check(loc, text::count("a stage", "actions", stage.actions.len(), 1, 50));
    if si == 0 && lacks_source(stage) {
        errors.add(loc, "the first stage must contain at least one source action");
    }
    for (ai, action) in stage.actions.iter().enumerate() {
        action::check(cx, si, ai, stage, action, errors);
    }
    conditions::check(cx, si, stage, errors);
}

/// Whether a non-empty stage surely has no source action. An action with an unknown category
/// already has its own error and might have been meant as a source.
fn lacks_source(stage: &StageDeclaration) -> bool {
    let categories = || stage.actions.iter().map(|a| a.action_type_id.category.as_str());
    !stage.actions.is_empty()
        && categories().all(|c| CATEGORIES.contains(&c))
        && categories().all(|c| c != "Source")
}
