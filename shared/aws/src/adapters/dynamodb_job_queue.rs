//! Custom action types and external workers' jobs on AWS, in the state table.
//!
//! | `pk`                  | `sk`                   | attributes                                   |
//! |-----------------------|------------------------|----------------------------------------------|
//! | `ACTIONTYPES`         | `<category/owner/provider/version>` | `body` (JSON)                   |
//! | `WORKERJOB#<id>`      | `JOB`                  | `version`, `status`, `body` (deflated JSON), `expires_at` |
//! | `JOBQUEUE#<type>`     | `<created, 0-padded>#<id>` | none: present while the job is queued    |
//!
//! A job and its queue entry change in one transaction, conditioned on the job's version, so
//! a poll that read a job another poll took loses and hands nothing out.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::dynamodb_state::{
    DynamoDbStateStore, Filter, conflicted, from_json, get_n, key, n, packed, s, sdk, to_json,
    unpacked,
};
use baton_app::ports::job_queue::{ActionType, CustomActionType, JobQueue, JobStatus, QueuedJob};
use baton_app::ports::state::{StoreError, Versioned};

const TYPES_PK: &str = "ACTIONTYPES";
/// Jobs are kept this long after they were queued: a job lives at most as long as its
/// action's time-out, which CodePipeline caps at a week for approvals and less for the rest.
const KEEP_JOBS_SECS: i64 = 30 * 24 * 3600;

fn job_pk(id: &str) -> String {
    format!("WORKERJOB#{id}")
}

fn queue_key(job: &QueuedJob) -> aws_sdk_dynamodb::types::AttributeValue {
    s(format!("{:020}#{}", job.created.max(0), job.id))
}

fn queue_pk(t: &ActionType) -> String {
    format!("JOBQUEUE#{}", t.key())
}

#[async_trait]
impl JobQueue for DynamoDbStateStore {
    async fn put_action_type(&self, action_type: &CustomActionType) -> Result<(), StoreError> {
        let mut item = key(TYPES_PK, action_type.id.key());
        item.insert("body".into(), s(to_json(action_type)?));
        self.put_item(item).await
    }

    async fn action_types(&self) -> Result<Vec<CustomActionType>, StoreError> {
        let mut types = Vec::new();
        for item in self.query_all(TYPES_PK.to_owned(), None, Filter::All).await? {
            types.push(from_json(&unpacked(&item, "body")?)?);
        }
        Ok(types)
    }

    async fn put_job(&self, job: &Versioned<QueuedJob>) -> Result<(), StoreError> {
        let j = &job.value;
        let mut item = key(job_pk(&j.id), "JOB");
        item.insert("version".into(), n(job.version + 1));
        item.insert("status".into(), s(j.status.as_str()));
        item.insert("body".into(), packed(&to_json(j)?)?);
        item.insert("expires_at".into(), n(j.created / 1000 + KEEP_JOBS_SECS));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = if job.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#v = :read")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":read", n(job.version))
        };
        let mut entry = key(queue_pk(&j.action_type), "");
        entry.insert("sk".into(), queue_key(j));
        let queue = if j.status == JobStatus::Queued {
            let put_entry = Put::builder().table_name(&self.table).set_item(Some(entry));
            TransactWriteItem::builder().put(put_entry.build().map_err(sdk("Put"))?).build()
        } else {
            let delete = Delete::builder().table_name(&self.table).set_key(Some(entry));
            TransactWriteItem::builder().delete(delete.build().map_err(sdk("Delete"))?).build()
        };
        let items =
            vec![TransactWriteItem::builder().put(put.build().map_err(sdk("Put"))?).build(), queue];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conflicted) => {
                Err(StoreError::Conflict(format!("job {}", j.id)))
            }
            Err(e) => Err(sdk("TransactWriteItems")(e)),
        }
    }

    async fn job(&self, id: &str) -> Result<Option<Versioned<QueuedJob>>, StoreError> {
        let Some(item) = self.get_item(key(job_pk(id), "JOB")).await? else { return Ok(None) };
        Ok(Some(Versioned {
            version: get_n(&item, "version")?,
            value: from_json(&unpacked(&item, "body")?)?,
        }))
    }

    async fn queued_jobs(
        &self,
        action_type: &ActionType,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedJob>>, StoreError> {
        let mut jobs = Vec::new();
        for entry in self.query_all(queue_pk(action_type), None, Filter::All).await? {
            if jobs.len() >= limit {
                break;
            }
            let sk = super::dynamodb_state::get_s(&entry, "sk")?;
            let Some((_, id)) = sk.split_once('#') else { continue };
            // An entry whose job moved on since is left for the write that moved it.
            if let Some(job) = self.job(id).await?
                && job.value.status == JobStatus::Queued
            {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}
