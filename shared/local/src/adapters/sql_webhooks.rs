//! CodePipeline's webhooks on one machine, in the state database.

use async_trait::async_trait;
use rusqlite::params;

use super::sql_state::{SqlStateStore, from_json, to_json, unavailable};
use baton_app::ports::state::StoreError;
use baton_app::ports::webhooks::{WebhookRecord, WebhookStore};

#[async_trait]
impl WebhookStore for SqlStateStore {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO webhooks (name, body) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body",
                params![webhook.definition.name, to_json(webhook)?],
            )
            .map_err(unavailable)?;
        Ok(())
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT body FROM webhooks ORDER BY name").map_err(unavailable)?;
        let bodies = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        bodies.iter().map(|b| from_json(b)).collect()
    }

    async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM webhooks WHERE name = ?1", [name])
            .map_err(unavailable)?;
        Ok(deleted > 0)
    }
}
