//! What the whole pipeline declares, gathered once so that one action's rules can look at the
//! others: which actions produce an artifact or declare a namespace, and where they run.

use std::collections::{HashMap, HashSet};

use crate::declaration::model::{ActionDeclaration, PipelineDeclaration};

/// Where something runs: its stage and its runOrder group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) stage: usize,
    pub(super) run_order: i64,
}

impl Pos {
    /// The position of an action; runOrder defaults to 1.
    pub(super) fn of(stage: usize, action: &ActionDeclaration) -> Self {
        Self { stage, run_order: action.run_order.unwrap_or(1) }
    }

    /// Before any action of `stage` runs: where `beforeEntry` conditions are evaluated.
    pub(super) fn stage_entry(stage: usize) -> Self {
        Self { stage, run_order: i64::MIN }
    }

    /// After every action of `stage` ran: where `onSuccess` and `onFailure` are evaluated.
    pub(super) fn stage_exit(stage: usize) -> Self {
        Self { stage, run_order: i64::MAX }
    }

    /// Whether something at `self` is sure to have finished before `later` starts: an earlier
    /// stage, or a lower runOrder in the same stage. Equal runOrders run in parallel.
    pub(super) fn precedes(self, later: Pos) -> bool {
        self.stage < later.stage || (self.stage == later.stage && self.run_order < later.run_order)
    }
}

/// An action that declares an artifact or a namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Site<'p> {
    pub(super) pos: Pos,
    pub(super) action_index: usize,
    pub(super) stage_name: &'p str,
    pub(super) action_name: &'p str,
}

impl Site<'_> {
    /// Whether this is the action at `stage`/`action_index`.
    pub(super) fn is(&self, stage: usize, action_index: usize) -> bool {
        self.pos.stage == stage && self.action_index == action_index
    }
}

/// The declarations of the whole pipeline, in document order.
#[derive(Debug, Default)]
pub(super) struct Index<'p> {
    outputs: HashMap<&'p str, Vec<Site<'p>>>,
    namespaces: HashMap<&'p str, Vec<Site<'p>>>,
    variables: HashSet<&'p str>,
}

impl<'p> Index<'p> {
    pub(super) fn new(pipeline: &'p PipelineDeclaration) -> Self {
        let mut index = Self::default();
        for (si, stage) in pipeline.stages.iter().enumerate() {
            for (ai, action) in stage.actions.iter().enumerate() {
                let site = Site {
                    pos: Pos::of(si, action),
                    action_index: ai,
                    stage_name: &stage.name,
                    action_name: &action.name,
                };
                for output in action.output_artifacts.iter().flatten() {
                    index.outputs.entry(&output.name).or_default().push(site);
                }
                if let Some(ns) = &action.namespace {
                    index.namespaces.entry(ns).or_default().push(site);
                }
            }
        }
        let variables = pipeline.variables.iter().flatten().map(|v| v.name.as_str());
        index.variables = variables.collect();
        index
    }

    /// The first action, in document order, that produces artifact `name`.
    pub(super) fn first_producer(&self, name: &str) -> Option<&Site<'p>> {
        self.outputs.get(name).and_then(|sites| sites.first())
    }

    /// Whether some action that finishes before `pos` produces artifact `name`.
    pub(super) fn produced_before(&self, name: &str, pos: Pos) -> bool {
        self.outputs.get(name).is_some_and(|sites| sites.iter().any(|s| s.pos.precedes(pos)))
    }

    /// Whether some action produces artifact `name`.
    pub(super) fn is_artifact(&self, name: &str) -> bool {
        self.outputs.contains_key(name)
    }

    /// The first action, in document order, that declares namespace `ns`.
    pub(super) fn first_namespace(&self, ns: &str) -> Option<&Site<'p>> {
        self.namespaces.get(ns).and_then(|sites| sites.first())
    }

    /// Whether some action that finishes before `pos` declares namespace `ns`.
    pub(super) fn namespace_before(&self, ns: &str, pos: Pos) -> bool {
        self.namespaces.get(ns).is_some_and(|sites| sites.iter().any(|s| s.pos.precedes(pos)))
    }

    /// Whether the pipeline declares variable `name`.
    pub(super) fn has_variable(&self, name: &str) -> bool {
        self.variables.contains(name)
    }
}
