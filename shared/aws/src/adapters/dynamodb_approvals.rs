//! Approval link records (`APPROVAL#<id>` / `LINK`) and action claims (`CLAIM#<attempt>` /
//! `CLAIM`) on AWS, in the state table.
//!
//! The record expires (DynamoDB TTL) 30 days after its links do, long enough for a late click
//! to still be told "expired" rather than "invalid link".

use async_trait::async_trait;

use super::dynamodb_state::{
    DynamoDbStateStore, condition_refused, from_json, get_s, key, n, s, sdk, to_json,
};
use baton_app::ports::approvals::{ApprovalLink, ApprovalLinks, LinkUse};
use baton_app::ports::state::{ActionClaims, StoreError};

#[async_trait]
impl ActionClaims for DynamoDbStateStore {
    async fn claim(&self, attempt: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let mut item = key(format!("CLAIM#{attempt}"), "CLAIM");
        item.insert("until".into(), n(until));
        item.insert("expires_at".into(), n(until / 1000 + 24 * 3600));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(sdk("PutItem")(e)),
        }
    }

    async fn release(&self, attempt: &str, until: i64) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CLAIM#{attempt}"), "CLAIM")))
            .condition_expression("#until = :until")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Taken over by another worker since, or gone: not ours to give up.
            Err(e) if condition_refused(&e) => Ok(()),
            Err(e) => Err(sdk("DeleteItem")(e)),
        }
    }
}

const LINK_SK: &str = "LINK";
const KEEP_AFTER_EXPIRY_SECS: i64 = 30 * 24 * 3600;

fn link_pk(id: &str) -> String {
    format!("APPROVAL#{id}")
}

#[async_trait]
impl ApprovalLinks for DynamoDbStateStore {
    async fn put_link(&self, link: &ApprovalLink) -> Result<bool, StoreError> {
        let mut item = key(link_pk(&link.id), LINK_SK);
        item.insert("body".into(), s(to_json(link)?));
        item.insert("expires_at".into(), n(link.expires / 1000 + KEEP_AFTER_EXPIRY_SECS));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(used)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(sdk("PutItem")(e)),
        }
    }

    async fn get_link(&self, id: &str) -> Result<Option<ApprovalLink>, StoreError> {
        let Some(item) = self.get_item(key(link_pk(id), LINK_SK)).await? else {
            return Ok(None);
        };
        let mut link: ApprovalLink = from_json(get_s(&item, "body")?)?;
        link.used = match item.get("used") {
            Some(_) => Some(from_json(get_s(&item, "used")?)?),
            None => None,
        };
        Ok(Some(link))
    }

    async fn use_link(&self, followed: &ApprovalLink, used: &LinkUse) -> Result<(), StoreError> {
        let id = &followed.id;
        let body = to_json(&ApprovalLink { used: None, ..followed.clone() })?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(link_pk(id), LINK_SK)))
            .update_expression("SET used = :used, body = :body")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(used)")
            .expression_attribute_values(":used", s(to_json(used)?))
            .expression_attribute_values(":body", s(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => {
                Err(StoreError::Conflict(format!("approval link {id}")))
            }
            Err(e) => Err(sdk("UpdateItem")(e)),
        }
    }
}
