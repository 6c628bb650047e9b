//! The manual approval, as a person does it: read the notice that reached the approvals topic,
//! check what it asks, decide.
//!
//! [`decide`] is the one place a decision is made. It puts "Baton Approval Decided" on the bus,
//! which is what `PutApprovalResult` and `baton approve` do. The notice also carries the signed
//! approve and reject links when the approval function sends them ([`Notice::approve_link`]);
//! deciding through the function URL means POSTing to that link in [`decide`] instead, with
//! nothing else in the scenario changing.

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

/// An approval notice, as read from the SQS subscription of the approvals topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    #[allow(missing_docs)]
    pub pipeline: String,
    #[allow(missing_docs)]
    pub stage: String,
    #[allow(missing_docs)]
    pub action: String,
    /// The approval token, when the notice carries it (CodePipeline's message does).
    pub token: Option<String>,
    /// The link that approves, when the notice has one.
    pub approve_link: Option<String>,
    /// The link that rejects.
    pub reject_link: Option<String>,
    /// The SNS subject.
    pub subject: String,
}

/// The notice for the approval `stage`/`action` of `pipeline` in an SNS notification envelope,
/// if it is one: CodePipeline's approval JSON naming the three, or a text for people that
/// names all three.
pub fn read(envelope: &Value, pipeline: &str, stage: &str, action: &str) -> Option<Notice> {
    let message = envelope["Message"].as_str()?;
    let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
    if let Ok(json) = serde_json::from_str::<Value>(message)
        && json["approval"].is_object()
    {
        let a = &json["approval"];
        let text = |k: &str| a[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let names = (text("pipelineName")?, text("stageName")?, text("actionName")?);
        if names != (pipeline.to_owned(), stage.to_owned(), action.to_owned()) {
            return None;
        }
        return Some(Notice {
            pipeline: names.0,
            stage: names.1,
            action: names.2,
            token: text("token"),
            approve_link: text("approveLink"),
            reject_link: text("rejectLink"),
            subject,
        });
    }
    let all = format!("{subject}\n{message}");
    [pipeline, stage, action].iter().all(|n| all.contains(n)).then(|| Notice {
        pipeline: pipeline.to_owned(),
        stage: stage.to_owned(),
        action: action.to_owned(),
        token: None,
        approve_link: None,
        reject_link: None,
        subject,
    })
}

/// Decides the approval `notice` asks for, with `token`.
pub async fn decide(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    notice: &Notice,
    token: &str,
    approve: bool,
) -> Result<()> {
    let detail = json!({
        "pipeline": notice.pipeline,
        "input": {
            "type": "ApprovalDecided",
            "stage": notice.stage,
            "action": notice.action,
            "token": token,
            "approved": approve,
            "summary": if approve { "Approved by the end-to-end test" } else { "Rejected by the end-to-end test" },
            "by": "baton-e2e",
        }
    });
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source("baton")
        .detail_type("Baton Approval Decided")
        .detail(detail.to_string())
        .build();
    let out = events.put_events().entries(entry).send().await.context("PutEvents")?;
    if out.failed_entry_count() > 0 {
        return Err(anyhow!("the decision was refused: {:?}", out.entries()));
    }
    Ok(())
}
