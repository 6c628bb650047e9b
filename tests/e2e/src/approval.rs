//! The manual approval, as a person does it: read the notice that reached the approvals topic,
//! check what it asks, decide.
//!
//! [`decide_by_link`] decides as a person does: it opens the notice's link through the approval
//! pages function's URL (the GET decides nothing), then POSTs the page's form.

use anyhow::{Result, anyhow};
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

/// A function URL request for `link` as Lambda delivers it (AuthType NONE: no authorizer).
fn url_request(link: &str, method: &str, body: &str) -> Result<Value> {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    let (domain, path) = rest.split_at(rest.find('/').ok_or_else(|| anyhow!("no path in {link}"))?);
    Ok(json!({"version": "2.0", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded", "host": domain},
        "requestContext": {"accountId": "anonymous", "requestId": "e2e", "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or_default(),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "baton-e2e"},
            "time": "24/Nov/2026:16:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false}))
}

/// Opens the notice's approve (or reject) link through the approval pages function (a GET,
/// which decides nothing): the page's HTTP status and its HTML.
pub async fn open_link(
    pages: &crate::runtime::Pool,
    notice: &Notice,
    approve: bool,
) -> Result<(u16, String)> {
    let link = if approve { &notice.approve_link } else { &notice.reject_link };
    let link = link.as_deref().ok_or_else(|| anyhow!("the notice carries no links"))?;
    let shown = pages.invoke(url_request(link, "GET", "")?).await?.map_err(|e| anyhow!("{e}"))?;
    let status = shown["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok());
    let status = status.ok_or_else(|| anyhow!("no status in {shown}"))?;
    Ok((status, shown["body"].as_str().unwrap_or_default().to_owned()))
}

/// Follows the notice's approve (or reject) link through the approval pages function: the GET
/// must show the confirmation page, the POST of its form decides. Returns the final page.
pub async fn decide_by_link(
    pages: &crate::runtime::Pool,
    notice: &Notice,
    approve: bool,
) -> Result<String> {
    let link = if approve { &notice.approve_link } else { &notice.reject_link };
    let link = link.as_deref().ok_or_else(|| anyhow!("the notice carries no links"))?;
    let shown = pages.invoke(url_request(link, "GET", "")?).await?.map_err(|e| anyhow!("{e}"))?;
    let verb = if approve { "Approve" } else { "Reject" };
    anyhow::ensure!(
        shown["statusCode"] == 200
            && shown["body"].as_str().is_some_and(|b| b.contains(&format!("{verb} this release?"))),
        "the link did not open the confirmation page: {shown}"
    );
    let decided = pages
        .invoke(url_request(link, "POST", "name=e2e&comment=Approved+by+the+end-to-end+test")?)
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    anyhow::ensure!(decided["statusCode"] == 200, "the POST did not decide: {decided}");
    Ok(decided["body"].as_str().unwrap_or_default().to_owned())
}
