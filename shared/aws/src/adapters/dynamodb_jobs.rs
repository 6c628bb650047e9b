//! Running jobs on AWS (`JOBS` / `<provider>#<external id>`), in the state table.
//!
//! One partition: only attempts whose work is still going on (builds) live there, a handful at
//! a time, so the periodic check reads it whole with one `Query` and keeps the due ones. An
//! item outlives its attempt's deadline by a day at most (DynamoDB TTL), in case it is never
//! looked at again.

use super::dynamodb_state::{
    DynamoDbStateStore, Filter, from_json, get_n, key, n, packed, to_json, unpacked,
};
use async_trait::async_trait;
use baton_app::ports::jobs::{RunningJob, RunningJobs};
use baton_app::ports::state::StoreError;

const JOBS_PK: &str = "JOBS";
const KEEP_AFTER_DEADLINE_SECS: i64 = 24 * 3600;

#[async_trait]
impl RunningJobs for DynamoDbStateStore {
    async fn put_job(&self, job: &RunningJob) -> Result<(), StoreError> {
        let mut item = key(JOBS_PK, job.key.as_str());
        item.insert("check_at".into(), n(job.check_at));
        // Deflated like execution bodies: a request is repetitive JSON, and a write unit is
        // counted per kilobyte.
        item.insert("body".into(), packed(&to_json(job)?)?);
        let deadline = job.request.deadline.max(job.check_at);
        item.insert("expires_at".into(), n(deadline / 1000 + KEEP_AFTER_DEADLINE_SECS));
        self.put_item(item).await
    }

    async fn get_job(&self, job_key: &str) -> Result<Option<RunningJob>, StoreError> {
        let item = self.get_item(key(JOBS_PK, job_key)).await?;
        item.map(|item| from_json(&unpacked(&item, "body")?)).transpose()
    }

    async fn remove_job(&self, job_key: &str) -> Result<(), StoreError> {
        self.delete_items(vec![key(JOBS_PK, job_key)]).await
    }

    async fn due_jobs(&self, now: i64, limit: usize) -> Result<Vec<RunningJob>, StoreError> {
        // The partition is read whole either way (a filter saves transfer, not read units).
        let mut due = Vec::new();
        for item in self.query_all(JOBS_PK.to_owned(), None, Filter::All).await? {
            let check_at: i64 = get_n(&item, "check_at")?;
            if check_at <= now {
                due.push((check_at, from_json::<RunningJob>(&unpacked(&item, "body")?)?));
            }
        }
        due.sort_by_key(|(at, _)| *at);
        Ok(due.into_iter().take(limit).map(|(_, job)| job).collect())
    }
}
