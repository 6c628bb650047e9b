//! Running jobs on AWS (`JOBS` / `<provider>#<external id>`), in the state table.
//!
//! One partition: only attempts whose work is still going on (builds) live there, a handful at
//! a time, so the periodic check reads it whole with one `Query` and keeps the due ones. An
//! item outlives its attempt's deadline by a day at most (DynamoDB TTL), in case it is never
//! looked at again.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamodb_state::{DynamoDbStateStore, from_json, get_n, get_s, key, n, s, sdk, to_json};
use crate::ports::jobs::{RunningJob, RunningJobs};
use crate::ports::state::StoreError;

const JOBS_PK: &str = "JOBS";
const KEEP_AFTER_DEADLINE_SECS: i64 = 24 * 3600;

#[async_trait]
impl RunningJobs for DynamoDbStateStore {
    async fn put_job(&self, job: &RunningJob) -> Result<(), StoreError> {
        let mut item = key(JOBS_PK, job.key.as_str());
        item.insert("check_at".into(), n(job.check_at));
        item.insert("body".into(), s(to_json(job)?));
        let deadline = job.request.deadline.max(job.check_at);
        item.insert("expires_at".into(), n(deadline / 1000 + KEEP_AFTER_DEADLINE_SECS));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk("PutItem"))?;
        Ok(())
    }

    async fn get_job(&self, job_key: &str) -> Result<Option<RunningJob>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(JOBS_PK, job_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk("GetItem"))?;
        out.item.map(|item| from_json(get_s(&item, "body")?)).transpose()
    }

    async fn remove_job(&self, job_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(JOBS_PK, job_key)))
            .send()
            .await
            .map_err(sdk("DeleteItem"))?;
        Ok(())
    }

    async fn due_jobs(&self, now: i64, limit: usize) -> Result<Vec<RunningJob>, StoreError> {
        let mut due: Vec<(i64, RunningJob)> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .filter_expression("check_at <= :now")
                .expression_attribute_values(":pk", AttributeValue::S(JOBS_PK.into()))
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk("Query"))?;
            for item in out.items.unwrap_or_default() {
                due.push((get_n(&item, "check_at")?, from_json(get_s(&item, "body")?)?));
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        due.sort_by_key(|(at, _)| *at);
        Ok(due.into_iter().take(limit).map(|(_, job)| job).collect())
    }
}
