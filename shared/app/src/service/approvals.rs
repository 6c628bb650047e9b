//! approval: the notice with its approve and reject links, and the pages behind the links.
//!
//! When an execution reaches a manual approval, [`Approvals::handle`] makes one link record
//! with two random 256-bit secrets (only their hashes are kept) and sends the notice: the
//! CodePipeline approval JSON for machine subscribers and a text for people, with both links.
//! Opening a link ([`Approvals::page`]) only shows what would be decided; the POST from that
//! page ([`Approvals::decide`]) decides, once, by putting the same "Approval Decided" input on
//! the bus that `PutApprovalResult` and `baton approve` put there.

use std::sync::Arc;

use baton_core::engine::{
    ActionRequest, ActionRun, ActionStatus, Execution, ExecutionStatus, Input,
};
use baton_core::events::rfc3339;
use baton_core::plan::Plan;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::ServiceError;
use super::approval_page::{self, Details, Page, Verdict};
use super::stage_advance::{Outcome, StageAdvance};
use crate::ports::approvals::{ApprovalLink, ApprovalLinks, LinkUse};
use crate::ports::bus::EventBus;
use crate::ports::clock::Clock;
use crate::ports::notices::{Notice, Notifier};
use crate::ports::state::{StateStore, StoreError};
use baton_protocol::bus_events::{BusEvent, PipelineInput};

/// Where links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// The approval endpoint: the function URL on AWS, `baton serve` on one machine. Links are
    /// `<base_url>/approvals/<id>/<secret>`.
    pub base_url: String,
}

/// The approval service.
pub struct Approvals {
    store: Arc<dyn StateStore>,
    links: Arc<dyn ApprovalLinks>,
    /// Decisions are applied here, as the control API applies `PutApprovalResult`.
    stage_advance: StageAdvance,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    settings: ApprovalSettings,
}

/// What a person typed on the confirmation page.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DecisionForm {
    /// Who is deciding (free text: the link itself says nothing about who holds it).
    #[serde(default)]
    pub name: String,
    /// The summary recorded with the decision.
    #[serde(default)]
    pub comment: String,
}

impl DecisionForm {
    /// Reads an `application/x-www-form-urlencoded` body; unknown fields are ignored.
    pub fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "name" => form.name = value.into_owned(),
                "comment" => form.comment = value.into_owned(),
                _ => {}
            }
        }
        form
    }
}

/// A link that was followed, checked against its record.
struct Followed {
    link: ApprovalLink,
    approve: bool,
}

impl Approvals {
    #[allow(missing_docs)]
    pub fn new(
        store: Arc<dyn StateStore>,
        links: Arc<dyn ApprovalLinks>,
        bus: Arc<dyn EventBus>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        settings: ApprovalSettings,
    ) -> Self {
        let stage_advance = StageAdvance::new(Arc::clone(&store), bus, Arc::clone(&clock));
        Self { store, links, stage_advance, notifier, clock, settings }
    }

    /// Makes the links of a manual approval that started and sends its notice.
    ///
    /// # Errors
    /// A decode error (dead-letter); store or notifier errors (retry).
    pub async fn handle(&self, event: &BusEvent) -> Result<(), ServiceError> {
        let request: ActionRequest = event.action_request()?;
        let Some(token) = request.token.clone() else {
            return Err(ServiceError::Permanent(format!(
                "the approval request for {}/{} carries no token",
                request.stage, request.action
            )));
        };
        let (approve_secret, reject_secret) = (secret()?, secret()?);
        let link = ApprovalLink {
            id: link_id(&request),
            approve_hash: hash(&approve_secret),
            reject_hash: hash(&reject_secret),
            pipeline: request.pipeline.clone(),
            execution_id: request.execution_id.clone(),
            stage: request.stage.clone(),
            action: request.action.clone(),
            attempt: request.attempt,
            expires: request.deadline,
            created: self.clock.now(),
            used: None,
        };
        if !self.links.put_link(&link).await? {
            info!(link = link.id, "approval already decided; no notice sent again");
            return Ok(());
        }
        let approve_url = self.url(&link.id, &approve_secret);
        let reject_url = self.url(&link.id, &reject_secret);
        let execution = self.store.execution(&request.pipeline, &request.execution_id).await?;
        let plan = self
            .store
            .get_pipeline_at(&request.pipeline, request.pipeline_version)
            .await?
            .map(|r| r.plan);
        let revisions = match (&plan, &execution) {
            (Some(p), Some(e)) => revisions(p, e),
            _ => Vec::new(),
        };
        let notice = self.notice(&request, &token, &revisions, &approve_url, &reject_url);
        self.notifier.send(&notice).await?;
        Ok(())
    }

    /// The page a link opens: what it would decide and one button, or why it cannot.
    ///
    /// # Errors
    /// Store errors only; a bad link is a page, not an error.
    pub async fn page(&self, id: &str, secret: &str) -> Result<Page, ServiceError> {
        let Some(followed) = self.follow(id, secret).await? else {
            return Ok(approval_page::invalid());
        };
        let (details, verdict) = self.examine(&followed).await?;
        Ok(approval_page::render(&details, &verdict, followed.approve))
    }

    /// The POST from the page: decides, once.
    ///
    /// # Errors
    /// Store or bus errors (the decision was not recorded; the person can try again).
    pub async fn decide(
        &self,
        id: &str,
        secret: &str,
        form: &DecisionForm,
    ) -> Result<Page, ServiceError> {
        let Some(followed) = self.follow(id, secret).await? else {
            return Ok(approval_page::invalid());
        };
        let (details, verdict) = self.examine(&followed).await?;
        let Verdict::Waiting { token } = verdict else {
            return Ok(approval_page::render(&details, &verdict, followed.approve));
        };
        let name = form.name.trim();
        let by = if name.is_empty() {
            "approval link".to_owned()
        } else {
            format!("{} (approval link)", truncate(name, 100))
        };
        let comment = form.comment.trim();
        let summary = if comment.is_empty() {
            format!(
                "{} through the approval link",
                if followed.approve { "Approved" } else { "Rejected" }
            )
        } else {
            truncate(comment, 512).to_owned()
        };
        let input = Input::ApprovalDecided {
            stage: followed.link.stage.clone(),
            action: followed.link.action.clone(),
            token,
            approved: followed.approve,
            summary,
            by: by.clone(),
        };
        // The decision is the execution's conditional write, which the engine makes once per
        // approval (two links clicked at once: one applies, the other is refused). The link is
        // spent by that write, not before it: a decision that fails to apply leaves the link
        // as it was, so the person's next click still decides.
        let message = PipelineInput { pipeline: followed.link.pipeline.clone(), input };
        if let Outcome::Rejected(why) = self.stage_advance.handle(message).await? {
            info!(link = followed.link.id, reason = %why, "the approval could not be decided here");
            let (details, verdict) = self.examine(&followed).await?;
            return Ok(approval_page::render(&details, &verdict, followed.approve));
        }
        let used = LinkUse { by, at: self.clock.now(), approved: followed.approve };
        // Marks the record for the page's "already approved by"; the execution already says so
        // if this write is lost.
        match self.links.use_link(&followed.link, &used).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => warn!(link = followed.link.id, error = %e, "the link's use was not recorded"),
        }
        info!(
            link = followed.link.id,
            approved = followed.approve,
            "approval decided through a link"
        );
        Ok(approval_page::render(&details, &Verdict::Recorded(used), followed.approve))
    }

    /// Answers an HTTP request to the approval endpoint: `GET /approvals/<id>/<secret>` shows
    /// the page, `POST` of its form decides. The one routing both `baton serve` and the
    /// approval function's URL use. A store that cannot be reached gives a 503 page.
    pub async fn serve(&self, method: &str, path: &str, form: &[u8]) -> Page {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ["approvals", id, secret] = parts.as_slice() else {
            return approval_page::invalid();
        };
        let result = match method {
            "GET" | "HEAD" => self.page(id, secret).await,
            "POST" => self.decide(id, secret, &DecisionForm::parse(form)).await,
            _ => return approval_page::not_allowed(),
        };
        result.unwrap_or_else(|e| {
            warn!(error = %e, "approval page unavailable");
            approval_page::unavailable()
        })
    }

    /// The record behind a link, if the secret is one of its two. Refusals are logged with the
    /// id only: the secret never reaches a log.
    async fn follow(&self, id: &str, secret: &str) -> Result<Option<Followed>, ServiceError> {
        let well_formed = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !well_formed(id, ID_CHARS) || !well_formed(secret, SECRET_CHARS) {
            warn!("approval link refused: malformed");
            return Ok(None);
        }
        let Some(link) = self.links.get_link(id).await? else {
            warn!(link = id, "approval link refused: unknown id");
            return Ok(None);
        };
        let digest = hash(secret);
        let approve = same(&digest, &link.approve_hash);
        let reject = same(&digest, &link.reject_hash);
        if !approve && !reject {
            warn!(link = id, "approval link refused: wrong secret");
            return Ok(None);
        }
        Ok(Some(Followed { link, approve }))
    }

    /// What the link is about, and whether it can still decide.
    async fn examine(&self, followed: &Followed) -> Result<(Details, Verdict), ServiceError> {
        let link = &followed.link;
        let execution = self.store.execution(&link.pipeline, &link.execution_id).await?;
        let plan = match &execution {
            Some(e) => self.store.get_pipeline_at(&link.pipeline, e.pipeline_version).await?,
            None => self.store.get_pipeline(&link.pipeline).await?,
        };
        let plan = plan.map(|r| r.plan);
        let run = match (&plan, &execution) {
            (Some(p), Some(e)) => action_run(p, e, &link.stage, &link.action),
            _ => None,
        };
        let configuration = run.and_then(|r| r.resolved_configuration.clone()).unwrap_or_default();
        let details = Details {
            pipeline: link.pipeline.clone(),
            stage: link.stage.clone(),
            action: link.action.clone(),
            execution_id: link.execution_id.clone(),
            revisions: match (&plan, &execution) {
                (Some(p), Some(e)) => revisions(p, e),
                _ => Vec::new(),
            },
            custom_data: configuration.get("CustomData").cloned(),
            external_link: configuration.get("ExternalEntityLink").cloned(),
            expires: rfc3339(link.expires),
        };
        let verdict = verdict(link, execution.as_ref(), run, self.clock.now());
        Ok((details, verdict))
    }

    fn url(&self, id: &str, secret: &str) -> String {
        format!("{}/approvals/{id}/{secret}", self.settings.base_url.trim_end_matches('/'))
    }

    fn notice(
        &self,
        r: &ActionRequest,
        token: &str,
        revisions: &[String],
        approve_url: &str,
        reject_url: &str,
    ) -> Notice {
        let custom = r.configuration.get("CustomData").cloned().unwrap_or_default();
        let external = r.configuration.get("ExternalEntityLink").cloned().unwrap_or_default();
        // CodePipeline's approval message, so existing subscribers keep working; the two
        // links are extra keys they ignore.
        let machine = json!({
            "region": r.region,
            "consoleLink": self.settings.base_url,
            "approval": {
                "pipelineName": r.pipeline,
                "stageName": r.stage,
                "actionName": r.action,
                "token": token,
                "expires": expires_minute(r.deadline),
                "externalEntityLink": external,
                "approvalReviewLink": approve_url,
                "customData": custom,
                "approveLink": approve_url,
                "rejectLink": reject_url,
            }
        });
        let mut text = format!(
            "Pipeline {} is waiting for your approval at {} / {}.\n\nExecution: {}\n",
            r.pipeline, r.stage, r.action, r.execution_id
        );
        for revision in revisions {
            text.push_str(&format!("Revision: {revision}\n"));
        }
        if !custom.is_empty() {
            text.push_str(&format!("\n{custom}\n"));
        }
        if !external.is_empty() {
            text.push_str(&format!("\nReview: {external}\n"));
        }
        text.push_str(&format!(
            "\nApprove: {approve_url}\nReject:  {reject_url}\n\nEach link opens a page that asks \
             you to confirm. The links work once and expire at {}.\nOr from a terminal: baton \
             approve {} {} {}\n",
            rfc3339(r.deadline),
            r.pipeline,
            r.stage,
            r.action
        ));
        Notice {
            topic: r.configuration.get("NotificationArn").cloned(),
            subject: format!(
                "APPROVAL NEEDED: Baton pipeline {} for action {}",
                r.pipeline, r.action
            ),
            message: machine.to_string(),
            text: Some(text),
        }
    }
}

/// Characters of a link id (128 bits) and of a secret (256 bits), base64url without padding.
const ID_CHARS: usize = 22;
const SECRET_CHARS: usize = 43;

/// One id per approval attempt, so a request delivered twice finds its record.
fn link_id(r: &ActionRequest) -> String {
    let digest = Sha256::digest(
        format!("{}\n{}\n{}\n{}\n{}", r.pipeline, r.execution_id, r.stage, r.action, r.attempt)
            .as_bytes(),
    );
    base64url(&digest[..16])
}

fn secret() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServiceError::Permanent(format!("no randomness for approval links: {e}")))?;
    Ok(base64url(&bytes))
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two digests in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// CodePipeline writes `expires` to the minute: `2016-07-07T20:22Z`.
fn expires_minute(millis: i64) -> String {
    let full = rfc3339(millis);
    format!("{}Z", &full[..16])
}

fn action_run<'a>(
    plan: &Plan,
    e: &'a Execution,
    stage: &str,
    action: &str,
) -> Option<&'a ActionRun> {
    let s = plan.stages.iter().position(|s| s.name == stage)?;
    let a = plan.stages[s].actions.iter().position(|a| a.name == action)?;
    e.stages.get(s)?.actions.get(a)
}

/// What the execution's source actions fetched: commit and message, or object version.
fn revisions(plan: &Plan, e: &Execution) -> Vec<String> {
    let mut found = Vec::new();
    for (stage, run) in plan.stages.iter().zip(&e.stages) {
        for (action, run) in stage.actions.iter().zip(&run.actions) {
            if action.action_type.category != "Source" || run.status != ActionStatus::Succeeded {
                continue;
            }
            let v = &run.output_variables;
            let text = match (v.get("CommitId"), v.get("VersionId")) {
                (Some(commit), _) => {
                    let message = v.get("CommitMessage").map(|m| m.lines().next().unwrap_or(""));
                    match message {
                        Some(m) if !m.is_empty() => {
                            format!("{}: commit {commit} \"{m}\"", action.name)
                        }
                        _ => format!("{}: commit {commit}", action.name),
                    }
                }
                (None, Some(version)) => format!("{}: object version {version}", action.name),
                _ => match &run.summary {
                    Some(s) => format!("{}: {s}", action.name),
                    None => continue,
                },
            };
            found.push(text);
        }
    }
    found
}

/// Whether the approval behind a link still waits, and if not, why.
fn verdict(
    link: &ApprovalLink,
    execution: Option<&Execution>,
    run: Option<&ActionRun>,
    now: i64,
) -> Verdict {
    if let Some(used) = &link.used {
        return Verdict::Decided {
            by: used.by.clone(),
            at: rfc3339(used.at),
            approved: used.approved,
        };
    }
    let (Some(execution), Some(run)) = (execution, run) else {
        return Verdict::Gone;
    };
    if run.attempt == link.attempt && run.status == ActionStatus::InProgress {
        if now >= link.expires {
            return Verdict::Expired;
        }
        return match &run.token {
            Some(token) => Verdict::Waiting { token: token.clone() },
            None => Verdict::Gone,
        };
    }
    if run.attempt == link.attempt && run.decided_by.is_some() {
        return Verdict::Decided {
            by: run.decided_by.clone().unwrap_or_default(),
            at: run.updated_at.map(rfc3339).unwrap_or_default(),
            approved: run.status == ActionStatus::Succeeded,
        };
    }
    if run.attempt == link.attempt && run.error.as_ref().is_some_and(|e| e.code == "TimedOut") {
        return Verdict::Expired;
    }
    match execution.status() {
        ExecutionStatus::Superseded => Verdict::Superseded {
            by: execution
                .status_summary
                .as_deref()
                .and_then(|s| s.strip_prefix("Superseded by execution "))
                .map(str::to_owned),
        },
        ExecutionStatus::Stopped | ExecutionStatus::Stopping => Verdict::Stopped,
        _ => Verdict::Gone,
    }
}
