//! Custom action types and external workers' jobs on one machine, in the state database.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::sql_state::{SqlStateStore, from_json, texts, to_json, unavailable};
use baton_app::ports::job_queue::{ActionType, CustomActionType, JobQueue, JobStatus, QueuedJob};
use baton_app::ports::state::{StoreError, Versioned};

#[async_trait]
impl JobQueue for SqlStateStore {
    async fn put_action_type(&self, action_type: &CustomActionType) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO custom_action_types (id, body) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                params![action_type.id.key(), to_json(action_type)?],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    async fn action_types(&self) -> Result<Vec<CustomActionType>, StoreError> {
        let bodies = texts(&self.conn(), "SELECT body FROM custom_action_types ORDER BY id")?;
        bodies.iter().map(|b| from_json(b)).collect()
    }

    async fn put_job(&self, job: &Versioned<QueuedJob>) -> Result<(), StoreError> {
        let j = &job.value;
        let body = to_json(j)?;
        let status = j.status.as_str();
        let changed = if job.version == 0 {
            self.conn()
                .execute(
                    "INSERT INTO worker_jobs (id, action_type, status, created, version, body)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5) ON CONFLICT (id) DO NOTHING",
                    params![j.id, j.action_type.key(), status, j.created, body],
                )
                .map_err(unavailable)?
        } else {
            self.conn()
                .execute(
                    "UPDATE worker_jobs SET status = ?2, version = version + 1, body = ?3
                     WHERE id = ?1 AND version = ?4",
                    params![j.id, status, body, i64::try_from(job.version).unwrap_or(i64::MAX)],
                )
                .map_err(unavailable)?
        };
        if changed == 1 { Ok(()) } else { Err(StoreError::Conflict(format!("job {}", j.id))) }
    }

    async fn job(&self, id: &str) -> Result<Option<Versioned<QueuedJob>>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn()
            .query_row("SELECT version, body FROM worker_jobs WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(unavailable)?;
        row.map(|(version, body)| {
            Ok(Versioned { version: u64::try_from(version).unwrap_or(0), value: from_json(&body)? })
        })
        .transpose()
    }

    async fn queued_jobs(
        &self,
        action_type: &ActionType,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedJob>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT version, body FROM worker_jobs WHERE action_type = ?1 AND status = ?2
                 ORDER BY created LIMIT ?3",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(
                params![
                    action_type.key(),
                    JobStatus::Queued.as_str(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(version, body)| {
                Ok(Versioned {
                    version: u64::try_from(version).unwrap_or(0),
                    value: from_json(&body)?,
                })
            })
            .collect()
    }
}
