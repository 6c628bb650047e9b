//! CodePipeline's webhooks on AWS, in the state table: one item each under `WEBHOOKS`, sorted
//! by name. A region holds at most 300, so listing them is one query.
//!
//! | `pk`       | `sk`     | attributes    |
//! |------------|----------|---------------|
//! | `WEBHOOKS` | `<name>` | `body` (JSON) |

use async_trait::async_trait;

use super::dynamodb_state::{DynamoDbStateStore, Filter, from_json, key, s, to_json, unpacked};
use baton_app::ports::state::StoreError;
use baton_app::ports::webhooks::{WebhookRecord, WebhookStore};

const WEBHOOKS_PK: &str = "WEBHOOKS";

#[async_trait]
impl WebhookStore for DynamoDbStateStore {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        let mut item = key(WEBHOOKS_PK, webhook.definition.name.clone());
        item.insert("body".into(), s(to_json(webhook)?));
        self.put_item(item).await
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut all = Vec::new();
        for item in self.query_all(WEBHOOKS_PK.to_owned(), None, Filter::All).await? {
            all.push(from_json(&unpacked(&item, "body")?)?);
        }
        Ok(all)
    }

    async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let k = key(WEBHOOKS_PK, name);
        let existed = self.get_item(k.clone()).await?.is_some();
        if existed {
            self.delete_items(vec![k]).await?;
        }
        Ok(existed)
    }
}
