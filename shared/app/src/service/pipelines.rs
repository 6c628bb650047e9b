//! Creating and updating pipelines: the one path the control API, `baton run` and the
//! embedded runtime take, so a declaration is checked, versioned and stored the same way
//! everywhere.

use std::sync::Arc;

use baton_core::declaration::{PipelineDeclaration, fill_as_codepipeline_does};
use baton_core::engine::Input;
use baton_core::plan::{Placement, Plan};
use tracing::warn;

use super::stage_advance::StageAdvance;
use crate::ports::artifacts::ArtifactStore;
use crate::ports::clock::Clock;
use crate::ports::provider::ProviderRegistry;
use crate::ports::roles::PipelineRoles;
use crate::ports::state::{PipelineRecord, StateStore, StoreError, Tag};
use baton_protocol::bus_events::PipelineInput;

/// Why a pipeline was not created or updated.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Every rule the declaration breaks, and every action this host cannot run.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Create: the name is taken.
    #[error("A pipeline with the name '{0}' already exists")]
    NameInUse(String),
    /// Update: there is no pipeline of that name.
    #[error("pipeline {0} does not exist")]
    NotFound(String),
    /// Start: actions this host cannot run, each with what would let it.
    #[error("{}", .0.join("; "))]
    NotRunnable(Vec<String>),
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pipelines' declarations, as their owners change them.
pub struct PipelineAdmin {
    store: Arc<dyn StateStore>,
    /// Cancels executions of a declaration that was replaced.
    stage_advance: Arc<StageAdvance>,
    placement: Placement,
    clock: Arc<dyn Clock>,
    /// Checks the stores declarations name, where this host keeps artifacts in them.
    stores: Option<Arc<dyn ArtifactStore>>,
    /// Checks the role declarations name, where this host runs actions as it.
    roles: Option<Arc<dyn PipelineRoles>>,
}

impl PipelineAdmin {
    #[allow(missing_docs)]
    pub fn new(
        store: Arc<dyn StateStore>,
        stage_advance: Arc<StageAdvance>,
        placement: Placement,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, stage_advance, placement, clock, stores: None, roles: None }
    }

    /// Refuses declarations whose artifact stores `stores` cannot use
    /// ([`ArtifactStore::refusals`]).
    pub fn with_store_check(mut self, stores: Option<Arc<dyn ArtifactStore>>) -> Self {
        self.stores = stores;
        self
    }

    /// Refuses declarations whose `roleArn` `roles` cannot assume ([`PipelineRoles::refusal`]).
    pub fn with_role_check(mut self, roles: Option<Arc<dyn PipelineRoles>>) -> Self {
        self.roles = roles;
        self
    }

    /// The account and region pipelines are created in.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Validates a declaration (its `version` already set) by CodePipeline's rules. What
    /// this host can run is not asked here: CodePipeline accepts a pipeline whatever runs it,
    /// so a user can move one unchanged; [`runnable`] refuses its start instead.
    ///
    /// # Errors
    /// [`AdminError::Invalid`] with every broken rule.
    pub fn plan(&self, declaration: &PipelineDeclaration) -> Result<Plan, AdminError> {
        Plan::from_declaration(declaration, &self.placement)
            .map_err(|errors| AdminError::Invalid(errors.iter().map(ToString::to_string).collect()))
    }

    /// The plan of a declaration about to be stored: valid, with a role this host can assume
    /// and artifact stores it can write.
    async fn checked(&self, declaration: &PipelineDeclaration) -> Result<Plan, AdminError> {
        let plan = self.plan(declaration)?;
        if let (Some(roles), Some(role)) = (&self.roles, &declaration.role_arn)
            && let Some(refusal) = roles.refusal(role).await
        {
            return Err(AdminError::Invalid(vec![refusal]));
        }
        if let Some(stores) = &self.stores {
            let refusals = stores.refusals(&plan.artifact_stores).await;
            if !refusals.is_empty() {
                return Err(AdminError::Invalid(
                    refusals.into_iter().map(|r| format!("pipeline: {r}")).collect(),
                ));
            }
        }
        Ok(plan)
    }

    /// Creates the pipeline at version 1 with `tags`.
    ///
    /// # Errors
    /// [`AdminError::NameInUse`], [`AdminError::Invalid`], store errors.
    pub async fn create(
        &self,
        mut declaration: PipelineDeclaration,
        tags: Vec<Tag>,
    ) -> Result<PipelineRecord, AdminError> {
        if self.store.get_pipeline(&declaration.name).await?.is_some() {
            return Err(AdminError::NameInUse(declaration.name));
        }
        fill_as_codepipeline_does(&mut declaration);
        declaration.version = Some(1);
        let plan = self.checked(&declaration).await?;
        let now = self.clock.now();
        let record = PipelineRecord { declaration, plan, created: now, updated: now, tags };
        match self.store.create_pipeline(&record).await {
            Ok(()) => Ok(record),
            Err(StoreError::Exists(_)) => Err(AdminError::NameInUse(record.plan.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the pipeline's declaration (version + 1) and cancels the executions of the
    /// old one, as CodePipeline does.
    ///
    /// # Errors
    /// [`AdminError::NotFound`], [`AdminError::Invalid`], store errors.
    pub async fn update(
        &self,
        declaration: PipelineDeclaration,
    ) -> Result<PipelineRecord, AdminError> {
        let existing = self
            .store
            .get_pipeline(&declaration.name)
            .await?
            .ok_or_else(|| AdminError::NotFound(declaration.name.clone()))?;
        self.replace(existing, declaration).await
    }

    /// Creates the pipeline, or updates it if the declaration changed; an unchanged one keeps
    /// its version (running the same file twice is not an update).
    ///
    /// # Errors
    /// [`AdminError::Invalid`], store errors.
    pub async fn put(
        &self,
        declaration: PipelineDeclaration,
    ) -> Result<PipelineRecord, AdminError> {
        match self.store.get_pipeline(&declaration.name).await? {
            None => self.create(declaration, Vec::new()).await,
            Some(old) => {
                let mut same = declaration.clone();
                fill_as_codepipeline_does(&mut same);
                same.version = old.declaration.version;
                if same == old.declaration {
                    return Ok(old);
                }
                self.replace(old, declaration).await
            }
        }
    }

    async fn replace(
        &self,
        existing: PipelineRecord,
        mut declaration: PipelineDeclaration,
    ) -> Result<PipelineRecord, AdminError> {
        fill_as_codepipeline_does(&mut declaration);
        declaration.version = Some(existing.plan.version + 1);
        let plan = self.checked(&declaration).await?;
        let record = PipelineRecord {
            declaration,
            plan,
            created: existing.created,
            updated: self.clock.now(),
            tags: existing.tags,
        };
        self.store.update_pipeline(&record).await?;
        // Executions of the old declaration are cancelled now, not at the next sweep.
        let tick = PipelineInput { pipeline: record.plan.name.clone(), input: Input::Tick };
        if let Err(e) = self.stage_advance.handle(tick).await {
            warn!(error = %e, "executions of the old declaration are cancelled at the next sweep");
        }
        Ok(record)
    }
}

/// Whether `providers` run every action of `plan`: the check before any start, so nothing
/// runs half-way.
///
/// # Errors
/// [`AdminError::NotRunnable`] naming each action that cannot run, and what would let it.
pub async fn runnable(providers: &ProviderRegistry, plan: &Plan) -> Result<(), AdminError> {
    let refusals = providers.refusals(plan).await;
    if refusals.is_empty() { Ok(()) } else { Err(AdminError::NotRunnable(refusals)) }
}
