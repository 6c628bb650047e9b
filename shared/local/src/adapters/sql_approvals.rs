//! Approval link records and action claims on one machine, in the state database.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::sql_state::{SqlStateStore, from_json, to_json, unavailable};
use baton_app::ports::approvals::{ApprovalLink, ApprovalLinks, LinkUse};
use baton_app::ports::state::{ActionClaims, StoreError};

#[async_trait]
impl ActionClaims for SqlStateStore {
    async fn claim(&self, attempt: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "INSERT INTO action_claims (attempt, until) VALUES (?1, ?2)
                 ON CONFLICT (attempt) DO UPDATE SET until = excluded.until WHERE until <= ?3",
                params![attempt, until, now],
            )
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn release(&self, attempt: &str, until: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM action_claims WHERE attempt = ?1 AND until = ?2",
                params![attempt, until],
            )
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl ApprovalLinks for SqlStateStore {
    async fn put_link(&self, link: &ApprovalLink) -> Result<bool, StoreError> {
        let body = to_json(link)?;
        let changed = self
            .conn()
            .execute(
                "INSERT INTO approval_links (id, body) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body WHERE used IS NULL",
                params![link.id, body],
            )
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn get_link(&self, id: &str) -> Result<Option<ApprovalLink>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row("SELECT body, used FROM approval_links WHERE id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(unavailable)?;
        let Some((body, used)) = row else { return Ok(None) };
        let mut link: ApprovalLink = from_json(&body)?;
        link.used = used.map(|u| from_json(&u)).transpose()?;
        Ok(Some(link))
    }

    async fn use_link(&self, followed: &ApprovalLink, used: &LinkUse) -> Result<(), StoreError> {
        let text = to_json(used)?;
        let body = to_json(&ApprovalLink { used: None, ..followed.clone() })?;
        let id = &followed.id;
        let changed = self
            .conn()
            .execute(
                "UPDATE approval_links SET used = ?2, body = ?3 WHERE id = ?1 AND used IS NULL",
                params![id, text, body],
            )
            .map_err(unavailable)?;
        match changed {
            1 => Ok(()),
            _ => Err(StoreError::Conflict(format!("approval link {id}"))),
        }
    }
}
