//! Running jobs on one machine, in the state database.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::sql_state::{SqlStateStore, from_json, to_json, unavailable};
use baton_app::ports::jobs::{RunningJob, RunningJobs};
use baton_app::ports::state::StoreError;

#[async_trait]
impl RunningJobs for SqlStateStore {
    async fn put_job(&self, job: &RunningJob) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO running_jobs (key, check_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET check_at = excluded.check_at, body = excluded.body",
                params![job.key, job.check_at, to_json(job)?],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_job(&self, key: &str) -> Result<Option<RunningJob>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row("SELECT body FROM running_jobs WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        body.map(|b| from_json(&b)).transpose()
    }

    async fn remove_job(&self, key: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM running_jobs WHERE key = ?1", [key])
            .map_err(unavailable)?;
        Ok(())
    }

    async fn due_jobs(&self, now: i64, limit: usize) -> Result<Vec<RunningJob>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT body FROM running_jobs WHERE check_at <= ?1 ORDER BY check_at LIMIT ?2",
            )
            .map_err(unavailable)?;
        let bodies = stmt
            .query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                r.get::<_, String>(0)
            })
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        bodies.iter().map(|b| from_json(b)).collect()
    }
}
