//! What CodeBuild does on AWS and moto does not: announce the end of each build on the
//! account's default event bus ("CodeBuild Build State Change"), which the template's
//! `CodeBuildFinished` rule routes to the action-worker. Builds are read straight from moto,
//! not through the counting proxy: these are CodeBuild's calls, not Baton's.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::json;

use crate::stack::{HOME, Stack};

/// Announces builds' ends until dropped.
pub struct BuildAnnouncer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BuildAnnouncer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BuildAnnouncer {
    /// Watches the pipeline account's builds in the home region, of the projects this stack's
    /// scenarios create (named after the stack: other tests share the emulator).
    pub async fn start(stack: &Stack) -> Self {
        let sdk = stack.sdk(HOME).await;
        let prefix = format!("{}-", stack.name);
        let codebuild = aws_sdk_codebuild::Client::new(&sdk);
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let task = tokio::spawn(async move {
            let mut announced = BTreeSet::new();
            loop {
                if let Err(e) = announce_ended(&codebuild, &events, &prefix, &mut announced).await {
                    eprintln!("cannot announce builds: {e:#}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task }
    }
}

async fn announce_ended(
    codebuild: &aws_sdk_codebuild::Client,
    events: &aws_sdk_eventbridge::Client,
    prefix: &str,
    announced: &mut BTreeSet<String>,
) -> Result<()> {
    let ids = codebuild.list_builds().send().await.context("ListBuilds")?.ids.unwrap_or_default();
    let new: Vec<String> =
        ids.into_iter().filter(|id| id.starts_with(prefix) && !announced.contains(id)).collect();
    if new.is_empty() {
        return Ok(());
    }
    let builds = codebuild.batch_get_builds().set_ids(Some(new)).send().await?;
    for build in builds.builds() {
        let status = build.build_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let (Some(id), Some(arn)) = (build.id(), build.arn()) else { continue };
        if status == "IN_PROGRESS" {
            continue;
        }
        let detail = json!({
            "build-status": status,
            "project-name": build.project_name(),
            "build-id": arn,
            "additional-information": {"initiator": build.initiator()},
        });
        let entry = PutEventsRequestEntry::builder()
            .source("aws.codebuild")
            .detail_type("CodeBuild Build State Change")
            .resources(arn)
            .detail(detail.to_string())
            .build();
        let out = events.put_events().entries(entry).send().await.context("PutEvents")?;
        if out.failed_entry_count() == 0 {
            announced.insert(id.to_owned());
        }
    }
    Ok(())
}
