//! CodePipeline's webhooks on one machine, in the state database.

use async_trait::async_trait;
use rusqlite::params;

use super::sql_state::{SqlStateStore, from_json, texts, to_json, unavailable};
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
        let bodies = texts(&self.conn(), "SELECT body FROM webhooks ORDER BY name")?;
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
